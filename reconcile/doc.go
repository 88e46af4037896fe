// Package reconcile applies a release's rendered objects to a cluster with
// server-side apply (github.com/fluxcd/pkg/ssa), one field manager, a
// dry-run of everything before any write, no write for unchanged objects,
// inventory-based pruning with a guard, kstatus health, and guard rails on
// namespaces and cluster-scoped objects.
//
// It returns change sets; it does not log. The agent logs and commits.
package reconcile
