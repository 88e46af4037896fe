package agent

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

type metrics struct {
	reg          *prometheus.Registry
	passDuration prometheus.Histogram
	gitPolls     prometheus.Counter
	// image updates: registry scans, their errors, bumps committed.
	imageScans, imageScanErrors, imageProposals prometheus.Counter
	commits                                     prometheus.Counter
	applies                                     *prometheus.CounterVec
	transitions                                 *prometheus.CounterVec
	checks                                      *prometheus.CounterVec
	phase                                       *prometheus.GaugeVec
	weight                                      *prometheus.GaugeVec
	gitFetch                                    prometheus.Histogram
	render                                      prometheus.Histogram
	drift                                       *prometheus.GaugeVec
	suspended                                   *prometheus.GaugeVec
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
	// info carries a release's strategy, phase and versions as labels
	// (value 1), as kube-state-metrics' *_info series do; step and steps
	// say where its canary stands; checkValue is each check's last
	// measured value.
	info       *prometheus.GaugeVec
	step       *prometheus.GaugeVec
	steps      *prometheus.GaugeVec
	stepStart  *prometheus.GaugeVec
	checkValue *prometheus.GaugeVec
	// errors count failed reconciles and status pushes, by reason.
	errors     *prometheus.CounterVec
	pushErrors *prometheus.CounterVec
	// lastPoll is when Git last answered a poll; leader is 1 while this
	// replica leads (or runs without election).
	lastPoll prometheus.Gauge
	leader   prometheus.Gauge

	infoMu sync.Mutex
	infos  map[string][]string // the info labels last set, by release
}

