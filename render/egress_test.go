package render

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/internal/egress"
)

// wallChild is the environment variable that makes the test binary, re-run
// by TestSecondWall, build a kustomization with kustomize directly (no
// first wall) after egress.Deny, as sluice's main does.
const wallChild = "SLUICE_SECOND_WALL_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(wallChild); dir != "" {
		egress.Deny()
		fsys, err := NewDiskFS(dir)
		if err == nil {
			_, _, err = kustomize(fsys, fsys.Root())
		}
		fmt.Println("build:", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSecondWall: kustomize given remote sources with the first wall out
// of the way (called directly) fetches nothing and runs no git once
// egress.Deny has run, though an HTTP server and a git are there to be
// reached.
func TestSecondWall(t *testing.T) {
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\n"))
	}))
	defer srv.Close()
	gitDir := t.TempDir()
	gitLog := filepath.Join(gitDir, "calls")
	os.WriteFile(filepath.Join(gitDir, "git"), []byte("#!/bin/sh\necho \"$@\" >> "+gitLog+"\nexit 1\n"), 0o755)
	for _, resource := range []string{srv.URL + "/remote.yaml", "git@127.0.0.1:org/repo.git", "github.com/org/repo//dir?ref=v1"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: [\""+resource+"\"]\n"), 0o644)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), wallChild+"="+dir, "PATH="+gitDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "build:") || strings.Contains(string(out), "build: <nil>") {
			t.Errorf("%s: the child built or failed oddly: %v\n%s", resource, err, out)
		}
		t.Logf("%s: %s", resource, strings.TrimSpace(string(out)))
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("%d fetches through the second wall", n)
	}
	if b, _ := os.ReadFile(gitLog); len(b) > 0 {
		t.Errorf("git ran through the second wall:\n%s", b)
	}
}
