package traffic

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/loadgen"
)

// app is a podinfo-like workload whose pods answer (internal/podrunner):
// a Deployment, its Service and an HTTPRoute on the test Gateway for HOST.
var app = map[string]string{
	"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {app: app}}
spec:
  replicas: 4
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: app
        image: ghcr.io/sluice-dev/podinfo:6.7.0
        ports: [{name: http, containerPort: 9898}]
`,
	"service.yaml": `apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{name: http, port: 80, targetPort: http}]
`,
	"route.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: public, namespace: gateway-system}]
  hostnames: [HOST]
  rules:
  - backendRefs: [{name: app, port: 80}]
`,
	"kustomization.yaml": `resources: [deployment.yaml, service.yaml, route.yaml]
namespace: NAMESPACE
`,
}

// appFiles is the app under releases/NAMESPACE/app with release.yaml.
func appFiles(release string) map[string]string {
	files := map[string]string{"releases/NAMESPACE/app/release.yaml": release}
	for k, v := range app {
		files["releases/NAMESPACE/app/"+k] = v
	}
	return files
}

// bump changes the app's image tag in Git.
func (s *story) bump(from, to string) string {
	s.t.Helper()
	file := "releases/" + s.ns + "/app/deployment.yaml"
	b, err := os.ReadFile(filepath.Join(s.repo.Work, file))
	if err != nil {
		s.t.Fatal(err)
	}
	dep := strings.Replace(string(b), "podinfo:"+from, "podinfo:"+to, 1)
	if extra, ok := s.env[to]; ok {
		dep = strings.Replace(dep, "        ports:", "        env: "+extra+"\n        ports:", 1)
	}
	rev := s.repo.Commit(s.t, "bump to "+to, map[string]string{file: dep})
	s.repo.Push(s.t)
	return rev
}

var canaryRelease = release(`    scaleDownDelay: 5s
    canary:
      steps:
      - setHeaderRoute:
          name: firefox-ko
          match:
            headers:
            - {name: User-Agent, type: RegularExpression, value: ".*Firefox.*"}
            - {name: Accept-Language, value: ko}
      - setWeight: 10
      - pause: {duration: 12s}
      - setWeight: 40
      - pause: {duration: 12s}
`, "")

// TestCanaryTraffic: at each step the share of responses from the new
// version matches the weight (within the 99.9% binomial bound), every
// Firefox user in Korean reaches it (the header route), the first response
// from it comes soon after the weight's commit, and no request fails
// through the whole rollout, its promotion and the drain after it.
func TestCanaryTraffic(t *testing.T) {
	s := newStory(t, appFiles(canaryRelease))
	s.waitStatus(s.ns+"/app", 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	firefox := loadgen.Profile{Name: loadgen.Firefox.Name, Share: 0.1, Headers: loadgen.Firefox.Headers}
	stop := s.load(100, firefox)
	time.Sleep(3 * time.Second) // the route is served
	s.bump("6.7.0", "6.7.1")

	at := func(w int32) time.Time {
		s.waitStatus(s.ns+"/app", 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Weight == w })
		return time.Now()
	}
	t10 := at(10)
	t40 := at(40)
	s.waitStatus(s.ns+"/app", 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhasePromoting })
	tPromote := time.Now()
	s.waitStatus(s.ns+"/app", 120*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	time.Sleep(8 * time.Second) // past the drain of the canary track, and the data plane's lag
	tEnd := time.Now()
	recs := stop()

	settle := 3 * time.Second // Traefik applies changes at most every 2 s
	for _, step := range []struct {
		weight   float64
		from, to time.Time
	}{{0.10, t10, t40}, {0.40, t40, tPromote}} {
		// The next weight is applied before its commit is seen, and a data
		// plane that changed nothing for 2 s applies it at once: the
		// window ends a second before the next commit was seen.
		win := loadgen.Between(recs, step.from.Add(settle), step.to.Add(-time.Second))
		users := loadgen.Filter(win, func(r loadgen.Record) bool { return r.Profile != firefox.Name })
		if ff, n := loadgen.Share(loadgen.Filter(win, func(r loadgen.Record) bool { return r.Profile == firefox.Name }), "6.7.1"); ff != 1 || n < 20 {
			t.Errorf("weight %.0f%%: 6.7.1 answered %.3f of %d Firefox/ko requests, want all", step.weight*100, ff, n)
		} else {
			t.Logf("weight %.0f%%: all %d Firefox/ko requests answered by 6.7.1 (the header route)", step.weight*100, n)
		}
		share, n := loadgen.Share(users, "6.7.1")
		ok, bound := loadgen.Within(share, step.weight, n)
		dev := math.Abs(share-step.weight) * 100
		t.Logf("weight %.0f%%: 6.7.1 answered %.1f%% of %d requests (99.9%% bound ±%.1f pp, deviation %.1f pp)", step.weight*100, share*100, n, bound*100, dev)
		report.split(dev, n)
		if !ok || n < 300 {
			t.Errorf("weight %.0f%%: share %.3f of %d outside ±%.3f", step.weight*100, share, n, bound)
		}
		if first, ok := firstFrom(recs, step.from.Add(-time.Second), "6.7.1"); ok && step.weight == 0.10 {
			report.shifted(first.Sub(step.from))
			t.Logf("push->shifted: first response from 6.7.1 %s after the weight-10 commit was seen", first.Sub(step.from).Round(time.Millisecond))
		}
	}
	// After the promotion: only 6.7.1.
	after := loadgen.Between(recs, tEnd.Add(-3*time.Second), tEnd)
	if share, n := loadgen.Share(after, "6.7.1"); share != 1 || n < 100 {
		t.Errorf("after the promotion 6.7.1 answered %.3f of %d", share, n)
	}
	noFailures(t, "canary", recs, map[string]time.Time{"weight 10": t10, "weight 40": t40, "promoting": tPromote})
}
