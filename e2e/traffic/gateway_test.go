package traffic

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/loadgen"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// twoVersions is a Deployment per version, a Service per Deployment, and
// an HTTPRoute on the test Gateway (the route's rules come from the test).
const twoVersions = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%[2]s, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: app, v: "%[2]s"}}
  template:
    metadata: {labels: {app: app, v: "%[2]s"}}
    spec:
      containers:
      - name: app
        image: example.com/app:%[2]s
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: app-%[2]s, namespace: %[1]s}
spec:
  selector: {app: app, v: "%[2]s"}
  ports: [{port: 80, targetPort: 8080}]
`

const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: %s}
spec:
  parentRefs: [{name: public, namespace: gateway-system}]
  hostnames: [%s]
  rules:
%s`

// TestGatewayFacts records what the test data plane does with the three
// things sluice writes into routes: weights are honoured (within the
// binomial bound), header matches select exactly, and a RequestMirror
// filter is accepted in the route's status yet breaks the rule — the
// reason for the shadow guard.
func TestGatewayFacts(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	for _, v := range []string{"v1", "v2"} {
		apply(t, fmt.Sprintf(twoVersions, ns, v))
		if _, err := cluster.WaitAvailable(ctx, cluster.Clientset(t), ns, "app-"+v, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	host := ns + ".example.com"
	run := func(rules string, profiles ...loadgen.Profile) []loadgen.Record {
		t.Helper()
		apply(t, fmt.Sprintf(route, ns, host, rules))
		waitServes(t, host)
		// Let Traefik take the new configuration (it throttles changes to one
		// per 2 s) before measuring.
		time.Sleep(3 * time.Second)
		g := loadgen.New(loadgen.Config{URL: cluster.Gateway.URL + "/", Host: host, Rate: 100, Profiles: profiles})
		c, cancel := context.WithTimeout(ctx, 4*time.Second)
		defer cancel()
		g.Run(c)
		return g.Records()
	}

	weighted := run(`  - backendRefs:
    - {name: app-v1, port: 80, weight: 80}
    - {name: app-v2, port: 80, weight: 20}
`)
	share, n := loadgen.Share(weighted, "v2")
	ok, bound := loadgen.Within(share, 0.20, n)
	t.Logf("weights 80/20: v2 answered %.1f%% of %d (bound ±%.1f pp), %d failed", 100*share, n, 100*bound, loadgen.Failed(weighted))
	if !ok || n < 200 || loadgen.Failed(weighted) > 0 {
		t.Errorf("weights not honoured")
	}

	headers := run(`  - matches:
    - headers: [{name: Accept-Language, value: ko}]
    backendRefs: [{name: app-v2, port: 80}]
  - backendRefs: [{name: app-v1, port: 80}]
`, loadgen.Profile{Name: loadgen.Firefox.Name, Share: 0.25, Headers: loadgen.Firefox.Headers})
	ff := loadgen.Filter(headers, func(r loadgen.Record) bool { return r.Profile == loadgen.Firefox.Name })
	rest := loadgen.Filter(headers, func(r loadgen.Record) bool { return r.Profile != loadgen.Firefox.Name })
	ffShare, ffN := loadgen.Share(ff, "v2")
	restShare, restN := loadgen.Share(rest, "v2")
	t.Logf("header match: %d of %d ko requests on v2, %d of %d others", int(ffShare*float64(ffN)), ffN, int(restShare*float64(restN)), restN)
	if ffShare != 1 || restShare != 0 || ffN == 0 || restN == 0 {
		t.Errorf("header match not exact")
	}

	feats, err := kubectl("get", "gatewayclass", "traefik", "-o", "jsonpath={.status.supportedFeatures[*].name}")
	t.Logf("GatewayClass traefik supportedFeatures: %s (err %v)", feats, err)
	mirrored := run(`  - filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: app-v2, port: 80}, percent: 50}
    backendRefs: [{name: app-v1, port: 80}]
`)
	failed := loadgen.Failed(mirrored)
	accepted := routeAccepted(t, ns, "app")
	t.Logf("RequestMirror: route Accepted=%v, %d of %d requests failed", accepted, failed, len(mirrored))
	if failed != len(mirrored) || !accepted {
		t.Errorf("the mirror fact changed (Accepted=%v, %d of %d failed): update docs/gateways.md and the shadow guard", accepted, failed, len(mirrored))
	}
}

// waitServes waits until the Gateway answers for host at all.
func waitServes(t *testing.T, host string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g := loadgen.New(loadgen.Config{URL: cluster.Gateway.URL + "/", Host: host, Rate: 1})
		c, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
		g.Run(c)
		cancel()
		if recs := g.Records(); len(recs) > 0 && recs[0].Status != 404 && recs[0].Status != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Gateway does not route %s", host)
		}
	}
}

func apply(t *testing.T, y string) {
	t.Helper()
	if err := testcluster.ApplyYAML(context.Background(), cluster.Config, []byte(y)); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
}

func routeAccepted(t *testing.T, ns, name string) bool {
	t.Helper()
	out, err := kubectl("get", "httproute", "-n", ns, name, "-o", `jsonpath={.status.parents[0].conditions[?(@.type=="Accepted")].status}`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out) == "True"
}
