// Package shard splits a fleet of releases between the replicas of an
// agent, as Argo CD shards its application controller: releases are
// assigned to shards by consistent hashing of "<namespace>/<name>", and
// each shard is owned by the replica holding its Lease (sluice-shard-<i>).
package shard

import (
	"fmt"
	"hash/fnv"
)

// LeaseName is the name of shard i's Lease.
func LeaseName(i int) string { return fmt.Sprintf("sluice-shard-%d", i) }

// Of is the shard, in [0, shards), of the release "<namespace>/<name>":
// Lamping and Veach's jump consistent hash of its FNV-1a hash, so going
// from n to n+1 shards moves only a 1/(n+1) share of the releases.
func Of(release string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(release))
	key := h.Sum64()
	var b, j int64 = -1, 0
	for j < int64(shards) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// preference orders the shards for one replica (rendezvous hashing): each
// replica prefers different shards, so replicas starting together reach
// for different Leases first.
func preference(identity string, shard int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", identity, shard)
	return h.Sum64()
}
