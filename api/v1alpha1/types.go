package v1alpha1

import (
	"encoding/json"
	"time"
)

// APIVersion and the kinds of sluice's files.
const (
	APIVersion        = "sluice.dev/v1alpha1"
	KindRelease       = "Release"
	KindReleaseStatus = "ReleaseStatus"
)

// Release is the spec of one release, written by people in
// releases/<namespace>/<name>/release.yaml and changed by pull requests.
type Release struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       ReleaseSpec `json:"spec"`
}

// ObjectMeta names a release: its name and the namespace its objects go to.
type ObjectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// ID is the release's name everywhere: "<namespace>/<name>".
func (r *Release) ID() string { return r.Metadata.Namespace + "/" + r.Metadata.Name }

// ReleaseSpec says what to deploy and how to roll it out.
type ReleaseSpec struct {
	// Source is where the manifests are.
	Source Source `json:"source"`
	// Workload is the object whose pod template is the version.
	Workload WorkloadRef `json:"workload"`
	// Traffic names the HTTPRoute and the stable Service; required by the
	// routed strategies (canary, blueGreen, abTest, shadow).
	Traffic *Traffic `json:"traffic,omitempty"`
	// Strategy holds exactly one strategy.
	Strategy Strategy `json:"strategy"`
	// Checks are the metric and webhook checks steps may run.
	Checks []Check `json:"checks,omitempty"`
	// Analysis measures checks in the background of a canary.
	Analysis *Analysis `json:"analysis,omitempty"`
	// OnFailure is rollback (default) or revert (also commit the restore of
	// the release's files as they were at the stable revision).
	OnFailure FailurePolicy `json:"onFailure,omitempty"`
	// Gates holds the approvals of manual gates.
	Gates Gates `json:"gates,omitempty"`
	// Promote skips the remaining steps of the named canary revision.
	Promote *Promote `json:"promote,omitempty"`
	// Abort aborts the named canary revision, as a failed check would.
	Abort *Abort `json:"abort,omitempty"`
	// Retry runs the aborted canary revision it names again (an aborted
	// version is otherwise not retried until its digest changes).
	Retry *Retry `json:"retry,omitempty"`
	// Suspend freezes the release where it stands: nothing is applied, no
	// transition is made, timers stop. false resumes it; the time spent
	// suspended does not count against a running pause.
	Suspend bool `json:"suspend,omitempty"`
	// ServiceAccountName, in the release's namespace, is who the agent
	// applies, prunes and reads the release's objects as (Kubernetes
	// impersonation), so the release can do only what that account's RBAC
	// allows. Empty: the agent's --default-service-account, else the
	// agent's own identity.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// ImageUpdates are the images the agent (with --image-updates) keeps
	// at the newest tag its registry has within a policy, by committing
	// the tag to the release's kustomization.
	ImageUpdates []ImageUpdate `json:"imageUpdates,omitempty"`
	// Promotion takes the release's version from another cluster's
	// release, once it has promoted it there (multi-cluster delivery).
	Promotion *Promotion `json:"promotion,omitempty"`
}

// Source locates the kustomization of a release.
type Source struct {
	// Path is the kustomization directory relative to release.yaml, inside
	// the repository. Default ".". With Helm, a kustomization there is
	// optional: the chart's render becomes one of its resources.
	Path string `json:"path,omitempty"`
	// Helm renders a chart kept in the repository, in-process and offline,
	// and feeds the result to the kustomization as a resource.
	Helm *HelmSource `json:"helm,omitempty"`
}

