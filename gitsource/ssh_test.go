package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

func TestSSH(t *testing.T) {
	ctx := context.Background()
	srv := gitserver.StartSSH(t)
	repo := gitserver.NewRepo(t, t.TempDir(), "app", map[string]string{"releases/a/release.yaml": "x: 1\n"})
	open := func(t *testing.T, key, known string) *Source {
		t.Helper()
		s, err := Open(Options{URL: srv.RepoURL(repo.Bare), Dir: filepath.Join(t.TempDir(), "c"), SSHKeyFile: key, KnownHostsFile: known})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("good key, both host key types known", func(t *testing.T) {
		s := open(t, srv.ClientKey, srv.KnownHosts)
		h, err := s.Heads(ctx)
		if err != nil || h.Spec.String() != repo.Head(t, "main") {
			t.Fatalf("heads = %+v, %v", h, err)
		}
		if _, err := s.Fetch(ctx, "main", h.Spec); err != nil {
			t.Fatal(err)
		}
		tree, _ := s.Tree(h.Spec)
		if b, err := tree.ReadFile("/releases/a/release.yaml"); err != nil || string(b) != "x: 1\n" {
			t.Fatalf("read = %q %v", b, err)
		}
		res, err := s.Write(ctx, "sluice/status", statusWrite("a/a", "ok\n", 1))
		if err != nil || repo.Head(t, "sluice/status") != res.Commit.String() {
			t.Fatalf("write over ssh: %+v %v", res, err)
		}
	})
	t.Run("only the RSA host key known", func(t *testing.T) {
		b, _ := os.ReadFile(srv.KnownHosts)
		var rsa []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "ssh-rsa") {
				rsa = append(rsa, l)
			}
		}
		kh := filepath.Join(t.TempDir(), "kh")
		os.WriteFile(kh, []byte(strings.Join(rsa, "\n")+"\n"), 0o600)
		if _, err := open(t, srv.ClientKey, kh).Heads(ctx); err != nil {
			t.Fatalf("a known_hosts with only the RSA key did not verify: %v", err)
		}
	})
	t.Run("wrong client key", func(t *testing.T) {
		_, err := open(t, srv.OtherKey(t), srv.KnownHosts).Heads(ctx)
		if err == nil {
			t.Fatal("a key sshd does not know was accepted")
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "kh")
		os.WriteFile(kh, []byte("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600)
		_, err := open(t, srv.ClientKey, kh).Heads(ctx)
		if err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Fatalf("unknown host key: err = %v", err)
		}
	})
	t.Run("changed host key", func(t *testing.T) {
		_, err := open(t, srv.ClientKey, srv.WrongKnownHosts(t)).Heads(ctx)
		if err == nil || !strings.Contains(err.Error(), "CHANGED") {
			t.Fatalf("changed host key: err = %v", err)
		}
	})
	t.Run("no known_hosts", func(t *testing.T) {
		_, err := Open(Options{URL: srv.RepoURL(repo.Bare), Dir: t.TempDir(), SSHKeyFile: srv.ClientKey})
		if err == nil || !strings.Contains(err.Error(), "known-hosts") {
			t.Fatalf("err = %v", err)
		}
	})
	_ = plumbing.ZeroHash
}
