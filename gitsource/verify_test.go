package gitsource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// trust writes the signers' trusted forms to one file each and loads them.
func trust(t *testing.T, signers ...*gitserver.Signer) *TrustedKeys {
	t.Helper()
	var files []string
	for i, s := range signers {
		f := filepath.Join(t.TempDir(), "trusted"+string(rune('a'+i)))
		if err := os.WriteFile(f, []byte(s.Trusted), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	k, err := LoadTrustedKeys(files)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifyCommits: commits signed with real git commit -S, by gpg and
// ssh keys, verify only against trusted, valid keys — as git verify-commit
// with gpg.ssh.allowedSignersFile says.
func TestVerifyCommits(t *testing.T) {
	ctx := context.Background()
	repo, _, s := httpSource(t, nil, nil)
	alice := gitserver.GPGKey(t, "alice", false)
	mallory := gitserver.GPGKey(t, "mallory", false)
	old := gitserver.GPGKey(t, "old", true)
	bob := gitserver.SSHKey(t, "bob@example.com", "")
	eve := gitserver.SSHKey(t, "eve@example.com", "")
	gone := gitserver.SSHKey(t, "gone@example.com", `valid-before="20200101Z"`)
	files := gitserver.SSHKey(t, "files@example.com", `namespaces="file"`)
	keys := trust(t, alice, old, bob, gone, files)

	cases := []struct {
		name   string
		signer *gitserver.Signer
		want   string // "" : verified; otherwise the error says it
	}{
		{"gpg trusted", alice, "alice <alice@example.com> (OpenPGP "},
		{"ssh trusted", bob, "bob@example.com (SSH SHA256:"},
		{"gpg not trusted", mallory, "OpenPGP key that is not trusted"},
		{"gpg expired", old, "has expired"},
		{"ssh not trusted", eve, "which is not trusted"},
		{"ssh past valid-before", gone, "expired at 2020-01-01T00:00:00Z"},
		{"ssh for other namespaces", files, "for namespaces file only"},
		{"unsigned", nil, "not signed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sha string
			if c.signer == nil {
				sha = repo.Commit(t, c.name, nil)
			} else {
				sha = repo.CommitSigned(t, c.signer, c.name, nil)
			}
			repo.Push(t)
			head, err := s.Fetch(ctx, "main", plumbing.ZeroHash)
			if err != nil || head.String() != sha {
				t.Fatalf("fetch: %v %s", err, head)
			}
			commits, err := s.Since(ctx, "main", head, func(h plumbing.Hash) bool { return h != head })
			if err != nil || len(commits) != 1 {
				t.Fatalf("since: %v, %d commits", err, len(commits))
			}
			who, err := keys.Verify(commits[0])
			trusted := strings.HasSuffix(c.name, "trusted") && !strings.Contains(c.name, "not")
			switch {
			case trusted && err != nil:
				t.Fatalf("refused: %v", err)
			case trusted && !strings.HasPrefix(who, c.want):
				t.Errorf("signer %q, want %q...", who, c.want)
			case !trusted && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %q, %v; want an error saying %q", who, err, c.want)
			}
			// git agrees on the SSH signatures.
			if c.signer != nil && strings.HasPrefix(c.name, "ssh") {
				allowed := filepath.Join(t.TempDir(), "allowed")
				os.WriteFile(allowed, []byte(c.signer.Trusted), 0o644)
				_, gerr := gitserver.GitErr(repo.Work, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", sha)
				if (gerr == nil) != trusted && c.name != "ssh not trusted" {
					t.Errorf("git verify-commit says %v, sluice %v", gerr, err)
				}
			}
			if c.name == "unsigned" && !errors.Is(err, ErrUnsigned) {
				t.Errorf("want ErrUnsigned, got %v", err)
			}
		})
	}
}

// TestSinceWalksUnderMerges: the commits since the last verified one
// include those a signed merge brings in, so an unsigned commit cannot
// hide under a signed merge; the walk stops at known commits and deepens
// a shallow history when it must.
func TestSinceWalksUnderMerges(t *testing.T) {
	ctx := context.Background()
	repo, _, s := httpSource(t, nil, nil)
	alice := gitserver.SSHKey(t, "alice@example.com", "")
	keys := trust(t, alice)
	base := repo.CommitSigned(t, alice, "base", map[string]string{"a": "1\n"})
	gitserver.Git(t, repo.Work, "checkout", "-q", "-b", "feature")
	sneaky := repo.Commit(t, "unsigned on a branch", map[string]string{"b": "2\n"})
	gitserver.Git(t, repo.Work, "checkout", "-q", "main")
	repo.CommitSigned(t, alice, "signed on main", map[string]string{"c": "3\n"})
	merge := repo.MergeSigned(t, alice, "feature")
	repo.Push(t)
	head, err := s.Fetch(ctx, "main", plumbing.ZeroHash) // depth 1
	if err != nil || head.String() != merge {
		t.Fatalf("fetch: %v", err)
	}
	known := func(h plumbing.Hash) bool { return h.String() == base }
	commits, err := s.Since(ctx, "main", head, known)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 3 {
		t.Fatalf("want the merge, its two sides' commits; got %d", len(commits))
	}
	var refused []string
	for _, c := range commits {
		if _, err := keys.Verify(c); err != nil {
			refused = append(refused, c.Hash.String())
		}
	}
	if len(refused) != 1 || refused[0] != sneaky {
		t.Fatalf("refused %v, want only the unsigned commit %s", refused, sneaky)
	}
	// With nothing known the walk reaches the root (the unsigned initial
	// commit of the test repository included).
	all, err := s.Since(ctx, "main", head, func(plumbing.Hash) bool { return false })
	if err != nil || len(all) != 5 {
		t.Fatalf("full walk: %v, %d commits", err, len(all))
	}
}

func TestTrustedKeysFiles(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ data, want string }{
		"private": {"-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "not a public key block"},
		"garbage": {"alice@example.com not-a-key\n", ":1: not an OpenPGP key or an allowed_signers line"},
		"ca":      {"*@example.com cert-authority ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHV1pXHyzDq+nQyRUbr81IBuf8PO9ObbIZqhz3w3Uxsz\n", "cert-authority"},
		"when":    {"a@b valid-before=\"tomorrow\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHV1pXHyzDq+nQyRUbr81IBuf8PO9ObbIZqhz3w3Uxsz\n", "valid-before"},
		"empty":   {"# nobody\n", "at least one key"},
	} {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(c.data), 0o644)
		_, err := LoadTrustedKeys([]string{f})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// BenchmarkVerifySince: one pass's verification at 100 commits since the
// last verified one (50 signed with gpg, 50 with ssh, by git commit -S):
// the walk from the head plus every signature checked. Per op = per pass.
func BenchmarkVerifySince(b *testing.B) {
	ctx := context.Background()
	root := b.TempDir()
	repo := gitserver.NewRepo(b, root, "app", nil)
	gpg, ssh := gitserver.GPGKey(b, "alice", false), gitserver.SSHKey(b, "bob@example.com", "")
	anchor := plumbing.NewHash(repo.Head(b, "main"))
	for i := range 100 {
		signer := gpg
		if i%2 == 1 {
			signer = ssh
		}
		repo.CommitSigned(b, signer, fmt.Sprintf("change %d", i), map[string]string{fmt.Sprintf("f%d", i%7): fmt.Sprint(i)})
	}
	repo.Push(b)
	s, err := Open(Options{URL: repo.Bare, Dir: filepath.Join(b.TempDir(), "c")})
	if err != nil {
		b.Fatal(err)
	}
	head, err := s.Fetch(ctx, "main", plumbing.ZeroHash)
	if err != nil {
		b.Fatal(err)
	}
	files := []string{filepath.Join(b.TempDir(), "keys.asc"), filepath.Join(b.TempDir(), "allowed_signers")}
	os.WriteFile(files[0], []byte(gpg.Trusted), 0o644)
	os.WriteFile(files[1], []byte(ssh.Trusted), 0o644)
	keys, err := LoadTrustedKeys(files)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Since(ctx, "main", head, func(h plumbing.Hash) bool { return h == anchor }); err != nil {
		b.Fatal(err) // deepens the shallow fetch once, outside the timing
	}
	since := func(b *testing.B) []*object.Commit {
		commits, err := s.Since(ctx, "main", head, func(h plumbing.Hash) bool { return h == anchor })
		if err != nil || len(commits) != 100 {
			b.Fatalf("%v, %d commits", err, len(commits))
		}
		return commits
	}
	b.Run("walk", func(b *testing.B) {
		for range b.N {
			since(b)
		}
	})
	b.Run("walk+verify", func(b *testing.B) {
		for range b.N {
			if bad, err := keys.VerifyEach(since(b)); bad != nil {
				b.Fatal(err)
			}
		}
	})
}
