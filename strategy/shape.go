package strategy

import (
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/routes"
)

// route derives the traffic shape from persisted fields only: the weight
// in status and the header routes and mirror of the steps already done.
func (d *decision) route() RouteState {
	st := d.st()
	if st.Phase == v1alpha1.PhasePromoting {
		return RouteState{Canary: true, Weight: 100}
	}
	rs := routes.StateAt(d.steps, int(st.Step), st.Weight)
	if d.baseline() {
		rs.Baseline = min(st.Weight, 100-st.Weight)
	}
	return rs
}

// baseline says whether a baseline track runs beside the canary: asked
// for, and the canary in flight is being stepped (not promoting, not a
// rollback).
func (d *decision) baseline() bool {
	st := d.st()
	return BaselineOn(d.spec, st)
}

// BaselineOn says whether the release runs a baseline track in status st.
func BaselineOn(spec *v1alpha1.ReleaseSpec, st *v1alpha1.ReleaseStatus) bool {
	a := spec.Analysis
	return a != nil && a.Baseline && st.Canary != nil && st.Stable != nil && st.Phase != v1alpha1.PhasePromoting && !st.Rollback
}

// canaryReplicas follows the last setCanaryScale done, else the workload's
// replicas.
func (d *decision) canaryReplicas() int32 {
	st := d.st()
	replicas := d.in.Replicas
	var scale *v1alpha1.CanaryScale
	for i, s := range d.steps {
		if i >= int(st.Step) {
			break
		}
		if s.SetCanaryScale != nil {
			scale = s.SetCanaryScale
		}
	}
	switch {
	case scale == nil:
		return replicas
	case scale.Replicas != nil:
		return *scale.Replicas
	case scale.Percent != nil:
		return ceilShare(replicas, *scale.Percent)
	default: // matchTrafficWeight
		return ceilShare(replicas, d.route().Weight)
	}
}

// ceilShare is ceil(n*pct/100), at least 1 when pct > 0.
func ceilShare(n, pct int32) int32 {
	v := (n*pct + 99) / 100
	if v == 0 && pct > 0 {
		v = 1
	}
	return v
}
