package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/sluice-dev/sluice/agent"
	"github.com/sluice-dev/sluice/internal/redact"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/shard"
)

// agentGCPercent is the agent's GOGC unless the environment sets one.
const agentGCPercent = 25

func newAgentCommand() *cobra.Command {
	var opts agent.Options
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the GitOps agent: poll Git, apply releases, walk rollouts, commit status",
		Long: `The agent polls the repository (ls-remote each --interval; a shallow fetch only
when a branch moved), renders each release under --path with kustomize,
applies it with server-side apply, advances its rollout strategy and commits
every transition to --status-branch (status.yaml files with Sluice-* trailers).

Every flag can also be set from the environment as SLUICE_<FLAG>, e.g.
SLUICE_REPO, SLUICE_GIT_PASSWORD_FILE.`,
		Example: `  sluice agent --repo https://git.example.com/org/deploy.git \
    --git-username bot --git-password-file /etc/sluice/token --namespaces shop,web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := agent.ApplyEnv(cmd.Flags()); err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			if err := opts.ApplyCluster(cmd.Flags()); err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			log, err := newLogger(opts.LogFormat, opts.LogLevel)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			defer log.Sync()
			if os.Getenv("GOGC") == "" {
				// Mostly idle between bursts, the agent trades a little
				// collection work for a heap that grows to 1.5x what is
				// live, not 2x. GOGC and GOMEMLIMIT in the environment
				// win (deploy/ sets GOMEMLIMIT to the memory limit).
				debug.SetGCPercent(agentGCPercent)
			}
			a, err := agent.New(opts, log)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if opts.Once {
				// One line, not an error per release, when there is no
				// cluster to talk to.
				if err := a.Reachable(ctx); err != nil {
					log.Error("cannot reach the cluster; nothing was done", zap.Error(err))
					return &exitError{code: 1}
				}
				res, err := a.Pass(ctx)
				if err != nil {
					log.Error("pass failed", zap.Error(err))
					return &exitError{code: 1}
				}
				for id, phase := range res.Releases {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", id, phase)
				}
				if len(res.Failed) > 0 {
					return &exitError{code: 1, msg: fmt.Sprintf("failed: %v", res.Failed)}
				}
				return nil
			}
			if opts.Listen != "" {
				l, err := net.Listen("tcp", opts.Listen)
				if err != nil {
					return &exitError{code: 2, msg: err.Error()}
				}
				go func() {
					if err := a.Serve(ctx, l); err != nil {
						log.Error("metrics server failed", zap.Error(err))
					}
				}()
			}
			if opts.Pprof {
				l, err := listenLoopback(opts.PprofListen)
				if err != nil {
					return &exitError{code: 2, msg: "--pprof-listen: " + err.Error()}
				}
				go func() {
					if err := agent.ServePprof(ctx, l); err != nil {
						log.Error("pprof server failed", zap.Error(err))
					}
				}()
			}
			log.Info("agent started", zap.String("repo", redact.URL(opts.Repo)), zap.String("branch", opts.Branch),
				zap.String("statusBranch", opts.StatusBranch), zap.Duration("interval", opts.Interval))
			switch {
			case opts.Shards > 0 && opts.LeaderElect:
				return &exitError{code: 2, msg: "--shards and --leader-elect exclude each other: with --shards every replica works, each on its own shards"}
			case opts.Shards > 0:
				return runSharded(ctx, a, opts, log)
			case opts.LeaderElect:
				return runElected(ctx, a, opts, log)
			}
			return a.Run(ctx)
		},
	}
	opts.BindFlags(cmd.Flags())
	return cmd
}

// runElected runs the loop only while this replica holds the Lease.
func runElected(ctx context.Context, a *agent.Agent, opts agent.Options, log *zap.Logger) error {
	cfg, err := reconcile.LoadConfig(opts.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	id := leaderIdentity(host, os.Getpid(), opts.AdvertiseAddress)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "sluice-leader", Namespace: opts.LeaderElectNS},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	a.SetReady() // a follower is ready: it serves metrics and waits
	a.Leading(false)
	electCtx, stopElection := context.WithCancel(ctx)
	defer stopElection()
	var unhealthy atomic.Bool
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info("leading", zap.String("identity", id))
				a.Leading(true)
				go watchdog(ctx, a, func(err error) {
					// A stuck leader gives the Lease up so a healthy
					// replica takes over, then exits to be restarted.
					log.Error("unhealthy while leading; releasing the Lease", zap.Error(err))
					unhealthy.Store(true)
					stopElection()
				})
				if err := a.Run(ctx); err != nil {
					log.Error("agent stopped", zap.Error(err))
				}
			},
			OnStoppedLeading: func() {
				a.Leading(false)
				log.Info("stopped leading", zap.String("identity", id))
			},
			OnNewLeader: func(leader string) {
				if leader != id {
					log.Info("following", zap.String("leader", leader))
				}
			},
		},
	})
	if err != nil {
		return err
	}
	a.SetLeader(func() (bool, string) { return le.IsLeader(), leaderAddress(le.GetLeader()) })
	le.Run(electCtx)
	if unhealthy.Load() {
		return errors.New("released leadership: the loop was stuck")
	}
	return nil
}

// runSharded runs the loop on the shards this replica holds the Leases of.
func runSharded(ctx context.Context, a *agent.Agent, opts agent.Options, log *zap.Logger) error {
	cfg, err := reconcile.LoadConfig(opts.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	el, err := shard.NewElector(shard.Options{Leases: cs.CoordinationV1(), Namespace: opts.LeaderElectNS, Shards: opts.Shards,
		Identity: leaderIdentity(host, os.Getpid(), opts.AdvertiseAddress), Log: log, OnAcquire: a.Wake})
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	a.SetOwner(el)
	done := make(chan struct{})
	go func() {
		defer close(done)
		el.Run(ctx)
	}()
	err = a.Run(ctx)
	<-done // the shards are given up after the last pass
	return err
}

// watchdog calls unhealthy once if the agent's loop stops completing
// passes while ctx lasts.
func watchdog(ctx context.Context, a *agent.Agent, unhealthy func(error)) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Healthy(); err != nil {
				unhealthy(err)
				return
			}
		}
	}
}

// listenLoopback listens on addr, which must be a loopback address: the
// profiles are for someone on the pod (kubectl port-forward), never the
// network.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}

// leaderIdentity is a replica's Lease identity: host and pid, and the
// address its listener is reached at, so followers can find the leader.
func leaderIdentity(host string, pid int, advertise string) string {
	id := fmt.Sprintf("%s_%d", host, pid)
	if advertise != "" {
		id += "@" + advertise
	}
	return id
}

// leaderAddress is the address in a leader identity, "" when it has none.
func leaderAddress(identity string) string {
	_, addr, _ := strings.Cut(identity, "@")
	return addr
}

func newLogger(format, level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("--log-format must be json or console, got %q", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	// An error the agent expects (a refused release, an unreachable API
	// server) is a line, not a stack trace; a panic still carries its own.
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}
