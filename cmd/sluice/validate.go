package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// validateResult is one release file's verdict, for -o json|yaml.
type validateResult struct {
	File   string          `json:"file"`
	Valid  bool            `json:"valid"`
	Errors []validateError `json:"errors,omitempty"`
}

type validateError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// validateErrors splits a Load error into located errors.
func validateErrors(err error) []validateError {
	var list v1alpha1.ErrorList
	if !errors.As(err, &list) {
		return []validateError{{Message: err.Error()}}
	}
	out := make([]validateError, len(list))
	for i, e := range list {
		out[i] = validateError{File: e.File, Line: e.Line, Field: e.Field, Message: e.Message}
	}
	return out
}

func newValidateCommand() *cobra.Command {
	var rf renderFlags
	var output string
	cmd := &cobra.Command{
		Use:   "validate [path...]",
		Short: "Check release files exactly as the agent does",
		Long: `Validate parses every release.yaml at or below each path (a file is checked
whatever its name), renders its kustomization and checks that the workload,
HTTPRoute and Service the spec names are in the render. These are the checks
the agent runs before it applies anything, so validate can gate pull requests.

Errors go to stderr, one per line, as file:line: field: message; with
-o json or yaml, every release file's verdict goes to stdout instead.
Exit status: 0 when every release is valid, 1 when any is not.`,
		Example: `  sluice validate                 # every release under the current directory
  sluice validate releases/ examples/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			r, err := rf.renderer()
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			if output != "table" && output != "json" && output != "yaml" {
				return &exitError{code: 2, msg: fmt.Sprintf("-o %q: want table, yaml or json", output)}
			}
			var results []validateResult
			failed, checked, badPaths, skippedPaths := 0, 0, 0, 0
			for _, arg := range args {
				files, repo, err := releaseFiles(arg)
				var skipped v1alpha1.SkippedPaths
				switch {
				case errors.As(err, &skipped):
					// Reported as the agent skips them; the rest is checked.
					// One inside a release's directory fails that release
					// (reported with its errors below).
					for _, s := range outsideReleases(skipped, files) {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", repo.displayPath(s.Path), s.Reason)
						skippedPaths++
					}
				case err != nil:
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", arg, err)
					badPaths++
					continue
				}
				for _, f := range files {
					checked++
					res := validateResult{File: repo.displayPath(f), Valid: true}
					if _, _, err := r.Load(cmd.Context(), repo.fs, repo.fs.Root(), f, ""); err != nil {
						res.Valid, res.Errors = false, validateErrors(repo.display(err))
						if output == "table" {
							fmt.Fprintln(cmd.ErrOrStderr(), repo.display(err))
						}
						failed++
					}
					results = append(results, res)
				}
			}
			if output != "table" {
				if err := printAs(cmd.OutOrStdout(), output, results, nil); err != nil {
					return err
				}
			}
			switch {
			case checked == 0 && skippedPaths == 0:
				return &exitError{code: 1, msg: fmt.Sprintf("no release files checked in %s", strings.Join(args, ", "))}
			case failed > 0 || badPaths > 0 || skippedPaths > 0:
				msg := fmt.Sprintf("%d of %d release files invalid", failed, checked)
				if skippedPaths > 0 {
					msg += fmt.Sprintf("; %d paths skipped (the agent skips them too)", skippedPaths)
				}
				if badPaths > 0 {
					msg += fmt.Sprintf("; %d of %d paths unreadable or without release files", badPaths, len(args))
				}
				return &exitError{code: 1, msg: msg}
			}
			if output == "table" {
				fmt.Fprintf(cmd.OutOrStdout(), "%d release files valid\n", checked)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table (errors on stderr), yaml or json (every file's verdict on stdout)")
	rf.bind(cmd.Flags())
	return cmd
}

// outsideReleases keeps the skipped paths that are not inside a release
// file's directory.
func outsideReleases(skipped v1alpha1.SkippedPaths, files []string) v1alpha1.SkippedPaths {
	var out v1alpha1.SkippedPaths
	for _, s := range skipped {
		inside := false
		for _, f := range files {
			inside = inside || strings.HasPrefix(s.Path, path.Dir(f)+"/")
		}
		if !inside {
			out = append(out, s)
		}
	}
	return out
}

// releaseFiles lists the release files a path argument names, repository
// relative, with the repository they are in.
func releaseFiles(arg string) ([]string, *localRepo, error) {
	repo, err := openLocal(arg)
	if err != nil {
		return nil, nil, err
	}
	rel, err := repo.rel(arg)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(rel, "../") {
		return nil, nil, fmt.Errorf("outside the repository at %s", repo.fs.Root())
	}
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return []string{rel}, repo, nil
	}
	files, err := v1alpha1.FindReleases(repo.fs, repo.fs.Root(), rel)
	var skipped v1alpha1.SkippedPaths
	if err != nil && !errors.As(err, &skipped) {
		return nil, nil, err
	}
	if len(skipped) > 0 {
		return files, repo, skipped
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no %s found", v1alpha1.ReleaseFile)
	}
	return files, repo, nil
}

func newRenderCommand() *cobra.Command {
	var digest, versionDigest, showSecrets bool
	var rf renderFlags
	cmd := &cobra.Command{
		Use:   "render <release dir>",
		Short: "Print a release's rendered manifests",
		Long: `Render builds the kustomization of the release in the given directory (or
the given release.yaml) with the same safe settings as the agent, checks it
like validate, and prints the objects as YAML. With --digest it prints the
digest of the whole render instead; with --version-digest, the digest of what
a canary tests (the workload's pod template and the ConfigMaps and Secrets it
references).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rf.renderer()
			if err != nil {
				return fail(err)
			}
			repo, _, res, err := loadReleaseArg(cmd.Context(), args[0], r)
			if err != nil {
				return &exitError{code: 1, msg: repo.display(err).Error()}
			}
			switch {
			case digest:
				fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
				return nil
			case versionDigest:
				fmt.Fprintln(cmd.OutOrStdout(), res.VersionDigest)
				return nil
			}
			out := res.YAML
			if !showSecrets {
				if out, err = res.MaskedYAML(); err != nil {
					return err
				}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&digest, "digest", false, "print the digest of the whole render (sha256:...) instead of the YAML")
	cmd.Flags().BoolVar(&versionDigest, "version-digest", false, "print the version digest (workload pod template + referenced config) instead of the YAML")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print Secrets' values (masked as *** otherwise)")
	rf.bind(cmd.Flags())
	return cmd
}
