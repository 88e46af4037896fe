package v1alpha1

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// HelmSource is a chart in the repository rendered as `helm template`
// renders it, without a helm binary and without the network.
type HelmSource struct {
	// Chart is the chart's directory: relative to release.yaml, or, when
	// no chart is there, to the repository's root. Dependencies are
	// vendored under its charts/ directory; nothing is fetched.
	Chart string `json:"chart"`
	// Values are values files merged in order over the chart's own
	// values.yaml, found as Chart is.
	Values []string `json:"values,omitempty"`
	// Set are values set last, as `helm template --set key=value` sets
	// them (dotted keys, list indexes, true/false and numbers typed).
	Set map[string]string `json:"set,omitempty"`
	// ReleaseName is .Release.Name; default the release's name.
	ReleaseName string `json:"releaseName,omitempty"`
	// IncludeCRDs adds the chart's crds/ directory to the render.
	IncludeCRDs bool `json:"includeCRDs,omitempty"`
	// Hooks says what becomes of the chart's hooks (objects annotated
	// helm.sh/hook): refuse (the default: the render fails, naming them),
	// include (applied with every other object, in no hook phase) or
	// exclude (left out). Test hooks are always left out.
	Hooks HookPolicy `json:"hooks,omitempty"`
}

// HookPolicy is what a Helm source does with the chart's hooks.
type HookPolicy string

// The hook policies.
const (
	HooksRefuse  HookPolicy = "refuse"
	HooksInclude HookPolicy = "include"
	HooksExclude HookPolicy = "exclude"
)

// Name is the Helm release name the chart is rendered with.
func (h *HelmSource) Name(release string) string {
	if h.ReleaseName != "" {
		return h.ReleaseName
	}
	return release
}

// Policy is the hook policy, refuse when unset.
func (h *HelmSource) Policy() HookPolicy {
	if h.Hooks == "" {
		return HooksRefuse
	}
	return h.Hooks
}

// HelmPaths are the candidate repository paths of a file or directory a
// Helm source names: beside release.yaml first, then from the root.
func (p *Parsed) HelmPaths(name string) []string {
	local := path.Join(p.Dir(), name)
	root := path.Clean(name)
	if local == root || root == ".." || strings.HasPrefix(root, "../") {
		return []string{local}
	}
	return []string{local, root}
}

func (v *validator) helm() {
	h := v.p.Release.Spec.Source.Helm
	if h == nil {
		return
	}
	if v.required("spec.source.helm.chart", h.Chart) {
		v.repoPath("spec.source.helm.chart", h.Chart)
	}
	for i, f := range h.Values {
		field := fmt.Sprintf("spec.source.helm.values[%d]", i)
		if v.required(field, f) {
			v.repoPath(field, f)
		}
	}
	keys := make([]string, 0, len(h.Set))
	for k := range h.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "=,") {
			v.errorf("spec.source.helm.set", "key %q: a value path like image.tag or list[0].name", k)
		}
	}
	if n := h.ReleaseName; n != "" {
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 || len(n) > 53 {
			v.errorf("spec.source.helm.releaseName", "%q: a Helm release name is a DNS label of at most 53 characters", n)
		}
	}
	switch h.Hooks {
	case "", HooksRefuse, HooksInclude, HooksExclude:
	default:
		v.errorf("spec.source.helm.hooks", "%q: want refuse, include or exclude", h.Hooks)
	}
}

// repoPath checks that a path a release names stays a relative path in
// this repository.
func (v *validator) repoPath(field, p string) {
	switch {
	case path.IsAbs(p) || strings.HasPrefix(p, `\`):
		v.errorf(field, "must be a path in this repository, relative to the release file, got %q", p)
	case strings.Contains(p, ":"):
		v.errorf(field, "must be a path in this repository, got %q: charts are vendored into Git (sluice chart pull), never fetched", p)
	case path.Join(v.p.Dir(), p) == ".." || strings.HasPrefix(path.Join(v.p.Dir(), p), "../"):
		v.errorf(field, "leaves the repository: %q resolves to %q", p, path.Join(v.p.Dir(), p))
	}
}
