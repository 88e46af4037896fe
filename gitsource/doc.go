// Package gitsource is sluice's Git: a cheap "did the branch move?" poll,
// shallow fetches into an on-disk repository, file systems over the tree of
// any fetched commit for the render package (no work tree), and commits of
// status files pushed back without ever forcing, retried on rejection after
// the caller recomputes them against the new head.
package gitsource
