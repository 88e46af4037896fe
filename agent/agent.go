package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	kwait "k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
	"github.com/sluice-dev/sluice/strategy"
)

// resync is how often an unchanged release is applied anyway, to set back
// drift made in the cluster.
const resync = 5 * time.Minute

// Agent is one sluice agent: a Git source, a cluster and the releases.
type Agent struct {
	opts     Options
	log      *zap.Logger
	src      *gitsource.Source
	cfg      *rest.Config
	mgr      *reconcile.Manager
	renderer render.Renderer
	runner   strategy.Runner
	metrics  *metrics
	now      func() time.Time

	// writeMu serialises status commits: writers of one process would only
	// reject each other's pushes.
	writeMu sync.Mutex
	// queueMu guards queue, the status writes waiting for the next push,
	// and statusHead, the status branch's head after the agent's last push.
	queueMu    sync.Mutex
	queue      []*statusWrite
	statusHead plumbing.Hash
	ready      atomic.Bool
	// lastPass is when a pass last returned (unix ns); running is set while
	// Run loops. /healthz reads both.
	lastPass atomic.Int64
	running  atomic.Bool
	// hookSecret, when set, is what POST /hook must be signed with.
	hookSecret []byte
	// leader, under leader election, says whether this replica leads and
	// where the leader listens (POST /hook is forwarded there).
	leader atomic.Pointer[LeaderFunc]
	mu     sync.Mutex
	seen   map[string]seenRelease
	notify *notifier
	// pending holds each release's status with the check measurements of
	// the current step, which are not committed on every tick: only
	// transitions are. It is used while Git's status is the same step.
	pending map[string]v1alpha1.ReleaseStatus
	// files remembers each release file's last pass; dirty marks the
	// releases whose Deployment changed since (from the watch); wake is
	// poked when one does. Guarded by mu.
	files map[string]fileSeen
	dirty map[string]bool
	wake  chan struct{}
	// poke is the push webhook's: poll Git now.
	poke chan struct{}
	// hookGap is the least time between two polls hooks cause (MinHookGap).
	hookGap time.Duration
	// heads are the branches' heads at the last poll (pass goroutine only;
	// statusHead overrides Status after the agent's own pushes).
	heads gitsource.Heads
	// appliedSpec is the spec commit the last pass applied (verified,
	// when commits are verified): what the image scanner reads.
	appliedSpec plumbing.Hash
	// appliedStatus is the status commit the last pass read (zero: none,
	// or the status lives on the spec branch).
	appliedStatus plumbing.Hash
	// uiSpec is appliedSpec for the dashboard's requests (other
	// goroutines).
	uiSpec atomic.Pointer[plumbing.Hash]
	// images is --image-updates' scanner, nil when off.
	images *imageScanner
	// promoter is spec.promotion's.
	promoter *promoter
	files0   *releaseFiles
	// lastSpec is the spec head of the last pass (pass goroutine only).
	lastSpec plumbing.Hash
	// notice, set for one pass, is what every release's status and an
	// Event say about the spec branch: rewritten since the last pass, or a
	// head refused by --verify-commits (read by that pass's releases).
	notice specNotice
	verify *verification
	// removalKey is the trees of the last pass that found no release to
	// remove (pass goroutine only).
	removalKey string
	trees      map[plumbing.Hash]*gitsource.TreeFS
	// watching is set once the Deployments are watched: only then can a
	// release be skipped between timers (without the watch a pass has to
	// look at the cluster for every release).
	watching atomic.Bool
	// reconciled counts, by release file, the passes that looked at it
	// (guarded by mu).
	reconciled map[string]int
	// owner, with --shards, says which releases are this replica's.
	owner Owner
	// backlog counts the releases the running pass has still to
	// reconcile: the status writer gathers a bigger batch while it is
	// high.
	backlog atomic.Int64
	// lastApplied is, by release, what its last apply wrote; drifted marks
	// the releases whose Deployment changed beyond its status since
	// (guarded by mu): see applyCurrent.
	lastApplied map[string]appliedSet
	drifted     map[string]bool
}

// fileSeen is what the agent knows of a release file from its last pass:
// while the spec head, the release's status and its Deployment stay the
// same and no timer is due, the file is not looked at again.
type fileSeen struct {
	key    string
	dirs   []string
	id     string
	phase  v1alpha1.Phase
	wakeAt time.Time
	at     time.Time
	failed bool
}

