// Package strategy is the heart of sluice: pure functions that, given a
// release's spec, its status from Git, what the cluster shows, the clock and
// check results, decide the next status and the plan of objects to apply.
// No I/O happens here except in the check providers (checks_*.go), which
// the agent calls and whose results it feeds back.
//
// The traffic shape is derived from persisted fields only (step, weight,
// the spec's steps), so a restarted agent or a rebuilt cluster makes the
// same decision from Git alone.
package strategy
