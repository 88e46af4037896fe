package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// helmRelease is a release whose source is the chart e2e/testdata/charts/web,
// vendored at charts/web, with its values beside it.
const helmRelease = `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: web, namespace: NS}
spec:
  source:
    helm:
      chart: charts/web
      values: [values.yaml]
  workload: {kind: Deployment, name: web}
  traffic: {route: web, service: web}
  strategy:
    scaleDownDelay: 2s
    canary:
      steps:
      - setWeight: 20
      - setHeaderRoute:
          name: beta
          match:
            headers: [{name: X-Beta, value: "1"}]
      - pause: {gate: qa}
      - setWeight: 100
`

// Scenario — a Helm chart as a release's source: installed from the chart,
// a values change runs a canary with a header route, and a git revert of
// that change rolls it back at once.
func TestHelmCanary(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	files := map[string]string{
		"releases/" + w.ns + "/web/release.yaml": strings.ReplaceAll(helmRelease, "NS", w.ns),
		"releases/" + w.ns + "/web/values.yaml":  "greeting: hello\n",
	}
	err := filepath.WalkDir("testdata/charts/web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files["charts/web/"+strings.TrimPrefix(filepath.ToSlash(p), "testdata/charts/web/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.repo.Commit(t, "web from its chart", files)
	w.repo.Push(t)
	w.start()
	w.waitStatus("web", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	image := func(name string) string {
		d, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}
	d, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels["helm.sh/chart"] != "web-0.2.0" || !strings.HasSuffix(image("web"), ":6.7.0") {
		t.Fatalf("installed from the chart: labels %v image %s", d.Labels, image("web"))
	}
	// .Capabilities are the live cluster's: its version, and the Gateway
	// API it serves (not in Helm's built-in list).
	caps, err := w.cs.CoreV1().ConfigMaps(w.ns).Get(context.Background(), "web-capabilities", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	version, err := w.cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Data["kubeVersion"] != version.GitVersion || caps.Data["gatewayAPI"] != "true" {
		t.Errorf("the chart saw %v; the cluster is %s and serves HTTPRoutes", caps.Data, version.GitVersion)
	}

	// A values change that reaches the pod template is a new version.
	rev := w.commit("web", "web 6.7.1, by its values", map[string]string{"values.yaml": "greeting: hello\nimage: {tag: 6.7.1}\n"})
	var sawHeader bool
	st := w.waitStatus("web", 90*time.Second, "at the qa gate", func(s v1alpha1.ReleaseStatus) bool {
		for _, r := range w.route("web") {
			sawHeader = sawHeader || hasHeaderMatch(r)
		}
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, `"qa"`)
	})
	if st.Canary == nil || st.Canary.Revision != rev || st.Weight != 20 {
		t.Fatalf("at the gate: %+v", st)
	}
	if wt := w.weights("web"); wt["web"] != 80 || wt["web-canary"] != 20 {
		t.Errorf("weights at the gate = %v", wt)
	}
	if !sawHeader {
		t.Error("the header route never reached the HTTPRoute")
	}
	if got := image("web-canary"); !strings.HasSuffix(got, ":6.7.1") {
		t.Errorf("canary image = %q", got)
	}
	if got := image("web"); !strings.HasSuffix(got, ":6.7.0") {
		t.Errorf("stable image during the canary = %q", got)
	}

	// git revert of the values change: back to the stable version at once.
	gitserver.Git(t, w.repo.Work, "revert", "--no-edit", "HEAD")
	w.repo.Push(t)
	pushed := time.Now()
	st = w.waitStatus("web", 30*time.Second, "rolled back", phaseIs(v1alpha1.PhaseRolledBack))
	if st.Canary != nil {
		t.Errorf("after the revert: %+v", st)
	}
	if wt := w.weights("web"); wt["web-canary"] != 0 {
		t.Errorf("route after the revert = %v", wt)
	}
	for _, r := range w.route("web") {
		if hasHeaderMatch(r) {
			t.Error("the header route stayed after the revert")
		}
	}
	if got := image("web"); !strings.HasSuffix(got, ":6.7.0") {
		t.Errorf("stable image after the revert = %q", got)
	}
	t.Logf("helm: revert pushed → RolledBack in %s", time.Since(pushed).Round(time.Millisecond))
}
