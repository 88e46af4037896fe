package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "GitOps progressive delivery where every rollout step lives in Git",
		Long: `sluice reconciles a Git repository of release files into a Kubernetes cluster
and walks each release through its rollout strategy (canary, blue-green, A/B,
shadow, rolling, recreate) by editing Gateway API HTTPRoutes. Every transition
is committed back to Git, so git log is the audit trail and git revert is a
rollback.

A release lives in releases/<namespace>/<name>/release.yaml next to its
kustomization. See docs/release-reference.md for the file format.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			// One-shot commands render once and exit: trading memory for
			// fewer garbage collections makes kustomize's allocation-heavy
			// build about 15% faster. The long-running agent keeps the
			// default. GOGC, when set, wins.
			if _, set := os.LookupEnv("GOGC"); !set && cmd.Name() != "agent" {
				debug.SetGCPercent(400)
			}
		},
	}
	root.AddCommand(newAgentCommand(), newValidateCommand(), newRenderCommand(), newDiffCommand(),
		newApproveCommand(), newAbortCommand(), newPromoteCommand(), newSetWeightCommand(),
		newRetryCommand(), newSuspendCommand(true), newSuspendCommand(false),
		newStatusCommand(), newHistoryCommand(), newVersionCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print sluice's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sluice %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
