package traffic

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/loadgen"
	"github.com/sluice-dev/sluice/internal/promtest"
)

// The analysis benchmark (make bench-analysis): bad versions and good ones
// under the compare judge and under threshold checks, on the real data
// plane. Every version answers 0.1% of its requests 500 (the baseline);
// the bad ones add 2 percentage points of errors or 50 ms to every answer.
const (
	benchRate     = 50.0 // requests/s per story
	benchBaseline = "0.001"
	// benchWatch bounds a detection: not aborted by then is not caught.
	benchWatch = 3 * time.Minute
	// benchSoak is how long a good version is analysed before promotion.
	benchSoak = 90 * time.Second
)

// series is the selector of a track's Traefik service series.
const series = `service=~"{{.Namespace}}-{{.Service}}-http-.*"`

// meanLatency is a track's mean answer time over the last 20 s.
const meanLatency = `sum(rate(traefik_service_request_duration_seconds_sum{` + series + `}[20s])) / sum(rate(traefik_service_request_duration_seconds_count{` + series + `}[20s]))`

// judgeCheck is the compare check "judge" on metrics (flow-style YAML):
// the last minute, a sample every 4 s, measured every 5 s.
func judgeCheck(prom string, metrics ...string) string {
	return fmt.Sprintf(`  checks:
  - name: judge
    compare:
      address: %s
      window: 1m
      step: 4s
      metrics:
      - %s
    interval: 5s
`, prom, strings.Join(metrics, "\n      - "))
}

// latencyMetric is the compare metric on mean latency: 20 ms matter.
var latencyMetric = `{name: latency, query: '` + meanLatency + `', direction: increase, tolerance: 0.02}`

// compareJudge is the bench's compare check: errors and mean latency per
// track, canary against stable, in the background analysis.
func compareJudge(prom string) string {
	// Errors are rare events: 30 s of requests per sample (150 at 5/s),
	// or most samples of a 2% error rate hold none.
	errs := `(sum(rate(traefik_service_requests_total{` + series + `,code=~"5.."}[30s])) or vector(0)) / sum(rate(traefik_service_requests_total{` + series + `}[30s]))`
	return judgeCheck(prom, `{name: errors, query: '`+errs+`', direction: increase, tolerance: 0.005}`, latencyMetric) +
		"    samplesTimeout: 5m\n  analysis: {checks: [judge]}\n"
}

// thresholdJudge is what a user has without the judge: the canary
// example's success-rate check and a latency objective (mean under 100 ms),
// each on the canary alone.
func thresholdJudge(t testing.TB, prom string) string {
	query, count := exampleCheck(t, "1m")
	lat := strings.ReplaceAll(`sum(rate(traefik_service_request_duration_seconds_sum{SEL}[1m])) / sum(rate(traefik_service_request_duration_seconds_count{SEL}[1m]))`,
		"SEL", `service=~"{{.Namespace}}-{{.Canary.Service}}-http-.*"`)
	return fmt.Sprintf(`  checks:
  - name: success-rate
    prometheus: {address: %s, query: '%s', countQuery: '%s'}
    successCondition: ">= 0.99"
    interval: 5s
    samplesTimeout: 5m
  - name: latency
    prometheus: {address: %s, query: '%s', countQuery: '%s'}
    successCondition: "< 0.1"
    minSamples: 50
    interval: 5s
    samplesTimeout: 5m
  analysis: {checks: [success-rate, latency]}
`, prom, query, count, prom, lat, count)
}

// benchStory is a release judged one way, its versions set by env.
func benchStory(t testing.TB, judge string, soak time.Duration) *story {
	// A 5 s drain: each good canary reuses the track the last one left,
	// and Traefik applies a route change up to 2 s after it reports it.
	files := appFiles(release(fmt.Sprintf(`    scaleDownDelay: 5s
    canary:
      steps:
      - setWeight: 10
      - pause: {duration: %s}
      - setWeight: 100
`, soak), judge))
	dep := "releases/NAMESPACE/app/deployment.yaml"
	files[dep] = strings.Replace(files[dep], "        ports:", `        env: [{name: ERROR_RATE, value: "`+benchBaseline+`"}]
        ports:`, 1)
	s := newStory(t, files)
	s.waitStatus(s.ns+"/app", 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	return s
}

// deploy pushes version with env (flow-style YAML) replacing the current.
func (s *story) deploy(from, to, env string) {
	s.t.Helper()
	file := "releases/" + s.ns + "/app/deployment.yaml"
	b, err := os.ReadFile(filepath.Join(s.repo.Work, file))
	if err != nil {
		s.t.Fatal(err)
	}
	lines := strings.Split(strings.Replace(string(b), "podinfo:"+from, "podinfo:"+to, 1), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "        env: ") {
			lines[i] = "        env: " + env
		}
	}
	s.repo.Commit(s.t, "deploy "+to, map[string]string{file: strings.Join(lines, "\n")})
	s.repo.Push(s.t)
}

