package dashboard

import (
	"bufio"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the pages")

// story is testdata/story.bundle — the repository of a real canary run by
// e2e TestDashboard (installed, a canary to its qa gate, approved and
// promoted, then a bad version aborted by its check) — cloned, with a
// branch at-gate on the status commit that reached the gate.
type story struct {
	dir     string
	repo    *git.Repository
	gate    string // the status commit at the gate
	release string
}

func openStory(t *testing.T) *story {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "story.git")
	if out, err := exec.Command("git", "clone", "-q", "--mirror", "testdata/story.bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone the bundle: %v\n%s", err, out)
	}
	s := &story{dir: dir}
	// The gate's status commit, found by its trailers.
	for _, line := range strings.Split(s.git(t, "log", "--format=%H %(trailers:key=Sluice-Phase,valueonly,separator=) %(trailers:key=Sluice-Release,valueonly,separator=) %s", "sluice/status"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "Paused" && strings.Contains(line, `gate "qa"`) && s.gate == "" {
			s.gate, s.release = f[0], f[2]
		}
	}
	if s.gate == "" {
		t.Fatal("no status commit at the gate in the story")
	}
	s.git(t, "update-ref", "refs/heads/at-gate", s.gate)
	var err error
	if s.repo, err = git.PlainOpen(dir); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *story) git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", s.dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// server serves the story with the status branch at ref, the clock a
// minute after that commit.
func (s *story) server(t *testing.T, ref string) *Server {
	t.Helper()
	r := &Repo{Status: s.repo, StatusRef: plumbing.NewBranchReferenceName(ref), SpecFile: GitSpecFile(s.repo, plumbing.NewBranchReferenceName("main")), ReleasesPath: "releases"}
	head, err := r.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.repo.CommitObject(head)
	at := c.Committer.When.Add(time.Minute)
	return &Server{Repo: r, Now: func() time.Time { return at }}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	f := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte(got), 0o644)
	}
	want, err := os.ReadFile(f)
	if err != nil {
		t.Fatalf("%v (go test ./dashboard -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the page (go test ./dashboard -update rewrites it; review the diff):\n%s", f, firstDiff(string(want), got))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n want " + x + "\n  got " + y
		}
	}
	return ""
}

// Every page, at the gate and at the end of the story, against its
// golden copy; and what a person must read on them, checked by name.
func TestPagesGolden(t *testing.T) {
	s := openStory(t)
	final := s.git(t, "rev-parse", "sluice/status")
	for _, c := range []struct {
		ref, path, golden string
		want              []string
	}{
		{"at-gate", "/", "overview-gate.html", []string{"‖ Paused", "7/8 pause{gate: qa}", "canary 25%", `aria-label="stable 75%, canary 25%"`}},
		{"at-gate", "/release/" + s.release, "release-gate.html", []string{`aria-current="step"`, "▶ 7. pause{gate: qa}", "✓ 6. setWeight: 25", "sluice approve " + s.release + " qa --push", "✓ success-rate=1", "stable 75% · canary 25%"}},
		{"sluice/status", "/", "overview-final.html", []string{"✗ Aborted", "canary 0%"}},
		{"sluice/status", "/release/" + s.release, "release-final.html", []string{"✗ Aborted", "check success-rate failed", "✗ success-rate=0.5", "sluice rollback " + s.release + " --push", `class="mark abort"`, `class="mark fail"`}},
		{"sluice/status", "/commit/" + final, "commit.html", []string{final, "Sluice-Phase: Aborted"}},
		{"sluice/status", "/release/" + s.release + "/timeline.svg", "timeline-final.svg", []string{`<?xml`, `xmlns="http://www.w3.org/2000/svg"`}},
	} {
		code, body := get(t, s.server(t, c.ref).Handler(), c.path)
		if code != 200 {
			t.Errorf("%s at %s: %d %s", c.path, c.ref, code, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s at %s lacks %q", c.path, c.ref, w)
			}
		}
		golden(t, c.golden, body)
	}
}

// The chart's points are the trailers' weights of the last rollout, in
// order, read independently with git log.
func TestChartMatchesTrailers(t *testing.T) {
	s := openStory(t)
	srv := s.server(t, "sluice/status")
	snap, err := srv.snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel := snap.Find(s.release)
	chart := ChartOf(rel, srv.Now())
	var phases, weights []string
	for _, line := range strings.Split(s.git(t, "log", "--reverse", "--format=%(trailers:key=Sluice-Phase,valueonly,separator=) %(trailers:key=Sluice-Weight,valueonly,separator=)", "sluice/status"), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			phases, weights = append(phases, f[0]), append(weights, f[1])
		}
	}
	// The last rollout starts at the last settled commit before a new
	// version began.
	start := 0
	for i := 1; i < len(phases); i++ {
		if (phases[i-1] == "Succeeded" || phases[i-1] == "Aborted") && phases[i] != "Succeeded" && phases[i] != "Aborted" {
			start = i - 1
		}
	}
	if len(chart.Points) != len(phases)-start {
		t.Fatalf("%d points, %d status commits in the last rollout", len(chart.Points), len(phases)-start)
	}
	for i, p := range chart.Points {
		if strconv.Itoa(p.Weight) != weights[start+i] {
			t.Errorf("point %d: weight %d, trailer %s", i, p.Weight, weights[start+i])
		}
		if want := round1(plotBottom - float64(p.Weight)/100*(plotBottom-plotTop)); p.Y != want {
			t.Errorf("point %d: y %g for weight %d, want %g", i, p.Y, p.Weight, want)
		}
		if i > 0 && p.X < chart.Points[i-1].X {
			t.Errorf("point %d goes back in time", i)
		}
	}
}

