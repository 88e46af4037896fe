// Package e2e holds sluice's end-to-end stories: the built sluice binary
// runs as a separate process against a real control plane, a real Git
// server over smart HTTP and a real Prometheus, with examples/ as fixtures.
// See README.md for the promise each scenario proves.
package e2e
