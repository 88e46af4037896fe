package reconcile

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/render"
)

// Set is one release's objects to apply.
type Set struct {
	// Release is "<namespace>/<name>".
	Release string
	// Namespace is the release's namespace; objects without one go there.
	Namespace string
	// Objects as rendered; they are copied, never changed.
	Objects []*unstructured.Unstructured
}

// prepare copies the objects, defaults namespaces, labels them with the
// release and enforces the guard rails. It returns the copies.
func (m *Manager) prepare(set Set) ([]*unstructured.Unstructured, error) {
	if len(m.opts.Namespaces) > 0 && !slices.Contains(m.opts.Namespaces, set.Namespace) {
		return nil, refused("release %s: namespace %q is not in the allowlist (%v)", set.Release, set.Namespace, m.opts.Namespaces)
	}
	if m.opts.Tenancy.Protected(set.Namespace) {
		return nil, refused("release %s: namespace %q is protected (the cluster's own or the agent's; see --allow-system-namespace)", set.Release, set.Namespace)
	}
	out := make([]*unstructured.Unstructured, 0, len(set.Objects))
	for _, o := range set.Objects {
		c := o.DeepCopy()
		id := render.ObjectID(c)
		gvk := c.GroupVersionKind()
		mapping, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, fmt.Errorf("%s: the cluster does not serve this kind: %w", id, err)
		}
		if mapping.Scope.Name() == meta.RESTScopeNameRoot {
			ownNamespace := gvk.Kind == "Namespace" && gvk.Group == "" && c.GetName() == set.Namespace
			if !ownNamespace && !m.opts.Tenancy.AllowsClusterScoped(gvk.Group, gvk.Kind) {
				return nil, refused("%s: cluster-scoped kind %s is not allowed (start the agent with --allow-cluster-scoped=%s)", id, gvk.Kind, clusterScopedName(gvk.Group, gvk.Kind))
			}
			c.SetNamespace("")
		} else {
			switch ns := c.GetNamespace(); ns {
			case "":
				c.SetNamespace(set.Namespace)
			case set.Namespace:
			default:
				return nil, refused("%s: outside the release's namespace %q", id, set.Namespace)
			}
		}
		labels := c.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ReleaseLabel] = ReleaseLabelValue(set.Release)
		c.SetLabels(labels)
		out = append(out, c)
	}
	return out, nil
}

// clusterScopedName is how --allow-cluster-scoped names a kind.
func clusterScopedName(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + "." + group
}
