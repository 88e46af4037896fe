package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// NodeName is the kwok node that pods are scheduled on.
const NodeName = "kwok-node-0"

// waitReady polls /readyz until the API server answers ok.
func waitReady(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s: %v", timeout, last)
}

// setup installs the Gateway API CRDs and a kwok node, and waits for both.
func setup(ctx context.Context, cfg *rest.Config, crds string) error {
	data, err := os.ReadFile(crds)
	if err != nil {
		return fmt.Errorf("gateway CRDs: %w (run `make testbin`)", err)
	}
	if err := ApplyYAML(ctx, cfg, data); err != nil {
		return fmt.Errorf("install gateway CRDs: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": NodeName,
				"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"), corev1.ResourcePods: resource.MustParse("5000")},
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"), corev1.ResourcePods: resource.MustParse("5000")},
		},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node: %w", err)
	}
	return poll(ctx, 60*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				for _, t := range n.Spec.Taints {
					if t.Effect == corev1.TaintEffectNoSchedule {
						return false, nil
					}
				}
				return true, nil
			}
		}
		return false, nil
	}, "node "+NodeName+" Ready and untainted")
}

// poll calls f every 100ms until it says done, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, f func() (bool, error), what string) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ApplyYAML server-side applies every document of a multi-document YAML,
// CustomResourceDefinitions first, and waits for the CRDs to be Established
// before applying anything that may use them.
func ApplyYAML(ctx context.Context, cfg *rest.Config, data []byte) error {
	objs, err := DecodeYAML(data)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	apply := func(o *unstructured.Unstructured) error {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", gvk.Kind, o.GetName(), err)
		}
		body, err := o.MarshalJSON()
		if err != nil {
			return err
		}
		ri := dyn.Resource(m.Resource)
		var r dynamic.ResourceInterface = ri
		if o.GetNamespace() != "" {
			r = ri.Namespace(o.GetNamespace())
		}
		force := true
		_, err = r.Patch(ctx, o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "testcluster", Force: &force})
		if err != nil {
			return fmt.Errorf("%s/%s: %w", gvk.Kind, o.GetName(), err)
		}
		return nil
	}
	for _, o := range crds {
		if err := apply(o); err != nil {
			return err
		}
	}
	if len(crds) > 0 {
		crdRes := dyn.Resource(apiextensionsCRDs)
		for _, o := range crds {
			name := o.GetName()
			if err := poll(ctx, 30*time.Second, func() (bool, error) {
				u, err := crdRes.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				return conditionTrue(u, "Established"), nil
			}, "CRD "+name+" Established"); err != nil {
				return err
			}
		}
		mapper.Reset()
	}
	for _, o := range rest {
		if err := apply(o); err != nil {
			return err
		}
	}
	return nil
}

// DecodeYAML splits a multi-document YAML into objects, skipping empty
// documents.
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// conditionTrue says whether the object's status has condition typ True.
func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == typ && cm["status"] == "True" {
			return true
		}
	}
	return false
}
