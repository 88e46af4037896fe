package v1alpha1

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Parsed is a release file that decoded and validated: the release, where
// each field was written, and the file's path inside the repository.
type Parsed struct {
	Release *Release
	// File is the release file's path relative to the repository root.
	File string
	Pos  Positions
}

// Dir is the directory of the release file inside the repository.
func (p *Parsed) Dir() string { return path.Dir(p.File) }

// SourceDir is the kustomization directory inside the repository.
func (p *Parsed) SourceDir() string {
	src := p.Release.Spec.Source.Path
	if src == "" {
		src = "."
	}
	return path.Join(p.Dir(), src)
}

// Errorf returns an error located at field of this file.
func (p *Parsed) Errorf(field, format string, args ...any) *FieldError {
	return &FieldError{File: p.File, Line: p.Pos.Line(field), Field: field, Message: fmt.Sprintf(format, args...)}
}

// ParseRelease decodes and validates a release file. file is its path
// relative to the repository root, with forward slashes; it locates errors
// and bounds spec.source.path. All problems are returned, not the first.
func ParseRelease(file string, data []byte) (*Parsed, error) {
	var r Release
	pos, errs := decodeStrict(file, data, &r)
	p := &Parsed{Release: &r, File: file, Pos: pos}
	if len(errs) > 0 {
		// Decoding errors leave fields unset; semantic checks would only
		// add noise about the same lines.
		errs.Sort()
		return nil, errs
	}
	v := &validator{p: p}
	v.release()
	v.errs.Sort()
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return p, nil
}

type validator struct {
	p    *Parsed
	errs ErrorList
}

func (v *validator) errorf(field, format string, args ...any) {
	v.errs = append(v.errs, v.p.Errorf(field, format, args...))
}

func (v *validator) required(field, value string) bool {
	if strings.TrimSpace(value) == "" {
		v.errorf(field, "required")
		return false
	}
	return true
}

func (v *validator) weight(field string, w int32) {
	if w < 0 || w > 100 {
		v.errorf(field, "must be between 0 and 100, got %d", w)
	}
}

func (v *validator) dnsName(field, value string, label bool) {
	if !v.required(field, value) {
		return
	}
	var msgs []string
	if label {
		msgs = validation.IsDNS1123Label(value)
	} else {
		msgs = validation.IsDNS1123Subdomain(value)
	}
	if len(msgs) > 0 {
		v.errorf(field, "invalid name %q: %s", value, msgs[0])
	}
}

func (v *validator) release() {
	r := v.p.Release
	if r.APIVersion != APIVersion {
		v.errorf("apiVersion", "must be %s, got %q", APIVersion, r.APIVersion)
	}
	if r.Kind != KindRelease {
		v.errorf("kind", "must be %s, got %q", KindRelease, r.Kind)
	}
	v.dnsName("metadata.name", r.Metadata.Name, false)
	v.dnsName("metadata.namespace", r.Metadata.Namespace, true)
	v.source()
	v.helm()
	v.imageUpdates()
	v.promotion()
	s := &r.Spec
	if s.Workload.Kind != "Deployment" {
		v.errorf("spec.workload.kind", "must be Deployment, got %q", s.Workload.Kind)
	}
	v.dnsName("spec.workload.name", s.Workload.Name, false)
	if s.ServiceAccountName != "" {
		v.dnsName("spec.serviceAccountName", s.ServiceAccountName, false)
	}
	v.checks()
	v.strategy()
	v.analysis()
	switch s.OnFailure {
	case "", OnFailureRollback, OnFailureRevert:
	default:
		v.errorf("spec.onFailure", "must be rollback or revert, got %q", s.OnFailure)
	}
	v.gates()
	if s.Promote != nil {
		v.revision("spec.promote.revision", s.Promote.Revision)
	}
	if s.Abort != nil {
		v.revision("spec.abort.revision", s.Abort.Revision)
	}
	if s.Retry != nil {
		v.revision("spec.retry.revision", s.Retry.Revision)
	}
	if w := s.Strategy.RollbackWindow; w != nil && (w.Revisions < 0 || w.Revisions > 20) {
		v.errorf("spec.strategy.rollbackWindow.revisions", "must be 0 to 20, got %d", w.Revisions)
	}
	if d := s.Strategy.ScaleDownDelay; d != nil && (d.Duration < 0 || d.Duration > MaxScaleDownDelay) {
		v.errorf("spec.strategy.scaleDownDelay", "must be 0s to %s, got %s", MaxScaleDownDelay, d.Duration)
	}
}