// A known history lands on known coordinates.
func TestChartPoints(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	events := []Event{
		{Time: t0, Phase: "Succeeded", Message: "installed a"},
		{Time: t0.Add(10 * time.Second), Phase: "Progressing", Weight: 5},
		{Time: t0.Add(20 * time.Second), Phase: "Progressing", Weight: 25, Checks: []CheckMark{{"errors", "0.01", "pass"}, {"latency", "0.9", "fail"}}},
		{Time: t0.Add(30 * time.Second), Phase: "Progressing", Weight: 25, Message: "gate qa approved", Revision: "0123456789abcdef"},
		{Time: t0.Add(40 * time.Second), Phase: "Succeeded", Message: "promoted b"},
	}
	c := NewChart("t", events, time.Time{})
	// x: 56 + s/40*608; y: 200 - w/100*176.
	if want := "M56 200 H208 V191.2 H360 V156 H512 V156 H664 V200 H664"; c.Path != want {
		t.Errorf("path\n got %s\nwant %s", c.Path, want)
	}
	want := []Mark{
		{X: 360, Y: 156, Kind: "pass", Label: "check errors = 0.01 (pass)"},
		{X: 360, Y: 156, Kind: "fail", Label: "check latency = 0.9 (fail)"},
		{X: 512, Y: 156, Kind: "approve", Label: "gate qa approved (spec commit 0123456)", Anchor: "middle"},
		{X: 664, Y: 200, Kind: "promote", Label: "promoted b", Anchor: "end"},
	}
	if len(c.Marks) != len(want) {
		t.Fatalf("marks %+v", c.Marks)
	}
	for i, m := range c.Marks {
		m.Time = time.Time{}
		if m != want[i] {
			t.Errorf("mark %d: %+v, want %+v", i, m, want[i])
		}
	}
	if c.Ticks[0].Label != "10:00:00" || c.Ticks[4].Label != "10:00:40" || c.Ticks[2].X != 360 {
		t.Errorf("ticks %+v", c.Ticks)
	}
	// An abort, then a new version: the chart starts at the abort.
	events = append(events, Event{Time: t0.Add(50 * time.Second), Phase: "Progressing", Weight: 5},
		Event{Time: t0.Add(60 * time.Second), Phase: "Aborted", Message: "check errors failed"},
		Event{Time: t0.Add(70 * time.Second), Phase: "Progressing", Weight: 5})
	if got := LastRollout(events); len(got) != 2 || got[0].Phase != "Aborted" {
		t.Errorf("last rollout: %+v", got)
	}
	if got := LastRollout(events[:7]); len(got) != 3 || got[0].Message != "promoted b" {
		t.Errorf("last rollout: %+v", got)
	}
	if c := NewChart("t", nil, time.Time{}); c.Path != "" || c.Summary == "" {
		t.Errorf("no events: %+v", c)
	}
}

func TestParseChecks(t *testing.T) {
	got := ParseChecks("errors=0.01 pass, latency p99=12.5 fail, odd")
	want := []CheckMark{{"errors", "0.01", "pass"}, {"latency p99", "12.5", "fail"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("%+v", got)
	}
}

// Unknown releases and commits are 404s, a bad hash a 400, and the event
// stream names the head.
func TestHandlers(t *testing.T) {
	s := openStory(t)
	h := s.server(t, "sluice/status").Handler()
	for path, want := range map[string]int{"/release/nope/nothing": 404, "/commit/zz": 400, "/commit/" + strings.Repeat("0", 40): 404, "/release/" + s.release + "/timeline.svg": 200} {
		if code, body := get(t, h, path); code != want {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	head := s.git(t, "rev-parse", "sluice/status")
	got := ""
	for got == "" && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			got = d
		}
	}
	if got != head {
		t.Errorf("the event stream's first data %q, want the head %s", got, head)
	}
}

// Several clusters: each under its prefix, all of them on one page.
func TestClusters(t *testing.T) {
	s := openStory(t)
	a, b := s.server(t, "at-gate"), s.server(t, "sluice/status")
	a.Prefix, b.Prefix = "/staging", "/prod"
	h := Clusters([]string{"staging", "prod"}, []*Server{a, b})
	code, body := get(t, h, "/")
	if code != 200 {
		t.Fatalf("/: %d %s", code, body)
	}
	for _, want := range []string{`<h2>Cluster <a href="/staging/">staging</a></h2>`, `data-release="staging/` + s.release + `"`, `href="/prod/release/` + s.release + `"`, "‖ Paused", "✗ Aborted"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page of two clusters lacks %q", want)
		}
	}
	if code, body := get(t, h, "/prod/release/"+s.release); code != 200 || !strings.Contains(body, "✗ Aborted") {
		t.Errorf("/prod/release/…: %d", code)
	}
}
