package traffic

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/loadgen"
)

// grpcFiles is the app served over gRPC: its pods answer the standard
// health service on port 9000 (h2c), routed by a GRPCRoute.
func grpcFiles(release string) map[string]string {
	files := appFiles(release)
	dir := "releases/NAMESPACE/app/"
	files[dir+"deployment.yaml"] = strings.Replace(files[dir+"deployment.yaml"], "ports: [{name: http, containerPort: 9898}]", "ports: [{name: grpc, containerPort: 9000}]", 1)
	files[dir+"service.yaml"] = `apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{name: grpc, port: 9000, targetPort: grpc, appProtocol: kubernetes.io/h2c}]
`
	files[dir+"route.yaml"] = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: app}
spec:
  parentRefs: [{name: public, namespace: gateway-system}]
  hostnames: [HOST]
  rules:
  - matches: [{method: {service: grpc.health.v1.Health}}]
    backendRefs: [{name: app, port: 9000}]
`
	return files
}

// TestGRPCCanary: a release whose route is a GRPCRoute. At the canary's
// weight, real gRPC calls through the Gateway reach the new version in
// that share (99.9% binomial bound); every call carrying the header
// route's metadata reaches it; no call fails.
func TestGRPCCanary(t *testing.T) {
	t.Parallel()
	s := newStory(t, grpcFiles(release(`    canary:
      steps:
      - setHeaderRoute: {name: testers, match: {headers: [{name: x-canary, value: "yes"}]}}
      - setWeight: 30
      - pause: {gate: done}
`, "")))
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	g, err := loadgen.DialGRPC(strings.TrimPrefix(cluster.Gateway.URL, "http://"), s.host)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	tester := loadgen.Profile{Name: "tester", Headers: map[string]string{"x-canary": "yes"}}
	// The installed version answers gRPC through the Gateway.
	deadline := time.Now().Add(60 * time.Second)
	for ok := 0; ok < 20; {
		if time.Now().After(deadline) {
			t.Fatal("the Gateway does not answer gRPC calls for the release's host")
		}
		if r := g.Call(ctx, loadgen.Profile{}); r.OK() && r.Version == "6.7.0" {
			ok++
		} else {
			ok = 0
			time.Sleep(100 * time.Millisecond)
		}
	}

	s.bump("6.7.0", "6.7.1")
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool {
		return st.Phase == v1alpha1.PhasePaused && st.Weight == 30
	})
	time.Sleep(3 * time.Second) // Traefik applies changes at most every 2 s
	var plain, tested []loadgen.Record
	for i := range 1200 {
		p := loadgen.Profile{}
		if i%6 == 0 {
			p = tester
		}
		r := g.Call(ctx, p)
		if p.Name == "tester" {
			tested = append(tested, r)
		} else {
			plain = append(plain, r)
		}
	}
	share, n := loadgen.Share(plain, "6.7.1")
	ok, bound := loadgen.Within(share, 0.30, n)
	t.Logf("gRPC at weight 30%%: 6.7.1 answered %.1f%% of %d calls (99.9%% bound ±%.1f pp); header route: %d calls", share*100, n, bound*100, len(tested))
	report.split(math.Abs(share-0.30)*100, n)
	if !ok {
		t.Errorf("weight 30%%: share %.3f of %d calls outside ±%.3f", share, n, bound)
	}
	if hs, hn := loadgen.Share(tested, "6.7.1"); hs != 1 || hn != len(tested) {
		t.Errorf("header route: 6.7.1 answered %.3f of %d calls carrying x-canary", hs, hn)
	}
	noFailures(t, "grpc canary", append(plain, tested...), nil)
}
