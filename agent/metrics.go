package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

type metrics struct {
	reg          *prometheus.Registry
	passDuration prometheus.Histogram
	gitPolls     prometheus.Counter
	commits      prometheus.Counter
	applies      *prometheus.CounterVec
	transitions  *prometheus.CounterVec
	checks       *prometheus.CounterVec
	phase        *prometheus.GaugeVec
	weight       *prometheus.GaugeVec
	gitFetch     prometheus.Histogram
	render       prometheus.Histogram
	drift        *prometheus.GaugeVec
	suspended    *prometheus.GaugeVec
	// stableUnrenderable is 1 while a release's stable revision cannot be
	// rendered (nothing is applied for it).
	stableUnrenderable *prometheus.GaugeVec
	// specRewrites counts spec heads that did not descend from the last.
	specRewrites prometheus.Counter
	// unverified counts spec heads refused by --verify-commits; verified
	// is 1 while the head verifies, 0 while one is refused.
	unverified prometheus.Counter
	verified   prometheus.Gauge
	// hooks counts POST /hook requests by outcome.
	hooks *prometheus.CounterVec
	// panics counts releases whose pass panicked (and was contained).
	panics prometheus.Counter
	// skippedPaths counts the entries under --path that could not be read.
	skippedPaths prometheus.Gauge
	// removalRefused is 1 while the mass-removal guard holds.
	removalRefused prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg:                prometheus.NewRegistry(),
		passDuration:       prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_reconcile_duration_seconds", Help: "Duration of a pass over all releases.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		gitPolls:           prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_git_polls_total", Help: "ls-remote polls of the repository."}),
		commits:            prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_status_commits_total", Help: "Status commits pushed."}),
		applies:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_apply_objects_total", Help: "Objects applied, by action."}, []string{"action"}),
		transitions:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_transitions_total", Help: "Release state transitions committed."}, []string{"release", "phase"}),
		checks:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_check_results_total", Help: "Check measurements, by outcome."}, []string{"release", "check", "outcome"}),
		phase:              prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_phase", Help: "1 for the release's current phase."}, []string{"release", "phase"}),
		weight:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_weight", Help: "The canary's traffic weight."}, []string{"release"}),
		gitFetch:           prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_git_fetch_duration_seconds", Help: "Duration of ls-remote plus fetches of a pass.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		render:             prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_render_duration_seconds", Help: "Duration of a release's render (a cache hit included).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		drift:              prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_drift_objects", Help: "Objects a suspended release's apply would change (not applied while suspended)."}, []string{"release"}),
		suspended:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_suspended", Help: "1 while spec.suspend holds the release."}, []string{"release"}),
		stableUnrenderable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_stable_unrenderable", Help: "1 while the release's stable revision cannot be rendered; nothing is applied for it."}, []string{"release"}),
		specRewrites:       prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_spec_rewrites_total", Help: "Spec heads that did not descend from the last one applied (force-pushes, unrelated histories)."}),
		unverified:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_spec_unverified_total", Help: "Spec heads not applied because a commit did not verify (--verify-commits)."}),
		verified:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_spec_head_verified", Help: "1 while the spec head verifies under --verify-commits, 0 while it is refused and the last verified commit serves."}),
		hooks:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_hooks_total", Help: "POST /hook requests, by outcome (accepted, forwarded, refused)."}, []string{"outcome"}),
		panics:             prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_release_panics_total", Help: "Release passes that panicked; each is contained to its release."}),
		skippedPaths:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_skipped_paths", Help: "Entries under --path skipped at the spec head (escaping or looping symlinks, submodules); the rest is reconciled."}),
		removalRefused:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_removal_refused", Help: "1 while every managed release vanished from the spec at once and nothing is removed (see --allow-mass-removal)."}),
	}
	m.reg.MustRegister(m.gitFetch, m.render, m.drift, m.suspended, m.removalRefused, m.stableUnrenderable, m.skippedPaths, m.panics, m.hooks, m.specRewrites, m.unverified, m.verified)
	m.reg.MustRegister(m.passDuration, m.gitPolls, m.commits, m.applies, m.transitions, m.checks, m.phase, m.weight,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(id string, st v1alpha1.ReleaseStatus) {
	for _, p := range v1alpha1.Phases() {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(id, string(p)).Set(v)
	}
	m.weight.WithLabelValues(id).Set(float64(st.Weight))
	suspended := 0.0
	if st.SuspendedAt != nil {
		suspended = 1
	}
	m.suspended.WithLabelValues(id).Set(suspended)
}
