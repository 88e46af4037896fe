package imageupdate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry lists tags and resolves digests with go-containerregistry,
// which retries 429s and 5xxs with backoff (honouring Retry-After).
type Registry struct {
	// Transport carries every request (sluice's own egress transport).
	Transport http.RoundTripper
	// Keychain authenticates; nil is anonymous.
	Keychain authn.Keychain
}

func (r *Registry) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
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

// dockerConfig is a Docker config.json (and a Kubernetes
// dockerconfigjson Secret's .dockerconfigjson, mounted as a file).
type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

// keychain resolves registries to the credentials of Docker config files.
type keychain map[string]authn.AuthConfig

// KeychainFromFiles reads Docker config files (config.json, or a
// dockerconfigjson Secret's key); a later file's entry for a registry
// wins.
func KeychainFromFiles(files ...string) (authn.Keychain, error) {
	k := keychain{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var cfg dockerConfig
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for host, a := range cfg.Auths {
			ac := authn.AuthConfig{Username: a.Username, Password: a.Password}
			if a.Auth != "" {
				raw, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return nil, fmt.Errorf("%s: auths[%s].auth: %w", f, host, err)
				}
				ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
			}
			k[registryHost(host)] = ac
		}
	}
	return k, nil
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

// Resolve implements authn.Keychain.
func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[target.RegistryStr()]; ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}
