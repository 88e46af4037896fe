package reconcile

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/render"
)

// DiffEntry is what applying would do to one object.
type DiffEntry struct {
	ID     string
	Action ssa.Action
	// Diff is a unified diff of the live and the would-be object for a
	// configured object (Secret values masked), empty otherwise.
	Diff string
	// Live and Merged are the object in the cluster and as applying would
	// leave it (nil when absent; Secret values masked), for an external
	// diff program.
	Live, Merged *unstructured.Unstructured
}

// Diff dry-runs the release's objects against the cluster and lists what
// would be created, configured (with a diff) or left unchanged, and which
// objects of the previous inventory would be deleted. Nothing is written.
func (m *Manager) Diff(ctx context.Context, set Set, previous Inventory) ([]DiffEntry, error) {
	objs, err := m.prepare(set)
	if err != nil {
		return nil, err
	}
	var out []DiffEntry
	for _, o := range objs {
		id := render.ObjectID(o)
		e, live, merged, err := m.rm.Diff(ctx, o, ssa.DefaultDiffOptions())
		if err != nil {
			return nil, fmt.Errorf("%s diff: %w", id, explain(err))
		}
		d := DiffEntry{ID: id, Action: e.Action, Live: live, Merged: merged}
		if e.Action == ssa.ConfiguredAction && live != nil && merged != nil {
			d.Diff, err = unified(id, live, merged)
			if err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	for _, id := range Stale(previous, InventoryOf(objs)) {
		out = append(out, DiffEntry{ID: id, Action: ssa.DeletedAction})
	}
	return out, nil
}

// unified renders a unified diff of two objects as YAML, without the
// fields the server owns.
func unified(id string, live, merged *unstructured.Unstructured) (string, error) {
	a, err := DiffYAML(live)
	if err != nil {
		return "", err
	}
	b, err := DiffYAML(merged)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: "live/" + id, ToFile: "merged/" + id, Context: 3,
	})
}

// DiffYAML is an object as a diff shows it: YAML without the fields the
// server owns.
func DiffYAML(o *unstructured.Unstructured) (string, error) {
	c := o.DeepCopy()
	for _, f := range [][]string{
		{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "generation"},
		{"metadata", "uid"}, {"metadata", "creationTimestamp"}, {"status"},
	} {
		unstructured.RemoveNestedField(c.Object, f...)
	}
	b, err := yaml.Marshal(c.Object)
	return string(b), err
}
