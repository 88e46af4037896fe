package main

import (
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/reconcile"
)

func newDiffCommand() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "diff <release dir>",
		Short: "Show what applying a release would change in the cluster",
		Long: `Diff renders the release in the given directory and dry-runs it against the
cluster with server-side apply: each object is listed as created, configured
(with a unified diff; Secret values masked), unchanged, or deleted (objects
labelled as the release's that the render no longer holds). Nothing is
written to the cluster.

Exit status, as kubectl diff: 0 no changes, 1 changes, 2 error.`,
		Example: `  sluice diff releases/shop/cart --kubeconfig ~/.kube/config`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, p, res, err := loadReleaseArg(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: 2, msg: repo.display(err).Error()}
			}
			cfg, err := reconcile.LoadConfig(kubeconfig)
			if err != nil {
				return &exitError{code: 2, msg: "kubeconfig: " + err.Error()}
			}
			m, err := reconcile.New(cfg, reconcile.Options{AllowClusterScoped: true})
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			id, ns := p.Release.ID(), p.Release.Metadata.Namespace
			live, err := reconcile.LiveInventory(cmd.Context(), cfg, id, ns)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			entries, err := m.Diff(cmd.Context(), reconcile.Set{Release: id, Namespace: ns, Objects: res.Objects}, live)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			changes := 0
			out := cmd.OutOrStdout()
			for _, e := range entries {
				fmt.Fprintf(out, "%-10s %s\n", e.Action, e.ID)
				if e.Diff != "" {
					fmt.Fprint(out, e.Diff)
				}
				if e.Action != ssa.UnchangedAction && e.Action != ssa.SkippedAction {
					changes++
				}
			}
			if changes > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config)")
	return cmd
}
