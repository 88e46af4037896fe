package gitserver

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
)

// BigRepo makes root/<name>.git with a long history written by git
// fast-import: commits commits on main, each changing a small file, with
// bigFiles incompressible files of bigSize bytes added along the way and
// deleted again before the end, so the history is large and the head small.
func BigRepo(t testing.TB, root, name string, commits, bigFiles, bigSize int) string {
	t.Helper()
	bare := filepath.Join(root, name+".git")
	Git(t, root, "init", "-q", "--bare", "-b", "main", bare)
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = bare
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(in, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<16)
	every := commits / (bigFiles + 2)
	for i := 1; i <= commits; i++ {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Gen <gen@example.com> %d +0000\ndata <<EOM\ncommit %d\nEOM\n", 1700000000+i, i)
		body := fmt.Sprintf("counter %d\n", i)
		fmt.Fprintf(w, "M 100644 inline releases/app/counter.txt\ndata %d\n%s\n", len(body), body)
		if i == 1 {
			rel := "apiVersion: sluice.dev/v1alpha1\nkind: Release\n"
			fmt.Fprintf(w, "M 100644 inline releases/app/release.yaml\ndata %d\n%s\n", len(rel), rel)
		}
		if k := i / every; i%every == 0 && k >= 1 && k <= bigFiles {
			fmt.Fprintf(w, "M 100644 inline big/blob-%d.bin\ndata %d\n", k, bigSize)
			for left := bigSize; left > 0; {
				n := min(left, len(buf))
				rng.Read(buf[:n])
				w.Write(buf[:n])
				left -= n
			}
			w.WriteString("\n")
		}
		if i == commits-1 {
			w.WriteString("D big\n")
		}
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fast-import: %v", err)
	}
	Git(t, bare, "config", "http.receivepack", "true")
	return bare
}
