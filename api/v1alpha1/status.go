package v1alpha1

import "time"

// Phase is where a release stands. It is derived from the persisted fields
// by the strategy package, never stored on its own authority.
type Phase string

// The phases of a release.
const (
	PhaseIdle        Phase = "Idle"
	PhaseProgressing Phase = "Progressing"
	PhasePaused      Phase = "Paused"
	PhasePromoting   Phase = "Promoting"
	PhaseSucceeded   Phase = "Succeeded"
	PhaseAborted     Phase = "Aborted"
	PhaseRolledBack  Phase = "RolledBack"
	PhaseFailed      Phase = "Failed"
	// PhaseRemoved: the release's files left Git; its objects are pruned.
	PhaseRemoved Phase = "Removed"
)

// Phases lists every phase, in the order a rollout meets them.
func Phases() []Phase {
	return []Phase{PhaseIdle, PhaseProgressing, PhasePaused, PhasePromoting, PhaseSucceeded, PhaseAborted, PhaseRolledBack, PhaseFailed, PhaseRemoved}
}

// ReleaseStatus is what the agent writes to status.yaml on the status
// branch after every transition. People do not edit it.
type ReleaseStatus struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`

	Phase         Phase        `json:"phase"`
	Stable        *Revision    `json:"stable,omitempty"`
	Canary        *Revision    `json:"canary,omitempty"`
	Step          int32        `json:"step"`
	Weight        int32        `json:"weight"`
	StepStartedAt *time.Time   `json:"stepStartedAt,omitempty"`
	Checks        []CheckState `json:"checks,omitempty"`
	// CanaryStartedAt is when the version in canary began: no measurement
	// of it may rest on data from before (a previous version's requests
	// under the same Service names).
	CanaryStartedAt *time.Time `json:"canaryStartedAt,omitempty"`
	// TrackReleasedAt is when the canary track's last version stopped
	// serving (its drain ended). The track's Services keep their names, so
	// a query's range reaching back past it would count that version's
	// requests: no measurement does.
	TrackReleasedAt *time.Time `json:"trackReleasedAt,omitempty"`
	// AnalysisStartedAt and Analysis are the background analysis of the
	// canary in flight (spec.analysis): when it began and its checks'
	// counters, over the whole canary rather than a step.
	AnalysisStartedAt *time.Time   `json:"analysisStartedAt,omitempty"`
	Analysis          []CheckState `json:"analysis,omitempty"`
	// PreRolloutPassed: the canary in flight has passed its pre-rollout
	// checks (spec.analysis.preRollout) and runs its steps.
	PreRolloutPassed bool       `json:"preRolloutPassed,omitempty"`
	Message          string     `json:"message,omitempty"`
	Error            *SpecError `json:"error,omitempty"`
	// AbortedDigest is the version last aborted: it is not retried until the
	// digest changes again, or spec.retry names AbortedRevision, the canary
	// revision that was aborted.
	AbortedDigest   string `json:"abortedDigest,omitempty"`
	AbortedRevision string `json:"abortedRevision,omitempty"`
	// SuspendedAt is when spec.suspend froze the release; on resume the
	// current step's start moves forward by the time suspended.
	SuspendedAt *time.Time `json:"suspendedAt,omitempty"`
	// Promoted are the last promoted versions, newest first (the rollback
	// window): a head equal to one of them is rolled back to at once.
	Promoted []Revision `json:"promoted,omitempty"`
	// Rollback marks a canary that is a rollback to a promoted version: it
	// is brought up at full size and switched to, with no steps or checks.
	Rollback bool `json:"rollback,omitempty"`
	// DrainUntil: the route has just left the canary track (a promotion
	// finished, an abort, a rollback); its objects stay until then
	// (spec.strategy.scaleDownDelay), because the data plane may still send
	// it requests. Nothing of the release is pruned before.
	DrainUntil       *time.Time `json:"drainUntil,omitempty"`
	ObservedRevision string     `json:"observedRevision,omitempty"`
	Inventory        []string   `json:"inventory,omitempty"`
	// ServiceAccount is who the inventory was applied as
	// ("<namespace>/<name>", empty: the agent itself): its objects are
	// pruned and removed as the same identity, even once the release file
	// that named it is gone.
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// Revision is a commit and the digest of what it renders to.
type Revision struct {
	Revision string `json:"revision"`
	Digest   string `json:"digest"`
	// PromotedAt, on the stable revision, is when it became stable (its
	// install or promotion): what a downstream stage's soak counts from.
	PromotedAt *time.Time `json:"promotedAt,omitempty"`
}

// CheckState summarises the measurements of one check in the current step.
type CheckState struct {
	Name         string `json:"name"`
	Passed       int32  `json:"passed"`
	Failed       int32  `json:"failed"`
	Inconclusive int32  `json:"inconclusive,omitempty"`
	// TooFew counts measurements on fewer samples than the check's
	// minimum: not verdicts, but they move the next measurement on by an
	// interval, and their total time is bounded by samplesTimeout.
	TooFew int32  `json:"tooFew,omitempty"`
	Last   string `json:"last,omitempty"`
	// Compare is a compare check's last judgement, metric by metric.
	Compare *CompareResult `json:"compare,omitempty"`
}

// CompareResult is one judgement of a compare check: the score, the
// verdict, the track the canary was judged against, and each metric's.
type CompareResult struct {
	Score   float64 `json:"score"`
	Verdict string  `json:"verdict"`
	// Against is stable or baseline.
	Against string         `json:"against"`
	Metrics []MetricResult `json:"metrics,omitempty"`
}

// MetricResult is one metric's Mann-Whitney U test: its statistic and
// p-value, both medians and sample sizes, and its class (Pass, High, Low,
// NoData).
type MetricResult struct {
	Name            string  `json:"name"`
	Verdict         string  `json:"verdict"`
	U               float64 `json:"u"`
	P               float64 `json:"p"`
	CanaryMedian    float64 `json:"canaryMedian"`
	BaselineMedian  float64 `json:"baselineMedian"`
	CanarySamples   int32   `json:"canarySamples"`
	BaselineSamples int32   `json:"baselineSamples"`
}

// SpecError is an invalid spec or render, located in a file.
type SpecError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}