func newMetrics() *metrics {
	m := &metrics{
		reg:                prometheus.NewRegistry(),
		passDuration:       prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_reconcile_duration_seconds", Help: "Duration of a pass over all releases.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		gitPolls:           prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_git_polls_total", Help: "ls-remote polls of the repository."}),
		imageScans:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_image_scans_total", Help: "Tag listings of images named in spec.imageUpdates."}),
		imageScanErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_image_scan_errors_total", Help: "Failed tag listings, digest lookups and image update commits."}),
		imageProposals:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_image_updates_committed_total", Help: "Image tag bumps committed to the spec branch."}),
		commits:            prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_status_commits_total", Help: "Status commits pushed."}),
		applies:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_apply_objects_total", Help: "Objects applied, by action."}, []string{"action"}),
		transitions:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_transitions_total", Help: "Release state transitions committed."}, []string{"namespace", "name", "phase"}),
		checks:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_check_results_total", Help: "Check measurements, by outcome."}, []string{"namespace", "name", "check", "outcome"}),
		phase:              prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_phase", Help: "1 for the release's current phase."}, []string{"namespace", "name", "phase"}),
		weight:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_weight", Help: "The canary's traffic weight."}, []string{"namespace", "name"}),
		gitFetch:           prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_git_fetch_duration_seconds", Help: "Duration of ls-remote plus fetches of a pass.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		render:             prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_render_duration_seconds", Help: "Duration of a release's render (a cache hit included).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		drift:              prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_drift_objects", Help: "Objects a suspended release's apply would change (not applied while suspended)."}, []string{"namespace", "name"}),
		suspended:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_suspended", Help: "1 while spec.suspend holds the release."}, []string{"namespace", "name"}),
		stableUnrenderable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_stable_unrenderable", Help: "1 while the release's stable revision cannot be rendered; nothing is applied for it."}, []string{"namespace", "name"}),
		specRewrites:       prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_spec_rewrites_total", Help: "Spec heads that did not descend from the last one applied (force-pushes, unrelated histories)."}),
		unverified:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_spec_unverified_total", Help: "Spec heads not applied because a commit did not verify (--verify-commits)."}),
		verified:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_spec_head_verified", Help: "1 while the spec head verifies under --verify-commits, 0 while it is refused and the last verified commit serves."}),
		hooks:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_hooks_total", Help: "POST /hook requests, by outcome (accepted, ignored: another branch, forwarded, refused)."}, []string{"outcome"}),
		panics:             prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_release_panics_total", Help: "Release passes that panicked; each is contained to its release."}),
		skippedPaths:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_skipped_paths", Help: "Entries under --path skipped at the spec head (escaping or looping symlinks, submodules); the rest is reconciled."}),
		removalRefused:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_removal_refused", Help: "1 while every managed release vanished from the spec at once and nothing is removed (see --allow-mass-removal)."}),
		info:               prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_info", Help: "1, with the release's strategy, phase and stable and canary revisions as labels."}, []string{"namespace", "name", "strategy", "phase", "stable", "canary"}),
		step:               prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_step", Help: "The canary's current step, from 1 (0: no canary in flight)."}, []string{"namespace", "name"}),
		steps:              prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_steps", Help: "The number of steps of the release's strategy."}, []string{"namespace", "name"}),
		stepStart:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_release_step_started_timestamp_seconds", Help: "When the release's current step began (Unix seconds)."}, []string{"namespace", "name"}),
		checkValue:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_check_last_value", Help: "The last value a check measured (numeric checks only)."}, []string{"namespace", "name", "check"}),
		errors:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_reconcile_errors_total", Help: "Releases whose pass failed, by reason (spec, stable, observe, apply, refused, forbidden, status)."}, []string{"reason"}),
		pushErrors:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_status_push_errors_total", Help: "Status commits not pushed, by reason (rejected: the remote kept moving; error)."}, []string{"reason"}),
		lastPoll:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_git_last_poll_success_timestamp_seconds", Help: "When Git last answered a poll (Unix seconds)."}),
		leader:             prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_leader", Help: "1 while this replica leads (always 1 without --leader-elect)."}),
		infos:              map[string][]string{},
	}
	m.leader.Set(1)
	m.reg.MustRegister(m.info, m.step, m.steps, m.stepStart, m.checkValue, m.errors, m.pushErrors, m.lastPoll, m.leader)
	m.reg.MustRegister(m.gitFetch, m.render, m.drift, m.suspended, m.removalRefused, m.stableUnrenderable, m.skippedPaths, m.panics, m.hooks, m.specRewrites, m.unverified, m.verified)
	m.reg.MustRegister(m.imageScans, m.imageScanErrors, m.imageProposals)
	m.reg.MustRegister(m.passDuration, m.gitPolls, m.commits, m.applies, m.transitions, m.checks, m.phase, m.weight,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// nsName splits a release id "<namespace>/<name>" into its labels.
func nsName(id string) (string, string) {
	ns, name, _ := strings.Cut(id, "/")
	return ns, name
}

// observe sets a release's series from its status after a pass.
func (m *metrics) observe(rel *v1alpha1.Release, st v1alpha1.ReleaseStatus) {
	ns, name := rel.Metadata.Namespace, rel.Metadata.Name
	for _, p := range v1alpha1.Phases() {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(ns, name, string(p)).Set(v)
	}
	m.weight.WithLabelValues(ns, name).Set(float64(st.Weight))
	suspended := 0.0
	if st.SuspendedAt != nil {
		suspended = 1
	}
	m.suspended.WithLabelValues(ns, name).Set(suspended)
	steps := rel.Spec.Strategy.Steps()
	m.steps.WithLabelValues(ns, name).Set(float64(len(steps)))
	step := 0.0
	if st.Canary != nil {
		step = float64(st.Step + 1)
	}
	m.step.WithLabelValues(ns, name).Set(step)
	if st.StepStartedAt != nil {
		m.stepStart.WithLabelValues(ns, name).Set(float64(st.StepStartedAt.Unix()))
	}
	stable, canary := "", ""
	if st.Stable != nil {
		stable = st.Stable.Revision
	}
	if st.Canary != nil {
		canary = st.Canary.Revision
	}
	labels := []string{ns, name, rel.Spec.Strategy.Name(), string(st.Phase), stable, canary}
	m.infoMu.Lock()
	defer m.infoMu.Unlock()
	if old, ok := m.infos[rel.ID()]; ok && !slices.Equal(old, labels) {
		m.info.DeleteLabelValues(old...)
	}
	m.infos[rel.ID()] = labels
	m.info.WithLabelValues(labels...).Set(1)
}

// measured counts a check's measurement and keeps its value when numeric.
func (m *metrics) measured(id, check string, outcome, value string) {
	ns, name := nsName(id)
	m.checks.WithLabelValues(ns, name, check, outcome).Inc()
	if v, err := strconv.ParseFloat(value, 64); err == nil {
		m.checkValue.WithLabelValues(ns, name, check).Set(v)
	}
}

// forget drops a removed release's gauges, so dashboards stop showing it
// (its counters stay: they count what happened).
func (m *metrics) forget(id string) {
	ns, name := nsName(id)
	labels := prometheus.Labels{"namespace": ns, "name": name}
	for _, g := range []*prometheus.GaugeVec{m.phase, m.weight, m.suspended, m.drift, m.stableUnrenderable, m.info, m.step, m.steps, m.stepStart, m.checkValue} {
		g.DeletePartialMatch(labels)
	}
	m.infoMu.Lock()
	delete(m.infos, id)
	m.infoMu.Unlock()
}
