package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/render"
	"github.com/sluice-dev/sluice/strategy"
)

func newStatusCommand() *cobra.Command {
	var f verbFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status [namespace/name]",
		Short: "Show releases' status from the status branch",
		Long: `Status reads status.yaml files from the status branch (fetched from the
remote first) and prints phase, step, weight, stable and canary revisions and
checks. It never touches the cluster.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			var ids []string
			if len(args) == 1 {
				ids = args
			} else {
				ref := c.statusRef()
				out, err := c.git("ls-tree", "-r", "--name-only", ref, "--", c.releasesPath)
				if err != nil {
					return &exitError{code: 1, msg: fmt.Sprintf("no status branch %s yet: %v", c.statusBranch, err)}
				}
				for _, l := range strings.Split(out, "\n") {
					if path.Base(l) == render.StatusFile {
						parts := strings.Split(path.Dir(l), "/")
						ids = append(ids, strings.Join(parts[len(parts)-2:], "/"))
					}
				}
				sort.Strings(ids)
			}
			var all []*v1alpha1.ReleaseStatus
			for _, id := range ids {
				st, err := c.status(id)
				if err != nil {
					return fail(err)
				}
				all = append(all, st)
			}
			w := cmd.OutOrStdout()
			switch output {
			case "yaml":
				for _, st := range all {
					b, _ := sigsyaml.Marshal(st)
					fmt.Fprintf(w, "---\n%s", b)
				}
			case "json":
				b, _ := json.MarshalIndent(all, "", "  ")
				fmt.Fprintln(w, string(b))
			case "", "table":
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RELEASE\tPHASE\tSTEP\tWEIGHT\tSTABLE\tCANARY\tCHECKS\tMESSAGE")
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
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", ids[i], st.Phase, st.Step, st.Weight, stable, canary, checks, msg)
				}
				tw.Flush()
			default:
				return &exitError{code: 2, msg: "-o must be table, yaml or json"}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	f.bind(cmd, false)
	return cmd
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
			if err := checkReleaseName(args[0]); err != nil {
				return err // history outlives the release's files: no file check
			}
			ns, name, _ := strings.Cut(args[0], "/")
			ref := c.statusRef()
			out, err := c.git("log", "--format=%H%x1f%cI%x1f%B%x1e", ref, "--", path.Join(c.releasesPath, ns, name, render.StatusFile))
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
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	f.bind(cmd, false)
	return cmd
}
