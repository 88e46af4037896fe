package agent

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
	"github.com/sluice-dev/sluice/strategy"
)

// VersionAnnotation records on each track's workload the version digest it
// runs, so the agent can observe what the cluster serves.
const VersionAnnotation = strategy.VersionAnnotation

type outcome struct {
	file string
	// dirs are the directories the release's render reads.
	dirs    []string
	id      string
	phase   v1alpha1.Phase
	failed  bool
	wakeAt  time.Time
	commits int
}

func (o outcome) idOrFile() string {
	if o.id != "" {
		return o.id
	}
	return o.file
}

// safeRelease is release with a panic contained: it becomes that
// release's failure, logged with its stack, and the pass goes on.
func (a *Agent) safeRelease(ctx context.Context, file string, specHead plumbing.Hash, specTree, statusTree *gitsource.TreeFS) (out outcome) {
	defer func() {
		if r := recover(); r != nil {
			a.metrics.panics.Inc()
			a.log.Error("release panicked; its pass is abandoned, the others go on", zap.String("file", file),
				zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
			out = outcome{file: file, id: idFromDir(path.Dir(file)), failed: true}
		}
	}()
	return a.release(ctx, file, specHead, specTree, statusTree)
}

// release reconciles one release file: render, observe, decide, apply,
// prune, commit. Errors are contained here: one broken release reports its
// error in its status and does not stop the others.
func (a *Agent) release(ctx context.Context, file string, specHead plumbing.Hash, specTree, statusTree *gitsource.TreeFS) outcome {
	out := outcome{file: file}
	dir := path.Dir(file)
	statusFile := path.Join(dir, v1alpha1.StatusFile)
	st, err := readStatus(statusTree, statusFile)
	if err != nil {
		a.log.Error("status unreadable", zap.String("file", statusFile), zap.Error(err))
	}
	if st.Phase == v1alpha1.PhaseRemoved {
		// Its files came back before the status went: a new install.
		st = v1alpha1.ReleaseStatus{}
	}
	// The release file is parsed once for the pass and handed down.
	p, err := render.ReadRelease(specTree, "/", file)
	key, dirs := renderInputs(specTree, dir, p)
	out.dirs = dirs
	renderStart := time.Now()
	var head *render.Result
	if err == nil {
		head, err = a.renderer.LoadParsed(ctx, specTree, "/", p, key)
	}
	a.metrics.render.Observe(time.Since(renderStart).Seconds())
	if err != nil {
		out.failed = true
		a.metrics.errors.WithLabelValues("spec").Inc()
		var list v1alpha1.ErrorList
		if !errors.As(err, &list) {
			a.log.Error("render failed", zap.String("file", file), zap.Error(err))
			return out
		}
		out.id = idFromDir(dir)
		first := list[0]
		next := st
		next.Error = &v1alpha1.SpecError{File: first.File, Line: first.Line, Message: strings.TrimPrefix(first.Error(), fmt.Sprintf("%s:%d: ", first.File, first.Line))}
		next.Phase = v1alpha1.PhaseFailed
		next.Message = fmt.Sprintf("%d error(s) in the spec or render; nothing applied", len(list))
		out.phase = next.Phase
		if st.Error == nil || *st.Error != *next.Error {
			// Logged once per new error, not on every pass.
			a.log.Warn("release invalid; the last good version keeps serving", zap.String("file", file), zap.Error(err))
			next.ObservedRevision = specHead.String()
			if a.commitStatus(ctx, out.id, statusFile, next, "spec invalid: "+next.Error.Message, nil, specHead) {
				out.commits++
			}
		}
		return out
	}
	rel := p.Release
	out.id = rel.ID()
	log := a.log.With(zap.String("release", out.id))
	lastError := st.Error
	hadError := lastError != nil
	if hadError {
		st.Error = nil
		if st.Phase == v1alpha1.PhaseFailed {
			st.Phase = ""
		}
	}
	fillMeta(&st, rel)
	st = a.withPending(out.id, st)

	// The stable track is rendered at stable.revision, from Git objects.
	// When it cannot be, nothing is decided or applied: the live stable
	// workload stays exactly as it is until the revision renders again.
	stable, stableSpec := head, rel
	if st.Stable != nil && st.Stable.Revision != specHead.String() {
		stable, stableSpec, err = a.renderAt(ctx, plumbing.NewHash(st.Stable.Revision), file)
		if err != nil {
			out.failed, out.phase = true, st.Phase
			a.metrics.stableUnrenderable.WithLabelValues(nsName(out.id)).Set(1)
			a.metrics.errors.WithLabelValues("stable").Inc()
			next := st
			next.Phase = out.phase
			next.Error = &v1alpha1.SpecError{File: file, Message: fmt.Sprintf("the stable revision %s cannot be rendered, so nothing is applied and the live stable workload is left as it is: %v", st.Stable.Revision, err)}
			if lastError == nil || *lastError != *next.Error {
				log.Error("stable revision cannot be rendered; nothing applied", zap.String("revision", st.Stable.Revision), zap.Error(err))
				next.ObservedRevision = specHead.String()
				if a.commitStatus(ctx, out.id, statusFile, next, "stable revision unreadable", nil, specHead) {
					out.commits++
				}
			}
			return out
		}
	}
	a.metrics.stableUnrenderable.WithLabelValues(nsName(out.id)).Set(0)

	digest := head.Version(rel.Spec.Strategy.Routed())
	in := strategy.Input{Spec: rel, HeadRevision: specHead.String(), HeadDigest: digest,
		Replicas: head.Replicas(), Status: st, Now: a.now()}
	if rel.Spec.Strategy.Manual() && st.Stable != nil && stableSpec.Spec.Strategy.Canary != nil {
		in.StableSpecWeight = stableSpec.Spec.Strategy.Canary.Weight
	}
	mgr, sa, err := a.managerFor(rel.Metadata.Namespace, rel.Spec.ServiceAccountName)
	if err != nil {
		log.Error("impersonation failed", zap.Error(err))
		out.failed = true
		return out
	}
	in.Observed, err = a.observe(ctx, mgr, rel, st, head)
	if err != nil {
		log.Error("observe failed", zap.Error(err))
		a.metrics.errors.WithLabelValues("observe").Inc()
		out.failed = true
		return out
	}
	in.Replicas = strategy.Size(head, in.Observed)
	in.ProgressDeadline = head.ProgressDeadline()

	// Skip a release whose inputs did not change, unless a timer is due or
	// the drift resync is.
	if wake, ok := a.unchanged(out.id, fingerprint(key, st, in.Observed)); ok {
		// The timer the last real pass asked for still stands.
		out.phase, out.wakeAt = st.Phase, wake
		return out
	}

	cc := strategy.NewCheckContext(rel, &st)
	for _, name := range strategy.DueChecks(in) {
		m := a.runnerAs(mgr).Run(ctx, rel.Spec.CheckByName(name), cc)
		a.metrics.measured(out.id, name, string(m.Outcome), m.Value)
		log.Info("check measured", zap.String("check", name), zap.String("outcome", string(m.Outcome)), zap.String("value", m.Value))
		in.Results = append(in.Results, m)
	}
	plan := strategy.Next(in)

	objs, err := strategy.Objects(rel, head, stable, plan, digest)
	if err != nil {
		log.Error("building objects failed", zap.Error(err))
		out.failed = true
		return out
	}
	set := reconcile.Set{Release: out.id, Namespace: rel.Metadata.Namespace, Objects: objs}
	applied := &reconcile.Result{Inventory: st.Inventory}
	objsKey := objectsKey(sa, objs)
	if plan.Suspended {
		// Nothing is applied or pruned; drift is still reported.
		a.reportDrift(ctx, mgr, log, set, st.Inventory)
	} else if inv, ok := a.applyCurrent(out.id, objsKey); ok {
		applied = &reconcile.Result{Inventory: inv}
	} else {
		a.appliedFrom(out.id)
		if applied, err = mgr.Apply(ctx, set, reconcile.ApplyOptions{Fresh: len(st.Inventory) == 0}); err == nil {
			a.rememberApplied(out.id, objsKey, applied.Inventory)
		}
	}
	if err != nil {
		log.Error("apply failed; nothing written", zap.Error(err))
		out.failed = true
		out.phase = st.Phase
		a.metrics.errors.WithLabelValues(applyReason(err)).Inc()
		if errors.Is(err, reconcile.ErrRefused) || apierrors.IsForbidden(err) {
			// Terminal until the spec or the RBAC of the identity the
			// release is applied as changes: said in the status.
			next := st
			next.Error = &v1alpha1.SpecError{File: file, Message: err.Error()}
			next.Phase = v1alpha1.PhaseFailed
			if a.commitStatus(ctx, out.id, statusFile, next, "refused: "+err.Error(), nil, specHead) {
				out.commits++
			}
		}
		return out
	}
	a.countActions(applied)
	if plan.Drain {
		// The data plane may still send requests to the track the route
		// has just left: nothing goes before the drain ends.
		applied.Inventory = reconcile.Union(st.Inventory, applied.Inventory)
	}
	if !plan.Suspended { // suspended: what was applied stays, nothing is pruned
		if pruned, err := mgr.Prune(ctx, out.id, reconcile.Inventory(st.Inventory), applied.Inventory, reconcile.PruneOptions{Expected: trackCopy(applied.Inventory)}); err != nil {
			log.Error("prune failed", zap.Error(err))
		} else if len(pruned.Entries) > 0 {
			log.Info("pruned", zap.Int("objects", len(pruned.Entries)), zap.Strings("previous", st.Inventory), zap.Strings("current", applied.Inventory), zap.String("entries", pruned.String()))
		}
	}
	plan.Status.Inventory = applied.Inventory
	plan.Status.ServiceAccount = sa
	out.phase = plan.Status.Phase
	out.wakeAt = plan.WakeAt
	a.metrics.observe(rel, plan.Status)
	notice := a.notice
	noticed := notice.message != "" && !plan.Suspended
	if noticed {
		// Said in the status and an Event, whether or not a transition
		// goes with it.
		if plan.Commit {
			plan.Status.Message = strings.TrimPrefix(plan.Status.Message+"; "+notice.message, "; ")
		} else {
			plan.Status.Message = notice.message
		}
	}
	if plan.Commit || hadError || noticed {
		subject := plan.Subject
		switch {
		case subject == "" && noticed:
			subject = notice.subject
		case subject == "":
			subject = "spec valid again"
		}
		plan.Status.ObservedRevision = specHead.String()
		if a.commitStatus(ctx, out.id, statusFile, plan.Status, subject, plan.Checks, specHead, rollbackTrailers(plan)...) {
			out.commits++
			// After a transition the next state is decided at once.
			out.wakeAt = a.now()
			plan.WakeAt = out.wakeAt
			ns, name := nsName(out.id)
			a.metrics.transitions.WithLabelValues(ns, name, string(plan.Status.Phase)).Inc()
			reason := "Sluice" + string(plan.Status.Phase)
			if noticed && !plan.Commit {
				reason = notice.reason
			}
			a.notify.send(transitionEvent{
				n: Notification{Release: out.id, Phase: plan.Status.Phase, PreviousPhase: in.Status.Phase, Step: plan.Status.Step,
					Weight: plan.Status.Weight, Revision: specHead.String(), Message: plan.Status.Message, Time: a.now()},
				namespace: rel.Metadata.Namespace, workload: rel.Spec.Workload.Name, reason: reason, warning: noticed,
			})
			log.Info("transition", zap.String("phase", string(plan.Status.Phase)), zap.Int32("step", plan.Status.Step),
				zap.Int32("weight", plan.Status.Weight), zap.String("subject", subject))
		} else {
			a.metrics.errors.WithLabelValues("status").Inc()
			out.failed = true
			return out // not remembered: the next pass decides again
		}
		if in.Status.Stable != nil && in.Status.Canary != nil && plan.Status.Canary == nil && rel.Spec.Analysis != nil && len(rel.Spec.Analysis.PostRollout) > 0 {
			// The pass's context ends with the pass; the calls are bounded
			// by their checks' timeouts.
			go a.postRollout(context.WithoutCancel(ctx), rel, cc, plan.Status.Phase)
		}
		if plan.RevertFiles && plan.Status.Stable != nil {
			if err := a.revertFiles(ctx, p, plan.Status.Stable.Revision); err != nil {
				log.Error("reverting the release's files failed", zap.Error(err))
			}
		}
	}
	a.setPending(out.id, plan)
	a.remember(out.id, fingerprint(key, plan.Status, in.Observed), plan.WakeAt)
	return out
}

// renderAt renders the release file as it was at commit h.
func (a *Agent) renderAt(ctx context.Context, h plumbing.Hash, file string) (*render.Result, *v1alpha1.Release, error) {
	if err := a.src.FetchCommit(ctx, a.opts.Branch, h); err != nil {
		return nil, nil, err
	}
	tree, err := a.src.Tree(h)
	if err != nil {
		return nil, nil, err
	}
	p, err := render.ReadRelease(tree, "/", file)
	if err != nil {
		return nil, nil, err
	}
	key, _ := renderInputs(tree, path.Dir(file), p)
	res, err := a.renderer.LoadParsed(ctx, tree, "/", p, key)
	if err != nil {
		return nil, nil, err
	}
	return res, p.Release, nil
}

// renderInputs identifies a release's render by content: the tree hashes
// of its directory and of every directory its render reads (bases,
// charts, values files and check templates elsewhere in the repository),
// and those directories. p is the parsed release file, nil when it does
// not parse (then its directory alone identifies it).
func renderInputs(tree *gitsource.TreeFS, dir string, p *v1alpha1.Parsed) (string, []string) {
	dirs := []string{dir}
	if p == nil {
		return dirsKey(tree, dirs), dirs
	}
	for _, d := range render.SourceDirs(tree, "/"+p.SourceDir()) {
		dirs = append(dirs, strings.TrimPrefix(d, "/"))
	}
	// A chart and its values files are inputs, wherever they are.
	for _, d := range render.HelmDirs(tree, "/", p) {
		dirs = append(dirs, strings.TrimPrefix(d, "/"))
	}
	// Its check templates are inputs too.
	for _, c := range p.Release.Spec.Checks {
		if c.Template.Name != "" {
			if d := render.TemplateDir(tree, "/", p.File); d != "" {
				dirs = append(dirs, d)
			}
			break
		}
	}
	return dirsKey(tree, dirs), dirs
}

// dirsKey joins the tree hashes of dirs.
func dirsKey(tree *gitsource.TreeFS, dirs []string) string {
	key := make([]string, len(dirs))
	for i, d := range dirs {
		key[i] = tree.TreeHash(d).String()
	}
	return strings.Join(key, "+")
}

func idFromDir(dir string) string {
	parts := strings.Split(dir, "/")
	if len(parts) >= 2 {
		return parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	return dir
}

func fillMeta(st *v1alpha1.ReleaseStatus, r *v1alpha1.Release) {
	st.APIVersion = v1alpha1.APIVersion
	st.Kind = v1alpha1.KindReleaseStatus
	st.Metadata = r.Metadata
}

// readStatus reads status.yaml from the status tree (zero if missing).
func readStatus(tree *gitsource.TreeFS, file string) (v1alpha1.ReleaseStatus, error) {
	var st v1alpha1.ReleaseStatus
	if tree == nil || !tree.Exists("/"+file) {
		return st, nil
	}
	b, err := tree.ReadFile("/" + file)
	if err != nil {
		return st, err
	}
	err = yaml.Unmarshal(b, &st)
	return st, err
}

// fingerprint is what a release's pass depends on: its render inputs by
// content (not the spec head: a push to another release changes nothing
// here), its status and what the cluster runs.
func fingerprint(renderKey string, st v1alpha1.ReleaseStatus, o strategy.Observed) string {
	return fmt.Sprintf("%s|%s|%+v", renderKey, statusKey(st), o)
}

func statusKey(st v1alpha1.ReleaseStatus) string {
	b, _ := yaml.Marshal(st)
	return fmt.Sprintf("%x", hash(string(b)))
}

// unchanged reports whether the release's inputs are those of its last
// pass, with no timer or resync due, and returns that pass's timer.
func (a *Agent) unchanged(id, fp string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.seen[id]
	now := a.now()
	return s.wakeAt, ok && s.key == fp && (s.wakeAt.IsZero() || now.Before(s.wakeAt)) && now.Sub(s.at) < resync
}

func (a *Agent) remember(id, fp string, wake time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[id] = seenRelease{key: fp, wakeAt: wake, at: a.now()}
}

// withPending returns the committed status with what the in-memory one
// carries since: the step's check measurements when it is the same step,
// the background analysis when it is the same canary.
func (a *Agent) withPending(id string, committed v1alpha1.ReleaseStatus) v1alpha1.ReleaseStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.pending[id]
	if !ok {
		return committed
	}
	if sameCanary(p, committed) && p.AnalysisStartedAt != nil {
		// The background analysis spans the canary's steps.
		committed.AnalysisStartedAt, committed.Analysis = p.AnalysisStartedAt, p.Analysis
	}
	if !sameStep(p, committed) {
		return committed
	}
	committed.Checks = p.Checks
	return committed
}

func sameCanary(a, b v1alpha1.ReleaseStatus) bool {
	return a.Canary != nil && b.Canary != nil && *a.Canary == *b.Canary
}

func (a *Agent) setPending(id string, plan strategy.Plan) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending[id] = plan.Status
}

