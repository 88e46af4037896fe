// Package chartvendor brings Helm charts into a repository: it fetches a
// chart version from an HTTP chart repository or an OCI registry with the
// Helm SDK's clients, checks it against the digest its source publishes
// (and its provenance when asked), and unpacks it. Only the CLI uses it:
// the agent renders vendored charts and never fetches one.
package chartvendor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/provenance"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// Options are how a pull reaches its source and what it checks.
type Options struct {
	// Transport carries every request (the CLI's own; nil: a default).
	Transport *http.Transport
	// Keyring, when set, makes provenance required: the chart's .prov must
	// be present and signed by a key in this OpenPGP keyring.
	Keyring string
	// PlainHTTP talks to an OCI registry without TLS (a local one).
	PlainHTTP bool
	// Username and Password authenticate to the source.
	Username, Password string
}

// Pulled is a chart version fetched and checked.
type Pulled struct {
	Name, Version string
	// Source is where it came from: the repository URL or oci:// reference.
	Source string
	// Digest is "sha256:<hex>" of the chart archive, equal to what the
	// source published for it (the index's digest, the OCI layer's).
	Digest string
	// Provenance says what was checked of the signature.
	Provenance string
	// Archive is the chart's .tgz.
	Archive []byte
	chart   *chart.Chart
}

// Pull fetches chart name at version (an exact version or a semver range,
// the highest match taken) from source: an http(s) chart repository URL or
// an oci:// registry path.
func Pull(source, name, version string, opts Options) (*Pulled, error) {
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	var p *Pulled
	var prov []byte
	var err error
	if strings.HasPrefix(source, "oci://") {
		p, prov, err = pullOCI(source, name, version, opts)
	} else if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
		p, prov, err = pullHTTP(source, name, version, opts)
	} else {
		return nil, fmt.Errorf("%s: a chart source is an https:// repository or an oci:// registry", source)
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p.Archive)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != p.Digest {
		return nil, fmt.Errorf("%s %s: the archive's digest is %s, its source says %s: refused", name, p.Version, got, p.Digest)
	}
	if p.chart, err = loader.LoadArchive(bytes.NewReader(p.Archive)); err != nil {
		return nil, fmt.Errorf("%s %s: not a chart: %w", name, p.Version, err)
	}
	if p.chart.Name() != name || p.chart.Metadata.Version != p.Version {
		return nil, fmt.Errorf("the archive holds %s %s, not %s %s: refused", p.chart.Name(), p.chart.Metadata.Version, name, p.Version)
	}
	switch {
	case opts.Keyring != "" && prov == nil:
		return nil, fmt.Errorf("%s %s has no provenance file, and --keyring asks for one", name, p.Version)
	case opts.Keyring != "":
		sig, err := provenance.NewFromKeyring(opts.Keyring, "")
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", opts.Keyring, err)
		}
		v, err := sig.Verify(p.Archive, prov, fmt.Sprintf("%s-%s.tgz", name, p.Version))
		if err != nil {
			return nil, fmt.Errorf("%s %s: provenance not verified: %w", name, p.Version, err)
		}
		p.Provenance = "verified, signed by " + signer(v)
	case prov != nil:
		p.Provenance = "present, not verified (no --keyring)"
	default:
		p.Provenance = "none"
	}
	return p, nil
}

func signer(v *provenance.Verification) string {
	if v.SignedBy != nil {
		for id := range v.SignedBy.Identities {
			return id
		}
	}
	return "a key in the keyring"
}

