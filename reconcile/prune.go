package reconcile

import (
	"context"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
)

// PruneOptions tunes one prune.
type PruneOptions struct {
	// Force deletes even what the guard would refuse.
	Force bool
	// Expected, when set, names stale objects whose going is planned (a
	// canary or baseline track ending): the guard does not count them.
	Expected func(id string) bool
}

// Stale lists the IDs in previous that are not in current.
func Stale(previous, current Inventory) Inventory {
	keep := map[string]bool{}
	for _, id := range current {
		keep[id] = true
	}
	var out Inventory
	for _, id := range previous {
		if !keep[id] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Union is every ID of a and b, sorted, once each.
func Union(a, b Inventory) Inventory {
	seen := map[string]bool{}
	var out Inventory
	for _, id := range append(append(Inventory(nil), a...), b...) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Prune deletes the objects of the previous inventory that the current one
// no longer holds, and only those still labelled as the release's. It
// refuses to delete every object of a release, or more than the configured
// share at once, unless forced: a render that lost most of its objects is
// more likely a mistake than an intent.
func (m *Manager) Prune(ctx context.Context, release string, previous, current Inventory, opts PruneOptions) (*ssa.ChangeSet, error) {
	stale := Stale(previous, current)
	cs := ssa.NewChangeSet()
	if len(stale) == 0 {
		return cs, nil
	}
	if !opts.Force {
		if len(current) == 0 {
			return cs, fmt.Errorf("%w: release %s: pruning would delete all %d of its objects; refusing", ErrPruneGuard, release, len(previous))
		}
		unplanned, total := 0, len(previous)
		for _, id := range stale {
			if opts.Expected != nil && opts.Expected(id) {
				total--
			} else {
				unplanned++
			}
		}
		if share := float64(unplanned) / float64(max(total, 1)); share > m.opts.PruneMaxShare {
			return cs, fmt.Errorf("%w: release %s: pruning would delete %d of its %d objects (%.0f%%, over the %.0f%% limit); refusing",
				ErrPruneGuard, release, unplanned, total, share*100, m.opts.PruneMaxShare*100)
		}
	}
	return cs, m.deleteIDs(ctx, cs, release, "prune", stale, false)
}
