package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/strategy"
)

func newStatusCommand() *cobra.Command {
	var f verbFlags
	var output string
	var watch, all bool
	var interval, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status [namespace/name]",
		Short: "Show releases' status from the status branch",
		Long: `Status reads status.yaml files from the status branch (fetched from the
remote first) and prints phase, step (k/n and what it does), weight, age of
the step, stable and canary revisions, the checks' last values. It never
touches the cluster.

With --watch it fetches again every --interval and prints the table anew
each time the status branch moves (on a terminal, in place), until
interrupted or --timeout passes.`,
		Example: `  sluice status
  sluice status shop/cart --watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			if len(args) == 1 && !all {
				if _, err := c.releaseFile(args[0]); err != nil {
					return fail(err)
				}
			}
			if all {
				if f.clusters, err = clusterNames(f.dir); err != nil {
					return fail(err)
				}
				if len(f.clusters) == 1 {
					c = f.cloneOf(f.clusters[0])
				}
			}
			if len(f.clusters) > 1 && !watch {
				// One table per cluster, each release named with its
				// cluster.
				for i, cl := range f.clusters {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					c := f.cloneOf(cl)
					if err := printStatus(cmd.OutOrStdout(), c, c.statusRef(), args, output); err != nil {
						return err
					}
				}
				return nil
			}
			if !watch {
				return printStatus(cmd.OutOrStdout(), c, c.statusRef(), args, output)
			}
			w := cmd.OutOrStdout()
			tty := false
			if f, ok := w.(*os.File); ok {
				if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
					tty = true
				}
			}
			var last string
			var deadline time.Time
			if timeout > 0 {
				deadline = time.Now().Add(timeout)
			}
			for {
				ref := c.statusRef()
				if head, err := c.git("rev-parse", "-q", "--verify", ref); err == nil && head != last {
					last = head
					if tty {
						fmt.Fprint(w, "\033[H\033[2J")
					}
					fmt.Fprintf(w, "%s  status %s\n", time.Now().Format(time.RFC3339), short(head))
					if err := printStatus(w, c, head, args, output); err != nil {
						return err
					}
					fmt.Fprintln(w)
				}
				if !deadline.IsZero() && time.Now().After(deadline) {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status anew each time the status branch moves")
	cmd.Flags().BoolVar(&all, "all-clusters", false, "every cluster of the repository (clusters/*), one table each")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "with --watch, how often to fetch")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with --watch, stop after this long (0: until interrupted)")
	f.bind(cmd, false)
	return cmd
}

// printStatus prints the releases' statuses at ref (all of them when ids
// is empty) as output asks.
func printStatus(w io.Writer, c *clone, ref string, ids []string, output string) error {
	if len(ids) == 0 {
		out, err := c.git("ls-tree", "-r", "--name-only", ref, "--", c.releasesPath)
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("no status branch %s yet: has the agent run? (%v)", c.statusBranch, err)}
		}
		for _, l := range strings.Split(out, "\n") {
			if path.Base(l) == v1alpha1.StatusFile {
				parts := strings.Split(path.Dir(l), "/")
				ids = append(ids, strings.Join(parts[len(parts)-2:], "/"))
			}
		}
		sort.Strings(ids)
	}
	var all []*v1alpha1.ReleaseStatus
	for _, id := range ids {
		st, err := c.statusAt(ref, id)
		if err != nil {
			return fail(err)
		}
		all = append(all, st)
	}
	switch output {
	case "yaml":
		for _, st := range all {
			b, _ := sigsyaml.Marshal(st)
			fmt.Fprintf(w, "---\n%s", b)
		}
		return nil
	case "json":
		b, _ := json.MarshalIndent(all, "", "  ")
		fmt.Fprintln(w, string(b))
		return nil
	case "", "table":
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("-o %q: want table, yaml or json", output)}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tPHASE\tSTEP\tWEIGHT\tAGE\tSTABLE\tCANARY\tCHECKS\tMESSAGE")
	for i, st := range all {
		stable, canary := "-", "-"
		if st.Stable != nil {
			stable = short(st.Stable.Revision)
		}
		if st.Canary != nil {
			canary = short(st.Canary.Revision)
		}
		checks := strategy.ChecksTrailer(st.Checks)
		if checks == "" {
			checks = "-"
		}
		msg := st.Message
		if st.Error != nil {
			msg = fmt.Sprintf("%s:%d: %s", st.Error.File, st.Error.Line, st.Error.Message)
		}
		age := "-"
		if st.StepStartedAt != nil {
			age = duration.HumanDuration(time.Since(*st.StepStartedAt))
		}
		name := ids[i]
		if c.cluster != "" {
			name = c.cluster + "/" + name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", name, st.Phase, c.stepOf(ids[i], st), st.Weight, age, stable, canary, checks, msg)
	}
	return tw.Flush()
}

// stepOf is the canary's step as people think of it, "2/3 pause{gate:
// qa}", from the release file in the clone; "-" with no canary in flight.
func (c *clone) stepOf(id string, st *v1alpha1.ReleaseStatus) string {
	if st.Canary == nil {
		return "-"
	}
	file, err := c.releaseFile(id)
	if err != nil {
		return fmt.Sprint(st.Step)
	}
	data, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		return fmt.Sprint(st.Step)
	}
	p, err := v1alpha1.ParseRelease(file, data)
	if err != nil {
		return fmt.Sprint(st.Step)
	}
	steps := p.Release.Spec.Strategy.Steps()
	if len(steps) == 0 {
		// Manual mode: pull requests move the weight; there are no steps.
		return "manual"
	}
	if int(st.Step) >= len(steps) {
		return fmt.Sprintf("%d/%d", st.Step+1, len(steps))
	}
	return fmt.Sprintf("%d/%d %s", st.Step+1, len(steps), steps[st.Step])
}

// statusRef fetches the status branch and names the ref to read.
func (c *clone) statusRef() string {
	if _, err := c.git("remote", "get-url", c.remote); err == nil {
		if _, err := c.git("fetch", "-q", c.remote, "+refs/heads/"+c.statusBranch+":refs/remotes/"+c.remote+"/"+c.statusBranch); err == nil {
			return c.remote + "/" + c.statusBranch
		}
	}
	return c.statusBranch
}

// historyRow is one transition of a release, from its commit's trailers.
type historyRow struct {
	Time     string `json:"time"`
	Phase    string `json:"phase"`
	Step     string `json:"step"`
	Weight   string `json:"weight"`
	Revision string `json:"revision"`
	Checks   string `json:"checks,omitempty"`
	Commit   string `json:"commit"`
	Subject  string `json:"subject"`
}

func newHistoryCommand() *cobra.Command {
	var f verbFlags
	var output string
	cmd := &cobra.Command{
		Use:   "history <namespace/name>",
		Short: "Show a release's transitions from the agent's commit trailers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			if err := checkReleaseName(args[0]); err != nil {
				return err // history outlives the release's files: no file check
			}
			if output == "svg" {
				return c.historySVG(cmd.Context(), cmd.OutOrStdout(), args[0])
			}
			ns, name, _ := strings.Cut(args[0], "/")
			ref := c.statusRef()
			out, err := c.git("log", "--format=%H%x1f%cI%x1f%B%x1e", ref, "--", path.Join(c.releasesPath, ns, name, v1alpha1.StatusFile))
			if err != nil {
				return fail(err)
			}
			var rows []historyRow
			for _, rec := range strings.Split(out, "\x1e") {
				parts := strings.SplitN(strings.TrimSpace(rec), "\x1f", 3)
				if len(parts) != 3 {
					continue
				}
				tr := gitsource.ParseTrailers(parts[2])
				if tr["Sluice-Release"] != args[0] {
					continue
				}
				subject, _, _ := strings.Cut(parts[2], "\n")
				rows = append(rows, historyRow{Time: parts[1], Phase: tr["Sluice-Phase"], Step: tr["Sluice-Step"], Weight: tr["Sluice-Weight"],
					Revision: tr["Sluice-Revision"], Checks: tr["Sluice-Checks"], Commit: parts[0], Subject: subject})
			}
			if len(rows) == 0 {
				return &exitError{code: 1, msg: "no history for " + args[0]}
			}
			return printAs(cmd.OutOrStdout(), output, rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tPHASE\tSTEP\tWEIGHT\tREVISION\tCHECKS\tCOMMIT\tSUBJECT")
				for _, r := range rows {
					checks := r.Checks
					if checks == "" {
						checks = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time, r.Phase, r.Step, r.Weight, short(r.Revision), checks, short(r.Commit), r.Subject)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml, json, or svg (the dashboard's timeline of the last rollout)")
	f.bind(cmd, false)
	return cmd
}
