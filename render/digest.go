package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Digest is "sha256:<hex>" over the objects in canonical form: each object
// as JSON with sorted keys, ordered by group, kind, namespace and name, so
// the order kustomize emits them in does not matter.
func Digest(objs []*unstructured.Unstructured) (string, error) {
	type keyed struct {
		key  string
		data []byte
	}
	ks := make([]keyed, 0, len(objs))
	for _, o := range objs {
		data, err := json.Marshal(o.Object)
		if err != nil {
			return "", fmt.Errorf("%s digest: %w", ObjectID(o), err)
		}
		ks = append(ks, keyed{ObjectID(o), data})
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	h := sha256.New()
	for _, k := range ks {
		h.Write(k.data)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ObjectID names an object as group/version/Kind/namespace/name without
// empty parts: apps/v1/Deployment/vastaya/projects, v1/Service/ns/svc.
func ObjectID(o *unstructured.Unstructured) string {
	id := o.GetAPIVersion() + "/" + o.GetKind() + "/"
	if ns := o.GetNamespace(); ns != "" {
		id += ns + "/"
	}
	return id + o.GetName()
}

// VersionDigest is the digest of what a canary tests: the workload's pod
// template plus the ConfigMaps and Secrets it references. Replicas, labels
// on the workload itself and every other object do not count.
func VersionDigest(workload *unstructured.Unstructured, config []*unstructured.Unstructured) (string, error) {
	tmpl, _, err := unstructured.NestedMap(workload.Object, "spec", "template")
	if err != nil {
		return "", err
	}
	objs := []*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "sluice.dev/v1alpha1", "kind": "PodTemplate",
		"metadata": map[string]any{"name": workload.GetName()}, "template": tmpl,
	}}}
	return Digest(append(objs, config...))
}

// ConfigRefs are the names of the ConfigMaps and Secrets a pod spec
// references through env, envFrom and volumes (projected ones included).
type ConfigRefs struct {
	ConfigMaps map[string]bool
	Secrets    map[string]bool
}

// ConfigRef is one reference from a pod spec to a ConfigMap or Secret: the
// map holding the name and the field it is in, so callers can read or
// rewrite it in place.
type ConfigRef struct {
	// Kind is ConfigMap or Secret.
	Kind  string
	Map   map[string]any
	Field string
}

// Name is the referenced object's name.
func (r ConfigRef) Name() string {
	n, _ := r.Map[r.Field].(string)
	return n
}

// VisitConfigRefs calls fn for every ConfigMap and Secret reference of a
// pod spec: env valueFrom, envFrom, volumes and projected volumes, in
// init, regular and ephemeral containers.
func VisitConfigRefs(podSpec map[string]any, fn func(ConfigRef)) {
	visit := func(kind string, m map[string]any, field string) {
		if m != nil {
			if n, _ := m[field].(string); n != "" {
				fn(ConfigRef{Kind: kind, Map: m, Field: field})
			}
		}
	}
	sub := func(m map[string]any, field string) map[string]any {
		v, _ := m[field].(map[string]any)
		return v
	}
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _ := podSpec[list].([]any)
		for _, c := range cs {
			cm := asMap(c)
			envs, _ := cm["env"].([]any)
			for _, e := range envs {
				vf := sub(asMap(e), "valueFrom")
				visit("ConfigMap", sub(vf, "configMapKeyRef"), "name")
				visit("Secret", sub(vf, "secretKeyRef"), "name")
			}
			froms, _ := cm["envFrom"].([]any)
			for _, f := range froms {
				visit("ConfigMap", sub(asMap(f), "configMapRef"), "name")
				visit("Secret", sub(asMap(f), "secretRef"), "name")
			}
		}
	}
	vols, _ := podSpec["volumes"].([]any)
	for _, v := range vols {
		vm := asMap(v)
		visit("ConfigMap", sub(vm, "configMap"), "name")
		visit("Secret", sub(vm, "secret"), "secretName")
		srcs, _ := sub(vm, "projected")["sources"].([]any)
		for _, s := range srcs {
			visit("ConfigMap", sub(asMap(s), "configMap"), "name")
			visit("Secret", sub(asMap(s), "secret"), "name")
		}
	}
}

// PodConfigRefs lists the ConfigMaps and Secrets a pod spec references.
func PodConfigRefs(podSpec map[string]any) ConfigRefs {
	refs := ConfigRefs{ConfigMaps: map[string]bool{}, Secrets: map[string]bool{}}
	VisitConfigRefs(podSpec, func(r ConfigRef) {
		if r.Kind == "ConfigMap" {
			refs.ConfigMaps[r.Name()] = true
		} else {
			refs.Secrets[r.Name()] = true
		}
	})
	return refs
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// ReferencedConfig returns the ConfigMaps and Secrets in objs that the
// workload's pod template references, in objs' order.
func ReferencedConfig(workload *unstructured.Unstructured, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	podSpec, _, _ := unstructured.NestedMap(workload.Object, "spec", "template", "spec")
	refs := PodConfigRefs(podSpec)
	ns := workload.GetNamespace()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetAPIVersion() != "v1" || (o.GetNamespace() != "" && ns != "" && o.GetNamespace() != ns) {
			continue
		}
		if (o.GetKind() == "ConfigMap" && refs.ConfigMaps[o.GetName()]) || (o.GetKind() == "Secret" && refs.Secrets[o.GetName()]) {
			out = append(out, o)
		}
	}
	return out
}
