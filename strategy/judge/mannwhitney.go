package judge

import (
	"math"
	"slices"
	"sort"
)

// Method says how a p-value was computed.
type Method string

// Methods.
const (
	Exact      Method = "exact"
	Asymptotic Method = "asymptotic"
)

// UResult is a two-sided Mann-Whitney U test of x against y.
type UResult struct {
	// U is the statistic of x: how many of the (x, y) pairs have x above
	// y, ties counting a half.
	U float64
	// P is the two-sided p-value.
	P      float64
	Method Method
}

// MannWhitneyU tests whether x and y come from the same distribution
// (two-sided). As scipy's method "auto": exact when either sample has at
// most 8 values and no value is tied, else the normal approximation with
// the tie correction and a continuity correction. Both samples must be
// non-empty.
func MannWhitneyU(x, y []float64) UResult {
	n1, n2 := len(x), len(y)
	xy := append(append(make([]float64, 0, n1+n2), x...), y...)
	ranks, ties := rank(xy)
	r1 := 0.0
	for _, r := range ranks[:n1] {
		r1 += r
	}
	u1 := r1 - float64(n1*(n1+1))/2
	u2 := float64(n1*n2) - u1
	u := math.Max(u1, u2)
	res := UResult{U: u1}
	if (n1 <= 8 || n2 <= 8) && !ties.any {
		res.Method = Exact
		res.P = 2 * exactCDF(int(math.Round(float64(n1*n2)-u)), n1, n2)
	} else {
		res.Method = Asymptotic
		n := float64(n1 + n2)
		mu := float64(n1*n2) / 2
		s := math.Sqrt(float64(n1*n2) / 12 * ((n + 1) - ties.term/(n*(n-1))))
		z := (u - mu - 0.5) / s
		res.P = 2 * 0.5 * math.Erfc(z/math.Sqrt2)
	}
	res.P = math.Min(1, math.Max(0, res.P))
	return res
}

// tieInfo is what the ranks say about ties: whether there are any, and
// the sum of t³−t over groups of t tied values.
type tieInfo struct {
	any  bool
	term float64
}

// rank gives each value its rank (1-based), tied values the average of
// their ranks.
func rank(v []float64) ([]float64, tieInfo) {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	ranks := make([]float64, len(v))
	var ti tieInfo
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && v[idx[j]] == v[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			ranks[idx[k]] = avg
		}
		if t := float64(j - i); t > 1 {
			ti.any = true
			ti.term += t*t*t - t
		}
		i = j
	}
	return ranks, ti
}

// exactCDF is P(U <= k) for samples of sizes m and n with no ties: the
// number of orderings with U = i is the coefficient of q^i in the Gaussian
// binomial [m+n choose m]_q, built as the product over i = 1..m of
// (1 − q^(n+i)) / (1 − q^i).
func exactCDF(k, m, n int) float64 {
	if m > n {
		m, n = n, m
	}
	if k < 0 {
		return 0
	}
	counts := []float64{1}
	for i := 1; i <= m; i++ {
		prod := make([]float64, len(counts)+n+i)
		for d, c := range counts {
			prod[d] += c
			prod[d+n+i] -= c
		}
		next := make([]float64, i*n+1)
		for d := range next {
			next[d] = prod[d]
			if d >= i {
				next[d] += next[d-i]
			}
		}
		counts = next
	}
	total := binomial(m+n, m)
	cdf := 0.0
	for _, c := range counts[:min(k, m*n)+1] {
		cdf += c / total
	}
	return cdf
}

// binomial is n choose k as a float.
func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
