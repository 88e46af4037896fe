package imageupdate

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"30", 30 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, false},
		{"-3", 0, false},
		{"99999999", maxRetryAfter, true},
		{"Wed, 02 Dec 2026 09:00:45 GMT", 45 * time.Second, true},
		{"Wed, 02 Dec 2026 08:59:00 GMT", 0, false}, // in the past
		{"Thu, 03 Dec 2026 09:00:00 GMT", maxRetryAfter, true},
		{"soon", 0, false},
	} {
		got, ok := retryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// A registry answering 429 with Retry-After is asked once, not by
// go-containerregistry's retries nor by the next listings, until the time
// it gave; then it is asked again.
func TestRateLimitHonoured(t *testing.T) {
	var requests, limited atomic.Int64
	limited.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if limited.Load() == 1 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
			return
		}
		if r.URL.Path == "/v2/" {
			return
		}
		fmt.Fprint(w, `{"name":"app","tags":["1.0.0","1.1.0"]}`)
	}))
	defer srv.Close()
	image := strings.TrimPrefix(srv.URL, "http://") + "/app"
	reg := &Registry{}
	_, err := reg.Tags(t.Context(), image)
	until, ok := IsRateLimited(err)
	if !ok || time.Until(until) <= 0 || time.Until(until) > 2*time.Second {
		t.Fatalf("the first listing: %v (rate-limited %v until %s)", err, ok, until)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests for one listing answered 429 with Retry-After; want 1 (no retries before the time given)", n)
	}
	if _, err := reg.Tags(t.Context(), image); err == nil || requests.Load() != 1 {
		t.Errorf("a listing within Retry-After: %v, %d requests", err, requests.Load())
	}
	limited.Store(0)
	time.Sleep(time.Until(until))
	tags, err := reg.Tags(t.Context(), image)
	if err != nil || len(tags) != 2 {
		t.Errorf("after Retry-After: %v %v", tags, err)
	}
}

// A malformed tag list is an error, not an empty list.
func TestMalformedTagList(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			fmt.Fprint(w, `{"name":"app","tags":["1.0.0",`)
		}
	}))
	defer srv.Close()
	tags, err := (&Registry{}).Tags(t.Context(), strings.TrimPrefix(srv.URL, "http://")+"/app")
	if err == nil {
		t.Errorf("a truncated tag list gave %v and no error", tags)
	}
}

// Credentials are read from the files on each request: a rotated Secret
// counts at once; basic-auth directories win over Docker configs.
func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwdw=="},"reg.example:5000":{"username":"a","password":"b"}}}`), 0o600)
	basic := filepath.Join(dir, "basic")
	os.Mkdir(basic, 0o700)
	os.WriteFile(filepath.Join(basic, "username"), []byte("robot\n"), 0o600)
	os.WriteFile(filepath.Join(basic, "password"), []byte("s3cret"), 0o600)
	c := &Credentials{DockerConfigs: []string{cfg}, BasicAuth: map[string]string{"ghcr.io": basic}}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	want := map[string]authn.AuthConfig{
		"docker.io/library/app": {Username: "user", Password: "pw"},
		"reg.example:5000/app":  {Username: "a", Password: "b"},
		"ghcr.io/org/app":       {Username: "robot", Password: "s3cret"},
		"quay.io/org/app":       {},
	}
	for image, w := range want {
		repo, _ := name.NewRepository(image)
		a, err := c.Resolve(repo)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := a.Authorization()
		if got.Username != w.Username || got.Password != w.Password {
			t.Errorf("%s: %+v, want %+v", image, got, w)
		}
	}
	os.WriteFile(filepath.Join(basic, "password"), []byte("rotated"), 0o600)
	repo, _ := name.NewRepository("ghcr.io/org/app")
	a, _ := c.Resolve(repo)
	if got, _ := a.Authorization(); got.Password != "rotated" {
		t.Errorf("a rotated password is not used: %+v", got)
	}
	os.Remove(filepath.Join(basic, "username"))
	if _, err := c.Resolve(repo); err == nil || !strings.Contains(err.Error(), "basic auth for ghcr.io") {
		t.Errorf("a missing username file: %v", err)
	}
	bad := &Credentials{DockerConfigs: []string{filepath.Join(dir, "nope.json")}}
	if err := bad.Check(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing config file: %v", err)
	}
}
