package gitsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/render"
)

const password = "s3cret-pa55word"

// exampleFiles reads examples/ as a map for seeding a repository.
func exampleFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk("../examples", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../examples", p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// httpSource serves a new repository over HTTP and opens a Source on it.
func httpSource(t *testing.T, files map[string]string, mod func(*Options)) (*gitserver.Repo, *gitserver.HTTPServer, *Source) {
	t.Helper()
	root := t.TempDir()
	repo := gitserver.NewRepo(t, root, "app", files)
	srv := gitserver.StartHTTP(t, root, "agent", password)
	pwFile := filepath.Join(t.TempDir(), "password")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	opts := Options{URL: srv.RepoURL(repo.Name), Dir: filepath.Join(t.TempDir(), "cache"), Username: "agent", PasswordFile: pwFile}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return repo, srv, s
}

func TestPollFetchRender(t *testing.T) {
	ctx := context.Background()
	repo, srv, s := httpSource(t, exampleFiles(t), nil)

	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if heads.Spec.String() != repo.Head(t, "main") || !heads.Status.IsZero() {
		t.Fatalf("heads = %+v, want main at %s and no status branch", heads, repo.Head(t, "main"))
	}
	got, err := s.Fetch(ctx, "main", heads.Spec)
	if err != nil || got != heads.Spec {
		t.Fatalf("fetch = %s, %v", got, err)
	}
	tree, err := s.Tree(got)
	if err != nil {
		t.Fatal(err)
	}
	files, err := tree.ReleaseFiles("releases")
	if err != nil || len(files) != 7 {
		t.Fatalf("release files = %v, %v", files, err)
	}
	// The render package renders straight from the Git tree.
	var r render.Renderer
	key := tree.TreeHash("releases/demo/canary").String()
	_, res, err := r.Load(ctx, tree, "/", "releases/demo/canary/release.yaml", key)
	if err != nil {
		t.Fatal(err)
	}
	disk, _ := render.NewDiskFS("../examples")
	_, want, err := r.Load(ctx, disk, disk.Root(), "releases/demo/canary/release.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != want.Digest {
		t.Errorf("render from Git differs from render from disk")
	}

	// No change: one ls-remote, no pack.
	srv.Requests()
	before := srv.PackBytes.Load()
	h2, err := s.Heads(ctx)
	if err != nil || h2 != heads {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, "main", h2.Spec); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if reqs["POST /git-upload-pack"] != 0 || srv.PackBytes.Load() != before || reqs["GET /info/refs"] != 1 {
		t.Errorf("a no-change poll made requests %v and downloaded %d pack bytes", reqs, srv.PackBytes.Load()-before)
	}

	// A new commit is fetched; a status-only commit does not count as a change.
	old := got
	newHead := repo.Commit(t, "bump", map[string]string{"releases/demo/canary/deployment.yaml": strings.Replace(exampleFiles(t)["releases/demo/canary/deployment.yaml"], "6.7.0", "6.7.1", 1)})
	repo.Push(t)
	h3, _ := s.Heads(ctx)
	if h3.Spec.String() != newHead {
		t.Fatalf("heads did not move: %s", h3.Spec)
	}
	if _, err := s.Fetch(ctx, "main", h3.Spec); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Changed(ctx, old, h3.Spec); err != nil || !changed {
		t.Errorf("Changed = %v, %v", changed, err)
	}
	tree3, _ := s.Tree(h3.Spec)
	if tree3.TreeHash("releases/demo/canary") == tree.TreeHash("releases/demo/canary") || tree3.TreeHash("releases/demo/rolling") != tree.TreeHash("releases/demo/rolling") {
		t.Error("per-release tree hashes do not follow the change")
	}
	statusOnly := repo.Commit(t, "status", map[string]string{"releases/demo/canary/status.yaml": "phase: Idle\n"})
	repo.Push(t)
	if _, err := s.Fetch(ctx, "main", plumbing.NewHash(statusOnly)); err != nil {
		t.Fatal(err)
	}
	if changed, _ := s.Changed(ctx, h3.Spec, plumbing.NewHash(statusOnly)); changed {
		t.Error("a commit touching only status.yaml counted as a change")
	}
}

func TestForcePushAndRecreatedBranch(t *testing.T) {
	ctx := context.Background()
	repo, _, s := httpSource(t, nil, nil)
	first := repo.Head(t, "main")
	repo.Commit(t, "second", map[string]string{"a.txt": "a\n"})
	repo.Push(t)
	h, _ := s.Heads(ctx)
	if _, err := s.Fetch(ctx, "main", h.Spec); err != nil {
		t.Fatal(err)
	}
	// Force-push back to the first commit, then rewrite history.
	gitserver.Git(t, repo.Work, "reset", "-q", "--hard", first)
	gitserver.Git(t, repo.Work, "push", "-q", "--force", "origin", "main")
	h, _ = s.Heads(ctx)
	got, err := s.Fetch(ctx, "main", h.Spec)
	if err != nil || got.String() != first {
		t.Fatalf("after force-push to the older commit: %s, %v", got, err)
	}
	rewritten := repo.Commit(t, "rewritten", map[string]string{"b.txt": "b\n"})
	gitserver.Git(t, repo.Work, "push", "-q", "--force", "origin", "main")
	got, err = s.Fetch(ctx, "main", plumbing.ZeroHash)
	if err != nil || got.String() != rewritten {
		t.Fatalf("after rewritten history: %s, %v", got, err)
	}
	// Delete the branch and make it again.
	gitserver.Git(t, repo.Bare, "update-ref", "-d", "refs/heads/main")
	h, err = s.Heads(ctx)
	if err != nil || !h.Spec.IsZero() {
		t.Fatalf("deleted branch: %+v, %v", h, err)
	}
	again := repo.Commit(t, "again", map[string]string{"c.txt": "c\n"})
	repo.Push(t)
	got, err = s.Fetch(ctx, "main", plumbing.ZeroHash)
	if err != nil || got.String() != again {
		t.Fatalf("recreated branch: %s, %v", got, err)
	}
}

// TestCredentialsNeverShown plants credentials in the URL and the password
// file and checks no error string carries them.
func TestCredentialsNeverShown(t *testing.T) {
	ctx := context.Background()
	_, srv, _ := httpSource(t, nil, nil)
	wrong := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(wrong, []byte("wrong-password-123"), 0o600)
	s, err := Open(Options{URL: srv.RepoURL("app.git"), Dir: t.TempDir(), Username: "agent", PasswordFile: wrong})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Heads(ctx)
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	if strings.Contains(err.Error(), "wrong-password-123") {
		t.Errorf("error shows the password: %v", err)
	}
	inURL := strings.Replace(srv.RepoURL("missing.git"), "http://", "http://agent:"+password+"@", 1)
	s2, err := Open(Options{URL: inURL, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s2.Heads(ctx)
	if err == nil || strings.Contains(err.Error(), password) || strings.Contains(s2.URL(), password) {
		t.Errorf("credentials in the URL leak: %v / %s", err, s2.URL())
	}
}

func TestSymlinksInTree(t *testing.T) {
	ctx := context.Background()
	repo, _, s := httpSource(t, map[string]string{"releases/x/a.yaml": "a: 1\n"}, nil)
	os.Symlink("../../../../etc/passwd", filepath.Join(repo.Work, "releases/x/escape.yaml"))
	os.Symlink("a.yaml", filepath.Join(repo.Work, "releases/x/inside.yaml"))
	os.Symlink("/etc", filepath.Join(repo.Work, "releases/x/abs"))
	gitserver.Git(t, repo.Work, "add", "-A")
	gitserver.Git(t, repo.Work, "commit", "-q", "-m", "links")
	repo.Push(t)
	h, err := s.Fetch(ctx, "main", plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := s.Tree(h)
	if b, err := tree.ReadFile("/releases/x/inside.yaml"); err != nil || string(b) != "a: 1\n" {
		t.Errorf("symlink inside the repository: %q, %v", b, err)
	}
	for _, p := range []string{"/releases/x/escape.yaml", "/releases/x/abs/passwd", "../outside"} {
		if _, err := tree.ReadFile(p); !errors.Is(err, render.ErrOutsideRoot) {
			t.Errorf("%s: err = %v, want it refused as leaving the repository", p, err)
		}
	}
}

func TestURLForms(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		in, want string
		scp      bool
	}{
		{"https://git.example.com/org/repo.git", "https://git.example.com/org/repo.git", false},
		{"http://127.0.0.1:8080/repo.git", "http://127.0.0.1:8080/repo.git", false},
		{"ssh://git@host:2222/org/repo.git", "ssh://git@host:2222/org/repo.git", false},
		{"git@github.com:org/repo.git", "git@github.com:org/repo.git", true},
		{"file:///srv/repo.git", "file:///srv/repo.git", false},
		{dir, "file://" + dir, false},
	}
	for _, tt := range tests {
		got, err := normalizeURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalizeURL(%q) = %q, %v", tt.in, got, err)
		}
		if isSCPLike(tt.in) != tt.scp {
			t.Errorf("isSCPLike(%q) = %v", tt.in, !tt.scp)
		}
	}
	if _, err := normalizeURL("./does-not-exist"); err == nil {
		t.Error("a missing local path was accepted")
	}
	if u, h := sshUserHost("git@github.com:org/repo.git"); u != "git" || h != "github.com:22" {
		t.Errorf("scp user/host = %s %s", u, h)
	}
	if u, h := sshUserHost("ssh://me@host:2222/x"); u != "me" || h != "host:2222" {
		t.Errorf("ssh user/host = %s %s", u, h)
	}
	if got := Redact("https://user:tok@host/r.git"); strings.Contains(got, "tok") {
		t.Errorf("Redact = %s", got)
	}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidateBranch(t *testing.T) {
	for _, ok := range []string{"main", "sluice/status", "sluice/status/prod", "release-1.2"} {
		if err := ValidateBranch(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"*", "main*", "a..b", "-x", "a b", "x.lock", "refs/heads/main", "", "a//b", "x:y", "@", "a\\b"} {
		if err := ValidateBranch(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Open(Options{URL: "file:///nowhere", Branch: "*", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "--branch") {
		t.Errorf("Open with --branch '*': %v", err)
	}
}
