package gitsource

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestSignedCommits: with a signing key, status commits carry an SSH
// signature that git itself verifies against an allowed-signers file.
func TestSignedCommits(t *testing.T) {
	for _, typ := range []string{"ed25519", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			key := filepath.Join(t.TempDir(), "signing")
			if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-f", key).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
			repo, _, s := httpSource(t, nil, func(o *Options) {
				o.SigningKeyFile = key
				o.AuthorEmail = "sluice@test"
			})
			res, err := s.Write(context.Background(), "sluice/status", statusWrite("a/b", "x\n", 1))
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := os.ReadFile(key + ".pub")
			allowed := filepath.Join(t.TempDir(), "allowed")
			os.WriteFile(allowed, []byte("sluice@test "+string(pub)), 0o644)
			out, err := gitserver.GitErr(repo.Bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "-v", res.Commit.String())
			if err != nil || !strings.Contains(out, `Good "git" signature for sluice@test`) {
				t.Fatalf("git verify-commit: %v\n%s", err, out)
			}
			// A different allowed key does not verify.
			other := filepath.Join(t.TempDir(), "other")
			exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).Run()
			opub, _ := os.ReadFile(other + ".pub")
			os.WriteFile(allowed, []byte("sluice@test "+string(opub)), 0o644)
			if _, err := gitserver.GitErr(repo.Bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", res.Commit.String()); err == nil {
				t.Error("a signature verified against the wrong key")
			}
		})
	}
}
