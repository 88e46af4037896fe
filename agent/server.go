package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve runs /metrics, /healthz and /readyz on the listen address until
// ctx ends. /readyz is ok once the first pass finished (or, with leader
// election, as a follower).
func (a *Agent) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "first pass not finished", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	// A push webhook (GitHub, GitLab, Gitea, ...) makes the next poll happen
	// now. The body is not read: the hook can only make the agent ask Git
	// sooner, so it needs no secret.
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		// A follower does not poll: it hands the hook to the leader, once.
		if f := a.leader.Load(); f != nil && r.Header.Get(forwardedHeader) == "" {
			if leading, addr := (*f)(); !leading {
				if err := forwardHook(r.Context(), addr, r); err != nil {
					http.Error(w, "follower: "+err.Error(), http.StatusBadGateway)
					return
				}
				w.WriteHeader(http.StatusAccepted)
				return
			}
		}
		a.Poll()
		w.WriteHeader(http.StatusAccepted)
	})
	if a.opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// LeaderFunc reports whether this replica holds the leader Lease and, when
// it does not, the address (host:port) of the leader's --listen, "" when
// unknown.
type LeaderFunc func() (leading bool, addr string)

// SetLeader tells a replica under leader election how to find the leader:
// a follower forwards POST /hook to it, so a push webhook sent through the
// Service to any replica reaches the one that polls.
func (a *Agent) SetLeader(f LeaderFunc) { a.leader.Store(&f) }

// forwardedHeader marks a hook a follower forwarded: it is never forwarded
// again, so two replicas that disagree on the leader cannot loop.
const forwardedHeader = "X-Sluice-Forwarded"

// forwardHook posts the hook, with its headers and up to 1 MiB of its body
// (a signature may cover it), to the leader's /hook.
func forwardHook(ctx context.Context, addr string, r *http.Request) error {
	if addr == "" {
		return errors.New("no leader known yet; retry")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/hook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = r.Header.Clone()
	req.Header.Set(forwardedHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("forwarding to the leader at %s: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the leader at %s answered %s", addr, resp.Status)
	}
	return nil
}

// Poll asks for a poll of Git now (several requests before it runs are
// one poll).
func (a *Agent) Poll() {
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

// SetReady marks the agent ready (a follower under leader election).
func (a *Agent) SetReady() { a.ready.Store(true) }