var hexRevision = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

func (v *validator) revision(field, rev string) {
	if !v.required(field, rev) {
		return
	}
	if !hexRevision.MatchString(rev) {
		v.errorf(field, "must be a commit id (7 to 64 lowercase hex digits), got %q", rev)
	}
}

func (v *validator) source() {
	src := v.p.Release.Spec.Source.Path
	if src == "" {
		return
	}
	if path.IsAbs(src) || strings.HasPrefix(src, `\`) || (len(src) > 1 && src[1] == ':') {
		v.errorf("spec.source.path", "must be relative to the release file, got %q", src)
		return
	}
	if strings.Contains(src, "://") {
		v.errorf("spec.source.path", "must be a directory in this repository, got the URL %q", src)
		return
	}
	if joined := path.Join(v.p.Dir(), src); joined == ".." || strings.HasPrefix(joined, "../") {
		v.errorf("spec.source.path", "leaves the repository: %q resolves to %q", src, joined)
	}
}

func (v *validator) strategy() {
	s := &v.p.Release.Spec
	var set []string
	for _, n := range []struct {
		name string
		on   bool
	}{
		{"canary", s.Strategy.Canary != nil}, {"blueGreen", s.Strategy.BlueGreen != nil},
		{"abTest", s.Strategy.ABTest != nil}, {"shadow", s.Strategy.Shadow != nil},
		{"rolling", s.Strategy.Rolling != nil}, {"recreate", s.Strategy.Recreate != nil},
	} {
		if n.on {
			set = append(set, n.name)
		}
	}
	switch len(set) {
	case 0:
		v.errorf("spec.strategy", "exactly one strategy is required: canary, blueGreen, abTest, shadow, rolling or recreate")
		return
	case 1:
	default:
		v.errorf("spec.strategy", "exactly one strategy is allowed, got %s", strings.Join(set, " and "))
		return
	}
	if s.Strategy.Routed() {
		if s.Traffic == nil {
			v.errorf("spec.traffic", "required by the %s strategy (route and service)", set[0])
		} else {
			v.dnsName("spec.traffic.route", s.Traffic.Route, false)
			v.dnsName("spec.traffic.service", s.Traffic.Service, true)
		}
	} else if s.Traffic != nil {
		if s.Traffic.Route != "" {
			v.dnsName("spec.traffic.route", s.Traffic.Route, false)
		}
		if s.Traffic.Service != "" {
			v.dnsName("spec.traffic.service", s.Traffic.Service, true)
		}
	}
	base := "spec.strategy." + set[0]
	switch st := s.Strategy; {
	case st.Canary != nil:
		v.canary(base, st.Canary)
	case st.BlueGreen != nil:
		if st.BlueGreen.PreviewMatch != nil {
			v.match(base+".previewMatch", st.BlueGreen.PreviewMatch)
		}
		v.checkRefs(base+".checks", st.BlueGreen.Checks)
		if st.BlueGreen.AutoPromote && st.BlueGreen.Gate != "" {
			v.errorf(base+".gate", "cannot be set with autoPromote: true")
		}
	case st.ABTest != nil:
		v.match(base+".match", &st.ABTest.Match)
		if st.ABTest.Weight != nil {
			v.weight(base+".weight", *st.ABTest.Weight)
		}
		v.checkRefs(base+".checks", st.ABTest.Checks)
	case st.Shadow != nil:
		if st.Shadow.Percent < 1 || st.Shadow.Percent > 100 {
			v.errorf(base+".percent", "must be between 1 and 100, got %d", st.Shadow.Percent)
		}
		v.checkRefs(base+".checks", st.Shadow.Checks)
	case st.Rolling != nil:
		r := st.Rolling
		if r.MaxSurge != nil && r.MaxUnavailable != nil && r.MaxSurge.Value == 0 && r.MaxUnavailable.Value == 0 {
			v.errorf(base+".maxUnavailable", "maxSurge and maxUnavailable cannot both be 0")
		}
		v.checkRefs(base+".checks", r.Checks)
	case st.Recreate != nil:
		v.checkRefs(base+".checks", st.Recreate.Checks)
	}
}

func (v *validator) canary(base string, c *Canary) {
	if c.Weight != nil && len(c.Steps) > 0 {
		v.errorf(base+".weight", "cannot be set together with steps: weight is manual mode, steps are automatic")
		return
	}
	if c.Weight == nil && len(c.Steps) == 0 {
		v.errorf(base, "needs steps, or a weight for manual mode")
		return
	}
	if c.Weight != nil {
		v.weight(base+".weight", *c.Weight)
	}
	v.checkRefs(base+".checks", c.Checks)
	final := -1
	headerRoutes := map[string]int{}
	for i := range c.Steps {
		st := &c.Steps[i]
		p := fmt.Sprintf("%s.steps[%d]", base, i)
		if final >= 0 {
			v.errorf(p, "no step may follow setWeight: 100 (steps[%d]), which promotes", final)
			final = -2 // report once
		}
		n := 0
		for _, on := range []bool{st.SetWeight != nil, st.Pause != nil, st.Check != nil, st.SetHeaderRoute != nil, st.SetMirror != nil, st.SetCanaryScale != nil} {
			if on {
				n++
			}
		}
		if n != 1 {
			v.errorf(p, "a step holds exactly one of setWeight, pause, check, setHeaderRoute, setMirror, setCanaryScale; got %d", n)
			continue
		}
		switch {
		case st.SetWeight != nil:
			v.weight(p+".setWeight", *st.SetWeight)
			if *st.SetWeight == 100 && final == -1 {
				final = i
			}
		case st.Pause != nil:
			if (st.Pause.Duration == nil) == (st.Pause.Gate == "") {
				v.errorf(p+".pause", "set exactly one of duration or gate")
			} else if st.Pause.Gate != "" {
				v.dnsName(p+".pause.gate", st.Pause.Gate, true)
			}
		case st.Check != nil:
			if len(st.Check) == 0 {
				v.errorf(p+".check", "names no check")
			}
			v.checkRefs(p+".check", st.Check)
		case st.SetHeaderRoute != nil:
			h := st.SetHeaderRoute
			if v.required(p+".setHeaderRoute.name", h.Name) {
				v.dnsName(p+".setHeaderRoute.name", h.Name, true)
				if prev, dup := headerRoutes[h.Name]; dup && prev != i {
					v.errorf(p+".setHeaderRoute.name", "%q is already used by steps[%d]; use setHeaderRoute with the same name only to change it", h.Name, prev)
				}
			}
			headerRoutes[h.Name] = i
			v.match(p+".setHeaderRoute.match", &h.Match)
			if h.Weight != nil {
				v.weight(p+".setHeaderRoute.weight", *h.Weight)
			}
		case st.SetMirror != nil:
			if st.SetMirror.Percent < 0 || st.SetMirror.Percent > 100 {
				v.errorf(p+".setMirror.percent", "must be between 0 and 100, got %d", st.SetMirror.Percent)
			}
		case st.SetCanaryScale != nil:
			cs := st.SetCanaryScale
			k := 0
			if cs.Replicas != nil {
				k++
				if *cs.Replicas < 0 {
					v.errorf(p+".setCanaryScale.replicas", "must not be negative, got %d", *cs.Replicas)
				}
			}
			if cs.Percent != nil {
				k++
				v.weight(p+".setCanaryScale.percent", *cs.Percent)
			}
			if cs.MatchTrafficWeight {
				k++
			}
			if k != 1 {
				v.errorf(p+".setCanaryScale", "set exactly one of replicas, percent or matchTrafficWeight")
			}
		}
	}
	// Ending without 100 is allowed: the end of the steps promotes, as in
	// Argo Rollouts.
}

// headerName is Gateway API's HTTPHeaderName pattern.
var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$")

func (v *validator) match(base string, m *RouteMatch) {
	if len(m.Headers) == 0 && len(m.QueryParams) == 0 {
		v.errorf(base, "needs at least one header or query parameter match")
	}
	if len(m.Headers) > 16 {
		v.errorf(base+".headers", "at most 16 header matches are allowed, got %d", len(m.Headers))
	}
	if len(m.QueryParams) > 16 {
		v.errorf(base+".queryParams", "at most 16 query parameter matches are allowed, got %d", len(m.QueryParams))
	}
	for _, list := range []struct {
		field string
		ms    []HeaderMatch
	}{{"headers", m.Headers}, {"queryParams", m.QueryParams}} {
		seen := map[string]bool{}
		for i, h := range list.ms {
			p := fmt.Sprintf("%s.%s[%d]", base, list.field, i)
			if v.required(p+".name", h.Name) {
				if len(h.Name) > 256 || !headerName.MatchString(h.Name) {
					v.errorf(p+".name", "invalid name %q", h.Name)
				}
				if seen[strings.ToLower(h.Name)] {
					v.errorf(p+".name", "%q is matched twice", h.Name)
				}
				seen[strings.ToLower(h.Name)] = true
			}
			switch h.Type {
			case "", "Exact":
			case "RegularExpression":
				if _, err := regexp.Compile(h.Value); err != nil {
					v.errorf(p+".value", "invalid regular expression: %v", err)
				}
			default:
				v.errorf(p+".type", "must be Exact or RegularExpression (Gateway API), got %q", h.Type)
			}
			if len(h.Value) > 4096 {
				v.errorf(p+".value", "longer than 4096 characters")
			}
		}
	}
}

func (v *validator) analysis() {
	a := v.p.Release.Spec.Analysis
	if a == nil {
		return
	}
	st := &v.p.Release.Spec.Strategy
	if !st.Routed() || st.Shadow != nil {
		v.errorf("spec.analysis", "background analysis runs beside a canary's steps: canary, blueGreen or abTest")
		return
	}
	if a.Baseline && (st.Canary == nil || st.Manual()) {
		v.errorf("spec.analysis.baseline", "a baseline track takes the canary's weight: canary with steps only")
	}
	if len(a.Checks)+len(a.PostPromotion.Checks)+len(a.PreRollout)+len(a.PostRollout) == 0 && !a.Baseline {
		v.errorf("spec.analysis", "names no check: set checks (background), preRollout, postPromotion or postRollout")
	}
	v.checkRefs("spec.analysis.checks", a.Checks)
	v.checkRefs("spec.analysis.postPromotion.checks", a.PostPromotion.Checks)
	if d := a.PostPromotion.Duration; d != nil && len(a.PostPromotion.Checks) == 0 {
		v.errorf("spec.analysis.postPromotion.duration", "names no check to run for %s: set postPromotion.checks", d)
	}
	v.checkRefs("spec.analysis.preRollout", a.PreRollout)
	v.checkRefs("spec.analysis.postRollout", a.PostRollout)
	if n := int32(len(st.Steps())); a.StartingStep < 0 || (n > 0 && a.StartingStep >= n) {
		v.errorf("spec.analysis.startingStep", "must be a step index, 0 to %d, got %d", max(n-1, 0), a.StartingStep)
	}
}

func (v *validator) checkRefs(field string, names []string) {
	for i, n := range names {
		if v.p.Release.Spec.CheckByName(n) == nil {
			v.errorf(fmt.Sprintf("%s[%d]", field, i), "check %q is not defined in spec.checks", n)
		}
	}
}

// optionalURL is url for an address the agent may default (a Prometheus
// address: --prometheus-address).
func (v *validator) optionalURL(field, raw string) {
	if raw != "" {
		v.url(field, raw)
	}
}

func (v *validator) url(field, raw string) {
	if !v.required(field, raw) {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf(field, "must be an http or https URL, got %q", raw)
		return
	}
	if u.User != nil {
		v.errorf(field, "must not hold credentials; the URL is written to logs and status")
	}
}

func (v *validator) gates() {
	s := &v.p.Release.Spec
	named := map[string]bool{}
	for _, g := range s.Strategy.Gates() {
		named[g] = true
	}
	if s.Promotion != nil && s.Promotion.Gate != "" {
		named[s.Promotion.Gate] = true // approved for an upstream version
	}
	for i, a := range s.Gates.Approved {
		p := fmt.Sprintf("spec.gates.approved[%d]", i)
		if v.required(p+".gate", a.Gate) && !named[a.Gate] {
			v.errorf(p+".gate", "no pause step names the gate %q%s", a.Gate, gateHint(s.Strategy.Gates()))
		}
		v.revision(p+".revision", a.Revision)
	}
	confirmed := map[string]int{}
	for i, c := range s.Gates.Confirm {
		p := fmt.Sprintf("spec.gates.confirm[%d]", i)
		if v.required(p+".gate", c.Gate) {
			if !named[c.Gate] {
				v.errorf(p+".gate", "no pause step names the gate %q%s", c.Gate, gateHint(s.Strategy.Gates()))
			}
			if prev, dup := confirmed[c.Gate]; dup {
				v.errorf(p+".gate", "gate %q is already confirmed by spec.gates.confirm[%d]", c.Gate, prev)
			}
			confirmed[c.Gate] = i
		}
		if v.required(p+".check", c.Check) && s.CheckByName(c.Check) == nil {
			v.errorf(p+".check", "check %q is not defined in spec.checks", c.Check)
		}
	}
}

func gateHint(gates []string) string {
	if len(gates) == 0 {
		return " (the strategy has no gates)"
	}
	return fmt.Sprintf(" (gates: %s)", strings.Join(gates, ", "))
}
