package agent

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/reconcile"
)

// errMassRemoval: every managed release vanished from the spec at once.
var errMassRemoval = errors.New("every release under the path vanished at once (an empty checkout or a wrong --path?); nothing removed: start the agent with --allow-mass-removal if this is meant")

// removedReleases lists the status files whose release file is gone from
// the spec: the releases to remove. It refuses, listing none, when every
// managed release vanished at once, unless allowMass. A status file whose
// release file exists is never listed.
func removedReleases(releaseFiles, statusFiles []string, allowMass bool) ([]string, error) {
	present := make(map[string]bool, len(releaseFiles))
	for _, f := range releaseFiles {
		present[path.Dir(f)] = true
	}
	var gone []string
	for _, s := range statusFiles {
		if !present[path.Dir(s)] {
			gone = append(gone, s)
		}
	}
	if len(gone) > 0 && len(releaseFiles) == 0 && !allowMass {
		return nil, errMassRemoval
	}
	return gone, nil
}

// removeReleases prunes the releases whose files left Git: their inventory
// is deleted and a final status with phase Removed is committed; a later
// pass, seeing that status, deletes the status file, so the release's
// history keeps its whole life. It returns the status commits made.
func (a *Agent) removeReleases(ctx context.Context, files []string, statusTree *gitsource.TreeFS, specHead plumbing.Hash) int {
	if statusTree == nil || a.src.SameBranch() {
		// Same-branch mode: a removed directory took its status with it.
		return 0
	}
	key := specHead.String() + "|" + statusTree.TreeHash(a.opts.Path).String()
	if key == a.removalKey {
		return 0 // the same trees as a pass that found nothing to remove, or refused
	}
	statuses, err := statusTree.StatusFiles(a.opts.Path)
	var skipped v1alpha1.SkippedPaths
	if errors.As(err, &skipped) {
		err = nil // an unreadable entry is not listed, so not removed
	}
	if err != nil {
		a.log.Error("status branch unreadable; nothing removed", zap.Error(err))
		return 0
	}
	gone, err := removedReleases(files, statuses, a.opts.AllowMassRemoval)
	if err != nil {
		a.metrics.removalRefused.Set(1)
		a.log.Error("removal refused", zap.Int("releases", len(statuses)), zap.Error(err))
		a.removalKey = key // logged once for these trees; the metric stays 1
		return 0
	}
	a.metrics.removalRefused.Set(0)
	if len(gone) == 0 {
		a.removalKey = key
	}
	commits := 0
	for _, file := range gone {
		done, mine := a.acquire(file)
		if !mine {
			continue // another replica's shard
		}
		if a.removeRelease(ctx, file, statusTree, specHead) {
			commits++
		}
		done()
	}
	return commits
}

// removeRelease takes one removed release a step further: delete its
// objects and commit phase Removed, or, once that is in Git, delete its
// status file.
func (a *Agent) removeRelease(ctx context.Context, statusFile string, statusTree *gitsource.TreeFS, specHead plumbing.Hash) bool {
	st, err := readStatus(statusTree, statusFile)
	if err != nil {
		a.log.Error("status unreadable; not removed", zap.String("file", statusFile), zap.Error(err))
		return false
	}
	id := st.Metadata.Namespace + "/" + st.Metadata.Name
	if st.Metadata.Name == "" {
		id = idFromDir(path.Dir(statusFile))
	}
	log := a.log.With(zap.String("release", id))
	if st.Phase == v1alpha1.PhaseRemoved {
		msg := gitsource.FormatMessage(fmt.Sprintf("sluice: %s status removed", id), "the release was removed; its history stays in this branch's log", append([]gitsource.Trailer{
			{Key: "Sluice-Release", Value: id}, {Key: "Sluice-Phase", Value: string(v1alpha1.PhaseRemoved)}, {Key: "Sluice-Revision", Value: specHead.String()},
		}, a.ownerTrailers(id)...))
		ok := a.writeStatus(ctx, &statusWrite{release: id, spec: &gitsource.CommitSpec{Message: msg, Files: []gitsource.FileChange{{Path: statusFile}}}})
		if ok {
			a.forget(id, path.Join(path.Dir(statusFile), v1alpha1.ReleaseFile))
		}
		return ok
	}
	// Removed as the identity that applied it.
	ns, name, _ := strings.Cut(st.ServiceAccount, "/")
	mgr, _, err := a.managerFor(ns, name)
	if err != nil {
		log.Error("impersonation failed", zap.Error(err))
		return false
	}
	cs, err := mgr.Remove(ctx, id, reconcile.Inventory(st.Inventory))
	if err != nil {
		log.Error("removing the release's objects failed; retried next pass", zap.Error(err))
		return false
	}
	var kept, deleted []string
	for _, e := range cs.Entries {
		if e.Action == ssa.SkippedAction {
			kept = append(kept, e.Subject)
		} else {
			deleted = append(deleted, e.Subject)
		}
	}
	next := st
	next.Phase = v1alpha1.PhaseRemoved
	next.Canary, next.Step, next.Weight, next.Checks, next.Error = nil, 0, 0, nil, nil
	next.Inventory = nil
	next.ObservedRevision = specHead.String()
	next.Message = fmt.Sprintf("the release's files were removed from Git at %s: %d objects deleted", short(specHead.String()), len(deleted))
	if len(kept) > 0 {
		next.Message += fmt.Sprintf(", %d kept (%s: %s): %s", len(kept), reconcile.PruneAnnotation, reconcile.PruneDisabled, strings.Join(kept, ", "))
	}
	log.Info("release removed", zap.Strings("deleted", deleted), zap.Strings("kept", kept))
	rns, rname := nsName(id)
	a.metrics.transitions.WithLabelValues(rns, rname, string(v1alpha1.PhaseRemoved)).Inc()
	a.metrics.forget(id)
	return a.commitStatus(ctx, id, statusFile, next, "removed", nil, specHead)
}

// forget drops what the agent remembers of a removed release.
func (a *Agent) forget(id, file string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, id)
	delete(a.pending, id)
	delete(a.files, file)
	delete(a.dirty, id)
	delete(a.reconciled, file)
	delete(a.lastApplied, id)
	delete(a.drifted, id)
}

func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
