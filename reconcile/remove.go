package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PruneAnnotation set to PruneDisabled on a live object keeps it in place
// when its release stops holding it or is removed (as Flux's
// kustomize.toolkit.fluxcd.io/prune: disabled); the change set reports it
// as skipped.
const (
	PruneAnnotation = "sluice.dev/prune"
	PruneDisabled   = "disabled"
)

// deleteOptions deletes only objects still labelled as the release's and
// not marked to be kept.
func deleteOptions(release string) ssa.DeleteOptions {
	return ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        map[string]string{ReleaseLabel: ReleaseLabelValue(release)},
		Exclusions:        map[string]string{PruneAnnotation: PruneDisabled},
	}
}

// Remove deletes every object of a release whose files left Git: the whole
// inventory, both tracks. It refuses, deleting nothing, when an object is
// in a namespace outside the allowlist. Objects annotated
// sluice.dev/prune: disabled, or no longer labelled as the release's, are
// left in place and reported as skipped, as is a Namespace (deleting it
// would delete everything in it).
func (m *Manager) Remove(ctx context.Context, release string, inventory Inventory) (*ssa.ChangeSet, error) {
	cs := ssa.NewChangeSet()
	for _, id := range inventory {
		_, ns, _, err := ParseID(id)
		if err != nil {
			return cs, fmt.Errorf("release %s removal: %w", release, err)
		}
		if ns != "" && len(m.opts.Namespaces) > 0 && !slices.Contains(m.opts.Namespaces, ns) {
			return cs, refused("release %s removal: %s is in namespace %q, not in the allowlist (%v); nothing deleted", release, id, ns, m.opts.Namespaces)
		}
	}
	return cs, m.deleteIDs(ctx, cs, release, "removal", inventory, true)
}

// deleteIDs deletes the objects the IDs name, only those still labelled as
// the release's and not marked to be kept, adding each outcome to cs. With
// keepNamespaces, a Namespace is skipped: deleting it would delete
// everything in it, other releases' objects too.
func (m *Manager) deleteIDs(ctx context.Context, cs *ssa.ChangeSet, release, op string, ids Inventory, keepNamespaces bool) error {
	for _, id := range ids {
		obj, err := objectFromID(id)
		if err != nil {
			return err
		}
		if gvk := obj.GroupVersionKind(); keepNamespaces && gvk.Group == "" && gvk.Kind == "Namespace" {
			cs.Add(ssa.ChangeSetEntry{Subject: id, Action: ssa.SkippedAction})
			continue
		}
		e, err := m.rm.Delete(ctx, obj, deleteOptions(release))
		if e != nil {
			cs.Add(*e)
		}
		if err != nil {
			return fmt.Errorf("release %s %s: %w", release, op, err)
		}
	}
	return nil
}
