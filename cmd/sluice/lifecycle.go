package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRetryCommand() *cobra.Command {
	var f verbFlags
	cmd := &cobra.Command{
		Use:   "retry <namespace/name>",
		Short: "Run the aborted canary revision again (a commit)",
		Long: `Retry sets spec.retry: {revision} to the aborted canary revision that
status.yaml on the status branch names, and commits. An aborted version is
otherwise not run again until its digest changes. The retry names its
revision, so it never restarts a later abort.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			st, err := c.status(args[0])
			if err != nil {
				return fail(err)
			}
			if st.AbortedRevision == "" {
				return &exitError{code: 1, msg: fmt.Sprintf("release %s has no aborted revision to retry (phase %s)", args[0], st.Phase)}
			}
			rev := short(st.AbortedRevision)
			sha, err := c.edit(cmd.Context(), args[0], fmt.Sprintf("retry %s at %s", args[0], rev), f.push, func(e *yamlEdit) error {
				return e.set(flow("revision", rev), "spec", "retry")
			})
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retry %s at %s (commit %s)\n", args[0], rev, short(sha))
			return nil
		},
	}
	f.bind(cmd, true)
	return cmd
}

// newSuspendCommand is suspend (on) or resume (off): spec.suspend.
func newSuspendCommand(on bool) *cobra.Command {
	var f verbFlags
	verb, short1 := "suspend", "Freeze a release where it stands: nothing applied, timers stopped (a commit)"
	if !on {
		verb, short1 = "resume", "Resume a suspended release where it stood (a commit)"
	}
	cmd := &cobra.Command{
		Use:   verb + " <namespace/name>",
		Short: short1,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			sha, err := c.edit(cmd.Context(), args[0], fmt.Sprintf("%s %s", verb, args[0]), f.push, func(e *yamlEdit) error {
				return e.set(fmt.Sprint(on), "spec", "suspend")
			})
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (commit %s)\n", verb, args[0], short(sha))
			return nil
		},
	}
	f.bind(cmd, true)
	return cmd
}
