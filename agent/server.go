package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Serve runs /metrics, /healthz, /readyz and /hook on the listen address
// until ctx ends. /readyz is ok once the first pass finished (or, with
// leader election, as a follower).
func (a *Agent) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	// sluice's own series, and client-go's REST client metrics
	// (rest_client_requests_total...), which controller-runtime collects.
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{a.metrics.reg, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
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
	mux.HandleFunc("/hook", a.serveHook)
	mux.HandleFunc("/hook/registry", a.serveRegistryHook)
	mux.HandleFunc("/images", a.serveImages)
	if a.opts.UI {
		mux.Handle("/ui/", &ui{a: a})
		mux.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	}
	return serveUntil(ctx, l, mux)
}

// ServePprof serves Go's profiles under /debug/pprof/ on l (a loopback
// listener of its own, never the one the Service exposes) until ctx ends.
func ServePprof(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveUntil(ctx, l, mux)
}

func serveUntil(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
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
