package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestFailedCheckReverts: a version whose check fails is aborted; with
// onFailure: revert the spec branch gets a commit restoring the release's
// files to the stable revision, and the same version is not retried.
func TestFailedCheckReverts(t *testing.T) {
	smoke := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer smoke.Close()
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: canary, namespace: NAMESPACE}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    canary:
      steps:
      - setWeight: 10
      - check: [smoke]
      - setWeight: 100
  checks:
  - name: smoke
    webhook: {url: "%s"}
  onFailure: revert
`, smoke.URL)
	e := newEnv(t, files, nil)
	st := e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	stable := st.Stable.Revision
	stableDeployment := gitserver.Git(t, e.repo.Bare, "show", stable+":releases/"+e.ns+"/canary/deployment.yaml")

	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	e.repo.Commit(t, "bump image", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.9", 1)})
	e.repo.Push(t)
	st = e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseAborted }, nil)
	if !strings.Contains(st.Message, "check smoke failed") || st.AbortedDigest == "" {
		t.Fatalf("aborted status: %+v", st)
	}
	if w := e.weights("canary", "canary"); len(w) != 1 {
		t.Errorf("route after the abort = %v", w)
	}
	subject := gitserver.Git(t, e.repo.Bare, "log", "-1", "--format=%s", "main")
	if subject != "sluice: revert "+e.ns+"/canary to "+stable[:7] {
		t.Errorf("head of main: %q", subject)
	}
	if got := gitserver.Git(t, e.repo.Bare, "show", "main:releases/"+e.ns+"/canary/deployment.yaml"); got != stableDeployment {
		t.Errorf("deployment.yaml at head differs from the stable revision:\n%s", got)
	}
	// The revert is the stable version again: steady, no new canary.
	before := e.repo.Head(t, "sluice/status")
	for range 3 {
		if _, err := e.agent.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if e.repo.Head(t, "sluice/status") != before {
		t.Errorf("passes after the revert wrote status: %s", gitserver.Git(t, e.repo.Bare, "log", "-3", "--format=%s", "sluice/status"))
	}
}
