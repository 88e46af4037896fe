package promotion

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }
	v := "0123456789abcdef0123456789abcdef01234567"
	stable := &v1alpha1.Revision{Revision: v, PromotedAt: at(10 * time.Minute)}
	soak := &v1alpha1.Duration{Duration: 30 * time.Minute}
	approved := v1alpha1.Gates{Approved: []v1alpha1.Approval{{Gate: "prod", Revision: v[:7]}}}
	for _, c := range []struct {
		name    string
		p       v1alpha1.Promotion
		gates   v1alpha1.Gates
		up      *v1alpha1.ReleaseStatus
		ready   bool
		pending string
	}{
		{"no upstream status", v1alpha1.Promotion{From: "staging/shop/cart"}, v1alpha1.Gates{}, nil, false, "staging/shop/cart has no status yet"},
		{"succeeded", v1alpha1.Promotion{From: "staging/shop/cart"}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: stable}, true, ""},
		{"in canary", v1alpha1.Promotion{From: "staging/shop/cart"}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhasePaused, Stable: stable, Canary: &v1alpha1.Revision{Revision: "fedcba9876543210"}}, false, "staging/shop/cart is Paused with fedcba9 in canary"},
		{"aborted", v1alpha1.Promotion{From: "staging/shop/cart"}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseAborted, Stable: stable}, false, "is Aborted"},
		{"rolled back, not followed", v1alpha1.Promotion{From: "staging/shop/cart"}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseRolledBack, Stable: stable}, false, "is RolledBack"},
		{"rolled back, followed", v1alpha1.Promotion{From: "staging/shop/cart", FollowRollbacks: true}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseRolledBack, Stable: stable}, true, ""},
		{"soaking", v1alpha1.Promotion{From: "staging/shop/cart", When: v1alpha1.PromotionWhen{Soak: soak}}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: stable}, false, "waiting 20m0s more of soak of 0123456 in staging"},
		{"soaked", v1alpha1.Promotion{From: "staging/shop/cart", When: v1alpha1.PromotionWhen{Soak: &v1alpha1.Duration{Duration: 5 * time.Minute}}}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: stable}, true, ""},
		{"no promotedAt", v1alpha1.Promotion{From: "staging/shop/cart", When: v1alpha1.PromotionWhen{Soak: soak}}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: &v1alpha1.Revision{Revision: v}}, false, "does not say when"},
		{"gate pending", v1alpha1.Promotion{From: "staging/shop/cart", Gate: "prod"}, v1alpha1.Gates{}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: stable}, false, `waiting for gate "prod" to be approved for 0123456`},
		{"gate for another version", v1alpha1.Promotion{From: "staging/shop/cart", Gate: "prod"}, v1alpha1.Gates{Approved: []v1alpha1.Approval{{Gate: "prod", Revision: "aaaaaaa"}}}, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: stable}, false, "waiting for gate"},
		{"gate approved", v1alpha1.Promotion{From: "staging/shop/cart", Gate: "prod"}, approved, &v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: stable}, true, ""},
	} {
		d := Decide(&c.p, c.gates, c.up, now)
		if d.Ready != c.ready || !strings.Contains(d.Pending, c.pending) || (c.ready && d.Version != v) {
			t.Errorf("%s: %+v; want ready %v, pending %q", c.name, d, c.ready, c.pending)
		}
	}
}

func TestChanges(t *testing.T) {
	up := []byte("images:\n- name: ghcr.io/x/web\n  newTag: 1.4.2\n- name: ghcr.io/x/worker\n  newName: reg.example/x/worker\n  newTag: \"7\"\n")
	down := []byte("# prod\nimages:\n- name: ghcr.io/x/web\n  newTag: 1.4.1\n- name: ghcr.io/x/worker\n  newName: reg.example/x/worker\n  newTag: \"7\"\n")
	got := Changes(&v1alpha1.Promotion{}, up, down)
	if len(got) != 1 || got[0] != (Change{Image: "ghcr.io/x/web", From: "1.4.1", To: "1.4.2"}) {
		t.Errorf("all images: %+v", got)
	}
	if got := Changes(&v1alpha1.Promotion{Images: []string{"reg.example/x/worker"}}, up, down); len(got) != 0 {
		t.Errorf("only the worker, which is there: %+v", got)
	}
	if got := Changes(&v1alpha1.Promotion{}, up, up); len(got) != 0 {
		t.Errorf("the same files: %+v", got)
	}
}
