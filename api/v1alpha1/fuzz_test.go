package v1alpha1

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseRelease checks the parser never panics and that every error it
// returns is located in the file it was given.
func FuzzParseRelease(f *testing.F) {
	f.Add([]byte(validCanary))
	seeds, _ := filepath.Glob("../../testdata/invalid/*.yaml")
	examples, _ := filepath.Glob("../../examples/releases/*/*/release.yaml")
	for _, s := range append(seeds, examples...) {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseRelease("r/x/release.yaml", data)
		if err == nil {
			if p == nil || p.Release == nil {
				t.Fatal("no error and no release")
			}
			_ = p.Release.Spec.Strategy.Steps()
			return
		}
		list, ok := err.(ErrorList)
		if !ok || len(list) == 0 {
			t.Fatalf("error is %T, want a non-empty ErrorList", err)
		}
		for _, e := range list {
			if e.File != "r/x/release.yaml" {
				t.Fatalf("error names file %q", e.File)
			}
		}
	})
}
