package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/strategy"
)

// commitStatus writes status.yaml for a release to the status branch as one
// commit with the Sluice-* trailers, retried on rejection. It reports
// whether the status is now in Git (false: the next pass decides again).
func (a *Agent) commitStatus(ctx context.Context, id, file string, st v1alpha1.ReleaseStatus, subject string, checks []v1alpha1.CheckState, head plumbing.Hash, extra ...gitsource.Trailer) bool {
	st.APIVersion, st.Kind = v1alpha1.APIVersion, v1alpha1.KindReleaseStatus
	data, err := yaml.Marshal(st)
	if err != nil {
		a.log.Error("status marshal failed", zap.String("release", id), zap.Error(err))
		return false
	}
	trailers := []gitsource.Trailer{
		{Key: "Sluice-Release", Value: id},
		{Key: "Sluice-Phase", Value: string(st.Phase)},
		{Key: "Sluice-Step", Value: fmt.Sprint(st.Step)},
		{Key: "Sluice-Weight", Value: fmt.Sprint(st.Weight)},
		{Key: "Sluice-Revision", Value: head.String()},
	}
	if len(checks) > 0 {
		trailers = append(trailers, gitsource.Trailer{Key: "Sluice-Checks", Value: strategy.ChecksTrailer(checks)})
	}
	trailers = append(trailers, extra...)
	trailers = append(trailers, a.ownerTrailers(id)...)
	msg := gitsource.FormatMessage(fmt.Sprintf("sluice: %s %s", id, subject), st.Message, trailers)
	w := &statusWrite{release: id, spec: &gitsource.CommitSpec{Message: msg, Files: []gitsource.FileChange{{Path: file, Data: data}}}}
	return a.writeStatus(ctx, w)
}

// rollbackTrailers name both versions of a rollback.
func rollbackTrailers(p strategy.Plan) []gitsource.Trailer {
	if p.RollbackFrom == "" {
		return nil
	}
	return []gitsource.Trailer{{Key: "Sluice-Rollback-From", Value: p.RollbackFrom}, {Key: "Sluice-Rollback-To", Value: p.RollbackTo}}
}

// statusWrite is one release's status commit waiting to be pushed.
type statusWrite struct {
	release string
	spec    *gitsource.CommitSpec
	done    bool
	ok      bool
}

// writeStatus is a group commit: the writes queued while a push is in
// flight go out together in the next one, each still its own commit with
// its own trailers, so a fleet of releases changing at once costs a few
// round trips to the Git server instead of one each.
func (a *Agent) writeStatus(ctx context.Context, w *statusWrite) bool {
	freeSlot(ctx)
	a.queueMu.Lock()
	a.queue = append(a.queue, w)
	a.queueMu.Unlock()

	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	a.gather(ctx)
	a.queueMu.Lock()
	if w.done {
		a.queueMu.Unlock()
		return w.ok // written by the batch of an earlier holder
	}
	batch := a.queue
	a.queue = nil
	a.queueMu.Unlock()
	res, err := a.src.WriteChain(ctx, a.opts.StatusBranch, func(ctx context.Context, _ plumbing.Hash, _ *gitsource.TreeFS) ([]*gitsource.CommitSpec, error) {
		// Status files are the agent's own: there is nothing to merge, the
		// same content goes on top of whatever the branch holds now.
		specs := make([]*gitsource.CommitSpec, len(batch))
		for i, b := range batch {
			specs[i] = b.spec
		}
		return specs, nil
	})
	a.queueMu.Lock()
	defer a.queueMu.Unlock()
	for _, b := range batch {
		b.done, b.ok = true, err == nil
	}
	if err != nil {
		reason := "error"
		if errors.Is(err, gitsource.ErrRejected) {
			reason = "rejected"
		}
		a.metrics.pushErrors.WithLabelValues(reason).Inc()
		for _, b := range batch {
			a.log.Error("status commit failed; retried next pass", zap.String("release", b.release), zap.Error(err))
		}
		return false
	}
	if !res.Commit.IsZero() {
		a.metrics.commits.Add(float64(len(batch)))
		a.statusHead = res.Commit
	}
	return true
}

type slotKey struct{}

// withSlot carries a release's concurrency slot to its status write, which
// gives it back before waiting for Git (free must be safe to call twice).
func withSlot(ctx context.Context, free func()) context.Context {
	return context.WithValue(ctx, slotKey{}, free)
}

func freeSlot(ctx context.Context) {
	if free, ok := ctx.Value(slotKey{}).(func()); ok {
		free()
	}
}

// Gathering: while a pass has many releases still to go (a cold start, a
// change to every release), the writer holding the push waits up to
// gatherFor for more transitions to join its batch, so a fleet's install
// is a few dozen pushes, not one per release or two. A pass with few
// releases (a canary's next step) pushes at once.
const (
	gatherBacklog = 16
	gatherFor     = 300 * time.Millisecond
	gatherBatch   = 100
)

func (a *Agent) gather(ctx context.Context) {
	deadline := time.Now().Add(gatherFor)
	for a.backlog.Load() >= gatherBacklog && time.Now().Before(deadline) && ctx.Err() == nil {
		a.queueMu.Lock()
		n := len(a.queue)
		a.queueMu.Unlock()
		if n >= gatherBatch {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
