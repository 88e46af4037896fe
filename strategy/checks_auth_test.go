//go:build !mutation

package strategy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/promtest"
)

// mapSecrets is an in-memory Secrets: namespace/name/key → value.
type mapSecrets map[string]string

func (m mapSecrets) SecretKey(_ context.Context, ns, name, key string) ([]byte, error) {
	v, ok := m[ns+"/"+name+"/"+key]
	if !ok {
		return nil, fmt.Errorf("not found")
	}
	return []byte(v), nil
}

// TestHTTPAuth: a real Prometheus behind an HTTPS gateway that wants
// a bearer token or basic credentials and a tenant header, as Mimir or
// Thanos front ends do. The check reads its credentials and CA from
// Secrets of its release's namespace only.
func TestHTTPAuth(t *testing.T) {
	app := promtest.StartApp(t, "app", "app-canary")
	prom := promtest.Start(t, app.Addr)
	app.Serve("app-canary", 10)
	target, _ := url.Parse(prom.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gw := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, basic := r.BasicAuth()
		authed := r.Header.Get("Authorization") == "Bearer s3cret" || (basic && u == "sluice" && p == "pa55")
		if !authed || r.Header.Get("X-Scope-OrgID") != "tenant-a" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gw.Certificate().Raw}))
	secrets := mapSecrets{"shop/prom/token": "s3cret", "shop/prom/password": "pa55", "shop/prom/ca.crt": ca, "other/prom/token": "s3cret"}
	runner := Runner{Secrets: secrets}
	cc := NewCheckContext(release(t, canarySteps, ""), &v1alpha1.ReleaseStatus{Canary: rev(canaryRev, "c")})
	key := func(name, k string) *v1alpha1.SecretKey { return &v1alpha1.SecretKey{Secret: name, Key: k} }
	check := func(auth *v1alpha1.HTTPAuth) *v1alpha1.Check {
		return &v1alpha1.Check{Name: "rate", SuccessCondition: ">= 0",
			Prometheus: &v1alpha1.PrometheusCheck{Address: gw.URL, Query: `sum(http_requests_total{service="{{.Canary.Service}}"}) or vector(0)`, Auth: auth}}
	}
	tenant := map[string]string{"X-Scope-OrgID": "tenant-a"}
	tests := []struct {
		name string
		auth *v1alpha1.HTTPAuth
		want Outcome
		why  string
	}{
		{"bearer token, tenant, CA", &v1alpha1.HTTPAuth{BearerToken: key("prom", "token"), Headers: tenant, CA: key("prom", "ca.crt")}, Pass, ""},
		{"basic, tenant, CA", &v1alpha1.HTTPAuth{Basic: &v1alpha1.BasicAuth{Username: "sluice", Password: *key("prom", "password")}, Headers: tenant, CA: key("prom", "ca.crt")}, Pass, ""},
		{"no tenant", &v1alpha1.HTTPAuth{BearerToken: key("prom", "token"), CA: key("prom", "ca.crt")}, Inconclusive, "401"},
		{"wrong password", &v1alpha1.HTTPAuth{Basic: &v1alpha1.BasicAuth{Username: "sluice", Password: *key("prom", "token")}, Headers: tenant, CA: key("prom", "ca.crt")}, Inconclusive, "401"},
		{"no CA", &v1alpha1.HTTPAuth{BearerToken: key("prom", "token"), Headers: tenant}, Inconclusive, "certificate"},
		{"a Secret that is not there", &v1alpha1.HTTPAuth{BearerToken: key("nope", "token"), Headers: tenant, CA: key("prom", "ca.crt")}, Inconclusive, "Secret shop/nope key token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := runner.Run(context.Background(), check(tt.auth), cc)
			if m.Outcome != tt.want || !strings.Contains(m.Value, tt.why) {
				t.Errorf("got %+v, want %s containing %q", m, tt.want, tt.why)
			}
		})
	}
	// Only the release's namespace: a token in another is not read.
	cc.Namespace = "elsewhere"
	if m := runner.Run(context.Background(), check(&v1alpha1.HTTPAuth{BearerToken: key("prom", "token"), Headers: tenant, CA: key("prom", "ca.crt")}), cc); m.Outcome != Inconclusive || !strings.Contains(m.Value, "Secret elsewhere/prom") {
		t.Errorf("another namespace's Secret: %+v", m)
	}
}

