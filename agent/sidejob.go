package agent

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/render"
)

// schedule is when a side job (the image scanner, the promoter) is next
// due: every interval, give or take a tenth, so replicas and registries
// do not see the checks in lockstep.
type schedule struct {
	interval time.Duration
	next     atomic.Int64 // unix ns
}

// until is how long before the job is due.
func (s *schedule) until() time.Duration { return time.Until(time.Unix(0, s.next.Load())) }

// again makes the job due one interval from now, jittered.
func (s *schedule) again() {
	s.next.Store(time.Now().Add(s.interval + time.Duration((rand.Float64()-0.5)*0.2*float64(s.interval))).UnixNano())
}

// dueNow makes the job due at once.
func (s *schedule) dueNow() { s.next.Store(time.Now().UnixNano()) }

// servedReleases are the releases of tree this agent serves (under
// --path, in --namespaces), parsed; unparsable ones are left to the pass,
// which reports them.
func (a *Agent) servedReleases(tree *gitsource.TreeFS) []*v1alpha1.Parsed {
	files, _ := v1alpha1.FindReleases(tree, "/", a.opts.Path)
	out := make([]*v1alpha1.Parsed, 0, len(files))
	for _, f := range files {
		p, err := render.ReadRelease(tree, "/", f)
		if err != nil || (len(a.opts.Namespaces) > 0 && !slices.Contains(a.opts.Namespaces, p.Release.Metadata.Namespace)) {
			continue
		}
		out = append(out, p)
	}
	return out
}
