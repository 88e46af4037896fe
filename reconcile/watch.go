package reconcile

import (
	"context"
	"fmt"
	"maps"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// workloadCache is a watch-fed copy of the Deployments sluice applied (the
// ones carrying the release label): observing a release then costs the
// API server nothing, and a change wakes only that release.
type workloadCache struct {
	informers map[string]cache.SharedIndexInformer // by namespace ("" = all)
}

// WatchWorkloads starts watching the Deployments sluice applied in the
// allowed namespaces; from then on Observe reads Deployments from the watch
// and onChange is called with the release ("<ns>/<name>") of every
// Deployment that is added, changed or deleted, and whether what changed
// is more than its status (its spec, labels or annotations: drift to set
// back). It returns once the first list is in.
func (m *Manager) WatchWorkloads(ctx context.Context, cfg *rest.Config, onChange func(release string, spec bool)) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	namespaces := m.opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	wc := &workloadCache{informers: map[string]cache.SharedIndexInformer{}}
	notify := func(obj any, spec bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		if ns, name, ok := strings.Cut(u.GetLabels()[ReleaseLabel], "."); ok && onChange != nil {
			onChange(ns+"/"+name, spec)
		}
	}
	var synced []cache.InformerSynced
	for _, ns := range namespaces {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, func(o *metav1.ListOptions) {
			o.LabelSelector = ReleaseLabel
		})
		inf := f.ForResource(deploymentsGVR).Informer()
		// The copy keeps what observing needs (replicas, generation,
		// status, labels, annotations), not the field managers and the pod
		// template, most of a Deployment as the API server sends it.
		if err := inf.SetTransform(stripForObserving); err != nil {
			return err
		}
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { notify(obj, true) },
			UpdateFunc: func(old, obj any) { notify(obj, specChanged(old, obj)) },
			DeleteFunc: func(obj any) { notify(obj, true) },
		})
		go inf.Run(ctx.Done())
		wc.informers[ns] = inf
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("watching Deployments: %w", ctx.Err())
	}
	m.watch.Store(wc)
	return nil
}

// get returns the cached Deployment and whether the cache answers for
// namespace at all (a namespace outside the watched ones is read live).
func (wc *workloadCache) get(namespace, name string) (*unstructured.Unstructured, bool, bool) {
	inf, ok := wc.informers[namespace]
	if !ok {
		if inf, ok = wc.informers[""]; !ok {
			return nil, false, false
		}
	}
	obj, exists, err := inf.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return nil, false, true
	}
	return obj.(*unstructured.Unstructured), true, true
}

// stripForObserving drops what observing a Deployment does not read from
// the watched copies before they are stored: metadata.managedFields, the
// last-applied annotation and the pod template (kstatus reads the
// Deployment's generation, replicas and status; observing reads its
// annotations).
func stripForObserving(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
		unstructured.RemoveNestedField(u.Object, "spec", "template")
		if a := u.GetAnnotations(); a != nil {
			if _, ok := a["kubectl.kubernetes.io/last-applied-configuration"]; ok {
				delete(a, "kubectl.kubernetes.io/last-applied-configuration")
				u.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}

// specChanged says whether a watched object changed beyond its status:
// its generation (spec), labels or annotations.
func specChanged(old, cur any) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	c, ok2 := cur.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	return o.GetGeneration() != c.GetGeneration() || !maps.Equal(o.GetLabels(), c.GetLabels()) ||
		!maps.Equal(o.GetAnnotations(), c.GetAnnotations()) || (o.GetDeletionTimestamp() == nil) != (c.GetDeletionTimestamp() == nil)
}
