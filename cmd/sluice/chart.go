package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"github.com/sluice-dev/sluice/chartvendor"
	"github.com/sluice-dev/sluice/internal/egress"
)

// chartFlags are chart pull's and chart update's.
type chartFlags struct {
	verbFlags
	into      string
	keyring   string
	plainHTTP bool
}

func (f *chartFlags) bind(cmd *cobra.Command) {
	f.verbFlags.bind(cmd, true)
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	cmd.Flags().StringVar(&f.keyring, "keyring", "", "OpenPGP keyring: the chart's provenance file is then required and verified against it")
	cmd.Flags().BoolVar(&f.plainHTTP, "plain-http", false, "talk to the OCI registry over plain HTTP (a local one)")
}

func (f *chartFlags) options() chartvendor.Options {
	return chartvendor.Options{Transport: egress.Transport(), Keyring: f.keyring, PlainHTTP: f.plainHTTP,
		Username: os.Getenv("HELM_REGISTRY_USERNAME"), Password: os.Getenv("HELM_REGISTRY_PASSWORD")}
}

func newChartCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chart",
		Short: "Vendor Helm charts into the repository (the agent never fetches one)",
	}
	cmd.AddCommand(newChartPullCommand(), newChartUpdateCommand())
	return cmd
}

func newChartPullCommand() *cobra.Command {
	var f chartFlags
	var version string
	cmd := &cobra.Command{
		Use:   "pull <repository-url|oci://registry/path> <chart> --version X",
		Short: "Fetch a chart version, check its digest, unpack it into the repository and commit",
		Long: `Pull fetches a chart from an HTTP chart repository (its index.yaml) or an
OCI registry with the Helm SDK's clients, checks the archive against the
digest the source publishes for it (and, with --keyring, its provenance
signature), unpacks it into --into/<chart> and commits it with trailers
naming the source, version and digest. --version takes a version or a
semver range (the highest match).`,
		Example: `  sluice chart pull https://stefanprodan.github.io/podinfo podinfo --version 6.7.1 --into charts/
  sluice chart pull oci://ghcr.io/stefanprodan/charts podinfo --version "~6.7" --push`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == "" {
				return &exitError{code: 2, msg: "--version is required (a version or a semver range)"}
			}
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			return vendorChart(cmd, c, &f, args[0], args[1], version, "")
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&version, "version", "", "the chart version, or a semver range (required)")
	cmd.Flags().StringVar(&f.into, "into", "charts", "the repository directory the chart is unpacked under (as <dir>/<chart>)")
	return cmd
}

func newChartUpdateCommand() *cobra.Command {
	var f chartFlags
	var versions string
	cmd := &cobra.Command{
		Use:   "update <chart-directory> --version RANGE",
		Short: "Vendor the newest version of a pulled chart within a semver range, and commit",
		Long: `Update reads where a vendored chart came from (the Sluice-Chart-Source
trailer of the commit that pulled it), asks that source for the highest
version within --version, and when it is newer than the vendored one
pulls it as chart pull does: checked, unpacked over the old one,
committed. With --push the commit goes to the remote, where a pull request
or the spec branch's review takes it.`,
		Example: `  sluice chart update charts/podinfo --version "^6"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			dir := filepath.Clean(args[0])
			current, err := loader.Load(filepath.Join(c.dir, dir))
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: not a chart: %v", dir, err)}
			}
			source, err := c.git("log", "-1", "--format=%(trailers:key=Sluice-Chart-Source,valueonly,separator=)", "--", dir)
			if err != nil || source == "" {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: no commit says where it came from (pull it once with sluice chart pull)", dir)}
			}
			f.into = filepath.Dir(dir)
			return vendorChart(cmd, c, &f, source, current.Name(), versions, current.Metadata.Version)
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&versions, "version", "*", "the semver range the new version must be in")
	return cmd
}

// vendorChart pulls, unpacks and commits a chart; with current set, only
// a newer version than it.
func vendorChart(cmd *cobra.Command, c *clone, f *chartFlags, source, name, version, current string) error {
	if strings.TrimSpace(f.into) == "" || filepath.IsAbs(f.into) || strings.HasPrefix(filepath.Clean(f.into), "..") {
		return &exitError{code: 2, msg: fmt.Sprintf("--into %q: a directory inside the repository", f.into)}
	}
	p, err := chartvendor.Pull(source, name, version, f.options())
	if err != nil {
		return fail(err)
	}
	out := cmd.OutOrStdout()
	if current != "" {
		cur, err1 := semver.NewVersion(current)
		next, err2 := semver.NewVersion(p.Version)
		if err1 == nil && err2 == nil && !next.GreaterThan(cur) {
			fmt.Fprintf(out, "%s %s is the newest within %s; nothing to commit\n", name, current, version)
			return nil
		}
	}
	dest, err := chartvendor.Unpack(p, filepath.Join(c.dir, f.into))
	if err != nil {
		return fail(err)
	}
	rel, _ := filepath.Rel(c.dir, dest)
	subject := fmt.Sprintf("vendor the %s chart %s", name, p.Version)
	if current != "" {
		subject = fmt.Sprintf("update the %s chart %s → %s", name, current, p.Version)
	}
	msg := fmt.Sprintf("%s\n\nSluice-Chart: %s\nSluice-Chart-Version: %s\nSluice-Chart-Source: %s\nSluice-Chart-Digest: %s\nSluice-Chart-Provenance: %s\n",
		subject, name, p.Version, p.Source, p.Digest, p.Provenance)
	if _, err := c.git("add", "-A", "--", rel); err != nil {
		return fail(err)
	}
	if _, err := c.git("commit", "-q", "-m", msg, "--", rel); err != nil {
		return fail(err)
	}
	sha, _ := c.git("rev-parse", "HEAD")
	fmt.Fprintf(out, "%s %s from %s into %s (%s, provenance %s) (commit %s)\n", name, p.Version, p.Source, rel, p.Digest, p.Provenance, short(sha))
	if f.push {
		if err := c.push(sha); err != nil {
			return fail(err)
		}
	}
	return nil
}
