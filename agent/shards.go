package agent

import (
	"fmt"
	"path"

	"github.com/sluice-dev/sluice/gitsource"
)

// Owner says which releases this replica may reconcile now, when the fleet
// is split between replicas (--shards): shard.Elector.
type Owner interface {
	// Acquire starts work on a release whose shard this replica owns now;
	// done ends it. The shard is not given up while work is in flight.
	Acquire(release string) (done func(), ok bool)
	// Shard is the release's shard; Identity names this replica.
	Shard(release string) int
	Identity() string
	// Leads says whether this replica runs the fleet-wide side jobs (the
	// image scanner, the promoter): the owner of shard 0.
	Leads() bool
}

// SetOwner splits the releases: this replica reconciles only those o lets
// it acquire. Set before Run.
func (a *Agent) SetOwner(o Owner) { a.owner = o }

// acquire starts work on the release of file: always when the fleet is not
// split. A release whose shard this replica does not own is forgotten, so
// that when the shard comes back it starts from Git, not from a memory of
// before another replica worked on it.
func (a *Agent) acquire(file string) (func(), bool) {
	if a.owner == nil {
		return func() {}, true
	}
	id := idFromDir(path.Dir(file))
	done, ok := a.owner.Acquire(id)
	if !ok {
		a.mu.Lock()
		_, known := a.files[file]
		a.mu.Unlock()
		if known {
			a.forget(id, file)
		}
		return nil, false
	}
	return done, true
}

// leads says whether the fleet-wide side jobs run on this replica.
func (a *Agent) leads() bool { return a.owner == nil || a.owner.Leads() }

// ownerTrailers name the shard and the replica that wrote a status commit,
// so the status branch's log shows one owner at a time per release.
func (a *Agent) ownerTrailers(release string) []gitsource.Trailer {
	if a.owner == nil {
		return nil
	}
	return []gitsource.Trailer{{Key: "Sluice-Shard", Value: fmt.Sprint(a.owner.Shard(release))}, {Key: "Sluice-Owner", Value: a.owner.Identity()}}
}

// Wake makes the loop look at the releases now (a shard was acquired):
// without polling Git when it polled within the interval.
func (a *Agent) Wake() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
