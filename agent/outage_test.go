package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestApprovalDuringGitOutage: an approval pushed while the agent cannot
// reach the Git server is applied once it can: the canary is promoted, and
// nothing moved during the outage.
func TestApprovalDuringGitOutage(t *testing.T) {
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = fmt.Sprintf(canaryRelease, "")
	e := newEnv(t, files, nil)
	ctx := context.Background()
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	bump := e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused }, nil)
	e.srv.SetDown(true)
	for range 3 {
		e.agent.Pass(ctx)
	}
	approved := fmt.Sprintf(canaryRelease, "  gates:\n    approved:\n    - {gate: qa, revision: "+bump[:7]+"}\n")
	e.repo.Commit(t, "approve", map[string]string{"releases/" + e.ns + "/canary/release.yaml": strings.ReplaceAll(approved, "NAMESPACE", e.ns)})
	e.repo.Push(t)
	for range 3 {
		if _, err := e.agent.Pass(ctx); err == nil {
			t.Fatal("a pass reached the Git server during its outage")
		}
	}
	if st := e.status(e.ns + "/canary"); st.Phase != v1alpha1.PhasePaused {
		t.Fatalf("the release moved during the outage: %s", st.Phase)
	}
	e.srv.SetDown(false)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
}
