package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsNameOnlyFilesThatExist: every repository path the README and
// docs/ mention (a Markdown link, or a `path/like/this.md` in code) is in
// the repository.
func TestDocsNameOnlyFilesThatExist(t *testing.T) {
	pages, _ := filepath.Glob("../../docs/*.md")
	pages = append(pages, "../../README.md", "../../examples/README.md", "../../e2e/README.md")
	link := regexp.MustCompile(`\]\(([^)#\s]+)`)
	mention := regexp.MustCompile("(?:^|[\\s`(])((?:docs|deploy|examples|hack|testdata|internal|cmd|api|render|agent|strategy|reconcile|gitsource|routes|e2e)/[\\w./-]*[\\w/])")
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			continue
		}
		text := string(b)
		var refs []string
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			if !strings.Contains(m[1], "://") && !strings.HasPrefix(m[1], "mailto:") {
				refs = append(refs, filepath.Join(filepath.Dir(page), m[1]))
			}
		}
		for _, m := range mention.FindAllStringSubmatch(text, -1) {
			refs = append(refs, filepath.Join("../..", strings.TrimSuffix(m[1], "/")))
		}
		for _, r := range refs {
			if strings.ContainsAny(r, "<>*{}$") {
				continue // a pattern, not a file
			}
			if _, err := os.Stat(r); err != nil {
				t.Errorf("%s names %s, which is not in the repository", strings.TrimPrefix(page, "../../"), strings.TrimPrefix(r, "../../"))
			}
		}
	}
}
