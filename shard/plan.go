package shard

import (
	"sort"
	"time"
)

// seen is one shard's Lease as a replica sees it on one tick.
type seen struct {
	// holder is the identity holding it ("" when free or missing).
	holder string
	// free: missing, released, or not renewed for its lease duration by
	// this replica's clock.
	free bool
	// freeFor is how long it has been seen free.
	freeFor time.Duration
}

// decision is what one replica does with the Leases on one tick.
type decision struct {
	acquire, release []int
}

// decide balances the shards over the live replicas (members, this one
// included): each holds at most ceil(shards/members). A replica under that
// share takes free shards in its own order of preference; one above it
// gives the least preferred up. A shard free for orphanAfter (its holder
// died and no replica under its share took it) is taken by any replica
// not above its share, so no shard stays unowned. held lists the shards
// this replica holds and keeps; recent lists those it gave up lately,
// which it does not take back.
func decide(identity string, shards, members int, leases map[int]seen, held []int, recent map[int]bool, orphanAfter time.Duration) decision {
	var d decision
	members = max(members, 1)
	target := (shards + members - 1) / members
	mine := map[int]bool{}
	for _, s := range held {
		mine[s] = true
	}
	byPreference := func(list []int) {
		sort.Slice(list, func(i, j int) bool {
			pi, pj := preference(identity, list[i]), preference(identity, list[j])
			if pi != pj {
				return pi > pj
			}
			return list[i] < list[j]
		})
	}
	if len(held) > target {
		list := append([]int(nil), held...)
		byPreference(list)
		d.release = list[target:]
		return d
	}
	var free []int
	for s := range shards {
		if l, ok := leases[s]; (!ok || l.free) && !mine[s] && !recent[s] {
			free = append(free, s)
		}
	}
	byPreference(free)
	n := len(held)
	for _, s := range free {
		l, ok := leases[s]
		orphan := ok && l.freeFor >= orphanAfter
		if n < target || orphan {
			d.acquire = append(d.acquire, s)
			n++
		}
	}
	return d
}
