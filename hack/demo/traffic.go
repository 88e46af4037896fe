package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/loadgen"
)

// traffic is what the demo's users get: the load generator's records, read
// for the live split, the smoke check and the closing figures.
type traffic struct {
	users *loadgen.Gen
	mu    sync.Mutex
	head  string // the version being rolled out
}

func (t *traffic) rollingOut(version string) {
	t.mu.Lock()
	t.head = version
	t.mu.Unlock()
}

func (t *traffic) version() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.head
}

// canaryErrors counts the requests the version being rolled out answered
// in the last window, and how many of them failed.
func (t *traffic) canaryErrors(window time.Duration) (n, failed int) {
	recs := loadgen.Between(t.users.Records(), time.Now().Add(-window), time.Now())
	return count(recs, t.version())
}

// versionErrors counts every request version answered, and its failures.
func (t *traffic) versionErrors(version string) (n, failed int) {
	return count(t.users.Records(), version)
}

func count(recs []loadgen.Record, version string) (n, failed int) {
	for _, r := range recs {
		if r.Version == version {
			n++
			if !r.OK() {
				failed++
			}
		}
	}
	return n, failed
}

// report prints the live split while a rollout is in flight, every 3 s
// when it moved: the weight the status branch last committed and the share
// of the last 3 s of requests the new version answered.
func (t *traffic) report(ctx context.Context, w *watcher) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		phase, weight := w.last.phase, w.last.weight
		w.mu.Unlock()
		if phase != "Progressing" && phase != "Paused" && phase != "Promoting" {
			continue
		}
		recs := loadgen.Between(t.users.Records(), time.Now().Add(-3*time.Second), time.Now())
		share, n := loadgen.Share(recs, t.version())
		line := fmt.Sprintf("weight %-3s → %5.1f%% of the last %d requests from %s, %d failed", weight, 100*share, n, t.version(), loadgen.Failed(recs))
		if key := fmt.Sprintf("%s %.0f %d", weight, 100*share, loadgen.Failed(recs)); key != last {
			say("  traffic: %s", line)
			last = key
		}
	}
}

// summary prints what every user request got, the demo long.
func (t *traffic) summary() {
	recs := t.users.Records()
	say("users sent %d requests through the Gateway, %d failed:", len(recs), loadgen.Failed(recs))
	for _, v := range []string{"6.7.0", "6.7.1", "6.7.2"} {
		n, failed := count(recs, v)
		say("  %s answered %d and failed %d", v, n, failed)
	}
	if os.Getenv("DEMO_DEBUG") != "" {
		for _, r := range recs {
			if !r.OK() {
				say("failed %s status %d version %q latency %s", r.At.Format("15:04:05.000"), r.Status, r.Version, r.Latency)
			}
		}
	}
}