// WorkloadRef names the workload in the rendered source.
type WorkloadRef struct {
	// Kind is Deployment (the only kind supported in v1alpha1).
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Traffic names the objects sluice edits to shift traffic.
type Traffic struct {
	// Route is an HTTPRoute in the rendered source.
	Route string `json:"route"`
	// Service is the stable Service the route's backendRefs name.
	Service string `json:"service"`
}

// FailurePolicy says what happens to Git when a canary fails.
type FailurePolicy string

// The failure policies.
const (
	OnFailureRollback FailurePolicy = "rollback"
	OnFailureRevert   FailurePolicy = "revert"
)

// Strategy holds exactly one of its strategy fields, plus the settings
// every routed strategy shares.
type Strategy struct {
	Canary    *Canary    `json:"canary,omitempty"`
	BlueGreen *BlueGreen `json:"blueGreen,omitempty"`
	ABTest    *ABTest    `json:"abTest,omitempty"`
	Shadow    *Shadow    `json:"shadow,omitempty"`
	Rolling   *Rolling   `json:"rolling,omitempty"`
	Recreate  *Recreate  `json:"recreate,omitempty"`
	// RollbackWindow: a head whose version is one of the last Revisions
	// promoted versions is rolled back to at once, with no steps or checks.
	RollbackWindow *RollbackWindow `json:"rollbackWindow,omitempty"`
	// ScaleDownDelay keeps the previous stable version running, at full
	// size, for this long after the switch to a new one (routed
	// strategies), so a revert inside it is a route switch with no pod to
	// start; default 30s, 0s disables.
	ScaleDownDelay *Duration `json:"scaleDownDelay,omitempty"`
}

// DefaultScaleDownDelay is the scale-down delay when the spec sets none.
const DefaultScaleDownDelay = 30 * time.Second

// MaxScaleDownDelay bounds it: a previous version kept longer than a day
// is a second deployment, not a rollback aid.
const MaxScaleDownDelay = 24 * time.Hour

// KeepPrevious is how long the previous stable version keeps running after
// the switch to a new one.
func (s *Strategy) KeepPrevious() time.Duration {
	if s.ScaleDownDelay == nil {
		return DefaultScaleDownDelay
	}
	return s.ScaleDownDelay.Duration
}

// RollbackWindow is how many promoted versions a revert may return to at
// once; default 3, 0 disables.
type RollbackWindow struct {
	Revisions int32 `json:"revisions"`
}

// DefaultRollbackWindow is the rollback window when the spec sets none.
const DefaultRollbackWindow = 3

// Window is the number of promoted versions a head may roll back to at
// once.
func (s *Strategy) Window() int {
	if s.RollbackWindow == nil {
		return DefaultRollbackWindow
	}
	return int(s.RollbackWindow.Revisions)
}

// Canary is a weighted canary: either a list of steps, or manual mode where
// pull requests set Weight and the agent promotes at 100.
type Canary struct {
	Steps []Step `json:"steps,omitempty"`
	// Weight is manual mode: the canary's share of traffic, set by PRs.
	Weight *int32 `json:"weight,omitempty"`
	// Checks run the whole time in manual mode; a failure aborts.
	Checks []string `json:"checks,omitempty"`
}

// Step is one step of a canary; exactly one field is set.
type Step struct {
	SetWeight      *int32       `json:"setWeight,omitempty"`
	Pause          *Pause       `json:"pause,omitempty"`
	Check          []string     `json:"check,omitempty"`
	SetHeaderRoute *HeaderRoute `json:"setHeaderRoute,omitempty"`
	SetMirror      *Mirror      `json:"setMirror,omitempty"`
	SetCanaryScale *CanaryScale `json:"setCanaryScale,omitempty"`
}

// Pause waits for a duration or for the approval of a gate.
type Pause struct {
	Duration *Duration `json:"duration,omitempty"`
	Gate     string    `json:"gate,omitempty"`
}

// HeaderRoute sends matching requests to the canary.
type HeaderRoute struct {
	Name  string     `json:"name"`
	Match RouteMatch `json:"match"`
	// Weight is the canary's share of the matching requests; default 100.
	Weight *int32 `json:"weight,omitempty"`
}

// RouteMatch is a Gateway API HTTPRouteMatch restricted to headers and
// query parameters; the original rule's path match is kept.
type RouteMatch struct {
	Headers     []HeaderMatch `json:"headers,omitempty"`
	QueryParams []HeaderMatch `json:"queryParams,omitempty"`
}

// HeaderMatch matches one header or query parameter.
type HeaderMatch struct {
	Name string `json:"name"`
	// Type is Exact (default) or RegularExpression.
	Type  string `json:"type,omitempty"`
	Value string `json:"value"`
}

// Mirror copies a percent of the requests to the canary (RequestMirror).
type Mirror struct {
	Percent int32 `json:"percent"`
}

// CanaryScale sizes the canary: exactly one field is set.
type CanaryScale struct {
	Replicas           *int32 `json:"replicas,omitempty"`
	Percent            *int32 `json:"percent,omitempty"`
	MatchTrafficWeight bool   `json:"matchTrafficWeight,omitempty"`
}

// BlueGreen runs the canary at full size with no traffic, runs checks, then
// switches all traffic at once.
type BlueGreen struct {
	// PreviewMatch, when set, routes matching requests to the new version
	// before the switch.
	PreviewMatch *RouteMatch `json:"previewMatch,omitempty"`
	Checks       []string    `json:"checks,omitempty"`
	// Gate is a manual approval before the switch, unless AutoPromote.
	Gate        string `json:"gate,omitempty"`
	AutoPromote bool   `json:"autoPromote,omitempty"`
}

// ABTest routes the users that match to the canary, runs checks, and waits
// for a gate or a duration before promoting.
type ABTest struct {
	Match RouteMatch `json:"match"`
	// Weight is the share of matching requests the canary gets; default 100.
	Weight   *int32    `json:"weight,omitempty"`
	Checks   []string  `json:"checks,omitempty"`
	Duration *Duration `json:"duration,omitempty"`
	Gate     string    `json:"gate,omitempty"`
}

// Shadow mirrors a percent of the traffic to the canary, which answers
// nobody, runs checks for a duration, then promotes or stops.
type Shadow struct {
	Percent  int32     `json:"percent"`
	Duration *Duration `json:"duration,omitempty"`
	Checks   []string  `json:"checks,omitempty"`
	Gate     string    `json:"gate,omitempty"`
	// Promote, default true, promotes after the checks; false ends the run
	// with the stable version kept (a pure experiment).
	Promote *bool `json:"promote,omitempty"`
}

// Rolling applies the Deployment with a RollingUpdate strategy.
type Rolling struct {
	MaxSurge       *IntOrPercent `json:"maxSurge,omitempty"`
	MaxUnavailable *IntOrPercent `json:"maxUnavailable,omitempty"`
	// Checks run after the rollout; a failure rolls back.
	Checks []string `json:"checks,omitempty"`
}

// Recreate applies the Deployment with the Recreate strategy.
type Recreate struct {
	Checks []string `json:"checks,omitempty"`
}

// Check is a named metric or webhook check; exactly one provider is set.
type Check struct {
	Name string `json:"name"`
	// Template names a check defined once in the repository
	// (checks/<template>.yaml, see CheckTemplate); Args fill its
	// $(args.<name>) references. A check from a template sets nothing else.
	Template   TemplateRef       `json:"template,omitzero"`
	Args       map[string]string `json:"args,omitempty"`
	Prometheus *PrometheusCheck  `json:"prometheus,omitempty"`
	Webhook    *WebhookCheck     `json:"webhook,omitempty"`
	Compare    *CompareCheck     `json:"compare,omitempty"`
	// SuccessCondition compares the query's value, e.g. ">= 0.99".
	SuccessCondition string `json:"successCondition,omitempty"`
	// Interval between measurements; default 30s.
	Interval *Duration `json:"interval,omitempty"`
	// Count is how many measurements make a run; default 1.
	Count *int32 `json:"count,omitempty"`
	// FailureLimit is how many failed measurements are tolerated; default 0.
	FailureLimit *int32 `json:"failureLimit,omitempty"`
	// InconclusiveLimit is how many empty or NaN results are tolerated;
	// default 0.
	InconclusiveLimit *int32 `json:"inconclusiveLimit,omitempty"`
	// MinSamples is the fewest samples (prometheus.countQuery) a
	// measurement needs to count at all; below it the measurement is
	// neither a pass nor a failure and the canary waits at its weight for
	// more. Default: from successCondition, enough requests that the
	// error rate it guards would have shown up (MinSamplesFor).
	MinSamples *int32 `json:"minSamples,omitempty"`
	// SamplesTimeout bounds that wait; default 10m.
	SamplesTimeout *Duration `json:"samplesTimeout,omitempty"`
	// OnTooFewSamples is what happens when it passes: fail (default)
	// aborts, pause holds the canary Paused, still measuring.
	OnTooFewSamples string `json:"onTooFewSamples,omitempty"`
}

// PrometheusCheck queries Prometheus. Query is a Go template with .Release,
// .Namespace, .Stable and .Canary ({Service, Workload}).
type PrometheusCheck struct {
	Address string `json:"address"`
	Query   string `json:"query"`
	// CountQuery is how many samples (requests) the query's value is
	// based on, a template like Query; with it a measurement on too few
	// samples is not a verdict (see Check.MinSamples).
	CountQuery string    `json:"countQuery,omitempty"`
	Auth       *HTTPAuth `json:"auth,omitempty"`
}

// HTTPAuth is how a check reaches a Prometheus-compatible API
// (Prometheus, Thanos, Mimir, VictoriaMetrics) or a webhook that wants
// credentials. Secrets are read from the release's own namespace, never
// another.
type HTTPAuth struct {
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken *SecretKey `json:"bearerToken,omitempty"`
	// Basic is HTTP basic authentication.
	Basic *BasicAuth `json:"basic,omitempty"`
	// Headers are sent with every query, e.g. X-Scope-OrgID for a tenant.
	Headers map[string]string `json:"headers,omitempty"`
	// CA is a PEM bundle the server's certificate must chain to (https).
	CA *SecretKey `json:"ca,omitempty"`
	// Cert and Key are a PEM client certificate and its key, for a server
	// that wants mutual TLS; set both or neither.
	Cert *SecretKey `json:"cert,omitempty"`
	Key  *SecretKey `json:"key,omitempty"`
}

// SecretKey names one key of a Secret in the release's namespace.
type SecretKey struct {
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

// BasicAuth is a user name and a password from a Secret.
type BasicAuth struct {
	Username string    `json:"username"`
	Password SecretKey `json:"password"`
}

// WebhookCheck POSTs JSON; a 2xx answer passes, anything else fails.
type WebhookCheck struct {
	URL     string    `json:"url"`
	Timeout *Duration `json:"timeout,omitempty"`
	// Headers are sent with the request (values not secret; secrets go in
	// auth).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is a Go template of the JSON sent, over the check's context
	// ({{.Release}}, {{.Namespace}}, {{.Revision}}, {{.Step}}, {{.Check}},
	// {{.Canary.Service}}...; {{json .X}} quotes a value as JSON). Default:
	// the whole context as a JSON object.
	Body string    `json:"body,omitempty"`
	Auth *HTTPAuth `json:"auth,omitempty"`
}

// Gates holds approvals of manual gates, and the checks that may open a
// gate instead of a person.
type Gates struct {
	Approved []Approval `json:"approved,omitempty"`
	// Confirm opens a gate when a check passes (Flagger's confirm-promotion
	// webhook): a change-management system answering 2xx, say. The check
	// is measured at its interval while the canary waits at the gate; a
	// failed measurement only means "not yet".
	Confirm []ConfirmGate `json:"confirm,omitempty"`
}

// ConfirmGate names the check that opens a gate.
type ConfirmGate struct {
	Gate  string `json:"gate"`
	Check string `json:"check"`
}

// Approval passes the gate Gate for the canary revision Revision only.
type Approval struct {
	Gate     string `json:"gate"`
	Revision string `json:"revision"`
}

// Promote asks to skip the remaining steps of the canary revision Revision.
type Promote struct {
	Revision string `json:"revision"`
	// Force promotes even if checks have not passed.
	Force bool `json:"force,omitempty"`
}

// Retry asks to run the aborted canary revision Revision again.
type Retry struct {
	Revision string `json:"revision"`
}

// Abort asks to abort the canary revision Revision.
type Abort struct {
	Revision string `json:"revision"`
	Reason   string `json:"reason,omitempty"`
}

// Analysis is background analysis (Argo Rollouts' background analysis,
// Flagger's per-interval checks): its checks are measured at their
// intervals from the step StartingStep (0-based, default 0) until the
// promotion — during pauses, gates and manual mode too — and a failure
// beyond a check's failureLimit aborts the canary at whatever step it is.
// A check's count does not apply: it runs until the promotion.
//
// PostPromotion checks (Argo Rollouts' postPromotionAnalysis) run after a
// promotion's switch to the new version, each its count times at its
// interval: the previous version stays the stable track until they pass
// (and the scale-down delay is over), and a failure switches every request
// back to it and aborts the version.
//
// PreRollout checks (Flagger's pre-rollout webhooks) run once the canary's
// pods are ready and before it gets any traffic, each its count times at
// its interval; a failure beyond its failureLimit aborts the canary.
// PostRollout checks (Flagger's post-rollout webhooks) are called once when
// a rollout ends, promoted or not; their answers are reported (log, Event),
// never acted on.
type Analysis struct {
	Checks        []string      `json:"checks,omitempty"`
	StartingStep  int32         `json:"startingStep,omitempty"`
	PostPromotion PostPromotion `json:"postPromotion,omitzero"`
	PreRollout    []string      `json:"preRollout,omitempty"`
	PostRollout   []string      `json:"postRollout,omitempty"`
	// Baseline runs a baseline track beside a canary (Kayenta's
	// recommended setup): <workload>-baseline, the stable version at the
	// canary's size behind <service>-baseline, given the canary's share of
	// traffic out of the stable's (at most half of all). Compare checks
	// then judge the canary against it, like with like, instead of the
	// long-warm stable track.
	Baseline bool `json:"baseline,omitempty"`
}

// PostPromotion is the post-promotion analysis: its checks, and how long
// they watch. Without a duration each check runs its count times at its
// interval; with one, each runs at its interval for that long (count does
// not apply) and none may fail. `postPromotion: [a, b]` is short for
// `postPromotion: {checks: [a, b]}`.
type PostPromotion struct {
	Checks   []string  `json:"checks,omitempty"`
	Duration *Duration `json:"duration,omitempty"`
}

func (*PostPromotion) shorthandField() string { return "Checks" }

// UnmarshalJSON takes the short form too.
func (p *PostPromotion) UnmarshalJSON(b []byte) error {
	var list []string
	if json.Unmarshal(b, &list) == nil {
		*p = PostPromotion{Checks: list}
		return nil
	}
	type plain PostPromotion
	return json.Unmarshal(b, (*plain)(p))
}

// TemplateRef names a check template and, optionally, its arguments:
// `template: {name: success-rate, args: {threshold: "0.99"}}`, or
// `template: success-rate` with the check's own `args`.
type TemplateRef struct {
	Name string            `json:"name"`
	Args map[string]string `json:"args,omitempty"`
}

func (*TemplateRef) shorthandField() string { return "Name" }

// UnmarshalJSON takes the short form too.
func (t *TemplateRef) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*t = TemplateRef{Name: name}
		return nil
	}
	type plain TemplateRef
	return json.Unmarshal(b, (*plain)(t))
}