func sameStep(a, b v1alpha1.ReleaseStatus) bool {
	rev := func(r *v1alpha1.Revision) string {
		if r == nil {
			return ""
		}
		return r.Revision + r.Digest
	}
	started := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return rev(a.Canary) == rev(b.Canary) && rev(a.Stable) == rev(b.Stable) && a.Step == b.Step &&
		a.Weight == b.Weight && started(a.StepStartedAt) == started(b.StepStartedAt)
}

// trackCopy says whether an inventory ID is a track's copy (the canary's
// or the baseline's) of an object current still holds: its going, when the
// track ends, is planned, not a render that lost objects.
func trackCopy(current reconcile.Inventory) func(id string) bool {
	held := map[string]bool{}
	for _, id := range current {
		held[id] = true
	}
	return func(id string) bool {
		for _, name := range []func(string) string{v1alpha1.CanaryName, v1alpha1.BaselineName} {
			suffix := name("")
			if base, ok := strings.CutSuffix(id, suffix); ok && held[base] {
				return true
			}
		}
		return false
	}
}

// trackReady says whether a track beside the stable one (the canary, the
// baseline) is ready for traffic: its workload w Available and, while a
// canary is in flight, every pod listed ready in its Service's
// EndpointSlices (name makes its names).
func (a *Agent) trackReady(ctx context.Context, mgr *reconcile.Manager, r *v1alpha1.Release, st v1alpha1.ReleaseStatus, w reconcile.Observation, name func(string) string) (bool, error) {
	ready := w.Found && w.Status == status.CurrentStatus
	if !ready || st.Canary == nil || r.Spec.Traffic == nil {
		return ready, nil
	}
	// Available is not enough: the data plane routes to what the track's
	// Service's EndpointSlices list, so every pod must be listed ready
	// there, and no pod on its way out, before traffic moves onto it.
	n, other, err := mgr.Endpoints(ctx, r.Metadata.Namespace, name(r.Spec.Traffic.Service))
	if err != nil {
		return false, err
	}
	return n >= int(w.Replicas) && other == 0, nil
}

