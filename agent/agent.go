package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
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
	ready   atomic.Bool
	mu      sync.Mutex
	seen    map[string]seenRelease
	notify  *notifier
	// pending holds each release's status with the check measurements of
	// the current step, which are not committed on every tick: only
	// transitions are. It is used while Git's status is the same step.
	pending map[string]v1alpha1.ReleaseStatus
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
	mgr, err := reconcile.New(cfg, reconcile.Options{Namespaces: opts.Namespaces, AllowClusterScoped: opts.AllowClusterScoped})
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
	ag := &Agent{opts: opts, log: log, src: src, cfg: cfg, mgr: mgr, metrics: newMetrics(),
		notify: newNotifier(opts.NotifyURLs, cs, log),
		now:    time.Now, seen: map[string]seenRelease{}, pending: map[string]v1alpha1.ReleaseStatus{}}
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
	start := time.Now()
	defer func() { a.metrics.passDuration.Observe(time.Since(start).Seconds()) }()
	gitStart := time.Now()
	heads, err := a.src.Heads(ctx)
	a.metrics.gitPolls.Inc()
	if err != nil {
		return nil, err
	}
	if heads.Spec.IsZero() {
		return nil, fmt.Errorf("branch %s not found in %s", a.opts.Branch, a.src.URL())
	}
	specHead, err := a.src.Fetch(ctx, a.opts.Branch, heads.Spec)
	if err != nil {
		return nil, err
	}
	specTree, err := a.src.Tree(specHead)
	if err != nil {
		return nil, err
	}
	statusTree := specTree
	if !a.src.SameBranch() {
		statusTree = nil
		if !heads.Status.IsZero() {
			h, err := a.src.Fetch(ctx, a.opts.StatusBranch, heads.Status)
			if err != nil {
				return nil, err
			}
			if statusTree, err = a.src.Tree(h); err != nil {
				return nil, err
			}
		}
	}
	a.metrics.gitFetch.Observe(time.Since(gitStart).Seconds())
	files, err := specTree.ReleaseFiles(a.opts.Path)
	if err != nil {
		return nil, err
	}
	res := &PassResult{Releases: map[string]v1alpha1.Phase{}}
	var mu sync.Mutex
	sem := make(chan struct{}, a.opts.Concurrency)
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out := a.release(ctx, f, specHead, specTree, statusTree)
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
	wg.Wait()
	sort.Strings(res.Failed)
	a.ready.Store(true)
	return res, nil
}

// Run polls on the interval until ctx ends, waking early for timers and,
// for a local repository, for commits.
func (a *Agent) Run(ctx context.Context) error {
	go a.notify.run(ctx)
	watch, err := a.src.Watch(ctx)
	if err != nil {
		a.log.Warn("watch failed; polling only", zap.Error(err))
	}
	backoff := time.Second
	for {
		// A pass is not cut short by SIGTERM: it finishes its current apply
		// and status write, then the loop exits.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		res, err := a.Pass(pctx)
		cancel()
		wait := a.opts.Interval
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Error("pass failed", zap.Error(err), zap.Duration("retryIn", backoff))
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, 30*time.Second)
		} else {
			backoff = time.Second
			if !res.WakeAt.IsZero() {
				if d := time.Until(res.WakeAt); d < wait {
					wait = max(d, 100*time.Millisecond)
				}
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-watch:
			timer.Stop()
		}
	}
}

// Ready reports whether the first pass has finished.
func (a *Agent) Ready() bool { return a.ready.Load() }
