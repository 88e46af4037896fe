package traffic

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/agent"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/loadgen"
)

const password = "traffic-password"

// story is one traffic scenario: a namespace, a repository served over
// smart HTTP, the agent reconciling it (in this process, against the real
// control plane), and the host its route answers for.
type story struct {
	t    testing.TB
	ns   string
	host string
	repo *gitserver.Repo
	// env, by version, is the container env a bump to that version sets
	// (flow-style YAML), e.g. a bad version's ERROR_RATE.
	env map[string]string
}

// newStory serves files (NAMESPACE and HOST replaced) and runs an agent on
// them until the test ends.
func newStory(t testing.TB, files map[string]string) *story {
	t.Helper()
	ns := cluster.Namespace(t)
	host := ns + ".example.com"
	r := strings.NewReplacer("NAMESPACE", ns, "HOST", host)
	named := map[string]string{}
	for k, v := range files {
		named[r.Replace(k)] = r.Replace(v)
	}
	files = named
	root := t.TempDir()
	repo := gitserver.NewRepo(t, root, "deploy", files)
	srv := gitserver.StartHTTP(t, root, "sluice", password)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := agent.Options{Repo: srv.RepoURL(repo.Name), Branch: "main", Path: "releases", StatusBranch: "sluice/status",
		Kubeconfig: cluster.Kubeconfig, Interval: time.Second, GitUsername: "sluice", GitPasswordFile: pw,
		Author: "sluice <sluice@test>", CacheDir: filepath.Join(t.TempDir(), "cache"), Concurrency: 4}
	a, err := agent.New(opts, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &story{t: t, ns: ns, host: host, repo: repo, env: map[string]string{}}
}

// status reads the release's committed status.
func (s *story) status(release string) v1alpha1.ReleaseStatus {
	out, err := gitserver.GitErr(s.repo.Bare, "show", "sluice/status:releases/"+release+"/status.yaml")
	var st v1alpha1.ReleaseStatus
	if err == nil {
		if err := yaml.Unmarshal([]byte(out), &st); err != nil {
			s.t.Fatal(err)
		}
	}
	return st
}

// waitStatus polls the committed status until cond holds.
func (s *story) waitStatus(release string, timeout time.Duration, cond func(v1alpha1.ReleaseStatus) bool) v1alpha1.ReleaseStatus {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.status(release)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: condition not reached in %s; status %+v", release, timeout, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load starts a load generator on the story's host; stop it with the
// returned function, which returns every record.
// It starts once the Gateway answers for the host (the installed version's
// endpoints can reach the data plane seconds after the Deployment is
// Available: that is the install, not what the story measures).
func (s *story) load(rate float64, profiles ...loadgen.Profile) func() []loadgen.Record {
	waitOK(s.t, s.host)
	return s.loadOn(s.host, rate, profiles...)
}

// loadOn is load on another host the story's routes answer for, at once.
func (s *story) loadOn(host string, rate float64, profiles ...loadgen.Profile) func() []loadgen.Record {
	g := loadgen.New(loadgen.Config{URL: cluster.Gateway.URL + "/", Host: host, Rate: rate, Profiles: profiles})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	stopped := false
	stop := func() []loadgen.Record {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
		return g.Records()
	}
	s.t.Cleanup(func() { stop() })
	return stop
}

// firstFrom is the first record at or after t answered by version.
func firstFrom(recs []loadgen.Record, t time.Time, version string) (time.Time, bool) {
	for _, r := range recs {
		if !r.At.Before(t) && r.Version == version {
			return r.At, true
		}
	}
	return time.Time{}, false
}

// approve commits an approval of gate for revision into the release file.
func (s *story) approve(gate, revision string) {
	s.t.Helper()
	file := "releases/" + s.ns + "/app/release.yaml"
	b, err := os.ReadFile(filepath.Join(s.repo.Work, file))
	if err != nil {
		s.t.Fatal(err)
	}
	y := string(b) + fmt.Sprintf("  gates:\n    approved:\n    - {gate: %s, revision: %s}\n", gate, revision)
	s.repo.Commit(s.t, "approve "+gate, map[string]string{file: y})
	s.repo.Push(s.t)
}

// explainFailures logs when failed requests happened, relative to named
// moments of the story, and with what status.
func explainFailures(t *testing.T, recs []loadgen.Record, moments map[string]time.Time) {
	t.Helper()
	var first, last time.Time
	codes := map[int]int{}
	for _, r := range recs {
		if r.OK() {
			continue
		}
		if first.IsZero() {
			first = r.At
		}
		last = r.At
		codes[r.Status]++
	}
	if first.IsZero() {
		return
	}
	t.Logf("failed requests from %s to %s, by status %v", first.Format("15:04:05.000"), last.Format("15:04:05.000"), codes)
	for name, m := range moments {
		t.Logf("  %s at %s (first failure %+.3fs after it)", name, m.Format("15:04:05.000"), first.Sub(m).Seconds())
	}
}

// waitOK waits until 20 requests in a row through the Gateway for host
// are answered 200.
func waitOK(t testing.TB, host string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for ok := 0; ok < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("the Gateway does not answer 200 for %s", host)
		}
		req, _ := http.NewRequest(http.MethodGet, cluster.Gateway.URL+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusOK {
			ok++
		} else {
			ok = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noFailures reports a story's failed requests in the summary and fails
// the test when there are any, saying when they happened.
func noFailures(t *testing.T, story string, recs []loadgen.Record, moments map[string]time.Time) {
	t.Helper()
	failed := loadgen.Failed(recs)
	report.failures(story, failed)
	t.Logf("%s: %d requests, %d failed", story, len(recs), failed)
	if failed != 0 {
		explainFailures(t, recs, moments)
		t.Errorf("%s: %d requests failed", story, failed)
	}
}