// seenRelease remembers a release's inputs at its last pass, so an
// unchanged release is skipped until a timer or the resync.
type seenRelease struct {
	key    string
	wakeAt time.Time
	at     time.Time
}

// New connects an agent to its repository and cluster.
func New(opts Options, log *zap.Logger) (*Agent, error) {
	if opts.Repo == "" {
		return nil, errors.New("--repo is required")
	}
	if opts.Interval <= 0 {
		return nil, fmt.Errorf("--interval must be positive, got %s", opts.Interval)
	}
	if opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		opts.CacheDir = filepath.Join(base, "sluice", fmt.Sprintf("repo-%x", hash(opts.Repo+"\x00"+opts.Branch)))
	}
	name, email := opts.author()
	src, err := gitsource.Open(gitsource.Options{
		URL: opts.Repo, Branch: opts.Branch, StatusBranch: opts.StatusBranch, Dir: opts.CacheDir,
		Username: opts.GitUsername, PasswordFile: opts.GitPasswordFile,
		SSHKeyFile: opts.SSHKeyFile, KnownHostsFile: opts.KnownHostsFile,
		AuthorName: name, AuthorEmail: email, SigningKeyFile: opts.SigningKeyFile,
	})
	if err != nil {
		return nil, err
	}
	cfg, err := reconcile.LoadConfig(opts.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if opts.KubeQPS > 0 {
		cfg.QPS = opts.KubeQPS
	}
	if opts.KubeBurst > 0 {
		cfg.Burst = opts.KubeBurst
	}
	mgr, err := reconcile.New(cfg, reconcile.Options{Namespaces: opts.Namespaces, Tenancy: opts.Tenancy})
	if err != nil {
		return nil, err
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	notifyURLs, err := opts.notifyURLs()
	if err != nil {
		return nil, err
	}
	var hookSecret []byte
	if opts.HookSecretFile != "" {
		b, err := os.ReadFile(opts.HookSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--hook-secret-file: %w", err)
		}
		if hookSecret = bytes.TrimRight(b, "\r\n"); len(hookSecret) == 0 {
			return nil, fmt.Errorf("--hook-secret-file %s is empty", opts.HookSecretFile)
		}
	}
	ag := &Agent{opts: opts, log: log, src: src, cfg: cfg, mgr: mgr, metrics: newMetrics(),
		notify: newNotifier(notifyURLs, cs, log), hookSecret: hookSecret,
		now: time.Now, seen: map[string]seenRelease{}, pending: map[string]v1alpha1.ReleaseStatus{},
		files: map[string]fileSeen{}, trees: map[plumbing.Hash]*gitsource.TreeFS{}, reconciled: map[string]int{}, dirty: map[string]bool{}, lastApplied: map[string]appliedSet{}, drifted: map[string]bool{}, wake: make(chan struct{}, 1), poke: make(chan struct{}, 1), hookGap: MinHookGap}
	if ag.verify, err = newVerification(opts, src, log); err != nil {
		return nil, err
	}
	ag.renderer.Tenancy = opts.Tenancy
	if opts.ImageUpdates {
		if ag.images, err = newImageScanner(opts); err != nil {
			return nil, err
		}
	}
	if opts.PromotionInterval <= 0 {
		opts.PromotionInterval = 30 * time.Second
	}
	ag.promoter = &promoter{schedule: schedule{interval: opts.PromotionInterval}, done: map[string]string{}}
	if opts.PromoteToBranch != "" {
		if err := gitsource.ValidateBranch(opts.PromoteToBranch + "/c/ns/name/v"); err != nil {
			return nil, fmt.Errorf("--promote-to-branch: %w", err)
		}
	}
	ag.renderer.Capabilities = (&clusterCapabilities{agent: ag}).get
	if len(opts.SOPSAgeKeyFiles) > 0 {
		if ag.renderer.Decryptor, err = render.LoadAgeKeys(opts.SOPSAgeKeyFiles...); err != nil {
			return nil, fmt.Errorf("--sops-age-key-file: %w", err)
		}
	}
	ag.runner.Secrets = mgr // checks' credentials, from their release's namespace
	ag.runner.PrometheusAddress = opts.PrometheusAddress
	ag.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_render_cache_hits_total", Help: "Renders answered from the cache."},
		func() float64 { return float64(ag.renderer.Hits()) }))
	return ag, nil
}

