package v1alpha1

import (
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Promotion says where a release's version comes from: another cluster's
// release (its stage before this one). When that release has promoted a
// version and the conditions hold, the agent of this release's cluster
// commits the version's images to this release's kustomization; the
// commit then runs this release's own strategy.
type Promotion struct {
	// From is the upstream release: <cluster>/<namespace>/<name>.
	From string `json:"from"`
	// When are the conditions on the upstream release.
	When PromotionWhen `json:"when,omitempty"`
	// Gate, when set, must be approved for the upstream version
	// (spec.gates.approved: [{gate, revision: <upstream revision>}],
	// what `sluice approve` writes) before it is promoted here.
	Gate string `json:"gate,omitempty"`
	// Images limits the promotion to these images (the kustomization
	// images entries' names); default every entry upstream has.
	Images []string `json:"images,omitempty"`
	// FollowRollbacks: a rollback upstream after a promotion is promoted
	// too (the version it rolled back to); default it is not.
	FollowRollbacks bool `json:"followRollbacks,omitempty"`
}

// PromotionWhen are the conditions on the upstream release.
type PromotionWhen struct {
	// Phase the upstream release must be in: Succeeded (the default and
	// the only one: a version still in canary or aborted is never
	// promoted).
	Phase Phase `json:"phase,omitempty"`
	// Soak is how long the version must have been the upstream's stable,
	// measured from its promotion there (status stable.promotedAt).
	Soak *Duration `json:"soak,omitempty"`
}

// Upstream splits From into its cluster and its release id (ns/name).
func (p *Promotion) Upstream() (cluster, id string) {
	cluster, id, _ = strings.Cut(p.From, "/")
	return cluster, id
}

func (v *validator) promotion() {
	p := v.p.Release.Spec.Promotion
	if p == nil {
		return
	}
	if v.required("spec.promotion.from", p.From) {
		parts := strings.Split(p.From, "/")
		if len(parts) != 3 {
			v.errorf("spec.promotion.from", "%q: want <cluster>/<namespace>/<name>", p.From)
		} else {
			for i, what := range []string{"cluster", "namespace", "name"} {
				if err := ValidateClusterName(parts[i]); err != nil {
					v.errorf("spec.promotion.from", "%q: the %s: %v", p.From, what, err)
				}
			}
		}
	}
	if p.When.Phase != "" && p.When.Phase != PhaseSucceeded {
		v.errorf("spec.promotion.when.phase", "%q: only Succeeded (a version in canary, aborted or rolled back is never promoted)", p.When.Phase)
	}
	for i, img := range p.Images {
		if strings.TrimSpace(img) == "" {
			v.errorf(fmt.Sprintf("spec.promotion.images[%d]", i), "required")
		}
	}
}

// ValidateClusterName checks a cluster name (and the parts of a
// promotion's from): a DNS label, as the directory and branch names built
// from it need.
func ValidateClusterName(name string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("%q: %s", name, msgs[0])
	}
	return nil
}

// ClusterReleasesPath is where a cluster's releases live in a repository
// of several clusters: clusters/<cluster>/releases.
func ClusterReleasesPath(cluster string) string {
	return path.Join("clusters", cluster, "releases")
}

// ClusterStatusBranch is the status branch of a cluster's agent:
// sluice/status/<cluster>, so agents of different clusters never write
// the same branch.
func ClusterStatusBranch(cluster string) string {
	return "sluice/status/" + cluster
}

// ReleaseDir is a release's directory under a releases path.
func ReleaseDir(releasesPath, id string) string {
	return path.Join(releasesPath, id)
}