// selfSigned is a PEM certificate and key for a TLS client.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestWebhookHeadersBodyAndMutualTLS: a change-management webhook behind
// mutual TLS wants a client certificate, a bearer token, a team header and
// a JSON body naming the release and revision; the check sends all four,
// read from Secrets of the release's namespace and its body template.
func TestWebhookHeadersBodyAndMutualTLS(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	type got struct {
		body    map[string]any
		team    string
		authz   string
		clients int
	}
	seen := make(chan got, 10)
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var g got
		_ = json.NewDecoder(r.Body).Decode(&g.body)
		g.team, g.authz, g.clients = r.Header.Get("X-Team"), r.Header.Get("Authorization"), len(r.TLS.PeerCertificates)
		seen <- g
		if g.authz != "Bearer s3cret" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	hook.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	hook.StartTLS()
	t.Cleanup(hook.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}))
	runner := Runner{Secrets: mapSecrets{"shop/cab/token": "s3cret", "shop/cab/ca.crt": ca, "shop/cab/tls.crt": string(certPEM), "shop/cab/tls.key": string(keyPEM)}}
	cc := NewCheckContext(release(t, canarySteps, ""), &v1alpha1.ReleaseStatus{Canary: rev(canaryRev, "c")})
	key := func(k string) *v1alpha1.SecretKey { return &v1alpha1.SecretKey{Secret: "cab", Key: k} }
	check := func(auth *v1alpha1.HTTPAuth, body string) *v1alpha1.Check {
		return &v1alpha1.Check{Name: "cab", Webhook: &v1alpha1.WebhookCheck{URL: hook.URL + "/approve", Headers: map[string]string{"X-Team": "shop"}, Body: body, Auth: auth}}
	}
	full := &v1alpha1.HTTPAuth{BearerToken: key("token"), CA: key("ca.crt"), Cert: key("tls.crt"), Key: key("tls.key")}
	m := runner.Run(context.Background(), check(full, `{"change": {{json .Release}}, "rev": {{json .Revision}}, "step": {{.Step}}}`), cc)
	if m.Outcome != Pass {
		t.Fatalf("with everything: %+v", m)
	}
	g := <-seen
	if g.team != "shop" || g.clients != 1 || g.body["change"] != cc.Release || g.body["rev"] != canaryRev || g.body["step"] != float64(cc.Step) {
		t.Errorf("the webhook saw %+v", g)
	}
	// The default body is the whole context.
	if m := runner.Run(context.Background(), check(full, ""), cc); m.Outcome != Pass {
		t.Fatalf("default body: %+v", m)
	}
	if g := <-seen; g.body["release"] != cc.Release || g.body["check"] != "cab" {
		t.Errorf("default body: %+v", g.body)
	}
	// Without the client certificate the TLS handshake fails: no request.
	if m := runner.Run(context.Background(), check(&v1alpha1.HTTPAuth{BearerToken: key("token"), CA: key("ca.crt")}, ""), cc); m.Outcome != Fail || !strings.Contains(m.Value, "certificate") {
		t.Errorf("no client certificate: %+v", m)
	}
	// A body template that makes no JSON is no request and no verdict.
	if m := runner.Run(context.Background(), check(full, `{"change": {{.Release}}}`), cc); m.Outcome != Inconclusive || !strings.Contains(m.Value, "no valid JSON") {
		t.Errorf("bad body: %+v", m)
	}
	// A key that is not the certificate's.
	_, other := selfSigned(t)
	runner.Secrets.(mapSecrets)["shop/cab/tls.key"] = string(other)
	if m := runner.Run(context.Background(), check(full, ""), cc); m.Outcome != Inconclusive || !strings.Contains(m.Value, "client certificate") {
		t.Errorf("mismatched key: %+v", m)
	}
	if len(seen) != 0 {
		t.Errorf("%d requests sent that should not have been", len(seen))
	}
}

// TestDefaultPrometheusAddress: a check with no address uses the agent's
// --prometheus-address (a real Prometheus); with none, it says so.
func TestDefaultPrometheusAddress(t *testing.T) {
	app := promtest.StartApp(t, "app", "app-canary")
	prom := promtest.Start(t, app.Addr)
	app.Serve("app-canary", 10)
	cc := NewCheckContext(release(t, canarySteps, ""), &v1alpha1.ReleaseStatus{Canary: rev(canaryRev, "c")})
	check := &v1alpha1.Check{Name: "rate", SuccessCondition: ">= 0",
		Prometheus: &v1alpha1.PrometheusCheck{Query: `sum(http_requests_total{service="{{.Canary.Service}}"}) or vector(0)`}}
	if m := (&Runner{PrometheusAddress: prom.URL}).Run(context.Background(), check, cc); m.Outcome != Pass {
		t.Errorf("with the agent's address: %+v", m)
	}
	if m := (&Runner{}).Run(context.Background(), check, cc); m.Outcome != Inconclusive || !strings.Contains(m.Value, "--prometheus-address") {
		t.Errorf("with no address anywhere: %+v", m)
	}
}
