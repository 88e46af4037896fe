package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// The exit codes of sluice wait, for CI pipelines.
const (
	waitReached   = 0
	waitOtherEnd  = 1 // the release ended otherwise (aborted while waiting for Succeeded, ...)
	waitTimedOut  = 3
	waitPollEvery = 2 * time.Second
)

// endings are the phases a release stays in until the next change: once
// one that is not awaited is reached, waiting longer is pointless.
var endings = []v1alpha1.Phase{v1alpha1.PhaseSucceeded, v1alpha1.PhaseAborted, v1alpha1.PhaseRolledBack, v1alpha1.PhaseFailed}

func newWaitCommand() *cobra.Command {
	var f verbFlags
	var forPhase, revision string
	var timeout, interval time.Duration
	cmd := &cobra.Command{
		Use:   "wait <namespace/name>",
		Short: "Wait until a release reaches a phase (for CI pipelines)",
		Long: `Wait polls the release's status on the status branch (fetched from the
remote each time) until it reaches the phase --for names.

With --revision, the phase counts only for that version: the release's
canary (for Paused, Progressing, Aborted) or stable (for Succeeded) must be
that commit (a prefix is enough). Give the commit you pushed, so that the
status from before the push does not answer.

Exit status: 0 the phase was reached; 1 the release ended in another phase
(Aborted, RolledBack or Failed while waiting for Succeeded, ...); 2 a usage
error; 3 the timeout passed.`,
		Example: `  git push && sluice wait shop/cart --for=Succeeded --revision "$(git rev-parse HEAD)" --timeout 30m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			want := v1alpha1.Phase(forPhase)
			if !slices.Contains(v1alpha1.Phases(), want) {
				return &exitError{code: 2, msg: fmt.Sprintf("--for %q: want one of %v", forPhase, v1alpha1.Phases())}
			}
			c := f.clone()
			if _, err := c.releaseFile(args[0]); err != nil {
				return fail(err)
			}
			deadline := time.Now().Add(timeout)
			last := "no status yet"
			for {
				st, err := c.status(args[0])
				if err == nil {
					last = string(st.Phase)
					if forRevision(st, want, revision) {
						if st.Phase == want {
							fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], st.Phase)
							return nil
						}
						if slices.Contains(endings, st.Phase) {
							return &exitError{code: waitOtherEnd, msg: fmt.Sprintf("%s ended %s, not %s: %s", args[0], st.Phase, want, st.Message)}
						}
					}
				}
				if time.Now().After(deadline) {
					return &exitError{code: waitTimedOut, msg: fmt.Sprintf("timed out after %s waiting for %s to be %s (last: %s)", timeout, args[0], want, last)}
				}
				time.Sleep(interval)
			}
		},
	}
	cmd.Flags().StringVar(&forPhase, "for", string(v1alpha1.PhaseSucceeded), "the phase to wait for: "+phaseList())
	cmd.Flags().StringVar(&revision, "revision", "", "count the phase only for this commit (the canary's or, for Succeeded, the stable's)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long (exit 3)")
	cmd.Flags().DurationVar(&interval, "interval", waitPollEvery, "how often to fetch the status")
	f.bind(cmd, false)
	return cmd
}

// forRevision says whether st is about revision ("" : any).
func forRevision(st *v1alpha1.ReleaseStatus, want v1alpha1.Phase, revision string) bool {
	if revision == "" {
		return true
	}
	is := func(r *v1alpha1.Revision) bool { return r != nil && strings.HasPrefix(r.Revision, revision) }
	switch {
	case is(st.Canary):
		return true
	case st.Phase == v1alpha1.PhaseSucceeded:
		return is(st.Stable)
	case st.Phase == v1alpha1.PhaseAborted || st.Phase == v1alpha1.PhaseRolledBack:
		return strings.HasPrefix(st.AbortedRevision, revision) || want != v1alpha1.PhaseSucceeded && is(st.Stable)
	}
	return false
}

func phaseList() string {
	var s []string
	for _, p := range v1alpha1.Phases() {
		s = append(s, string(p))
	}
	return strings.Join(s, ", ")
}
