package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// errNotFresh: some object of the set exists, or the set holds kinds
// applied in stages; the set goes through the dry-run path.
var errNotFresh = errors.New("not a fresh install")

// created is one object a fresh install wrote.
type created struct {
	obj *unstructured.Unstructured
	uid types.UID
	// new: the API server created it (201), so undoing the install
	// deletes it; an object another client created in between (200) is
	// left.
	new bool
}

// applyFresh installs a release none of whose objects exists yet, without
// the dry-run round: each object is applied at once (server-side apply,
// concurrently), and when any is refused, the objects this call created
// are deleted again, by UID, so a render holding an invalid object leaves
// nothing behind, as the dry-run would have guaranteed. Where an object
// exists already (adopted from another tool, or left by a crash between
// the creates and the undo) it returns errNotFresh having written nothing,
// and the set takes the dry-run path.
func (m *Manager) applyFresh(ctx context.Context, objs []*unstructured.Unstructured) (*ssa.ChangeSet, error) {
	for _, o := range objs {
		if utils.IsClusterDefinition(o) || utils.IsClassDefinition(o) {
			return nil, errNotFresh
		}
	}
	// Does any exist? Metadata only, read from etcd (not the watch cache,
	// which may lag behind an object created a moment ago).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(m.opts.Concurrency)
	for _, o := range objs {
		g.Go(func() error {
			pm := &metav1.PartialObjectMetadata{}
			pm.SetGroupVersionKind(o.GroupVersionKind())
			err := m.client.Get(gctx, client.ObjectKeyFromObject(o), pm)
			switch {
			case err == nil:
				return errNotFresh
			case apierrors.IsNotFound(err):
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	raw, err := m.rawClient()
	if err != nil {
		return nil, err
	}
	// Every apply runs to its end, refused or not: what was created must
	// be known to be undone.
	done := make([]*created, len(objs))
	errs := make([]error, len(objs))
	var applies errgroup.Group
	applies.SetLimit(m.opts.Concurrency)
	for i, o := range objs {
		applies.Go(func() error {
			done[i], errs[i] = m.applyRaw(ctx, raw, o)
			return nil
		})
	}
	applies.Wait()
	var failed error
	for i, err := range errs {
		if err != nil {
			failed = fmt.Errorf("%s apply failed: %w", utils.FmtUnstructured(objs[i]), err)
			break
		}
	}
	if failed != nil {
		// Undone: what this call created goes again.
		for _, c := range done {
			if c == nil || !c.new {
				continue
			}
			uid := c.uid
			err := m.client.Delete(context.WithoutCancel(ctx), c.obj, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
			if err != nil && !apierrors.IsNotFound(err) {
				failed = fmt.Errorf("%w; and undoing the install failed: %s: %v", failed, utils.FmtUnstructured(c.obj), err)
			}
		}
		return nil, failed
	}
	cs := ssa.NewChangeSet()
	for _, c := range done {
		e := ssa.ChangeSetEntry{ObjMetadata: object.UnstructuredToObjMetadata(c.obj), GroupVersion: c.obj.GroupVersionKind().GroupVersion().String(),
			Subject: utils.FmtUnstructured(c.obj), Action: ssa.CreatedAction}
		if !c.new {
			e.Action = ssa.ConfiguredAction
		}
		cs.Add(e)
	}
	return cs, nil
}

// applyRaw server-side applies one object as sluice, forcing ownership as
// the apply path does, and tells whether the API server created it.
func (m *Manager) applyRaw(ctx context.Context, raw rest.Interface, o *unstructured.Unstructured) (*created, error) {
	gvk := o.GroupVersionKind()
	mapping, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(o.Object)
	if err != nil {
		return nil, err
	}
	prefix := []string{"/apis", gvk.Group, gvk.Version}
	if gvk.Group == "" {
		prefix = []string{"/api", gvk.Version}
	}
	var code int
	res := raw.Patch(types.ApplyPatchType).AbsPath(prefix...).
		NamespaceIfScoped(o.GetNamespace(), mapping.Scope.Name() == meta.RESTScopeNameNamespace).
		Resource(mapping.Resource.Resource).Name(o.GetName()).
		Param("fieldManager", FieldManager).Param("force", "true").Body(body).Do(ctx).StatusCode(&code)
	b, err := res.Raw()
	if err != nil {
		// The API server's reason, as the typed clients report it.
		var st metav1.Status
		if json.Unmarshal(b, &st) == nil && st.Kind == "Status" && st.Message != "" {
			return nil, &apierrors.StatusError{ErrStatus: st}
		}
		return nil, err
	}
	var out metav1.PartialObjectMetadata
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &created{obj: o, uid: out.UID, new: code == http.StatusCreated}, nil
}

// rawClient is a REST client on the manager's config (its impersonation
// included) for the requests whose HTTP status matters.
func (m *Manager) rawClient() (rest.Interface, error) {
	m.rawOnce.Do(func() {
		m.raw, m.rawErr = rest.UnversionedRESTClientFor(dynamic.ConfigFor(m.cfg))
	})
	return m.raw, m.rawErr
}
