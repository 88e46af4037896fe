package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/render"
)

// ErrNotReady is the class of errors for objects that did not become
// healthy in time: requeue, not a failure of the spec.
var ErrNotReady = errors.New("not ready")

// NotReadyError names the objects that are not Current and why.
type NotReadyError struct {
	// Objects maps an object's ID to its kstatus status and message.
	Objects map[string]string
}

func (e *NotReadyError) Error() string {
	ids := make([]string, 0, len(e.Objects))
	for id := range e.Objects {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id + ": " + e.Objects[id]
	}
	return "not ready: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrNotReady) true.
func (e *NotReadyError) Is(target error) bool { return target == ErrNotReady }

// Health computes the kstatus of each object as it is live now, and returns
// a NotReadyError naming those that are not Current.
func (m *Manager) Health(ctx context.Context, objs []*unstructured.Unstructured) error {
	notReady := map[string]string{}
	for _, o := range objs {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := m.client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			notReady[render.ObjectID(o)] = "NotFound: " + err.Error()
			continue
		}
		res, err := status.Compute(live)
		if err != nil {
			notReady[render.ObjectID(o)] = "Unknown: " + err.Error()
			continue
		}
		if res.Status != status.CurrentStatus {
			notReady[render.ObjectID(o)] = fmt.Sprintf("%s: %s", res.Status, res.Message)
		}
	}
	if len(notReady) > 0 {
		return &NotReadyError{Objects: notReady}
	}
	return nil
}

// Wait waits until every object is Current (kstatus) or timeout passes; on
// timeout the error names each object that is not ready and why.
func (m *Manager) Wait(ctx context.Context, objs []*unstructured.Unstructured, timeout time.Duration) error {
	err := m.rm.WaitForSetWithContext(ctx, metaSet(objs), ssa.WaitOptions{Interval: m.opts.WaitInterval, Timeout: timeout})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if herr := m.Health(ctx, objs); herr != nil {
		return fmt.Errorf("after %s: %w", timeout, herr)
	}
	return nil // became ready just as the wait gave up
}

// Observation is one live object's health as kstatus computes it.
type Observation struct {
	Found bool
	// Replicas is the live spec.replicas (0 when unset).
	Replicas    int32
	Status      status.Status
	Message     string
	Annotations map[string]string
}

// Observe reads one object and computes its kstatus.
func (m *Manager) Observe(ctx context.Context, apiVersion, kind, namespace, name string) (Observation, error) {
	live := &unstructured.Unstructured{}
	watcher := m
	if m.agent != nil {
		watcher = m.agent // the agent watches every release's Deployments
	}
	if wc := watcher.watch.Load(); wc != nil && apiVersion == "apps/v1" && kind == "Deployment" {
		if obj, found, answered := wc.get(namespace, name); answered {
			if !found {
				return Observation{}, nil
			}
			return observation(obj), nil
		}
	}
	live.SetAPIVersion(apiVersion)
	live.SetKind(kind)
	err := m.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, live)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return Observation{}, nil
		}
		return Observation{}, err
	}
	return observation(live), nil
}

func observation(live *unstructured.Unstructured) Observation {
	res, err := status.Compute(live)
	if err != nil {
		return Observation{Found: true, Status: status.UnknownStatus, Message: err.Error(), Annotations: live.GetAnnotations()}
	}
	replicas, _, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
	return Observation{Found: true, Replicas: int32(replicas), Status: res.Status, Message: res.Message, Annotations: live.GetAnnotations()}
}
