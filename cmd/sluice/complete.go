package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Dynamic shell completion from the repository: release names for the
// verbs' <namespace/name>, and the release's gate names for approve.

// completeReleases completes the first argument with the releases under
// --path in the clone (-C).
func completeReleases(f *verbFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return releaseNames(f, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func releaseNames(f *verbFlags, prefix string) []string {
	files, _ := filepath.Glob(filepath.Join(f.dir, f.path, "*", "*", v1alpha1.ReleaseFile))
	var out []string
	for _, file := range files {
		dir := filepath.Dir(file)
		id := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// completeGates completes approve's arguments: the release, then the
// gates its strategy waits at.
func completeGates(f *verbFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return releaseNames(f, toComplete), cobra.ShellCompDirectiveNoFileComp
		case 1:
			file, err := f.clone().releaseFile(args[0])
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			data, err := os.ReadFile(filepath.Join(f.dir, file))
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			p, err := v1alpha1.ParseRelease(file, data)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var gates []string
			for _, s := range p.Release.Spec.Strategy.Steps() {
				if s.Pause != nil && s.Pause.Gate != "" && strings.HasPrefix(s.Pause.Gate, toComplete) {
					gates = append(gates, s.Pause.Gate)
				}
			}
			return gates, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}
