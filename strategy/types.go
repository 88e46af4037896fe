package strategy

import (
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Defaults for a rollout's timing.
const (
	// DefaultCheckInterval is a check's interval when the spec gives none.
	DefaultCheckInterval = 30 * time.Second
	// ProgressDeadline is how long a canary (or a rolling update) may stay
	// unready before it counts as failed.
	ProgressDeadline = 10 * time.Minute
	// readyRecheck is how soon to look again while waiting for pods.
	readyRecheck = time.Second
)

// Observed is what the agent saw in the cluster this pass.
type Observed struct {
	// StableDigest is the version the live stable workload runs, "" when
	// there is none (a new cluster) or it is unknown.
	StableDigest string
	// StableReady: the stable workload is Available at its full size.
	StableReady bool
	// StableReplicas is the live stable workload's spec.replicas: its size
	// when an autoscaler, not Git, sets it.
	StableReplicas int32
	// CanaryReady: the canary workload exists and is Available.
	CanaryReady bool
	// BaselineReady: so is the baseline workload (spec.analysis.baseline).
	BaselineReady bool
	// Failed: the workload in flight reports it cannot progress (kstatus
	// Failed, e.g. ProgressDeadlineExceeded), with Message saying why.
	Failed  bool
	Message string
	// MirrorUnsupported, when set, is why the route's Gateway cannot
	// mirror as the strategy asks (its GatewayClass's supportedFeatures
	// leave RequestMirror out, or the percentage for a share):
	// a setMirror step aborts instead of writing a filter the data plane
	// would answer with errors.
	MirrorUnsupported string
	// RouteRejected, when set, is the Gateway's verdict against the route
	// as sluice last wrote it (Accepted or ResolvedRefs False): a canary
	// does not advance until it clears.
	RouteRejected string
	// RoutePending: the Gateway has not yet taken the route as last
	// written (its status is about an older generation). A drain does not
	// end before it has, for at most MaxDrainWait past its time.
	RoutePending bool
}

// MaxDrainWait bounds how long a drain waits, past its time, for the
// Gateway to take the route: an implementation that stopped writing status
// must not keep a track up forever.
const MaxDrainWait = 2 * time.Minute

// Outcome of one measurement of a check.
type Outcome string

// Outcomes.
const (
	Pass         Outcome = "pass"
	Fail         Outcome = "fail"
	Inconclusive Outcome = "inconclusive"
	// TooFew: the value rests on fewer samples than the check's minimum;
	// no verdict, measure again an interval later.
	TooFew Outcome = "too-few-samples"
)

// Measurement is one result of a check the agent ran because DueChecks
// named it.
type Measurement struct {
	Check   string
	Outcome Outcome
	// Value is the measured value or the reason, for status and trailers.
	Value string
	// Compare is a compare check's judgement, metric by metric.
	Compare *v1alpha1.CompareResult
}

// Input is everything a decision depends on. Next reads nothing else.
type Input struct {
	Spec *v1alpha1.Release
	// HeadRevision is the spec commit being answered; HeadDigest is its
	// version digest (the whole render's digest for rolling and recreate).
	HeadRevision string
	HeadDigest   string
	// Replicas is the workload's replicas in the head render.
	Replicas int32
	// ProgressDeadline is the workload's own progressDeadlineSeconds, when
	// it sets one: the agent stops waiting for a rollout or a canary that is
	// not ready after it even if the controller never reports the deadline
	// (0: ProgressDeadline).
	ProgressDeadline time.Duration
	// StableSpecWeight is, in manual mode, spec.strategy.canary.weight at
	// stable.revision (nil when that spec had none).
	StableSpecWeight *int32
	Status           v1alpha1.ReleaseStatus
	Observed         Observed
	Now              time.Time
	// Results are the measurements of the checks DueChecks named.
	Results []Measurement
}

// StableSource says which render the stable track comes from.
type StableSource string

// Stable sources.
const (
	// StableFromStable: the workload and its config rendered at
	// stable.revision (other objects always come from head).
	StableFromStable StableSource = "stable"
	// StableFromHead: the head render (first install, promotion, rolling).
	StableFromHead StableSource = "head"
)

// Plan is the decision: the new status and what to apply.
type Plan struct {
	Status v1alpha1.ReleaseStatus
	// Commit is true when the status made a transition worth a commit.
	Commit bool
	// Subject describes the transition for the commit message.
	Subject string
	// Checks are the check states at the moment of the transition (the
	// status starts the next step with none), for the Sluice-Checks trailer.
	Checks []v1alpha1.CheckState
	// Stable says which render the stable track is applied from.
	Stable StableSource
	// Canary is true while a canary track must exist, with CanaryReplicas.
	Canary         bool
	CanaryReplicas int32
	// Baseline is true while a baseline track must exist beside the canary
	// (spec.analysis.baseline), at CanaryReplicas.
	Baseline bool
	// Route is the traffic shape (ignored without spec.traffic).
	Route RouteState
	// DeleteCanary removes the canary track (after the route stops using it).
	DeleteCanary bool
	// Drain keeps every object of the release's last inventory, even those
	// the plan no longer applies (the canary track traffic has just left),
	// until Status.DrainUntil: nothing is pruned before.
	Drain bool
	// RevertFiles asks for the release's files to be restored on the spec
	// branch to their content at stable.revision (onFailure: revert).
	RevertFiles bool
	// Suspended: spec.suspend holds the release; nothing is applied.
	Suspended bool
	// RollbackFrom and RollbackTo name the revisions of a rollback (a
	// revert mid-canary or to a promoted version), for the commit trailers.
	RollbackFrom, RollbackTo string
	// WakeAt, when set, is when the loop should look again without waiting
	// for the poll interval (a pause ending, a check falling due).
	WakeAt time.Time
}
