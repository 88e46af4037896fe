package agent

import (
	"encoding/json"
	"hash/fnv"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/reconcile"
)

// appliedSet is what a release's last apply wrote: the objects' content
// hash, as whom, and the inventory that came back.
type appliedSet struct {
	key       string
	inventory reconcile.Inventory
	at        int64 // unix ns
}

// objectsKey identifies the objects an apply would write, and the identity
// it would write them as.
func objectsKey(identity string, objs []*unstructured.Unstructured) string {
	h := fnv.New128a()
	io.WriteString(h, identity)
	enc := json.NewEncoder(h)
	for _, o := range objs {
		if err := enc.Encode(o.Object); err != nil {
			return "" // never equal: applied
		}
	}
	return string(h.Sum(nil))
}

// applyCurrent returns the inventory of the release's last apply when the
// same objects were applied as the same identity within the resync, and its
// Deployment changed only in status since (a rollout progressing, pods
// becoming ready): applying again would write nothing, at the price of a
// dry-run per object. Drift is still set back: a Deployment changed beyond
// its status (the watch says which) is applied at once, and any other
// object at the next resync, as before.
func (a *Agent) applyCurrent(id, key string) (reconcile.Inventory, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	last, ok := a.lastApplied[id]
	if !ok || key == "" || last.key != key || a.drifted[id] || a.now().UnixNano()-last.at >= int64(resync) {
		return nil, false
	}
	return last.inventory, true
}

// rememberApplied records a successful apply.
func (a *Agent) rememberApplied(id, key string, inv reconcile.Inventory) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastApplied[id] = appliedSet{key: key, inventory: inv, at: a.now().UnixNano()}
}

// appliedFrom is called before an apply: drift noticed from now on is
// drift after it.
func (a *Agent) appliedFrom(id string) {
	a.mu.Lock()
	delete(a.drifted, id)
	a.mu.Unlock()
}
