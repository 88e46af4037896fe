package gitserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Git runs git in dir and returns its trimmed output, failing the test on
// error. Identity and config are fixed so runs are repeatable.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := GitErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// GitErr is Git that returns the error.
func GitErr(dir string, args ...string) (string, error) {
	return gitEnv(dir, nil, args...)
}

func gitEnv(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...),
		"GIT_AUTHOR_NAME=Human", "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Human", "GIT_COMMITTER_EMAIL=human@example.com",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir(),
		"GIT_TERMINAL_PROMPT=0",
	)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Repo is a bare repository on disk, served by the servers, with a work
// tree clone for making commits.
type Repo struct {
	// Bare is the bare repository's path ("<root>/<name>.git").
	Bare string
	// Work is a clone people commit in.
	Work string
	// Name is "<name>.git", its path under a server's root.
	Name string
}

// NewRepo makes root/<name>.git with one commit on main holding files.
func NewRepo(t testing.TB, root, name string, files map[string]string) *Repo {
	t.Helper()
	bare := filepath.Join(root, name+".git")
	Git(t, root, "init", "-q", "--bare", "-b", "main", bare)
	Git(t, bare, "config", "http.receivepack", "true")
	work := filepath.Join(t.TempDir(), name)
	Git(t, root, "init", "-q", "-b", "main", work)
	Git(t, work, "remote", "add", "origin", bare)
	r := &Repo{Bare: bare, Work: work, Name: name + ".git"}
	if len(files) == 0 {
		files = map[string]string{"README.md": "# test\n"}
	}
	r.Commit(t, "initial", files)
	Git(t, work, "push", "-q", "origin", "main")
	return r
}

// Commit writes files (path → content; "" deletes) in the work tree and
// commits them; it returns the commit id. Push with Push.
func (r *Repo) Commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	r.write(t, files)
	Git(t, r.Work, "commit", "-q", "--allow-empty", "-m", msg)
	return Git(t, r.Work, "rev-parse", "HEAD")
}

// write writes files (path → content; "" deletes) and stages them.
func (r *Repo) write(t testing.TB, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(r.Work, p)
		if c == "" {
			Git(t, r.Work, "rm", "-q", "-f", p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		Git(t, r.Work, "add", p)
	}
}

// Push pushes main (or the given refspec) from the work tree to the bare
// repository, without force.
func (r *Repo) Push(t testing.TB, refspec ...string) {
	t.Helper()
	if len(refspec) == 0 {
		refspec = []string{"main"}
	}
	Git(t, r.Work, append([]string{"push", "-q", "origin"}, refspec...)...)
}

// Head returns the bare repository's commit for a branch, "" if none.
func (r *Repo) Head(t testing.TB, branch string) string {
	t.Helper()
	out, err := GitErr(r.Bare, "rev-parse", "--verify", "-q", "refs/heads/"+branch)
	if err != nil {
		return ""
	}
	return out
}
