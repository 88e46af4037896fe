package reconcile

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/render"
)

// Inventory is the sorted list of object IDs applied for a release, as
// status.yaml records it: apps/v1/Deployment/ns/name, v1/Service/ns/name,
// v1/Namespace/name.
type Inventory []string

// InventoryOf lists the IDs of objs, sorted and without duplicates.
func InventoryOf(objs []*unstructured.Unstructured) Inventory {
	seen := map[string]bool{}
	var inv Inventory
	for _, o := range objs {
		id := render.ObjectID(o)
		if !seen[id] {
			seen[id] = true
			inv = append(inv, id)
		}
	}
	sort.Strings(inv)
	return inv
}

var coreVersion = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// ParseID reads an inventory ID back into object metadata and version.
func ParseID(id string) (schema.GroupVersionKind, string, string, error) {
	parts := strings.Split(id, "/")
	var gvk schema.GroupVersionKind
	var rest []string
	switch {
	case len(parts) >= 3 && coreVersion.MatchString(parts[0]):
		gvk = schema.GroupVersionKind{Version: parts[0], Kind: parts[1]}
		rest = parts[2:]
	case len(parts) >= 4:
		gvk = schema.GroupVersionKind{Group: parts[0], Version: parts[1], Kind: parts[2]}
		rest = parts[3:]
	default:
		return gvk, "", "", fmt.Errorf("inventory entry %q: want [group/]version/Kind/[namespace/]name", id)
	}
	switch len(rest) {
	case 1:
		return gvk, "", rest[0], nil
	case 2:
		return gvk, rest[0], rest[1], nil
	}
	return gvk, "", "", fmt.Errorf("inventory entry %q: want [group/]version/Kind/[namespace/]name", id)
}

// objectFromID makes a stub object for an inventory ID (for delete).
func objectFromID(id string) (*unstructured.Unstructured, error) {
	gvk, ns, name, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	return u, nil
}

func metaSet(objs []*unstructured.Unstructured) object.ObjMetadataSet {
	return object.UnstructuredSetToObjMetadataSet(objs)
}
