package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// hostileCase is one directory of testdata/hostile laid over _base.
type hostileCase struct {
	name   string
	expect string
	files  map[string]string
}

func hostileCases(t *testing.T, hostport string) []hostileCase {
	t.Helper()
	root := "../../testdata/hostile"
	base := map[string]string{}
	entries, err := os.ReadDir(filepath.Join(root, "_base"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(root, "_base", e.Name()))
		base[e.Name()] = string(b)
	}
	dirs, _ := os.ReadDir(root)
	var cases []hostileCase
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "_base" {
			continue
		}
		c := hostileCase{name: d.Name(), files: map[string]string{}}
		for k, v := range base {
			c.files[k] = v
		}
		files, _ := os.ReadDir(filepath.Join(root, d.Name()))
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(root, d.Name(), f.Name()))
			if f.Name() == "expect" {
				c.expect = strings.TrimSpace(string(b))
				continue
			}
			c.files[f.Name()] = strings.ReplaceAll(string(b), "HOSTPORT", hostport)
		}
		if c.expect == "" {
			t.Fatalf("%s: no expect file", d.Name())
		}
		cases = append(cases, c)
	}
	if len(cases) < 15 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	return cases
}

// recorders start an HTTP server counting every request and a directory
// holding a `git` that counts every call.
func recorders(t *testing.T) (hostport string, fetches *atomic.Int64, gitDir, gitLog string) {
	t.Helper()
	fetches = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\ndata: {stolen: \"yes\"}\n"))
	}))
	t.Cleanup(srv.Close)
	gitDir = t.TempDir()
	gitLog = filepath.Join(gitDir, "calls")
	script := "#!/bin/sh\necho \"$@\" >> " + gitLog + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(gitDir, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), fetches, gitDir, gitLog
}

func gitCalls(gitLog string) int {
	b, err := os.ReadFile(gitLog)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// TestHostileInputs runs every case of testdata/hostile through `sluice
// validate` as a process and through the render in this process, beside
// a recording HTTP server and a recording git on PATH: each is refused
// with its expected reason, and nothing is fetched or executed. The
// in-process render has no second wall (egress.Deny runs in sluice's main
// only), so it proves the first one alone.
func TestHostileInputs(t *testing.T) {
	hostport, fetches, gitDir, gitLog := recorders(t)
	t.Setenv("PATH", gitDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cases := hostileCases(t, hostport)
	refused := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range c.files {
				p := filepath.Join(dir, "releases/hostile/app", name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(body), 0o644)
			}
			_, errs, code := run(t, dir, "validate", "releases/")
			if code != 1 || !strings.Contains(errs, c.expect) || !strings.Contains(errs, "releases/hostile/app/") {
				t.Errorf("sluice validate: exit %d, stderr:\n%s\nwant %q", code, errs, c.expect)
			}
			fsys, err := render.NewDiskFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			var r render.Renderer
			_, _, err = r.Load(context.Background(), fsys, fsys.Root(), "releases/hostile/app/release.yaml", "")
			var list v1alpha1.ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), c.expect) {
				t.Errorf("render: %v\nwant %q", err, c.expect)
				return
			}
			refused++
		})
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("%d HTTP fetches", n)
	}
	if n := gitCalls(gitLog); n != 0 {
		t.Errorf("%d git execs", n)
	}
	t.Logf("hostile: %d cases refused, %d fetches, %d execs", refused, fetches.Load(), gitCalls(gitLog))
}