// observe reads what the cluster runs for the release.
func (a *Agent) observe(ctx context.Context, mgr *reconcile.Manager, r *v1alpha1.Release, st v1alpha1.ReleaseStatus, head *render.Result) (strategy.Observed, error) {
	ns, name := r.Metadata.Namespace, r.Spec.Workload.Name
	var o strategy.Observed
	stable, err := mgr.Observe(ctx, "apps/v1", r.Spec.Workload.Kind, ns, name)
	if err != nil {
		return o, err
	}
	if stable.Found {
		o.StableReplicas = stable.Replicas
		o.StableDigest = stable.Annotations[VersionAnnotation]
		o.StableReady = stable.Status == status.CurrentStatus
	}
	if r.Spec.Strategy.Routed() {
		canary, err := mgr.Observe(ctx, "apps/v1", r.Spec.Workload.Kind, ns, v1alpha1.CanaryName(name))
		if err != nil {
			return o, err
		}
		if o.CanaryReady, err = a.trackReady(ctx, mgr, r, st, canary, v1alpha1.CanaryName); err != nil {
			return o, err
		}
		if strategy.BaselineOn(&r.Spec, &st) {
			baseline, err := mgr.Observe(ctx, "apps/v1", r.Spec.Workload.Kind, ns, v1alpha1.BaselineName(name))
			if err != nil {
				return o, err
			}
			if o.BaselineReady, err = a.trackReady(ctx, mgr, r, st, baseline, v1alpha1.BaselineName); err != nil {
				return o, err
			}
		}
		if canary.Found && canary.Status == status.FailedStatus {
			o.Failed, o.Message = true, canary.Message
		}
		if (st.Canary != nil || st.DrainUntil != nil) && head.Route != nil {
			if o.RouteRejected, o.RoutePending, err = mgr.RouteVerdict(ctx, head.Route.GetAPIVersion(), head.Route.GetKind(), ns, head.Route.GetName()); err != nil {
				return o, err
			}
		}
		if st.Canary != nil && head.Route != nil && r.Spec.Strategy.Mirrors() {
			// Asked only while a canary that may mirror is in flight; a
			// share needs the percentage too, so a release that cannot
			// mirror as written aborts at its first mirror step.
			features := []string{reconcile.FeatureRequestMirror}
			if r.Spec.Strategy.MirrorsShare() {
				features = append(features, reconcile.FeatureRequestPercentageMirror)
			}
			if o.MirrorUnsupported, err = mgr.Unsupported(ctx, head.Route, features...); err != nil {
				return o, err
			}
		}
	} else if st.Canary != nil && o.StableDigest == st.Canary.Digest && stable.Status == status.FailedStatus {
		o.Failed, o.Message = true, stable.Message
	}
	return o, nil
}

