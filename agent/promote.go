package agent

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/imageupdate"
	"github.com/sluice-dev/sluice/promotion"
	"github.com/sluice-dev/sluice/render"
)

// promoter is spec.promotion: between passes, when due, it reads the
// upstream releases' status from their clusters' status branches and,
// when a promotion's conditions hold, commits the upstream version's
// images to the downstream release's kustomization. The commit starts the
// downstream canary; the promoter never changes the cluster.
type promoter struct {
	schedule
	// done is the upstream version last promoted per release: one a
	// downstream revert took back is not promoted again by this process.
	done map[string]string
	// none is the spec commit at which no release had spec.promotion:
	// until the spec moves, a check costs nothing.
	none plumbing.Hash
}

// promote checks every release with spec.promotion at the spec head the
// last pass applied, and says whether it committed.
func (a *Agent) promote(ctx context.Context) bool {
	p := a.promoter
	p.again()
	if a.appliedSpec.IsZero() || a.appliedSpec == p.none {
		return false
	}
	tree, err := a.tree(a.appliedSpec)
	if err != nil {
		return false
	}
	upstreams := map[string]*gitsource.TreeFS{} // cluster -> its status tree
	committed, any := false, false
	for _, rp := range a.servedReleases(tree) {
		if rp.Release.Spec.Promotion == nil {
			continue
		}
		any = true
		pr := rp.Release.Spec.Promotion
		cluster, upID := pr.Upstream()
		log := a.log.With(zap.String("release", rp.Release.ID()), zap.String("from", pr.From))
		upTree, ok := upstreams[cluster]
		if !ok {
			branch := v1alpha1.ClusterStatusBranch(cluster)
			h, err := a.src.Fetch(ctx, branch, plumbing.ZeroHash)
			if err == nil {
				upTree, err = a.tree(h)
			}
			if err != nil {
				log.Warn("promotion: the upstream cluster's status branch is unreadable", zap.String("branch", branch), zap.Error(err))
			}
			upstreams[cluster] = upTree
		}
		var up *v1alpha1.ReleaseStatus
		if upTree != nil {
			if st, err := readStatus(upTree, path.Join(v1alpha1.ClusterReleasesPath(cluster), upID, v1alpha1.StatusFile)); err == nil && st.Phase != "" {
				up = &st
			}
		}
		d := promotion.Decide(pr, rp.Release.Spec.Gates, up, time.Now())
		if !d.Ready || p.done[rp.Release.ID()] == d.Version {
			continue
		}
		var upCommit plumbing.Hash
		if upTree != nil {
			upCommit = upTree.Commit()
		}
		switch ok, err := a.commitPromotion(ctx, rp, cluster, upID, d.Version, upCommit); {
		case err != nil:
			log.Error("promotion: the commit failed; the next check tries again", zap.String("version", d.Version), zap.Error(err))
		case ok:
			p.done[rp.Release.ID()] = d.Version
			log.Info("promotion committed", zap.String("version", d.Version))
			committed = committed || a.opts.PromoteToBranch == ""
		default:
			p.done[rp.Release.ID()] = d.Version // already there
		}
	}
	if !any {
		p.none = a.appliedSpec
	}
	return committed
}

// promoteBranch is the pull-request branch of a promotion:
// <prefix>/<cluster>/<ns>/<name>/<version>.
func promoteBranch(prefix, cluster string, r *v1alpha1.Release, version string) string {
	return path.Join(prefix, cluster, r.Metadata.Namespace, r.Metadata.Name, version[:min(len(version), 12)])
}

// commitPromotion writes the upstream version's images into the release's
// kustomization: one commit, trailers naming the upstream release, its
// version and status commit. It says whether there was anything to write.
func (a *Agent) commitPromotion(ctx context.Context, rp *v1alpha1.Parsed, cluster, upID, version string, upStatus plumbing.Hash) (bool, error) {
	h := plumbing.NewHash(version)
	if err := a.src.FetchCommit(ctx, a.opts.Branch, h); err != nil {
		return false, fmt.Errorf("upstream version %s: %w", version, err)
	}
	vtree, err := a.tree(h)
	if err != nil {
		return false, err
	}
	upKust := render.KustomizationPath(vtree, "/"+path.Join(v1alpha1.ClusterReleasesPath(cluster), upID))
	upData, err := vtree.ReadFile(upKust)
	if err != nil {
		return false, fmt.Errorf("the upstream's kustomization at %s: %w", version[:7], err)
	}
	id := rp.Release.ID()
	pr := rp.Release.Spec.Promotion
	branch, from := a.opts.Branch, plumbing.ZeroHash
	if a.opts.PromoteToBranch != "" {
		branch, from = promoteBranch(a.opts.PromoteToBranch, a.opts.Cluster, rp.Release, version), a.appliedSpec
	}
	wrote := false
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	_, err = a.src.WriteFrom(ctx, branch, from, func(ctx context.Context, _ plumbing.Hash, head *gitsource.TreeFS) (*gitsource.CommitSpec, error) {
		kf := kustomizationPath(head, rp)
		data, err := head.ReadFile("/" + kf)
		if err != nil && head.Exists("/"+kf) {
			return nil, err
		}
		changes := promotion.Changes(pr, upData, data)
		if len(changes) == 0 {
			return nil, nil // the release names the version already
		}
		var moved []string
		for _, c := range changes {
			if data, _, err = imageupdate.SetTag(data, c.Image, c.To); err != nil {
				return nil, fmt.Errorf("%s: %w", kf, err)
			}
			moved = append(moved, fmt.Sprintf("%s=%s", c.Image, c.To))
		}
		wrote = true
		msg := gitsource.FormatMessage(fmt.Sprintf("sluice: promote %s to %s from %s", version[:7], id, pr.From),
			fmt.Sprintf("%s promoted %s and the promotion's conditions hold; this commit gives %s its images (%s) and starts its rollout.", pr.From, version[:7], id, strings.Join(moved, ", ")),
			[]gitsource.Trailer{{Key: "Sluice-Release", Value: id}, {Key: "Sluice-Promotion-From", Value: pr.From},
				{Key: "Sluice-Promotion-Version", Value: version}, {Key: "Sluice-Promotion-Status", Value: upStatus.String()},
				{Key: "Sluice-Promotion-Images", Value: strings.Join(moved, ", ")}})
		return &gitsource.CommitSpec{Message: msg, Files: []gitsource.FileChange{{Path: kf, Data: data}}}, nil
	})
	return wrote, err
}
