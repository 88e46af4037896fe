package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sluiceBin is the binary built once for the tests that run the CLI as a
// user would.
var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", sluiceBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	lazyCluster.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs sluice in dir and returns stdout, stderr and the exit code.
func run(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

func TestValidateExamples(t *testing.T) {
	out, errs, code := run(t, "../..", "validate", "examples/")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.Contains(out, "7 release files valid") {
		t.Errorf("stdout = %q", out)
	}
}

// TestValidateInvalidCorpus runs validate on every invalid file from the
// repository root and wants exit 1 with exactly the expected lines.
func TestValidateInvalidCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/invalid/*.yaml")
	if len(files) < 25 {
		t.Fatalf("only %d invalid files", len(files))
	}
	for _, f := range files {
		rel := strings.TrimPrefix(f, "../../")
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, errs, code := run(t, "../..", "validate", rel)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errs)
			}
			if !strings.HasPrefix(errs, string(want)) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", errs, want)
			}
		})
	}
}

func TestValidateMixed(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples", dir)
	bad := filepath.Join(dir, "releases/demo/rolling/release.yaml")
	data, _ := os.ReadFile(bad)
	os.WriteFile(bad, []byte(strings.Replace(string(data), "maxSurge: 1", "maxSurge: lots", 1)), 0o644)
	_, errs, code := run(t, dir, "validate")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errs, "releases/demo/rolling/release.yaml:") || !strings.Contains(errs, "spec.strategy.rolling.maxSurge") {
		t.Errorf("stderr = %s", errs)
	}
	if !strings.Contains(errs, "1 of 7 release files invalid") {
		t.Errorf("summary missing: %s", errs)
	}
}

func TestRender(t *testing.T) {
	out, errs, code := run(t, "../..", "render", "examples/releases/demo/canary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden, err := os.ReadFile("../../render/testdata/golden/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(golden) {
		t.Errorf("render differs from the golden file")
	}
	d, _, code := run(t, "../..", "render", "examples/releases/demo/canary/release.yaml", "--digest")
	if code != 0 || !strings.HasPrefix(d, "sha256:") || len(strings.TrimSpace(d)) != 71 {
		t.Errorf("--digest printed %q (exit %d)", d, code)
	}
	v, _, _ := run(t, "../..", "render", "examples/releases/demo/canary", "--version-digest")
	if v == d || !strings.HasPrefix(v, "sha256:") {
		t.Errorf("--version-digest printed %q", v)
	}
	_, errs, code = run(t, "../..", "render", "testdata/invalid/weight-out-of-range.yaml")
	if code != 1 || !strings.Contains(errs, "must be between 0 and 100, got 120") {
		t.Errorf("render of an invalid file: exit %d, %s", code, errs)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, ".", "version")
	if code != 0 || !strings.HasPrefix(out, "sluice ") {
		t.Errorf("version: %q exit %d", out, code)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestValidateEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	_, errs, code := run(t, dir, "validate")
	if code != 1 || !strings.Contains(errs, "no release files checked in .") || strings.Contains(errs, "of 0 release files") {
		t.Errorf("validate on an empty directory: exit %d, stderr %s", code, errs)
	}
}

// Bad entries are reported as path: reason, as the agent skips them, and
// the releases beside them are still checked.
func TestValidateReportsSkippedPaths(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples", dir)
	bad := filepath.Join(dir, "releases/bad")
	os.MkdirAll(bad, 0o755)
	os.Symlink("loop-b", filepath.Join(bad, "loop-a"))
	os.Symlink("loop-a", filepath.Join(bad, "loop-b"))
	os.Symlink(t.TempDir(), filepath.Join(bad, "escape"))
	_, errs, code := run(t, dir, "validate", "releases/")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"releases/bad/loop-a: ", "releases/bad/escape: ", "0 of 7 release files invalid; 3 paths skipped"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

// A bad entry inside a release's directory fails that release, in validate
// and in render alike, with the same path: reason; the other releases are
// still valid.
func TestValidateAndRenderAgreeOnBadEntries(t *testing.T) {
	for name, plant := range map[string]func(dir string){
		"symlink loop": func(dir string) {
			os.Symlink("loop-b", filepath.Join(dir, "loop-a"))
			os.Symlink("loop-a", filepath.Join(dir, "loop-b"))
		},
		"escaping symlink": func(dir string) { os.Symlink(t.TempDir(), filepath.Join(dir, "loop-a")) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, "../../examples", dir)
			plant(filepath.Join(dir, "releases/demo/canary"))
			_, verrs, vcode := run(t, dir, "validate", "releases/")
			out, rerrs, rcode := run(t, dir, "render", "releases/demo/canary")
			if vcode != 1 || rcode != 1 {
				t.Fatalf("validate exit %d, render exit %d (both must fail)\nvalidate: %s\nrender: %s%s", vcode, rcode, verrs, rerrs, out)
			}
			want := "releases/demo/canary/loop-a: unreadable entry in the release's directory"
			if !strings.Contains(verrs, want) || !strings.Contains(rerrs, want) {
				t.Errorf("both must say %q\nvalidate: %s\nrender: %s", want, verrs, rerrs)
			}
			if !strings.Contains(verrs, "1 of 7 release files invalid") || strings.Contains(verrs, "paths skipped") {
				t.Errorf("validate summary: %s", verrs)
			}
			if _, errs, code := run(t, dir, "render", "releases/demo/rolling"); code != 0 {
				t.Errorf("a release beside it no longer renders: %s", errs)
			}
		})
	}
}

// TestRenderSOPS: an encrypted Secret renders with the age key from
// SOPS_AGE_KEY_FILE or --sops-age-key-file, its values masked unless
// --show-secrets; without a key, render and validate name the file.
func TestRenderSOPS(t *testing.T) {
	dir := t.TempDir()
	gitserver.Git(t, dir, "init", "-q")
	copyTree(t, "../../examples/releases/demo/rolling", filepath.Join(dir, "releases/demo/rolling"))
	enc, err := os.ReadFile("../../testdata/sops/secret.enc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(dir, "releases/demo/rolling")
	os.WriteFile(filepath.Join(rel, "db.sops.yaml"), enc, 0o644)
	k, _ := os.ReadFile(filepath.Join(rel, "kustomization.yaml"))
	os.WriteFile(filepath.Join(rel, "kustomization.yaml"), []byte(strings.Replace(string(k), "resources:\n", "resources:\n- db.sops.yaml\n", 1)), 0o644)
	key, _ := filepath.Abs("../../testdata/sops/test.agekey")

	out, errs, code := run(t, dir, "render", "releases/demo/rolling", "--sops-age-key-file", key)
	if code != 0 || !strings.Contains(out, "password: '***'") || strings.Contains(out, "s3cr3t-value") {
		t.Errorf("render: exit %d %s\n%s", code, errs, out)
	}
	t.Setenv("SOPS_AGE_KEY_FILE", key)
	out, errs, code = run(t, dir, "render", "releases/demo/rolling", "--show-secrets")
	if code != 0 || !strings.Contains(out, "s3cr3t-value") {
		t.Errorf("render --show-secrets: exit %d %s\n%s", code, errs, out)
	}
	if _, errs, code := run(t, dir, "validate", "releases"); code != 0 {
		t.Errorf("validate with the key: exit %d %s", code, errs)
	}
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	for _, verb := range []string{"render", "validate"} {
		_, errs, code := run(t, dir, verb, "releases/demo/rolling")
		if code != 1 || !strings.Contains(errs, "releases/demo/rolling/db.sops.yaml: encrypted with SOPS for age1") {
			t.Errorf("%s without a key: exit %d %s", verb, code, errs)
		}
	}
}
