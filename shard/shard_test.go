package shard

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestOf(t *testing.T) {
	const n = 3000
	for _, shards := range []int{1, 2, 3, 7} {
		count := make([]int, shards)
		for i := range n {
			s := Of(fmt.Sprintf("ns-%d/app-%d", i%13, i), shards)
			if s < 0 || s >= shards {
				t.Fatalf("Of(.., %d) = %d", shards, s)
			}
			count[s]++
		}
		for s, c := range count {
			if want := n / shards; c < want*85/100 || c > want*115/100 {
				t.Errorf("%d shards: shard %d has %d of %d releases (want about %d)", shards, s, c, n, want)
			}
		}
	}
	// Consistent: going from 3 to 4 shards moves a release only onto the
	// new shard, and about a quarter of them.
	moved := 0
	for i := range n {
		id := fmt.Sprintf("demo/app-%d", i)
		a, b := Of(id, 3), Of(id, 4)
		if a != b {
			moved++
			if b != 3 {
				t.Fatalf("%s moved from shard %d to %d, not to the new shard 3", id, a, b)
			}
		}
	}
	if moved < n/4*85/100 || moved > n/4*115/100 {
		t.Errorf("%d of %d releases moved from 3 to 4 shards, want about a quarter", moved, n)
	}
	if Of("a/b", 5) != Of("a/b", 5) {
		t.Error("Of is not deterministic")
	}
}

func TestDecide(t *testing.T) {
	free := seen{free: true}
	orphan := seen{free: true, freeFor: time.Minute}
	held := func(by string) seen { return seen{holder: by} }
	cases := []struct {
		name    string
		shards  int
		members int
		leases  map[int]seen
		held    []int
		recent  map[int]bool
		acquire int // how many taken
		release int // how many given up
	}{
		{"alone: takes every shard", 3, 1, map[int]seen{0: free, 1: free, 2: free}, nil, nil, 3, 0},
		{"one of three: takes one", 3, 3, map[int]seen{0: free, 1: free, 2: free}, nil, nil, 1, 0},
		{"one of three, holding one: takes none fresh", 3, 3, map[int]seen{0: free, 1: held("b"), 2: held("c")}, []int{1}, nil, 0, 0},
		{"holding its share: takes an orphan", 3, 3, map[int]seen{0: orphan, 1: held("me"), 2: held("c")}, []int{1}, nil, 1, 0},
		{"two of three shards after a death: share 2", 3, 2, map[int]seen{0: free, 1: held("me"), 2: held("c")}, []int{1}, nil, 1, 0},
		{"held by others: nothing to take", 3, 3, map[int]seen{0: held("a"), 1: held("b"), 2: held("c")}, nil, nil, 0, 0},
		{"above its share after a join: gives up", 3, 3, map[int]seen{0: held("me"), 1: held("me"), 2: held("me")}, []int{0, 1, 2}, nil, 0, 2},
		{"does not take back what it gave up", 3, 1, map[int]seen{0: orphan, 1: held("me"), 2: held("me")}, []int{1, 2}, map[int]bool{0: true}, 0, 0},
		{"more replicas than shards", 2, 5, map[int]seen{0: free, 1: free}, nil, nil, 1, 0},
		{"more replicas than shards, holding one", 2, 5, map[int]seen{0: free, 1: held("me")}, []int{1}, nil, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide("me", c.shards, c.members, c.leases, c.held, c.recent, 6*time.Second)
			if len(d.acquire) != c.acquire || len(d.release) != c.release {
				t.Fatalf("acquire %v release %v, want %d and %d", d.acquire, d.release, c.acquire, c.release)
			}
			for _, s := range d.acquire {
				if slices.Contains(c.held, s) || !c.leases[s].free || c.recent[s] {
					t.Errorf("took shard %d, which is not free for it", s)
				}
			}
			for _, s := range d.release {
				if !slices.Contains(c.held, s) {
					t.Errorf("gave up shard %d, which it does not hold", s)
				}
			}
		})
	}
}

// Replicas deciding in turn on a shared view end balanced: every shard
// held once, no replica above its share.
func TestDecideConverges(t *testing.T) {
	for _, tc := range []struct{ shards, replicas int }{{3, 3}, {3, 2}, {5, 3}, {1, 3}, {8, 3}} {
		leases := map[int]seen{}
		for s := range tc.shards {
			leases[s] = seen{free: true}
		}
		ids := make([]string, tc.replicas)
		for i := range ids {
			ids[i] = fmt.Sprintf("host-%d_%d", i, 1000+i)
		}
		for round := 0; round < 4; round++ {
			for _, id := range ids {
				var held []int
				for s, l := range leases {
					if l.holder == id {
						held = append(held, s)
					}
				}
				d := decide(id, tc.shards, tc.replicas, leases, held, nil, time.Hour)
				for _, s := range d.acquire {
					leases[s] = seen{holder: id}
				}
				for _, s := range d.release {
					leases[s] = seen{free: true}
				}
			}
		}
		per := map[string]int{}
		for s, l := range leases {
			if l.holder == "" {
				t.Errorf("%d shards, %d replicas: shard %d unowned", tc.shards, tc.replicas, s)
			}
			per[l.holder]++
		}
		share := (tc.shards + tc.replicas - 1) / tc.replicas
		for id, n := range per {
			if n > share {
				t.Errorf("%d shards, %d replicas: %s holds %d, above its share %d", tc.shards, tc.replicas, id, n, share)
			}
		}
	}
}
