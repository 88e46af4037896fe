package main

import (
	"fmt"
	"io"
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
		Version:       currentBuild().String(),
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
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newAgentCommand(), newValidateCommand(), newRenderCommand(), newDiffCommand(),
		newApproveCommand(), newAbortCommand(), newPromoteCommand(), newSetWeightCommand(),
		newRetryCommand(), newSuspendCommand(true), newSuspendCommand(false),
		newRollbackCommand(), newStatusCommand(), newHistoryCommand(), newDashboardCommand(), newPipelineCommand(), newWaitCommand(), newVersionCommand(), newInstallCommand(), newChartCommand(), newImagesCommand(), newDocsCommand())
	return root
}

// buildInfo is what sluice version prints.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// commit and date are set at build time with -ldflags "-X main.commit=...";
// otherwise Go's VCS stamp of the build says them.
var commit, date string

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			}
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func (b buildInfo) String() string {
	return fmt.Sprintf("sluice %s (commit %s, %s, %s, %s)", b.Version, short(b.Commit), b.Date, b.GoVersion, b.Platform)
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print sluice's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := currentBuild()
			return printAs(cmd.OutOrStdout(), output, b, func(w io.Writer) { fmt.Fprintln(w, b) })
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	return cmd
}