func hash(s string) uint32 {
	var h uint32 = 2166136261
	for i := range len(s) {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// PassResult sums up one pass over the releases.
type PassResult struct {
	// Releases maps a release to its phase after the pass.
	Releases map[string]v1alpha1.Phase
	// Failed lists the releases whose spec, render or apply failed.
	Failed []string
	// WakeAt is the earliest timer a release asked for (zero: none).
	WakeAt time.Time
	// Commits counts the status commits pushed.
	Commits int
}

// Pass polls Git and reconciles every release once.
func (a *Agent) Pass(ctx context.Context) (*PassResult, error) {
	return a.pass(ctx, true)
}

// pass reconciles the releases whose inputs changed: the spec head, their
// status, their Deployment (marked dirty by the watch), or a timer. With
// poll false (woken by the cluster, not the interval), Git is not asked:
// the heads of the last poll stand, with the agent's own status pushes.
func (a *Agent) pass(ctx context.Context, poll bool) (*PassResult, error) {
	start := time.Now()
	defer func() { a.metrics.passDuration.Observe(time.Since(start).Seconds()) }()
	gitStart := time.Now()
	heads := a.heads
	if poll || heads.Spec.IsZero() {
		var err error
		heads, err = a.src.Heads(ctx)
		a.metrics.gitPolls.Inc()
		if err != nil {
			return nil, err
		}
		a.metrics.lastPoll.SetToCurrentTime()
		a.heads = heads
		a.queueMu.Lock()
		a.statusHead = plumbing.ZeroHash // the poll saw the agent's pushes
		a.queueMu.Unlock()
	} else {
		a.queueMu.Lock()
		if !a.statusHead.IsZero() {
			heads.Status = a.statusHead
		}
		a.queueMu.Unlock()
	}
	if heads.Spec.IsZero() {
		return nil, fmt.Errorf("branch %s not found in %s", a.opts.Branch, a.src.URL())
	}
	specHead, err := a.src.Fetch(ctx, a.opts.Branch, heads.Spec)
	if err != nil {
		return nil, err
	}
	a.notice = specNotice{}
	if a.verify != nil {
		if specHead, err = a.verifyHead(ctx, specHead); err != nil {
			return nil, err
		}
	}
	if msg := a.noticeRewrite(ctx, specHead); msg != "" && a.notice.message == "" {
		a.notice = specNotice{message: msg, subject: "spec branch rewritten", reason: "SluiceSpecRewritten"}
	}
	specTree, err := a.tree(specHead)
	if err != nil {
		return nil, err
	}
	a.appliedSpec = specHead
	a.uiSpec.Store(&specHead)
	statusTree := specTree
	if !a.src.SameBranch() {
		statusTree = nil
		if !heads.Status.IsZero() {
			h, err := a.src.Fetch(ctx, a.opts.StatusBranch, heads.Status)
			if err != nil {
				return nil, err
			}
			if statusTree, err = a.tree(h); err != nil {
				return nil, err
			}
			a.appliedStatus = h
		}
	}
	a.metrics.gitFetch.Observe(time.Since(gitStart).Seconds())
	files, keys, err := a.fileKeys(specHead, specTree, statusTree)
	if err != nil {
		return nil, err
	}
	res := &PassResult{Releases: map[string]v1alpha1.Phase{}}
	var mu sync.Mutex
	reconciled := 0
	sem := make(chan struct{}, a.opts.Concurrency)
	var wg sync.WaitGroup
	// Which releases this pass looks at, decided first: how many there
	// are tells the status writer whether to gather a bigger batch.
	type job struct {
		file, key string
		done      func()
	}
	var jobs []job
	for _, f := range files {
		key := keys[f]
		done, mine := a.acquire(f)
		if !mine {
			continue // another replica's shard
		}
		if seen, skip := a.skipFile(f, key); skip {
			done()
			res.Releases[seen.id] = seen.phase
			if !seen.wakeAt.IsZero() && (res.WakeAt.IsZero() || seen.wakeAt.Before(res.WakeAt)) {
				res.WakeAt = seen.wakeAt
			}
			continue
		}
		jobs = append(jobs, job{file: f, key: key, done: done})
	}
	for i, j := range jobs {
		f, key, done := j.file, j.key, j.done
		a.backlog.Store(int64(len(jobs) - i))
		wg.Add(1)
		reconciled++
		sem <- struct{}{}
		// The slot bounds the releases talking to the API server at once;
		// a release waiting for its status push gives it back, so the
		// next ones apply meanwhile and their commits join that push's
		// successor (a group commit of many instead of a few).
		var once sync.Once
		free := func() { once.Do(func() { <-sem }) }
		go func() {
			defer wg.Done()
			defer free()
			defer done()
			out := a.safeRelease(withSlot(ctx, free), f, specHead, specTree, statusTree)
			if len(out.dirs) > 0 {
				// Keyed on what the render read, so the next pass skips
				// the file unless one of those directories or its status
				// changes.
				key = dirsKey(specTree, out.dirs)
				if statusTree != nil {
					key += "|" + statusTree.TreeHash(path.Dir(f)).String()
				}
			}
			a.rememberFile(f, key, out)
			mu.Lock()
			defer mu.Unlock()
			if out.id != "" {
				res.Releases[out.id] = out.phase
			}
			if out.failed {
				res.Failed = append(res.Failed, out.idOrFile())
			}
			if !out.wakeAt.IsZero() && (res.WakeAt.IsZero() || out.wakeAt.Before(res.WakeAt)) {
				res.WakeAt = out.wakeAt
			}
			res.Commits += out.commits
		}()
	}
	a.backlog.Store(0)
	wg.Wait()
	res.Commits += a.removeReleases(ctx, files, statusTree, specHead)
	sort.Strings(res.Failed)
	if ce := a.log.Check(zap.DebugLevel, "pass"); ce != nil {
		ce.Write(zap.Bool("poll", poll), zap.Stringer("spec", specHead), zap.Int("releases", len(files)),
			zap.Int("reconciled", reconciled), zap.Duration("took", time.Since(start)))
	}
	a.ready.Store(true)
	return res, nil
}

// noticeRewrite reports a spec head that does not descend from the last
// one the agent applied (a force-push, or an unrelated history pushed over
// the branch): logged and counted, and every release is looked at in this
// pass so that each reports it (an Event and its status message), then
// applied as Git says, as Flux and Argo CD do. It returns the report, or ""
// when the branch only moved forward.
func (a *Agent) noticeRewrite(ctx context.Context, specHead plumbing.Hash) string {
	prev := a.lastSpec
	a.lastSpec = specHead
	if prev.IsZero() || prev == specHead {
		return ""
	}
	rewritten, err := a.src.Rewritten(ctx, a.opts.Branch, prev, specHead)
	if err != nil {
		a.log.Warn("could not tell whether the spec branch was rewritten", zap.Error(err))
		return ""
	}
	if !rewritten {
		return ""
	}
	a.metrics.specRewrites.Inc()
	a.log.Warn("spec branch rewritten: the new head does not descend from the last one applied (a force-push or an unrelated history); applying it as Git says",
		zap.Stringer("previous", prev), zap.Stringer("head", specHead))
	a.mu.Lock()
	clear(a.files)
	clear(a.seen)
	a.mu.Unlock()
	return fmt.Sprintf("spec branch %s rewritten: %s does not descend from %s, the last head applied (a force-push or an unrelated history); applied as Git says",
		a.opts.Branch, short(specHead.String()), short(prev.String()))
}

// fileKeys lists the release files at specHead with the key of each one's
// inputs in Git: the tree hashes of the directories its last render read
// (the spec head for a file not rendered yet) and of its directory on the
// status branch. A push changing one app changes one key.
func (a *Agent) fileKeys(specHead plumbing.Hash, specTree, statusTree *gitsource.TreeFS) ([]string, map[string]string, error) {
	if a.files0 == nil || a.files0.spec != specHead {
		files, err := specTree.ReleaseFiles(a.opts.Path)
		var skipped v1alpha1.SkippedPaths
		switch {
		case errors.As(err, &skipped):
			// One bad entry (an escaping or looping symlink, a submodule)
			// stops only itself: logged once per spec head, counted.
			for _, s := range skipped {
				a.log.Error("path skipped", zap.String("path", s.Path), zap.String("reason", s.Reason))
			}
		case err != nil:
			return nil, nil, err
		}
		a.metrics.skippedPaths.Set(float64(len(skipped)))
		a.files0 = &releaseFiles{spec: specHead, files: files}
	}
	files := a.files0.files
	keys := make(map[string]string, len(files))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range files {
		key := specHead.String()
		if seen, ok := a.files[f]; ok && len(seen.dirs) > 0 {
			key = dirsKey(specTree, seen.dirs)
		}
		if statusTree != nil {
			key += "|" + statusTree.TreeHash(path.Dir(f)).String()
		}
		keys[f] = key
	}
	return files, keys, nil
}

// releaseFiles is fileKeys' memory of the release files at a spec head.
type releaseFiles struct {
	spec  plumbing.Hash
	files []string
}

// sideJob is work the leader does between passes when it is due: the
// image scanner, the promoter. run says whether it committed to the spec
// branch.
type sideJob struct {
	until func() time.Duration
	run   func(context.Context) bool
}

func (a *Agent) sideJobs() []sideJob {
	jobs := []sideJob{{until: a.promoter.until, run: a.promote}}
	if a.images != nil {
		jobs = append(jobs, sideJob{until: a.images.until, run: a.scanImages})
	}
	return jobs
}

// tree returns the file system of commit h, kept while it is one of the
// heads in use: its directory cache makes the next pass's keys cheap.
func (a *Agent) tree(h plumbing.Hash) (*gitsource.TreeFS, error) {
	if t, ok := a.trees[h]; ok {
		return t, nil
	}
	t, err := a.src.Tree(h)
	if err != nil {
		return nil, err
	}
	if len(a.trees) >= 4 {
		clear(a.trees)
	}
	a.trees[h] = t
	return t, nil
}

// skipFile reports whether the release file can be left alone this pass,
// and clears its dirty mark when it cannot (a change arriving while it is
// reconciled marks it again).
func (a *Agent) skipFile(file, key string) (fileSeen, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen, ok := a.files[file]
	now := a.now()
	if ok && a.watching.Load() && !seen.failed && seen.key == key && !a.dirty[seen.id] &&
		(seen.wakeAt.IsZero() || now.Before(seen.wakeAt)) && now.Sub(seen.at) < resync {
		return seen, true
	}
	if ok {
		delete(a.dirty, seen.id)
	}
	return seen, false
}

func (a *Agent) rememberFile(file, key string, out outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reconciled[file]++
	a.files[file] = fileSeen{key: key, dirs: out.dirs, id: out.id, phase: out.phase, wakeAt: out.wakeAt, at: a.now(), failed: out.failed || out.id == ""}
}

// markDirty marks the release's Deployment changed, its spec too.
func (a *Agent) markDirty(release string) { a.markChanged(release, true) }

// markChanged is the watch's callback: the release's Deployment changed;
// spec says it changed beyond its status (drift: the next pass applies
// even when the objects to apply are those it applied last).
func (a *Agent) markChanged(release string, spec bool) {
	a.mu.Lock()
	a.dirty[release] = true
	if spec {
		a.drifted[release] = true
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run polls on the interval until ctx ends, waking early for timers, for
// changes to the releases' Deployments and, for a local repository, for
// commits.
func (a *Agent) Run(ctx context.Context) error {
	go a.notify.run(ctx)
	watch, err := a.src.Watch(ctx)
	if err != nil {
		a.log.Warn("watch failed; polling only", zap.Error(err))
	}
	// The watch starts beside the loop: an API server that is down or a
	// list that is forbidden must not keep Git from being polled. Until
	// its first list is in, every pass reads the Deployments it needs.
	go func() {
		if err := a.mgr.WatchWorkloads(ctx, a.cfg, a.markChanged); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("watching Deployments failed; reading them on every pass", zap.Error(err))
			}
			return
		}
		a.watching.Store(true)
	}()
	a.lastPass.Store(time.Now().UnixNano())
	a.running.Store(true)
	defer a.running.Store(false)
	// After a failed pass the next one waits 1 s, 2 s, 4 s ... up to 30 s
	// (plus up to half as much again, so replicas do not retry together).
	newBackoff := func() kwait.Backoff {
		return kwait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.5, Cap: 30 * time.Second, Steps: 64}
	}
	backoff := newBackoff()
	poll := true
	// lastHookPoll is the last poll a hook caused; hookDue, when set, the
	// time a hook that came within MinHookGap of it gets its poll.
	var lastPoll, lastHookPoll, hookDue time.Time
	for {
		if poll {
			lastPoll = time.Now()
		}
		// A pass is not cut short by SIGTERM: it finishes its current apply
		// and status write, then the loop exits.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), passTimeout)
		res, err := a.pass(pctx, poll)
		cancel()
		a.lastPass.Store(time.Now().UnixNano())
		if ctx.Err() != nil {
			// Stopped during the pass: it finished; no other pass starts
			// (a timer due at once must not win the select below).
			return nil
		}
		wait := time.Until(lastPoll.Add(a.opts.Interval))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = backoff.Step()
			a.log.Error("pass failed", zap.Error(err), zap.Duration("retryIn", wait))
		} else {
			backoff = newBackoff()
			if !res.WakeAt.IsZero() {
				if d := time.Until(res.WakeAt); d < wait {
					// A transition's next decision is taken at once.
					wait = max(d, 10*time.Millisecond)
				}
			}
			for _, j := range a.sideJobs() {
				if !a.leads() {
					break // another replica's (the owner of shard 0)
				}
				if d := j.until(); d > 0 {
					wait = min(wait, d)
					continue
				}
				jctx, jcancel := context.WithTimeout(context.WithoutCancel(ctx), passTimeout)
				if j.run(jctx) {
					// A commit on the spec branch (an image bump, a
					// promotion): the next pass polls at once and
					// starts its rollout.
					lastPoll, wait = time.Time{}, 0
				}
				jcancel()
				wait = min(wait, j.until())
			}
		}
		deadline := time.Now().Add(max(wait, 0))
		if !hookDue.IsZero() && hookDue.Before(deadline) {
			deadline = hookDue
		}
		timer := time.NewTimer(time.Until(deadline))
	waiting:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-timer.C:
				break waiting
			case <-watch:
				timer.Stop()
				lastPoll = time.Time{}
				break waiting
			case <-a.poke:
				// However many hooks arrive, they cause at most one poll
				// per MinHookGap; those arriving meanwhile are one poll at
				// the gap's end, and they hold no earlier pass back (a
				// transition's next decision, say: the agent's own status
				// pushes come back as hooks too).
				hookDue = lastHookPoll.Add(a.hookGap)
				if !time.Now().Before(hookDue) {
					timer.Stop()
					break waiting
				}
				if hookDue.Before(deadline) {
					deadline = hookDue
					timer.Reset(time.Until(deadline))
				}
			case <-a.wake:
				timer.Stop()
				// Let a burst of changes (a rollout's status updates)
				// gather into one pass.
				time.Sleep(wakeGather)
				break waiting
			}
		}
		if !hookDue.IsZero() && !time.Now().Before(hookDue) {
			lastPoll, lastHookPoll, hookDue = time.Time{}, time.Now(), time.Time{}
		}
		poll = err != nil || !time.Now().Before(lastPoll.Add(a.opts.Interval))
	}
}

// wakeGather is how long a pass woken by a Deployment change waits for
// the changes that come with it (the kubelet reports a rollout's pods in
// bursts).
const wakeGather = 25 * time.Millisecond

// Healthy says whether the loop is alive: it fails when Run is running
// and no pass has returned (done or failed) for StallAfter. A follower not
// running the loop is healthy.
func (a *Agent) Healthy() error {
	if !a.running.Load() {
		return nil
	}
	since := time.Since(time.Unix(0, a.lastPass.Load()))
	if limit := a.StallAfter(); since > limit {
		return fmt.Errorf("no pass has returned for %s (limit %s)", since.Round(time.Second), limit)
	}
	return nil
}

// StallAfter is how long the loop may go without a pass returning before
// it counts as stuck: five intervals, and never less than the longest a
// pass may take (passTimeout) plus a minute.
func (a *Agent) StallAfter() time.Duration {
	return max(5*a.opts.Interval, passTimeout+time.Minute)
}

// passTimeout bounds one pass.
const passTimeout = 5 * time.Minute

// Ready reports whether the first pass has finished.
func (a *Agent) Ready() bool { return a.ready.Load() }
