package loadgen

import (
	"math"
	"testing"
)

// Each profile gets its share of requests, spread evenly, for any run
// length: never more than one request away from the exact share.
func TestProfilesGetTheirShare(t *testing.T) {
	g := New(Config{Rate: 1, Profiles: []Profile{{Name: "a", Share: 0.25}, {Name: "b", Share: 0.1}}})
	counts := map[string]int{}
	for i := range 1000 {
		counts[g.profile(i).Name]++
		n := float64(i + 1)
		if math.Abs(float64(counts["a"])-0.25*n) > 3 || math.Abs(float64(counts["b"])-0.1*n) > 3 {
			t.Fatalf("after %d requests: %v", i+1, counts)
		}
	}
	if counts["default"] < 647 || counts["default"] > 653 {
		t.Errorf("default got %d of 1000, want 650", counts["default"])
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		observed, expected float64
		n                  int
		want               bool
	}{
		{0.10, 0.10, 100, true},
		{0.16, 0.10, 100, true},     // bound at n=100 is ~10.4 pp
		{0.25, 0.10, 100, false},    // far outside
		{0.115, 0.10, 10000, false}, // bound at n=10000 is ~1 pp
		{0.105, 0.10, 10000, true},
		{0, 0, 50, true},
		{0.05, 0, 50, false}, // a weight of 0 means none at all, beyond half a request
		{1, 1, 50, true},
	} {
		got, b := Within(tc.observed, tc.expected, tc.n)
		if got != tc.want {
			t.Errorf("Within(%v, %v, %d) = %v (bound %.4f), want %v", tc.observed, tc.expected, tc.n, got, b, tc.want)
		}
	}
}

func TestShareCountsAnsweredOnly(t *testing.T) {
	recs := []Record{{Status: 200, Version: "a"}, {Status: 500, Version: "b"}, {Status: 0}, {Status: 200, Version: "b"}}
	s, n := Share(recs, "b")
	if n != 3 || math.Abs(s-2.0/3) > 1e-9 {
		t.Errorf("share %v of %d", s, n)
	}
	if f := Failed(recs); f != 2 {
		t.Errorf("failed %d, want 2", f)
	}
}
