package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestBaseOutsideReleaseDir: a release whose kustomization takes its
// Deployment from a base elsewhere in the repository is rolled out again
// when only the base changes (the render cache is keyed on every directory
// the kustomization reaches).
func TestBaseOutsideReleaseDir(t *testing.T) {
	files := fixture(t, "NAMESPACE", "rolling")
	dep := files["releases/NAMESPACE/rolling/deployment.yaml"]
	delete(files, "releases/NAMESPACE/rolling/deployment.yaml")
	files["bases/rolling/deployment.yaml"] = dep
	files["bases/rolling/kustomization.yaml"] = "resources: [deployment.yaml]\n"
	files["releases/NAMESPACE/rolling/kustomization.yaml"] = strings.Replace(files["releases/NAMESPACE/rolling/kustomization.yaml"], "- deployment.yaml\n", "- ../../../bases/rolling\n", 1)
	e := newEnv(t, files, nil)
	st := e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	first := st.Stable.Digest
	e.repo.Commit(t, "bump the base only", map[string]string{"bases/rolling/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	st = e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable.Digest != first
	}, nil)
	if st.Stable.Revision != e.repo.Head(t, "main") {
		t.Errorf("stable = %s, want the base's commit", st.Stable.Revision)
	}
}
