package strategy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/egress"
)

// Secrets reads one key of a Secret. The agent's reads the cluster; a
// check only ever asks for its release's own namespace.
type Secrets interface {
	SecretKey(ctx context.Context, namespace, name, key string) ([]byte, error)
}

// promAPI is a Prometheus API client for address with the check's
// credentials, read from Secrets in namespace ns.
func (r *Runner) promAPI(ctx context.Context, address string, auth *v1alpha1.HTTPAuth, ns string) (promv1.API, error) {
	address, err := r.address(address)
	if err != nil {
		return nil, err
	}
	client := r.client()
	if auth != nil {
		if client, err = r.authClient(ctx, auth, ns); err != nil {
			return nil, err
		}
	}
	c, err := promapi.NewClient(promapi.Config{Address: address, Client: client})
	if err != nil {
		return nil, err
	}
	return promv1.NewAPI(c), nil
}

func (r *Runner) authClient(ctx context.Context, auth *v1alpha1.HTTPAuth, ns string) (*http.Client, error) {
	read := func(k *v1alpha1.SecretKey) ([]byte, error) {
		if r.Secrets == nil {
			return nil, fmt.Errorf("no access to Secrets to read %s/%s", k.Secret, k.Key)
		}
		b, err := r.Secrets.SecretKey(ctx, ns, k.Secret, k.Key)
		if err != nil {
			return nil, fmt.Errorf("Secret %s/%s key %s: %w", ns, k.Secret, k.Key, err)
		}
		return b, nil
	}
	tr := egress.Transport()
	if base := r.client().Transport; base != nil {
		if t, ok := base.(*http.Transport); ok {
			tr = t.Clone()
		}
	}
	if auth.CA != nil {
		pem, err := read(auth.CA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("Secret %s/%s key %s holds no PEM certificate", ns, auth.CA.Secret, auth.CA.Key)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if auth.Cert != nil && auth.Key != nil {
		certPEM, err := read(auth.Cert)
		if err != nil {
			return nil, err
		}
		keyPEM, err := read(auth.Key)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate (Secret %s/%s key %s, key %s): %w", ns, auth.Cert.Secret, auth.Cert.Key, auth.Key.Key, err)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
	}
	h := http.Header{}
	for k, v := range auth.Headers {
		h.Set(k, v)
	}
	switch {
	case auth.BearerToken != nil:
		tok, err := read(auth.BearerToken)
		if err != nil {
			return nil, err
		}
		h.Set("Authorization", "Bearer "+string(tok))
	case auth.Basic != nil:
		pw, err := read(&auth.Basic.Password)
		if err != nil {
			return nil, err
		}
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(auth.Basic.Username, string(pw))
		h.Set("Authorization", req.Header.Get("Authorization"))
	}
	return &http.Client{Transport: headers{h: h, next: tr}}, nil
}

// headers adds fixed headers to every request.
type headers struct {
	h    http.Header
	next http.RoundTripper
}

func (t headers) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.h {
		req.Header[k] = v
	}
	return t.next.RoundTrip(req)
}
