package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/internal/egress"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
	"github.com/sluice-dev/sluice/strategy"
)

func newDiffCommand() *cobra.Command {
	var kubeconfig, kubeContext string
	var f verbFlags
	var rf renderFlags
	cmd := &cobra.Command{
		Use:   "diff <release dir>",
		Short: "Show what the agent would apply for a release, against the cluster",
		Long: `Diff builds the objects the agent applies for the release as its status on
the status branch stands: the stable track rendered at stable.revision, the
canary track while a canary is live, the track labels and selectors, the
HTTPRoute with the canary's weights, header routes and mirror. It dry-runs
them against the cluster with server-side apply and lists each object as
created, configured (with a unified diff; Secret values masked), unchanged,
or deleted (objects of the release the agent would prune). Nothing is
written to the cluster.

With KUBECTL_EXTERNAL_DIFF set, that program is run on two directories
holding the live and the merged objects, as kubectl diff does.

Exit status, as kubectl diff: 0 no changes, 1 changes, 2 error.`,
		Example: `  sluice diff releases/shop/cart --kubeconfig ~/.kube/config --context prod`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := rf.renderer()
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			repo, p, head, err := loadReleaseArg(ctx, args[0], r)
			if err != nil {
				return &exitError{code: 2, msg: repo.display(err).Error()}
			}
			objs, inventory, err := desired(ctx, repo, &f, p, head, r)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			cfg, err := reconcile.LoadConfigContext(kubeconfig, kubeContext)
			if err != nil {
				return &exitError{code: 2, msg: "kubeconfig: " + err.Error()}
			}
			m, err := reconcile.New(cfg, reconcile.Options{Tenancy: rf.tenancy})
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			id, ns := p.Release.ID(), p.Release.Metadata.Namespace
			if inventory == nil {
				if inventory, err = reconcile.LiveInventory(ctx, cfg, id, ns); err != nil {
					return &exitError{code: 2, msg: err.Error()}
				}
			}
			entries, err := m.Diff(ctx, reconcile.Set{Release: id, Namespace: ns, Objects: objs}, inventory)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			changes := 0
			for _, e := range entries {
				if e.Action != ssa.UnchangedAction && e.Action != ssa.SkippedAction {
					changes++
				}
			}
			if ext := os.Getenv("KUBECTL_EXTERNAL_DIFF"); ext != "" {
				if err := externalDiff(cmd.OutOrStdout(), cmd.ErrOrStderr(), ext, entries); err != nil {
					return &exitError{code: 2, msg: err.Error()}
				}
			} else {
				out := cmd.OutOrStdout()
				for _, e := range entries {
					fmt.Fprintf(out, "%-10s %s\n", e.Action, e.ID)
					if e.Diff != "" {
						fmt.Fprint(out, e.Diff)
					}
				}
			}
			if changes > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "the kubeconfig context to use (default: the current one)")
	cmd.Flags().StringVar(&f.statusBranch, "status-branch", gitsource.DefaultStatusBranch, "the branch the agent writes status to")
	cmd.Flags().StringVar(&f.remote, "remote", "origin", "the remote to fetch status from")
	rf.bind(cmd.Flags())
	return cmd
}

// desired builds what the agent applies for the release as its status
// stands, with the agent's own function (strategy.Objects on
// strategy.Current), and returns the status's inventory (nil without a
// status: the live objects stand in for it).
func desired(ctx context.Context, repo *localRepo, f *verbFlags, p *v1alpha1.Parsed, head *render.Result, r *render.Renderer) ([]*unstructured.Unstructured, reconcile.Inventory, error) {
	root := repo.fs.Root()
	c := &clone{dir: root, statusBranch: f.statusBranch, remote: f.remote}
	headRev, _ := c.git("rev-parse", "HEAD")
	var st v1alpha1.ReleaseStatus
	if out, err := c.git("show", c.statusRef()+":"+path.Join(p.Dir(), v1alpha1.StatusFile)); err == nil {
		if err := sigsyaml.Unmarshal([]byte(out), &st); err != nil {
			return nil, nil, fmt.Errorf("%s on %s: %w", path.Join(p.Dir(), v1alpha1.StatusFile), f.statusBranch, err)
		}
	}
	if st.Phase == v1alpha1.PhaseRemoved {
		st = v1alpha1.ReleaseStatus{}
	}
	routed := p.Release.Spec.Strategy.Routed()
	in := strategy.Input{Spec: p.Release, HeadRevision: headRev, HeadDigest: head.Version(routed),
		Replicas: head.Replicas(), Status: st, Now: time.Now()}
	plan := strategy.Current(in)
	var stable *render.Result
	if st.Stable != nil && st.Stable.Revision != headRev && plan.Stable == strategy.StableFromStable {
		tree, err := gitsource.LocalTree(root, st.Stable.Revision)
		if err != nil {
			return nil, nil, fmt.Errorf("the stable revision %s is not in this clone (git fetch it): %w", short(st.Stable.Revision), err)
		}
		if _, stable, err = r.Load(ctx, tree, "/", p.File, ""); err != nil {
			return nil, nil, fmt.Errorf("rendering the stable revision %s: %w", short(st.Stable.Revision), err)
		}
	}
	objs, err := strategy.Objects(p.Release, head, stable, plan, head.Version(routed))
	if err != nil {
		return nil, nil, err
	}
	var inv reconcile.Inventory
	if st.Inventory != nil {
		inv = reconcile.Inventory(st.Inventory)
	}
	return objs, inv, nil
}

// externalDiff writes the live and merged objects into two directories,
// one file per object, and runs the program on them, as kubectl diff does
// with KUBECTL_EXTERNAL_DIFF (its exit status 1 means "differences").
func externalDiff(stdout, stderr io.Writer, program string, entries []reconcile.DiffEntry) error {
	tmp, err := os.MkdirTemp("", "sluice-diff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	live, merged := filepath.Join(tmp, "LIVE"), filepath.Join(tmp, "MERGED")
	for _, d := range []string{live, merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	for _, e := range entries {
		name := strings.NewReplacer("/", ".", ":", ".").Replace(e.ID)
		for dir, o := range map[string]*unstructured.Unstructured{live: e.Live, merged: e.Merged} {
			if o == nil {
				continue
			}
			y, err := reconcile.DiffYAML(o)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(y), 0o600); err != nil {
				return err
			}
		}
	}
	args := strings.Fields(program)
	cmd := egress.Command(args[0], append(args[1:], live, merged)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil
		}
		return fmt.Errorf("KUBECTL_EXTERNAL_DIFF %s: %w", program, err)
	}
	return nil
}
