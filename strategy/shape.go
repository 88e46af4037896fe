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
	return routes.StateAt(d.steps, int(st.Step), st.Weight)
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