// TemplateArgs are the arguments of a check from a template, given beside
// template or inside it.
func (c *Check) TemplateArgs() map[string]string {
	if len(c.Template.Args) == 0 {
		return c.Args
	}
	if len(c.Args) == 0 {
		return c.Template.Args
	}
	all := map[string]string{}
	for k, v := range c.Args {
		all[k] = v
	}
	for k, v := range c.Template.Args {
		all[k] = v
	}
	return all
}

// CompareCheck judges the canary against the stable track, Kayenta's way:
// each metric is a PromQL template evaluated per track over the last
// Window at Step resolution ({{.Track}} is stable or canary, {{.Service}}
// and {{.Workload}} that track's, {{.Namespace}} and {{.Release}} as in
// other checks); a Mann-Whitney U test per metric classifies it Pass,
// High or Low; the score is the percentage of metrics not classified in
// their bad direction. A measurement passes at a score of at least Pass,
// fails below Marginal, and is inconclusive between them; too few samples
// per track (Check.MinSamples, default 8) are no verdict.
type CompareCheck struct {
	Address string    `json:"address"`
	Auth    *HTTPAuth `json:"auth,omitempty"`
	// Window of samples per measurement; default 1m.
	Window *Duration `json:"window,omitempty"`
	// Step between samples; default 5s.
	Step    *Duration       `json:"step,omitempty"`
	Metrics []CompareMetric `json:"metrics"`
	// Alpha is each test's significance level; default 0.05.
	Alpha *float64 `json:"alpha,omitempty"`
	// Pass and Marginal are score thresholds in percent; defaults 95, 75.
	Pass     *float64 `json:"pass,omitempty"`
	Marginal *float64 `json:"marginal,omitempty"`
}

// CompareMetric is one metric of a compare check.
type CompareMetric struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// Direction is the change that is bad: increase, decrease or either.
	Direction string `json:"direction"`
	// Tolerance is the largest difference of the tracks' medians, in the
	// metric's unit, that does not matter; default 0.
	Tolerance float64 `json:"tolerance,omitempty"`
}
