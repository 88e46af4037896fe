package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCommand writes the CLI reference (one Markdown page a command)
// from the commands themselves: make docs runs it into docs/cli/, and a
// test checks the pages are up to date.
func newDocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "docs <dir>",
		Short:  "Write the CLI reference as Markdown pages into dir",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			return doc.GenMarkdownTree(root, args[0])
		},
	}
}
