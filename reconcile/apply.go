package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ApplyOptions tunes one apply.
type ApplyOptions struct {
	// Force recreates objects whose immutable fields changed (a
	// Deployment's selector). Off by default: such a change is an error.
	Force bool
	// Fresh says the release has never been applied (no inventory): its
	// objects are created without the dry-run round when none exists,
	// and deleted again if any is refused (applyFresh).
	Fresh bool
}

// Result is what one apply did.
type Result struct {
	// ChangeSet has one entry per object: created, configured or unchanged.
	ChangeSet *ssa.ChangeSet
	// Inventory lists the applied objects, for status.yaml and the next prune.
	Inventory Inventory
	// Objects are the objects as applied (namespaced and labelled).
	Objects []*unstructured.Unstructured
}

// Changed reports whether the apply wrote anything.
func (r *Result) Changed() bool {
	for _, e := range r.ChangeSet.Entries {
		if e.Action != ssa.UnchangedAction && e.Action != ssa.SkippedAction {
			return true
		}
	}
	return false
}

// Apply server-side applies the release's objects: Namespaces and CRDs
// first, then a dry-run of every other object, and writes only when all of
// them pass, and only the objects that differ from the cluster. An object
// changed in the cluster by someone else is set back (and reported as
// configured).
func (m *Manager) Apply(ctx context.Context, set Set, opts ApplyOptions) (*Result, error) {
	objs, err := m.prepare(set)
	if err != nil {
		return nil, err
	}
	if err := m.ensureNamespace(ctx, set); err != nil {
		return nil, err
	}
	if opts.Fresh && !opts.Force {
		cs, err := m.applyFresh(ctx, objs)
		switch {
		case err == nil:
			return &Result{ChangeSet: cs, Inventory: InventoryOf(objs), Objects: objs}, nil
		case !errors.Is(err, errNotFresh):
			m.namespaces.Delete(set.Namespace)
			return nil, fmt.Errorf("release %s: %w", set.Release, err)
		}
	}
	cs, err := m.rm.ApplyAllStaged(ctx, objs, ssa.ApplyOptions{
		Force:        opts.Force,
		WaitInterval: m.opts.WaitInterval,
		WaitTimeout:  60 * time.Second,
	})
	if err != nil {
		// The namespace may have gone: looked up again next time.
		m.namespaces.Delete(set.Namespace)
		return nil, fmt.Errorf("release %s: %w", set.Release, explain(err))
	}
	return &Result{ChangeSet: cs, Inventory: InventoryOf(objs), Objects: objs}, nil
}

// ensureNamespace creates the release's namespace when it is missing (the
// allowlist was checked by prepare). Impersonating a ServiceAccount it does
// nothing: the account lives in the namespace, so the namespace exists.
func (m *Manager) ensureNamespace(ctx context.Context, set Set) error {
	if m.agent != nil {
		return nil
	}
	if _, ok := m.namespaces.Load(set.Namespace); ok {
		return nil // seen this process; a failed apply forgets it
	}
	var ns corev1.Namespace
	err := m.client.Get(ctx, client.ObjectKey{Name: set.Namespace}, &ns)
	if err == nil {
		m.namespaces.Store(set.Namespace, true)
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s: %w", set.Namespace, err)
	}
	ns = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: set.Namespace,
		Labels: map[string]string{ReleaseLabel: ReleaseLabelValue(set.Release)}}}
	if err := m.client.Create(ctx, &ns, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", set.Namespace, err)
	}
	m.namespaces.Store(set.Namespace, true)
	return nil
}

// explain adds what to do to the API server's reason where it helps.
func explain(err error) error {
	var dr *ssaerrors.DryRunErr
	if errors.As(err, &dr) && apierrors.IsInvalid(errors.Unwrap(dr)) && ssaerrors.IsImmutableError(errors.Unwrap(dr)) {
		return fmt.Errorf("%w (an immutable field changed, e.g. a Deployment's selector: sluice recreates such an object only when allowed to force)", err)
	}
	return err
}
