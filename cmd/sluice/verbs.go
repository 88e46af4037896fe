package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/internal/egress"
	"github.com/sluice-dev/sluice/render"
)

// clone is a local clone the verbs work in.
type clone struct {
	dir          string
	releasesPath string
	statusBranch string
	remote       string
	cluster      string // "" outside a repository of several clusters
	checked      bool   // inside a Git work tree, asked once
}

func (c *clone) git(args ...string) (string, error) {
	cmd := egress.Command("git", append([]string{"-C", c.dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// releaseFile is the repository-relative release.yaml of "ns/name",
// checked before anything else a verb does: the clone (exit 1), the name's
// form (exit 2, the same for every verb), the release's file (exit 1).
func (c *clone) releaseFile(release string) (string, error) {
	if err := c.inClone(); err != nil {
		return "", err
	}
	if err := checkReleaseName(release); err != nil {
		return "", err
	}
	ns, name, _ := strings.Cut(release, "/")
	p := path.Join(c.releasesPath, ns, name, v1alpha1.ReleaseFile)
	if _, err := os.Stat(filepath.Join(c.dir, p)); err != nil {
		return "", &exitError{code: 1, msg: fmt.Sprintf("release %s not found: there is no %s in this clone (sluice status lists the releases)", release, p)}
	}
	return p, nil
}

// inClone says, in words, that the verb runs outside a Git clone (asked
// of git once per command).
func (c *clone) inClone() error {
	if c.cluster != "" {
		if err := v1alpha1.ValidateClusterName(c.cluster); err != nil {
			return &exitError{code: 2, msg: "--cluster: " + err.Error()}
		}
	}
	if c.checked {
		return nil
	}
	if out, err := c.git("rev-parse", "--is-inside-work-tree"); err != nil || out != "true" {
		return &exitError{code: 1, msg: fmt.Sprintf("%s is not inside a Git clone: run sluice in your clone of the release repository, or give -C <clone>", c.dir)}
	}
	c.checked = true
	return nil
}

// checkReleaseName refuses a bare name where <namespace>/<name> is needed
// (exit 2, for every verb).
func checkReleaseName(release string) error {
	ns, name, ok := strings.Cut(release, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return &exitError{code: 2, msg: fmt.Sprintf("release %q: want <namespace>/<name>, e.g. shop/cart", release)}
	}
	return nil
}

// fail is err as the verb's exit: its own code when it has one, else 1.
func fail(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee
	}
	return &exitError{code: 1, msg: err.Error()}
}

// status reads the release's status.yaml from the status branch, fetching
// it from the remote first when there is one.
func (c *clone) status(release string) (*v1alpha1.ReleaseStatus, error) {
	return c.statusAt(c.statusRef(), release)
}

// statusAt reads the release's status at ref, fetching nothing.
func (c *clone) statusAt(ref, release string) (*v1alpha1.ReleaseStatus, error) {
	if _, err := c.releaseFile(release); err != nil {
		return nil, err
	}
	ns, name, _ := strings.Cut(release, "/")
	file := path.Join(c.releasesPath, ns, name, v1alpha1.StatusFile)
	out, err := c.git("show", ref+":"+file)
	if err != nil {
		return nil, fmt.Errorf("no status for %s on %s yet (has the agent seen it?)", release, c.statusBranch)
	}
	var st v1alpha1.ReleaseStatus
	if err := sigsyaml.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("%s:%s: %w", ref, file, err)
	}
	return &st, nil
}

// gateRevision is the revision an approval of gate names: the upstream's
// stable version for the release's spec.promotion gate, else the canary's.
func (c *clone) gateRevision(release, gate string) (string, error) {
	if file, err := c.releaseFile(release); err == nil {
		if data, err := os.ReadFile(filepath.Join(c.dir, file)); err == nil {
			if p, err := v1alpha1.ParseRelease(file, data); err == nil && p.Release.Spec.Promotion != nil && p.Release.Spec.Promotion.Gate == gate {
				pr := p.Release.Spec.Promotion
				cluster, id := pr.Upstream()
				uc := &clone{dir: c.dir, releasesPath: v1alpha1.ClusterReleasesPath(cluster), statusBranch: v1alpha1.ClusterStatusBranch(cluster), remote: c.remote, cluster: cluster}
				st, err := uc.statusAt(uc.statusRef(), id)
				if err != nil {
					return "", fmt.Errorf("the promotion gate %q approves %s's stable version: %w", gate, pr.From, err)
				}
				if st.Stable == nil {
					return "", fmt.Errorf("%s has no stable version to approve yet (phase %s)", pr.From, st.Phase)
				}
				return st.Stable.Revision, nil
			}
		}
	}
	return c.canaryRevision(release)
}

// canaryRevision is the revision approvals, promote and abort must name.
func (c *clone) canaryRevision(release string) (string, error) {
	st, err := c.status(release)
	if err != nil {
		return "", err
	}
	if st.Canary == nil {
		return "", fmt.Errorf("release %s has no canary in flight (phase %s)", release, st.Phase)
	}
	return st.Canary.Revision, nil
}

// edit changes the release file by lines (comments and layout kept),
// refuses an invalid result, commits, and pushes if asked.
func (c *clone) edit(ctx context.Context, release, message string, push bool, change func(e *yamlEdit) error) (string, error) {
	// Git first: a verb that cannot commit must not leave a changed file.
	if out, err := c.git("rev-parse", "--is-inside-work-tree"); err != nil || out != "true" {
		return "", fmt.Errorf("%s is not a Git work tree: the verbs change the release file by a commit", c.dir)
	}
	file, err := c.releaseFile(release)
	if err != nil {
		return "", err
	}
	full := filepath.Join(c.dir, file)
	data, err := os.ReadFile(full)
	if err != nil {
		return "", err
	}
	e, err := newYAMLEdit(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if err := change(e); err != nil {
		return "", err
	}
	out := e.bytes()
	// Refuse what the agent would refuse: the same parse and render.
	if err := validateEdit(ctx, c.dir, file, out); err != nil {
		return "", fmt.Errorf("refusing the change, the result is invalid:\n%w", err)
	}
	if err := os.WriteFile(full, out, 0o644); err != nil {
		return "", err
	}
	if _, err := c.git("add", file); err != nil {
		return "", errors.Join(err, restore(full, data))
	}
	if _, err := c.git("commit", "-q", "-m", message, "--", file); err != nil {
		_, _ = c.git("reset", "-q", "--", file)
		return "", errors.Join(err, restore(full, data))
	}
	sha, _ := c.git("rev-parse", "HEAD")
	if push {
		return sha, c.push(sha)
	}
	return sha, nil
}

// push pushes the current branch; a rejection says what to do.
func (c *clone) push(sha string) error {
	branch, _ := c.git("rev-parse", "--abbrev-ref", "HEAD")
	if _, err := c.git("push", "-q", c.remote, "HEAD:"+branch); err != nil {
		if msg := err.Error(); strings.Contains(msg, "rejected") || strings.Contains(msg, "fetch first") || strings.Contains(msg, "non-fast-forward") {
			return fmt.Errorf("committed here as %s, not pushed: the remote has new commits; git pull --rebase and push again", short(sha))
		}
		return fmt.Errorf("committed here as %s, not pushed: %w", short(sha), err)
	}
	return nil
}

// restore puts the release file back as it was before a failed edit.
func restore(file string, data []byte) error {
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return fmt.Errorf("restoring %s: %w", file, err)
	}
	return nil
}

// validateEdit runs the agent's checks on the edited spec: parse, then
// render the (unchanged) source against it.
func validateEdit(ctx context.Context, dir, file string, data []byte) error {
	p, err := v1alpha1.ParseRelease(file, data)
	if err != nil {
		return err
	}
	fsys, err := render.NewDiskFS(dir)
	if err != nil {
		return err
	}
	rf := renderFlags{ageKeys: ageKeyEnv()}
	r, err := rf.renderer()
	if err != nil {
		return err
	}
	_, err = r.Render(ctx, render.Input{FS: fsys, Root: fsys.Root(), Release: p})
	return err
}

// flow writes key/value pairs as a one-line YAML flow mapping.
func flow(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if strings.ContainsAny(v, ":{}[],#&*!|>'\"%@`") || strings.TrimSpace(v) != v {
			v = strconv.Quote(v)
		}
		parts = append(parts, kv[i]+": "+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

type verbFlags struct {
	dir          string
	push         bool
	path         string
	statusBranch string
	remote       string
	clusters     []string
	flags        *pflag.FlagSet
}

func (f *verbFlags) bind(cmd *cobra.Command, commits bool) {
	if cmd.ValidArgsFunction == nil {
		cmd.ValidArgsFunction = completeReleases(f) // every such verb names a release first
	}
	cmd.Flags().StringVarP(&f.dir, "dir", "C", ".", "the local clone to work in")
	cmd.Flags().StringVar(&f.path, "path", "releases", "the releases directory in the repository")
	cmd.Flags().StringVar(&f.statusBranch, "status-branch", gitsource.DefaultStatusBranch, "the branch the agent writes status to")
	cmd.Flags().StringVar(&f.remote, "remote", "origin", "the remote to fetch status from and push to")
	cmd.Flags().StringSliceVar(&f.clusters, "cluster", nil, "in a repository of several clusters: the cluster's releases (clusters/<name>/releases) and status branch (sluice/status/<name>), unless --path and --status-branch say otherwise")
	f.flags = cmd.Flags()
	if commits {
		cmd.Flags().BoolVar(&f.push, "push", false, "push the commit to the remote")
	}
}

func (f *verbFlags) clone() *clone {
	c := &clone{dir: f.dir, releasesPath: f.path, statusBranch: f.statusBranch, remote: f.remote}
	if len(f.clusters) > 0 {
		return f.cloneOf(f.clusters[0])
	}
	return c
}

// cloneOf is the clone as one cluster's agent sees the repository.
func (f *verbFlags) cloneOf(cluster string) *clone {
	c := &clone{dir: f.dir, releasesPath: f.path, statusBranch: f.statusBranch, remote: f.remote, cluster: cluster}
	if f.flags == nil || !f.flags.Changed("path") {
		c.releasesPath = v1alpha1.ClusterReleasesPath(cluster)
	}
	if f.flags == nil || !f.flags.Changed("status-branch") {
		c.statusBranch = v1alpha1.ClusterStatusBranch(cluster)
	}
	return c
}

func newApproveCommand() *cobra.Command {
	var f verbFlags
	cmd := &cobra.Command{
		Use:               "approve <namespace/name> <gate>",
		ValidArgsFunction: completeGates(&f),
		Short:             "Approve a manual gate for the current canary revision (a commit)",
		Long: `Approve adds {gate, revision} to spec.gates.approved in the release file, for
the canary revision that status.yaml on the status branch names, and commits.
An approval names its revision, so it never passes the next version's gate.
It never touches the cluster; --push pushes the commit.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			gate := args[1]
			rev, err := c.gateRevision(args[0], gate)
			if err != nil {
				return fail(err)
			}
			if file, err := c.releaseFile(args[0]); err == nil {
				if data, err := os.ReadFile(filepath.Join(c.dir, file)); err == nil {
					if p, err := v1alpha1.ParseRelease(file, data); err == nil && p.Release.Spec.Gates.Passed(gate, rev) {
						fmt.Fprintf(cmd.OutOrStdout(), "%s is already approved for %s at %s; nothing to commit\n", gate, args[0], rev[:7])
						return nil
					}
				}
			}
			sha, err := c.edit(cmd.Context(), args[0], fmt.Sprintf("approve gate %s for %s at %s", gate, args[0], rev[:7]), f.push, func(e *yamlEdit) error {
				return e.appendItem(flow("gate", gate, "revision", rev[:7]), "spec", "gates", "approved")
			})
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s for %s at %s (commit %s)\n", gate, args[0], rev[:7], short(sha))
			return nil
		},
	}
	f.bind(cmd, true)
	return cmd
}

// canaryVerb runs the shared part of approve, abort and promote: find the
// canary revision status.yaml names, edit the release file for it, commit,
// push if asked, and report.
func canaryVerb(cmd *cobra.Command, f *verbFlags, release string, message func(rev string) string, change func(e *yamlEdit, rev string) error) error {
	c := f.clone()
	rev, err := c.canaryRevision(release)
	if err != nil {
		return fail(err)
	}
	msg := message(rev[:7])
	sha, err := c.edit(cmd.Context(), release, msg, f.push, func(e *yamlEdit) error {
		return change(e, rev)
	})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s (commit %s)\n", msg, short(sha))
	return nil
}

func newAbortCommand() *cobra.Command {
	var f verbFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "abort <namespace/name>",
		Short: "Abort the current canary (a commit; treated as a failed check)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg := func(rev string) string { return fmt.Sprintf("abort %s at %s: %s", args[0], rev, reason) }
			return canaryVerb(cmd, &f, args[0], msg, func(e *yamlEdit, rev string) error {
				kv := []string{"revision", rev[:7]}
				if reason != "" {
					kv = append(kv, "reason", reason)
				}
				return e.set(flow(kv...), "spec", "abort")
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the status and the audit trail")
	f.bind(cmd, true)
	return cmd
}

func newPromoteCommand() *cobra.Command {
	var f verbFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "promote <namespace/name>",
		Short: "Skip the remaining steps of the current canary (a commit)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg := func(rev string) string { return fmt.Sprintf("promote %s at %s", args[0], rev) }
			return canaryVerb(cmd, &f, args[0], msg, func(e *yamlEdit, rev string) error {
				v := flow("revision", rev[:7])
				if force {
					v = strings.TrimSuffix(v, "}") + ", force: true}"
				}
				return e.set(v, "spec", "promote")
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "promote even if the current step's checks have failures")
	f.bind(cmd, true)
	return cmd
}

func newSetWeightCommand() *cobra.Command {
	var f verbFlags
	cmd := &cobra.Command{
		Use:   "set-weight <namespace/name> <0-100>",
		Short: "Set a manual-mode canary's weight (a commit)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := strconv.Atoi(args[1])
			if err != nil || w < 0 || w > 100 {
				return &exitError{code: 1, msg: fmt.Sprintf("weight %q: want a whole number from 0 to 100", args[1])}
			}
			c := f.clone()
			sha, err := c.edit(cmd.Context(), args[0], fmt.Sprintf("set %s canary weight to %d", args[0], w), f.push, func(e *yamlEdit) error {
				if m, idx, _ := e.find("spec", "strategy", "canary", "steps"); m == nil || idx >= 0 {
					return errors.New("set-weight is for manual mode: spec.strategy.canary with weight and no steps")
				}
				return e.set(strconv.Itoa(w), "spec", "strategy", "canary", "weight")
			})
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "weight of %s set to %d (commit %s)\n", args[0], w, short(sha))
			return nil
		},
	}
	f.bind(cmd, true)
	return cmd
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