// pullHTTP reads the repository's index.yaml, picks the version, and
// downloads the archive its entry names, with the entry's digest.
func pullHTTP(source, name, version string, opts Options) (*Pulled, []byte, error) {
	g, err := getter.NewHTTPGetter(getter.WithTransport(opts.Transport), getter.WithTimeout(2*time.Minute))
	if err != nil {
		return nil, nil, err
	}
	auth := []getter.Option{}
	if opts.Username != "" {
		auth = append(auth, getter.WithBasicAuth(opts.Username, opts.Password))
	}
	indexURL := strings.TrimSuffix(source, "/") + "/index.yaml"
	buf, err := g.Get(indexURL, auth...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", indexURL, err)
	}
	idx, err := loadIndex(buf.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", indexURL, err)
	}
	cv, err := idx.Get(name, version)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s %s: %w", source, name, version, err)
	}
	if len(cv.URLs) == 0 {
		return nil, nil, fmt.Errorf("%s: %s %s lists no URL", indexURL, name, cv.Version)
	}
	if cv.Digest == "" {
		return nil, nil, fmt.Errorf("%s: %s %s has no digest in the index: it cannot be checked, so it is not vendored", indexURL, name, cv.Version)
	}
	u, err := repo.ResolveReferenceURL(source, cv.URLs[0])
	if err != nil {
		return nil, nil, err
	}
	data, err := g.Get(u, append(auth, getter.WithAcceptHeader("application/gzip,application/octet-stream"))...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", u, err)
	}
	p := &Pulled{Name: name, Version: cv.Version, Source: source, Digest: "sha256:" + strings.TrimPrefix(cv.Digest, "sha256:"), Archive: data.Bytes()}
	var prov []byte
	if b, err := g.Get(u+".prov", auth...); err == nil {
		prov = b.Bytes()
	}
	return p, prov, nil
}

// loadIndex parses an index.yaml as helm does (through a file, the only
// form its loader takes).
func loadIndex(data []byte) (*repo.IndexFile, error) {
	f, err := os.CreateTemp("", "sluice-index-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	return repo.LoadIndexFile(f.Name())
}

// pullOCI pulls name:version from the registry path; a range is resolved
// against the repository's tags.
func pullOCI(source, name, version string, opts Options) (*Pulled, []byte, error) {
	copts := []registry.ClientOption{registry.ClientOptHTTPClient(&http.Client{Transport: opts.Transport, Timeout: 2 * time.Minute})}
	if opts.PlainHTTP {
		copts = append(copts, registry.ClientOptPlainHTTP())
	}
	if opts.Username != "" {
		copts = append(copts, registry.ClientOptBasicAuth(opts.Username, opts.Password))
	}
	client, err := registry.NewClient(copts...)
	if err != nil {
		return nil, nil, err
	}
	base := strings.TrimSuffix(strings.TrimPrefix(source, "oci://"), "/") + "/" + name
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v")); err != nil {
		if version, err = highestTag(client, base, version); err != nil {
			return nil, nil, err
		}
	}
	res, err := client.Pull(base+":"+version, registry.PullOptWithProv(opts.Keyring != ""), registry.PullOptIgnoreMissingProv(true))
	if err != nil {
		return nil, nil, fmt.Errorf("oci://%s:%s: %w", base, version, err)
	}
	if res.Chart == nil {
		return nil, nil, fmt.Errorf("oci://%s:%s holds no chart layer", base, version)
	}
	p := &Pulled{Name: name, Version: version, Source: source, Digest: res.Chart.Digest, Archive: res.Chart.Data}
	var prov []byte
	if res.Prov != nil && len(res.Prov.Data) > 0 {
		prov = res.Prov.Data
	}
	return p, prov, nil
}

// highestTag is the highest tag of ref matching the semver range.
func highestTag(client *registry.Client, ref, rng string) (string, error) {
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return "", fmt.Errorf("--version %q: neither a version nor a range: %w", rng, err)
	}
	tags, err := client.Tags(ref)
	if err != nil {
		return "", fmt.Errorf("oci://%s: tags: %w", ref, err)
	}
	var vs []*semver.Version
	for _, t := range tags {
		if v, err := semver.NewVersion(t); err == nil && c.Check(v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return "", fmt.Errorf("oci://%s: no tag matches %s", ref, rng)
	}
	sort.Sort(semver.Collection(vs))
	return vs[len(vs)-1].Original(), nil
}

// Unpack writes the chart into dir/<name>, replacing what was there, and
// returns that directory.
func Unpack(p *Pulled, dir string) (string, error) {
	dest := filepath.Join(dir, p.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".sluice-chart-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := chartutil.Expand(tmp, bytes.NewReader(p.Archive)); err != nil {
		return "", fmt.Errorf("unpacking %s %s: %w", p.Name, p.Version, err)
	}
	if err := os.RemoveAll(dest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, p.Name), dest); err != nil {
		return "", err
	}
	return dest, nil
}
