package main

import (
	"fmt"
	"path"

	"github.com/spf13/cobra"
)

func newRollbackCommand() *cobra.Command {
	var f verbFlags
	cmd := &cobra.Command{
		Use:   "rollback <namespace/name>",
		Short: "Put a release's files back as they were at its last good version (a commit)",
		Long: `Rollback restores the release's directory as it was at the version to go
back to, and commits: with a canary in flight, the stable revision (the
canary ends as its version leaves the spec); otherwise the version promoted
before the current one, which the agent switches back to at once, with no
steps and no checks (it is in the rollback window, status.promoted).

Only the release's own directory is restored; a base it shares with other
releases is left as it is. --push pushes the commit.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			file, err := c.releaseFile(args[0])
			if err != nil {
				return fail(err)
			}
			st, err := c.status(args[0])
			if err != nil {
				return fail(err)
			}
			var to, why string
			switch {
			case st.Canary != nil && st.Stable != nil:
				to, why = st.Stable.Revision, "the stable version, ending the canary"
			case len(st.Promoted) > 0:
				to, why = st.Promoted[0].Revision, "the version promoted before the current one"
			default:
				return &exitError{code: 1, msg: fmt.Sprintf("release %s has no version to roll back to: no canary in flight and no earlier promotion in its rollback window", args[0])}
			}
			dir := path.Dir(file)
			if _, err := c.git("cat-file", "-e", to+":"+dir); err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("%s of %s is not in this clone, or had no %s: git fetch, then try again", short(to), args[0], dir)}
			}
			if _, err := c.git("rm", "-r", "-q", "--", dir); err != nil {
				return fail(err)
			}
			if _, err := c.git("checkout", to, "--", dir); err != nil {
				_, _ = c.git("checkout", "HEAD", "--", dir)
				return fail(err)
			}
			if out, _ := c.git("status", "--porcelain", "--", dir); out == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is already as at %s; nothing to commit\n", args[0], short(to))
				return nil
			}
			msg := fmt.Sprintf("rollback %s to %s (%s)", args[0], short(to), why)
			if _, err := c.git("commit", "-q", "-m", msg, "--", dir); err != nil {
				_, _ = c.git("reset", "-q", "--", dir)
				_, _ = c.git("checkout", "HEAD", "--", dir)
				return fail(err)
			}
			sha, _ := c.git("rev-parse", "HEAD")
			if f.push {
				if err := c.push(sha); err != nil {
					return fail(err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (commit %s)\n", msg, short(sha))
			return nil
		},
	}
	f.bind(cmd, true)
	return cmd
}