// detection is how one judge did against one bad version.
type detection struct {
	caught bool
	after  time.Duration // from the bad version's first answer to its last
	bad    int           // requests the bad version answered
	why    string
}

func (d detection) String() string {
	if !d.caught {
		return fmt.Sprintf("not caught in %.0fs", benchWatch.Seconds())
	}
	return fmt.Sprintf("caught in %.0fs after %d bad requests", d.after.Seconds(), d.bad)
}

// detect pushes a bad version under load and waits for its abort.
func detect(t testing.TB, judge, version, env string) detection {
	s := benchStory(t, judge, benchWatch)
	stop := s.load(benchRate)
	time.Sleep(5 * time.Second)
	s.deploy("6.7.0", version, env)
	st := s.waitStatus(s.ns+"/app", benchWatch+time.Minute, func(st v1alpha1.ReleaseStatus) bool {
		return st.Phase == v1alpha1.PhaseAborted || st.Weight > 10
	})
	time.Sleep(3 * time.Second) // the switch back reaches the data plane
	recs := loadgen.Filter(stop(), func(r loadgen.Record) bool { return r.Version == version })
	d := detection{caught: st.Phase == v1alpha1.PhaseAborted, bad: len(recs), why: st.Message}
	if len(recs) > 0 {
		d.after = recs[len(recs)-1].At.Sub(recs[0].At)
	}
	return d
}

// falseAborts runs n canaries of versions that behave exactly as the
// stable one (a new tag each), in slots stories side by side, and counts
// those aborted.
func falseAborts(t testing.TB, judge string, n, slots int, next func() int) (aborted int, whys []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := benchStory(t, judge, benchSoak)
			stop := s.load(benchRate)
			defer stop()
			from := "6.7.0"
			for {
				k := next()
				if k >= n {
					return
				}
				to := "6.8." + strconv.Itoa(k)
				s.deploy(from, to, `[{name: ERROR_RATE, value: "`+benchBaseline+`"}]`)
				from = to
				st := s.waitStatus(s.ns+"/app", benchSoak+2*time.Minute, func(st v1alpha1.ReleaseStatus) bool {
					return st.Phase == v1alpha1.PhaseAborted || (st.Phase == v1alpha1.PhaseSucceeded && st.Stable != nil && strings.Contains(st.Message, "promoted"))
				})
				if st.Phase == v1alpha1.PhaseAborted {
					mu.Lock()
					aborted++
					whys = append(whys, to+": "+st.Message)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return aborted, whys
}

// counter hands out 0, 1, 2... to the slots.
func counter() func() int {
	var mu sync.Mutex
	k := 0
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		k++
		return k - 1
	}
}

// BenchmarkAnalysis measures what the issue asks: how fast each judge
// stops a version with +2 pp errors and one with +50 ms latency at 10% of
// 50 requests/s, and how many of 20 good versions each aborts. It runs
// once whatever b.N is (make bench-analysis: -benchtime 1x); the stories
// of both judges run side by side on the same machine and data plane.
func BenchmarkAnalysis(b *testing.B) {
	n, slots := 20, 4 // slots: stories per judge running its good canaries
	if v, err := strconv.Atoi(os.Getenv("ANALYSIS_CANARIES")); err == nil && v > 0 {
		n = v
	}
	prom := promtest.Start(b, cluster.Gateway.MetricsTarget)
	judges := map[string]string{"compare": compareJudge(prom.URL), "threshold": thresholdJudge(b, prom.URL)}
	type row struct {
		errs, lat detection
		aborted   int
		whys      []string
	}
	rows := map[string]*row{"compare": {}, "threshold": {}}
	var wg sync.WaitGroup
	for name, judge := range judges {
		wg.Add(2)
		go func() {
			defer wg.Done()
			rows[name].errs = detect(b, judge, "6.6.2", `[{name: ERROR_RATE, value: "0.021"}]`)
		}()
		go func() {
			defer wg.Done()
			rows[name].lat = detect(b, judge, "6.6.3", `[{name: ERROR_RATE, value: "`+benchBaseline+`"}, {name: LATENCY, value: 50ms}]`)
		}()
	}
	wg.Wait()
	for name, judge := range judges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[name].aborted, rows[name].whys = falseAborts(b, judge, n, slots, counter())
		}()
	}
	wg.Wait()
	for name, r := range rows {
		b.Logf("%s: errors %s (%s); latency %s (%s); false aborts %v", name, r.errs, r.errs.why, r.lat, r.lat.why, r.whys)
	}
	c, th := rows["compare"], rows["threshold"]
	fmt.Fprintf(os.Stderr, "analysis: errors+2pp %s, latency+50ms %s, false aborts %d/%d (threshold-only: errors+2pp %s, latency+50ms %s, false aborts %d/%d)\n",
		c.errs, latOnly(c.lat), c.aborted, n, th.errs, latOnly(th.lat), th.aborted, n)
}

// latOnly is a detection without its request count.
func latOnly(d detection) string {
	if !d.caught {
		return d.String()
	}
	return fmt.Sprintf("caught in %.0fs", d.after.Seconds())
}
