package v1alpha1

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestInvalidCorpus parses every file in testdata/invalid and compares the
// errors with the file's .err neighbour, line for line.
func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("../../testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("want at least 25 invalid files, got %d", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, perr := ParseRelease("testdata/invalid/"+name, data)
			if perr == nil {
				t.Fatal("parsed without error")
			}
			if diff := cmp.Diff(strings.TrimSpace(string(want)), perr.Error()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../../examples/releases/*/*/release.yaml")
	if len(files) < 7 {
		t.Fatalf("want 7 example releases, got %d", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel("../../examples", f)
		if _, err := ParseRelease(rel, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

const validCanary = `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: projects, namespace: vastaya}
spec:
  source: {path: .}
  workload: {kind: Deployment, name: projects}
  traffic: {route: projects-route, service: projects-svc}
  strategy:
    canary:
      steps:
      - setWeight: 5
      - pause: {duration: 2m}
      - check: [success-rate]
      - setHeaderRoute: {name: firefox-ko, match: {headers: [{name: User-Agent, type: RegularExpression, value: ".*Firefox.*"}]}, weight: 50}
      - setMirror: {percent: 20}
      - setCanaryScale: {matchTrafficWeight: true}
      - setWeight: 25
      - pause: {gate: qa}
      - setWeight: 100
  checks:
  - name: success-rate
    prometheus: {address: "http://prometheus:9090", query: "sum(rate(x{svc=\"{{.Canary.Service}}\"}[1m]))"}
    successCondition: ">= 0.99"
    interval: 30s
    count: 4
    failureLimit: 1
  - name: smoke
    webhook: {url: "http://smoke/run", timeout: 30s}
  onFailure: revert
  gates:
    approved:
    - {gate: qa, revision: 3f2a1bc}
  promote: {revision: 3f2a1bc}
  abort: {revision: 3f2a1bc, reason: "bad"}
`

func TestParseValid(t *testing.T) {
	p, err := ParseRelease("releases/vastaya/projects/release.yaml", []byte(validCanary))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Release
	if got := r.ID(); got != "vastaya/projects" {
		t.Errorf("ID = %q", got)
	}
	steps := r.Spec.Strategy.Steps()
	if len(steps) != 9 {
		t.Fatalf("steps = %d", len(steps))
	}
	if got := steps[1].Pause.Duration.Duration; got != 2*time.Minute {
		t.Errorf("pause = %v", got)
	}
	if got := *steps[3].SetHeaderRoute.Weight; got != 50 {
		t.Errorf("header route weight = %d", got)
	}
	if !steps[5].SetCanaryScale.MatchTrafficWeight {
		t.Error("matchTrafficWeight lost")
	}
	if got := p.Pos.Line("spec.strategy.canary.steps[6].setWeight"); got != 17 {
		t.Errorf("line of steps[6] = %d, want 17", got)
	}
	if got := p.SourceDir(); got != "releases/vastaya/projects" {
		t.Errorf("SourceDir = %q", got)
	}
	if !r.Spec.Gates.Passed("qa", "3f2a1bc0000000000000000000000000000000000") {
		t.Error("approval for the canary revision not honoured")
	}
	if r.Spec.Gates.Passed("qa", "4f2a1bc0000000000000000000000000000000000") {
		t.Error("approval for another revision honoured")
	}
	if r.Spec.OnFailure != OnFailureRevert || r.Spec.Abort.Reason != "bad" {
		t.Error("onFailure or abort lost")
	}
}

func TestPresetSteps(t *testing.T) {
	kinds := func(steps []Step) string {
		var s []string
		for _, st := range steps {
			s = append(s, st.Kind())
		}
		return strings.Join(s, ",")
	}
	f := false
	tests := []struct {
		name string
		s    Strategy
		want string
		gate []string
	}{
		{"blue-green default gate", Strategy{BlueGreen: &BlueGreen{}}, "setCanaryScale,pause,setWeight", []string{"promote"}},
		{"blue-green auto", Strategy{BlueGreen: &BlueGreen{AutoPromote: true, Checks: []string{"a"}}}, "setCanaryScale,check,setWeight", nil},
		{"blue-green preview", Strategy{BlueGreen: &BlueGreen{PreviewMatch: &RouteMatch{Headers: []HeaderMatch{{Name: "X", Value: "1"}}}, Gate: "ok"}}, "setCanaryScale,setHeaderRoute,pause,setWeight", []string{"ok"}},
		{"ab-test", Strategy{ABTest: &ABTest{Checks: []string{"a"}, Gate: "pm", Duration: &Duration{time.Minute}}}, "setHeaderRoute,pause,check,pause,setWeight", []string{"pm"}},
		{"shadow", Strategy{Shadow: &Shadow{Percent: 20, Duration: &Duration{time.Minute}}}, "setMirror,pause,setMirror,setWeight", nil},
		{"shadow no promote", Strategy{Shadow: &Shadow{Percent: 20, Promote: &f}}, "setMirror", nil},
		{"rolling", Strategy{Rolling: &Rolling{}}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kinds(tt.s.Steps()); got != tt.want {
				t.Errorf("steps = %s, want %s", got, tt.want)
			}
			if diff := cmp.Diff(tt.gate, tt.s.Gates()); diff != "" {
				t.Errorf("gates (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMirrors: which strategies mirror, and which mirror only a share of
// the requests (that needs the Gateway's percentage mirroring).
func TestMirrors(t *testing.T) {
	p := func(n int32) *Step { return &Step{SetMirror: &Mirror{Percent: n}} }
	canary := func(steps ...*Step) Strategy {
		c := &Canary{}
		for _, s := range steps {
			c.Steps = append(c.Steps, *s)
		}
		return Strategy{Canary: c}
	}
	for _, tc := range []struct {
		name          string
		s             Strategy
		mirrors, part bool
	}{
		{"shadow 20", Strategy{Shadow: &Shadow{Percent: 20}}, true, true},
		{"shadow 100", Strategy{Shadow: &Shadow{Percent: 100}}, true, false},
		{"canary 100 then 0", canary(p(100), p(0)), true, false},
		{"canary 0 only", canary(p(0)), false, false},
		{"canary 100 then 5", canary(p(100), p(5)), true, true},
		{"rolling", Strategy{Rolling: &Rolling{}}, false, false},
	} {
		if got := tc.s.Mirrors(); got != tc.mirrors {
			t.Errorf("%s: Mirrors() = %v", tc.name, got)
		}
		if got := tc.s.MirrorsShare(); got != tc.part {
			t.Errorf("%s: MirrorsShare() = %v", tc.name, got)
		}
	}
}

func TestParseCondition(t *testing.T) {
	tests := []struct {
		in      string
		v       float64
		holds   bool
		wantErr bool
	}{
		{">= 0.99", 0.995, true, false},
		{">= 0.99", 0.98, false, false},
		{"result < 500", 499, true, false},
		{"<500", 500, false, false},
		{"== 1", 1, true, false},
		{"!= 0", 0, false, false},
		{"> 1e3", 1001, true, false},
		{"at least 1", 0, false, true},
		{">= x", 0, false, true},
		{"", 0, false, true},
	}
	for _, tt := range tests {
		c, err := ParseCondition(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v", tt.in, err)
			continue
		}
		if err == nil && c.Holds(tt.v) != tt.holds {
			t.Errorf("%q.Holds(%v) = %v", tt.in, tt.v, !tt.holds)
		}
	}
}

func TestSameRevision(t *testing.T) {
	full := "3f2a1bc9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5"
	tests := []struct {
		short string
		want  bool
	}{
		{"3f2a1bc", true}, {full, true}, {"3f2a1b", false}, {"4f2a1bc", false}, {"", false},
	}
	for _, tt := range tests {
		if got := SameRevision(tt.short, full); got != tt.want {
			t.Errorf("SameRevision(%q) = %v", tt.short, got)
		}
	}
}

func TestIntOrPercent(t *testing.T) {
	p, err := ParseRelease("r/release.yaml", []byte(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: a, namespace: b}
spec:
  workload: {kind: Deployment, name: a}
  strategy:
    rolling: {maxSurge: "25%", maxUnavailable: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Release.Spec.Strategy.Rolling
	if r.MaxSurge.String() != "25%" || r.MaxUnavailable.String() != "0" {
		t.Errorf("got %s %s", r.MaxSurge, r.MaxUnavailable)
	}
}
