package imageupdate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry lists tags and resolves digests with go-containerregistry,
// which retries 5xxs and 429s a few times with backoff. A 429 (or 503)
// with Retry-After is also remembered per registry host: until then every
// request to that host fails at once with a *RateLimitedError, so neither
// those retries nor the next scans ask again before the registry said to.
type Registry struct {
	// Transport carries every request (sluice's own egress transport).
	Transport http.RoundTripper
	// Keychain authenticates; nil is anonymous.
	Keychain authn.Keychain

	once   sync.Once
	limits *limiter
}

func (r *Registry) options(ctx context.Context) []remote.Option {
	r.once.Do(func() {
		base := r.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		r.limits = &limiter{next: base, until: map[string]time.Time{}, now: time.Now}
	})
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(r.limits)}
	if r.Keychain != nil {
		opts = append(opts, remote.WithAuthFromKeychain(r.Keychain))
	}
	return opts
}

// Tags lists the repository's tags.
func (r *Registry) Tags(ctx context.Context, image string) ([]string, error) {
	repo, err := name.NewRepository(image)
	if err != nil {
		return nil, err
	}
	return remote.List(repo, r.options(ctx)...)
}

// Digest is the digest the tag names now.
func (r *Registry) Digest(ctx context.Context, image, tag string) (string, error) {
	ref, err := name.NewTag(image + ":" + tag)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(ref, r.options(ctx)...)
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// RateLimitedError is a request not sent: the registry asked, with a 429
// or 503 and Retry-After, not to be asked before Until.
type RateLimitedError struct {
	Host  string
	Until time.Time
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%s rate-limited sluice (429 with Retry-After): not asked again before %s", e.Host, e.Until.UTC().Format(time.RFC3339))
}

// maxRetryAfter bounds what a registry's Retry-After can impose.
const maxRetryAfter = time.Hour

// limiter is the transport that honours Retry-After per host.
type limiter struct {
	next  http.RoundTripper
	mu    sync.Mutex
	until map[string]time.Time
	now   func() time.Time
}

func (l *limiter) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	l.mu.Lock()
	until := l.until[host]
	l.mu.Unlock()
	if l.now().Before(until) {
		return nil, &RateLimitedError{Host: host, Until: until}
	}
	resp, err := l.next.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	if wait, ok := retryAfter(resp.Header.Get("Retry-After"), l.now()); ok {
		l.mu.Lock()
		l.until[host] = l.now().Add(wait)
		l.mu.Unlock()
	}
	return resp, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date;
// bounded by maxRetryAfter.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		d = time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), maxRetryAfter), d > 0
}

// IsRateLimited reports whether err is a request the registry's
// Retry-After held back, and until when.
func IsRateLimited(err error) (time.Time, bool) {
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return rl.Until, true
	}
	return time.Time{}, false
}

// Credentials are registry credentials kept in files, read again on every
// request, so a rotated Secret mounted as files is used at once.
type Credentials struct {
	// DockerConfigs are Docker config files (config.json, or a
	// kubernetes.io/dockerconfigjson Secret's .dockerconfigjson key); a
	// later file's entry for a registry wins.
	DockerConfigs []string
	// BasicAuth maps a registry host to a directory holding the files
	// username and password (a kubernetes.io/basic-auth Secret mounted as
	// a volume); it wins over the Docker configs for its host.
	BasicAuth map[string]string
}

// Check reads every file once, so a missing or malformed one is an error
// at start, not at the first scan.
func (c *Credentials) Check() error {
	_, err := c.load()
	return err
}

// Resolve implements authn.Keychain. A file that became unreadable after
// Check is an error for the requests that need it.
func (c *Credentials) Resolve(target authn.Resource) (authn.Authenticator, error) {
	k, err := c.load()
	if err != nil {
		return nil, err
	}
	if a, ok := k[target.RegistryStr()]; ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}

func (c *Credentials) load() (map[string]authn.AuthConfig, error) {
	k := map[string]authn.AuthConfig{}
	for _, f := range c.DockerConfigs {
		if err := readDockerConfig(f, k); err != nil {
			return nil, err
		}
	}
	for host, dir := range c.BasicAuth {
		var ac authn.AuthConfig
		for _, kv := range []struct {
			file string
			to   *string
		}{{"username", &ac.Username}, {"password", &ac.Password}} {
			b, err := os.ReadFile(filepath.Join(dir, kv.file))
			if err != nil {
				return nil, fmt.Errorf("basic auth for %s: %w", host, err)
			}
			*kv.to = strings.TrimRight(string(b), "\r\n")
		}
		k[registryHost(host)] = ac
	}
	return k, nil
}

// dockerConfig is a Docker config.json (and a Kubernetes
// dockerconfigjson Secret's .dockerconfigjson, mounted as a file).
type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

func readDockerConfig(f string, k map[string]authn.AuthConfig) error {
	data, err := os.ReadFile(f)
	if err != nil {
		return err
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	for host, a := range cfg.Auths {
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return fmt.Errorf("%s: auths[%s].auth: %w", f, host, err)
			}
			ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
		}
		k[registryHost(host)] = ac
	}
	return nil
}

// registryHost is the host of a config key, which may be a URL
// (https://index.docker.io/v1/).
func registryHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	if key == "index.docker.io" || key == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return key
}
