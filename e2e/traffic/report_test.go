package traffic

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// report gathers the figures the traffic stories measure, printed as one
// line when the stories end:
//
//	traffic: split max deviation X pp at n=N, switch failures F, push->shifted Ps, revert->all-old Rs, bad requests before abort B
var report = &figures{}

type figures struct {
	mu         sync.Mutex
	maxDev     float64
	devN       int
	fails      map[string]int
	shift      time.Duration
	revert     time.Duration
	badAnswers int
	sawBad     bool
}

func (f *figures) split(devPP float64, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if devPP >= f.maxDev {
		f.maxDev, f.devN = devPP, n
	}
}

func (f *figures) failures(story string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails == nil {
		f.fails = map[string]int{}
	}
	f.fails[story] = n
}

func (f *figures) shifted(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shift = max(f.shift, d)
}

func (f *figures) reverted(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revert = max(f.revert, d)
}

func (f *figures) bad(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.badAnswers, f.sawBad = n, true
}

// print writes the summary line (figures a story did not measure are "-").
func (f *figures) print() {
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for _, n := range f.fails {
		total += n
	}
	dur := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	bad := "-"
	if f.sawBad {
		bad = fmt.Sprint(f.badAnswers)
	}
	fmt.Fprintf(os.Stderr, "traffic: split max deviation %.1f pp at n=%d, switch failures %d, push->shifted %s, revert->all-old %s, bad requests before abort %s\n",
		f.maxDev, f.devN, total, dur(f.shift), dur(f.revert), bad)
}
