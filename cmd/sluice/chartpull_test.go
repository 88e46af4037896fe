package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/provenance"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/gitserver"
	testregistry "github.com/sluice-dev/sluice/internal/registry"
)

// packaged makes chart name at version (a `helm create` chart) and
// returns its .tgz.
func packaged(t *testing.T, name, version string) (*chart.Chart, []byte) {
	t.Helper()
	made, err := chartutil.Create(name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(made)
	if err != nil {
		t.Fatal(err)
	}
	ch.Metadata.Version = version
	out := t.TempDir()
	file, err := chartutil.Save(ch, out)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return ch, data
}

// signer is an OpenPGP key that signs charts, and its public keyring file.
func signer(t *testing.T) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity("chart signer", "", "signer@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ring bytes.Buffer
	if err := e.Serialize(&ring); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pubring.gpg")
	if err := os.WriteFile(file, ring.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, file
}

// provenanceFor signs a chart archive as `helm package --sign` does.
func provenanceFor(t *testing.T, e *openpgp.Entity, ch *chart.Chart, archive []byte) []byte {
	t.Helper()
	meta, err := sigsyaml.Marshal(ch.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	sig := &provenance.Signatory{Entity: e}
	out, err := sig.ClearSign(archive, fmt.Sprintf("%s-%s.tgz", ch.Name(), ch.Metadata.Version), meta)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// chartRepo is an HTTP chart repository: index.yaml and archives (and
// provenance files), as `helm repo index` lays them out.
type chartRepo struct {
	dir    string
	srv    *httptest.Server
	tamper atomic.Bool // serve every archive with a byte changed
}

func newChartRepo(t *testing.T) *chartRepo {
	r := &chartRepo{dir: t.TempDir()}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.tamper.Load() && strings.HasSuffix(req.URL.Path, ".tgz") {
			b, err := os.ReadFile(filepath.Join(r.dir, filepath.Base(req.URL.Path)))
			if err != nil {
				http.NotFound(w, req)
				return
			}
			b[len(b)-1] ^= 1
			w.Write(b)
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// publish adds a chart version (signed when e is set) and re-indexes.
func (r *chartRepo) publish(t *testing.T, name, version string, e *openpgp.Entity) {
	t.Helper()
	ch, data := packaged(t, name, version)
	base := fmt.Sprintf("%s-%s.tgz", name, version)
	if err := os.WriteFile(filepath.Join(r.dir, base), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if e != nil {
		if err := os.WriteFile(filepath.Join(r.dir, base+".prov"), provenanceFor(t, e, ch, data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := repo.IndexDirectory(r.dir, r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChartPullHTTP: a chart version from an HTTP repository is checked
// against the index's digest, unpacked under charts/ and committed with
// its trailers; a tampered archive, a bad signature and a missing
// provenance file under --keyring are refused with nothing written; chart
// update moves to the newest version in a range, once.
func TestChartPullHTTP(t *testing.T) {
	r := newChartRepo(t)
	key, keyring := signer(t)
	r.publish(t, "podinfo", "6.7.0", key)
	r.publish(t, "podinfo", "6.7.1", nil)
	clone := gitserver.NewRepo(t, t.TempDir(), "deploy", nil)

	out, errs, code := run(t, clone.Work, "chart", "pull", r.srv.URL, "podinfo", "--version", "6.7.0", "--keyring", keyring)
	if code != 0 {
		t.Fatalf("chart pull: exit %d %s", code, errs)
	}
	if !strings.Contains(out, "podinfo 6.7.0") || !strings.Contains(out, "verified, signed by chart signer <signer@example.com>") {
		t.Errorf("chart pull said: %s", out)
	}
	if _, err := loader.Load(filepath.Join(clone.Work, "charts", "podinfo")); err != nil {
		t.Fatalf("the chart was not unpacked: %v", err)
	}
	trailers := gitserver.Git(t, clone.Work, "log", "-1", "--format=%(trailers)")
	for _, want := range []string{"Sluice-Chart: podinfo", "Sluice-Chart-Version: 6.7.0", "Sluice-Chart-Source: " + r.srv.URL, "Sluice-Chart-Digest: sha256:", "Sluice-Chart-Provenance: verified"} {
		if !strings.Contains(trailers, want) {
			t.Errorf("commit trailers lack %q:\n%s", want, trailers)
		}
	}
	head := gitserver.Git(t, clone.Work, "rev-parse", "HEAD")

	// Refusals leave the clone as it was.
	for _, tc := range []struct {
		args   []string
		tamper bool
		want   string
	}{
		{[]string{"podinfo", "--version", "6.7.1"}, true, "the archive's digest is sha256:"},
		{[]string{"podinfo", "--version", "6.7.1", "--keyring", keyring}, false, "has no provenance file, and --keyring asks for one"},
		{[]string{"nginx", "--version", "1.0.0"}, false, "no chart name found"},
		{[]string{"podinfo", "--version", "9.9.9"}, false, "podinfo 9.9.9"},
	} {
		r.tamper.Store(tc.tamper)
		_, errs, code := run(t, clone.Work, append([]string{"chart", "pull", r.srv.URL}, tc.args...)...)
		r.tamper.Store(false)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("chart pull %v: exit %d, want an error saying %q: %s", tc.args, code, tc.want, errs)
		}
		if now := gitserver.Git(t, clone.Work, "rev-parse", "HEAD"); now != head || gitserver.Git(t, clone.Work, "status", "--porcelain") != "" {
			t.Errorf("chart pull %v changed the clone", tc.args)
		}
	}
	// A signature by another key is refused.
	_, otherRing := signer(t)
	if _, errs, code := run(t, clone.Work, "chart", "pull", r.srv.URL, "podinfo", "--version", "6.7.0", "--keyring", otherRing); code == 0 || !strings.Contains(errs, "provenance not verified") {
		t.Errorf("a signature by an untrusted key: exit %d %s", code, errs)
	}

	// update: the newest within the range, from the source the pull
	// recorded; a second run has nothing to do.
	r.publish(t, "podinfo", "7.0.0", nil)
	out, errs, code = run(t, clone.Work, "chart", "update", "charts/podinfo", "--version", "^6")
	if code != 0 || !strings.Contains(out, "podinfo 6.7.1") {
		t.Fatalf("chart update: exit %d %s %s", code, out, errs)
	}
	if subject := gitserver.Git(t, clone.Work, "log", "-1", "--format=%s"); subject != "update the podinfo chart 6.7.0 → 6.7.1" {
		t.Errorf("update commit: %q", subject)
	}
	ch, err := loader.Load(filepath.Join(clone.Work, "charts", "podinfo"))
	if err != nil || ch.Metadata.Version != "6.7.1" {
		t.Errorf("after update: %v %v", ch, err)
	}
	if out, _, code := run(t, clone.Work, "chart", "update", "charts/podinfo", "--version", "^6"); code != 0 || !strings.Contains(out, "nothing to commit") {
		t.Errorf("second update: exit %d %s", code, out)
	}
}

// TestChartPullOCI: a chart pushed to a real OCI registry is pulled by a
// version range, checked against its layer's digest and committed.
func TestChartPullOCI(t *testing.T) {
	addr := testregistry.Start(t, testregistry.Options{}).Addr
	client, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.2.0", "1.3.0", "2.0.0"} {
		_, data := packaged(t, "web", v)
		if _, err := client.Push(data, addr+"/charts/web:"+v, registry.PushOptStrictMode(true)); err != nil {
			t.Fatal(err)
		}
	}
	clone := gitserver.NewRepo(t, t.TempDir(), "deploy", nil)
	out, errs, code := run(t, clone.Work, "chart", "pull", "oci://"+addr+"/charts", "web", "--version", ">=1.2 <2", "--into", "vendor/charts", "--plain-http")
	if code != 0 || !strings.Contains(out, "web 1.3.0") {
		t.Fatalf("chart pull oci: exit %d %s %s", code, out, errs)
	}
	ch, err := loader.Load(filepath.Join(clone.Work, "vendor", "charts", "web"))
	if err != nil || ch.Metadata.Version != "1.3.0" {
		t.Fatalf("unpacked: %v %v", ch, err)
	}
	if trailers := gitserver.Git(t, clone.Work, "log", "-1", "--format=%(trailers)"); !strings.Contains(trailers, "Sluice-Chart-Digest: sha256:") || !strings.Contains(trailers, "Sluice-Chart-Source: oci://"+addr+"/charts") {
		t.Errorf("trailers:\n%s", trailers)
	}
}
