package agent

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
)

// revertFiles commits, on the spec branch, the release's directory and its
// source directory as they were at the stable revision (onFailure: revert),
// so Git says what the cluster runs. It is the only commit the agent makes
// on the spec branch, and needs push rights there.
func (a *Agent) revertFiles(ctx context.Context, p *v1alpha1.Parsed, stable string) error {
	h := plumbing.NewHash(stable)
	if err := a.src.FetchCommit(ctx, a.opts.Branch, h); err != nil {
		return err
	}
	old, err := a.src.Tree(h)
	if err != nil {
		return err
	}
	dirs := []string{p.Dir()}
	if p.SourceDir() != p.Dir() {
		dirs = append(dirs, p.SourceDir())
	}
	id := p.Release.ID()
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	res, err := a.src.Write(ctx, a.opts.Branch, func(ctx context.Context, _ plumbing.Hash, head *gitsource.TreeFS) (*gitsource.CommitSpec, error) {
		var changes []gitsource.FileChange
		for _, dir := range dirs {
			want, err := files(old, dir)
			if err != nil {
				return nil, err
			}
			have, err := files(head, dir)
			if err != nil {
				return nil, err
			}
			for _, f := range sortedKeys(want) {
				if have[f] != want[f] {
					changes = append(changes, gitsource.FileChange{Path: f, Data: []byte(want[f])})
				}
			}
			for _, f := range sortedKeys(have) {
				if _, ok := want[f]; !ok {
					changes = append(changes, gitsource.FileChange{Path: f})
				}
			}
		}
		if len(changes) == 0 {
			return nil, nil
		}
		msg := gitsource.FormatMessage(fmt.Sprintf("sluice: revert %s to %s", id, shortRev(stable)),
			"The canary failed and the release has onFailure: revert: its files are restored as they were at the stable revision, which is what the cluster runs.",
			[]gitsource.Trailer{{Key: "Sluice-Release", Value: id}, {Key: "Sluice-Phase", Value: string(v1alpha1.PhaseAborted)}, {Key: "Sluice-Revision", Value: stable}})
		return &gitsource.CommitSpec{Message: msg, Files: changes}, nil
	})
	if err != nil {
		return err
	}
	a.log.Info("release files reverted on the spec branch", zap.String("release", id), zap.String("commit", res.Commit.String()))
	return nil
}

// files reads every file below dir (repository-relative) except status
// files, which are the agent's.
func files(t *gitsource.TreeFS, dir string) (map[string]string, error) {
	out := map[string]string{}
	if t == nil || !t.IsDir("/"+dir) {
		return out, nil
	}
	err := t.Walk("/"+dir, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() || path.Base(p) == v1alpha1.StatusFile {
			return nil
		}
		b, err := t.ReadFile(p)
		if err != nil {
			return err
		}
		out[p[1:]] = string(b)
		return nil
	})
	return out, err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
