// Package judge compares a canary's measurements with a baseline's, the
// way Spinnaker's Kayenta does, inside the agent: a Mann-Whitney U test per
// metric (tie-corrected; exact for small samples without ties, the normal
// approximation otherwise — the choices and numbers of
// scipy.stats.mannwhitneyu, against which it is tested), a classification
// of each metric as Pass, High or Low given the direction that is bad and
// the effect that matters, and a score: the percentage of metrics that
// pass.
package judge
