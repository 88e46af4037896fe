package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// scipyScript computes scipy.stats.mannwhitneyu (method "auto", two-sided)
// for every pair in the file named by argv[1].
const scipyScript = `
import json, sys
from scipy.stats import mannwhitneyu
pairs = json.load(open(sys.argv[1]))
out = []
for x, y in pairs:
    r = mannwhitneyu(x, y, alternative="two-sided", method="auto")
    out.append([float(r.statistic), float(r.pvalue)])
json.dump(out, sys.stdout)
`

// pairs generates sample pairs covering both methods: small samples
// without ties (exact), one small and one large (exact), large ones and
// tied ones (asymptotic), shifted or not.
func pairs(r *rand.Rand, n int) [][2][]float64 {
	var out [][2][]float64
	for i := range n {
		var n1, n2 int
		switch i % 4 {
		case 0:
			n1, n2 = 1+r.IntN(8), 1+r.IntN(8)
		case 1:
			n1, n2 = 1+r.IntN(8), 9+r.IntN(60)
		default:
			n1, n2 = 9+r.IntN(80), 9+r.IntN(80)
		}
		shift := []float64{0, 0.3, 1, 3}[r.IntN(4)]
		tied := i%4 == 3 || (i%8 == 2)
		draw := func(k int, d float64) []float64 {
			v := make([]float64, k)
			for j := range v {
				if tied {
					v[j] = math.Round(r.NormFloat64()*2 + d)
				} else {
					v[j] = r.NormFloat64() + d
				}
			}
			return v
		}
		out = append(out, [2][]float64{draw(n1, 0), draw(n2, shift)})
	}
	return out
}

// TestMannWhitneyUAgainstScipy: U and p equal scipy's on 240 generated
// pairs, p within 1e-9 for the exact test and 1e-6 for the approximation.
func TestMannWhitneyUAgainstScipy(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, with python3-scipy (make testdeps)
	if out, err := exec.Command(python, "-c", "import scipy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import scipy (apt-get install python3-scipy): %v %s", python, err, out)
	}
	r := rand.New(rand.NewPCG(7, 11))
	ps := pairs(r, 240)
	in := make([][2][]float64, len(ps))
	copy(in, ps)
	b, _ := json.Marshal(in)
	file := filepath.Join(t.TempDir(), "pairs.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", scipyScript, file).Output()
	if err != nil {
		t.Fatalf("scipy: %v", err)
	}
	var want [][2]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	counts := map[Method]int{}
	for i, p := range ps {
		got := MannWhitneyU(p[0], p[1])
		counts[got.Method]++
		tol := 1e-6
		if got.Method == Exact {
			tol = 1e-9
		}
		if math.Abs(got.U-want[i][0]) > 1e-9 || math.Abs(got.P-want[i][1]) > tol {
			t.Errorf("pair %d (n=%d,%d, %s): U %v p %.12g; scipy U %v p %.12g", i, len(p[0]), len(p[1]), got.Method, got.U, got.P, want[i][0], want[i][1])
		}
	}
	if counts[Exact] < 60 || counts[Asymptotic] < 60 {
		t.Fatalf("methods used: %v; the pairs must exercise both", counts)
	}
	t.Logf("%d pairs equal to scipy's: %v", len(ps), counts)
}

func TestMannWhitneyUByHand(t *testing.T) {
	// scipy's documented example: males vs females, exact.
	got := MannWhitneyU([]float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12})
	if got.U != 17 || got.Method != Exact || math.Abs(got.P-0.1111111111111111) > 1e-12 {
		t.Errorf("got %+v, want U 17, exact p 0.1111", got)
	}
	// All values tied: no evidence either way.
	if got := MannWhitneyU([]float64{1, 1, 1}, []float64{1, 1}); got.P != 1 {
		t.Errorf("all tied: %+v", got)
	}
}
