//go:build !mutation

package strategy

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

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

// TestPrometheusAuth: a real Prometheus behind an HTTPS gateway that wants
// a bearer token or basic credentials and a tenant header, as Mimir or
// Thanos front ends do. The check reads its credentials and CA from
// Secrets of its release's namespace only.
func TestPrometheusAuth(t *testing.T) {
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
	check := func(auth *v1alpha1.PrometheusAuth) *v1alpha1.Check {
		return &v1alpha1.Check{Name: "rate", SuccessCondition: ">= 0",
			Prometheus: &v1alpha1.PrometheusCheck{Address: gw.URL, Query: `sum(http_requests_total{service="{{.Canary.Service}}"}) or vector(0)`, Auth: auth}}
	}
	tenant := map[string]string{"X-Scope-OrgID": "tenant-a"}
	tests := []struct {
		name string
		auth *v1alpha1.PrometheusAuth
		want Outcome
		why  string
	}{
		{"bearer token, tenant, CA", &v1alpha1.PrometheusAuth{BearerToken: key("prom", "token"), Headers: tenant, CA: key("prom", "ca.crt")}, Pass, ""},
		{"basic, tenant, CA", &v1alpha1.PrometheusAuth{Basic: &v1alpha1.BasicAuth{Username: "sluice", Password: *key("prom", "password")}, Headers: tenant, CA: key("prom", "ca.crt")}, Pass, ""},
		{"no tenant", &v1alpha1.PrometheusAuth{BearerToken: key("prom", "token"), CA: key("prom", "ca.crt")}, Inconclusive, "401"},
		{"wrong password", &v1alpha1.PrometheusAuth{Basic: &v1alpha1.BasicAuth{Username: "sluice", Password: *key("prom", "token")}, Headers: tenant, CA: key("prom", "ca.crt")}, Inconclusive, "401"},
		{"no CA", &v1alpha1.PrometheusAuth{BearerToken: key("prom", "token"), Headers: tenant}, Inconclusive, "certificate"},
		{"a Secret that is not there", &v1alpha1.PrometheusAuth{BearerToken: key("nope", "token"), Headers: tenant, CA: key("prom", "ca.crt")}, Inconclusive, "Secret shop/nope key token"},
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
	if m := runner.Run(context.Background(), check(&v1alpha1.PrometheusAuth{BearerToken: key("prom", "token"), Headers: tenant, CA: key("prom", "ca.crt")}), cc); m.Outcome != Inconclusive || !strings.Contains(m.Value, "Secret elsewhere/prom") {
		t.Errorf("another namespace's Secret: %+v", m)
	}
}
