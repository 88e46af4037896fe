// Package v1alpha1 holds sluice's file formats: the Release that people write
// in release.yaml and the ReleaseStatus that the agent writes in status.yaml.
//
// Parsing is strict. Decode reports every problem of a file at once, each
// naming the file, the line and the field path, for example
//
//	releases/shop/cart/release.yaml:14: spec.strategy.canary.steps[2].setWeight: must be between 0 and 100, got 120
//
// and the same checks run in the agent and in `sluice validate`.
package v1alpha1
