// Package agent is the loop of DESIGN.md "The agent loop": poll Git, render
// the releases that changed, decide each release's next state with the
// strategy package, apply with the reconcile package, and commit every
// transition back to Git. Only this package and cmd/ log.
package agent