// reportDrift logs and counts what applying a suspended release would
// change, without changing it.
func (a *Agent) reportDrift(ctx context.Context, mgr *reconcile.Manager, log *zap.Logger, set reconcile.Set, inventory []string) {
	entries, err := mgr.Diff(ctx, set, reconcile.Inventory(inventory))
	if err != nil {
		log.Warn("suspended; drift unknown", zap.Error(err))
		return
	}
	var drifted []string
	for _, e := range entries {
		if e.Action != ssa.UnchangedAction {
			drifted = append(drifted, string(e.Action)+" "+e.ID)
		}
	}
	a.metrics.drift.WithLabelValues(nsName(set.Release)).Set(float64(len(drifted)))
	if len(drifted) > 0 {
		log.Info("suspended; not applying the drift", zap.Strings("objects", drifted))
	}
}

// applyReason names a failed apply for sluice_reconcile_errors_total.
func applyReason(err error) string {
	switch {
	case errors.Is(err, reconcile.ErrRefused):
		return "refused"
	case apierrors.IsForbidden(err):
		return "forbidden"
	}
	return "apply"
}

func (a *Agent) countActions(r *reconcile.Result) {
	if r.ChangeSet == nil {
		return // nothing applied (suspended)
	}
	for _, e := range r.ChangeSet.Entries {
		a.metrics.applies.WithLabelValues(string(e.Action)).Inc()
	}
}
