// Package promotion decides when a release takes its version from another
// cluster's release (spec.promotion): pure logic over the upstream's
// status, shared by the agent (which commits the promotion) and the CLI
// (which shows what a stage waits for).
package promotion

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/imageupdate"
)

// Decision is whether the upstream's version may be promoted now.
type Decision struct {
	// Ready: the conditions hold for Version.
	Ready bool
	// Version is the upstream's stable revision (the spec commit it
	// promoted), "" when it has none.
	Version string
	// Pending says what the promotion waits for, when not Ready.
	Pending string
}

// Decide applies p's conditions to the upstream release's status (nil:
// none yet) at now. gates are the downstream release's approvals.
func Decide(p *v1alpha1.Promotion, gates v1alpha1.Gates, up *v1alpha1.ReleaseStatus, now time.Time) Decision {
	cluster, _ := p.Upstream()
	if up == nil {
		return Decision{Pending: fmt.Sprintf("%s has no status yet", p.From)}
	}
	ok := up.Phase == v1alpha1.PhaseSucceeded || (p.FollowRollbacks && up.Phase == v1alpha1.PhaseRolledBack)
	if up.Stable == nil || !ok {
		msg := fmt.Sprintf("%s is %s", p.From, up.Phase)
		if up.Canary != nil {
			msg += fmt.Sprintf(" with %s in canary", short(up.Canary.Revision))
		}
		return Decision{Pending: msg}
	}
	d := Decision{Version: up.Stable.Revision}
	if p.When.Soak != nil && p.When.Soak.Duration > 0 {
		if up.Stable.PromotedAt == nil {
			d.Pending = fmt.Sprintf("soak of %s in %s: its status does not say when it was promoted", short(d.Version), cluster)
			return d
		}
		if left := p.When.Soak.Duration - now.Sub(*up.Stable.PromotedAt); left > 0 {
			d.Pending = fmt.Sprintf("waiting %s more of soak of %s in %s", left.Round(time.Second), short(d.Version), cluster)
			return d
		}
	}
	if p.Gate != "" && !gates.Passed(p.Gate, d.Version) {
		d.Pending = fmt.Sprintf("waiting for gate %q to be approved for %s", p.Gate, short(d.Version))
		return d
	}
	d.Ready = true
	return d
}

// Change is one image the promotion moves.
type Change struct {
	Image, From, To string
}

// Changes are the images to set in the downstream kustomization so that
// it names the upstream's tags: every upstream entry, or those p.Images
// names (by the entry's name or its image).
func Changes(p *v1alpha1.Promotion, upstream, downstream []byte) []Change {
	want := map[string]bool{}
	for _, i := range p.Images {
		want[i] = true
	}
	var out []Change
	for _, e := range imageupdate.Entries(upstream) {
		if e.NewTag == "" || (len(want) > 0 && !want[e.Name] && !want[e.Image()]) {
			continue
		}
		if cur := imageupdate.Tag(downstream, e.Image()); cur != e.NewTag {
			out = append(out, Change{Image: e.Image(), From: cur, To: e.NewTag})
		}
	}
	return out
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
