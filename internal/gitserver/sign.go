package gitserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Signer signs commits as a person does, with git commit -S and a gpg or
// SSH key of its own.
type Signer struct {
	// Trusted is what a --trusted-keys-file holds to trust this key: the
	// armored OpenPGP public key, or an allowed_signers line.
	Trusted string
	config  []string // git -c settings
	env     []string
}

// GPGKey makes an OpenPGP key (ed25519) for "name <name@example.com>" in
// a keyring of its own. An expired key was made and signs in 2020 (gpg's
// faked system time) with a one-day lifetime: its signatures were good
// when made and its key has long expired.
func GPGKey(t testing.TB, name string, expired bool) *Signer {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket lives here
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		c := exec.Command("gpgconf", "--kill", "gpg-agent")
		c.Env = append(os.Environ(), env...)
		_ = c.Run()
		os.RemoveAll(home)
	})
	var faked []string
	expiry := "1y"
	if expired {
		faked, expiry = []string{"--faked-system-time", "20200101T000000!"}, "1d"
	}
	gpg := func(args ...string) string {
		t.Helper()
		c := exec.Command("gpg", append(append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, faked...), args...)...)
		c.Env = append(os.Environ(), env...)
		out, err := c.Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, msg)
		}
		return string(out)
	}
	uid := fmt.Sprintf("%s <%s@example.com>", name, name)
	gpg("--quick-gen-key", uid, "ed25519", "sign", expiry)
	var fpr string
	for _, line := range strings.Split(gpg("--with-colons", "--list-keys", name+"@example.com"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && fpr == "" {
			fpr = f[9]
		}
	}
	program := filepath.Join(home, "gpg.sh")
	script := "#!/bin/sh\nexec gpg " + strings.Join(faked, " ") + " \"$@\"\n"
	if err := os.WriteFile(program, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Signer{Trusted: gpg("--armor", "--export", fpr), env: env,
		config: []string{"gpg.format=openpgp", "gpg.program=" + program, "user.signingkey=" + fpr}}
}

// SSHKey makes an ed25519 SSH key for principal; options go in its
// allowed_signers line (valid-before="20200101", namespaces="file", ...).
func SSHKey(t testing.TB, principal, options string) *Signer {
	t.Helper()
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	line := principal + " " + strings.TrimSpace(options+" "+string(pub)) + "\n"
	return &Signer{Trusted: line, config: []string{"gpg.format=ssh", "user.signingkey=" + key}}
}

// gitArgs are git's arguments with the signer's settings (none for nil).
func (s *Signer) gitArgs(args ...string) []string {
	if s == nil {
		return args
	}
	var out []string
	for _, c := range s.config {
		out = append(out, "-c", c)
	}
	return append(out, args...)
}

// CommitSigned is Commit with git commit -S by s.
func (r *Repo) CommitSigned(t testing.TB, s *Signer, msg string, files map[string]string) string {
	t.Helper()
	r.write(t, files)
	out, err := gitEnv(r.Work, s.env, s.gitArgs("commit", "-q", "-S", "--allow-empty", "-m", msg)...)
	if err != nil {
		t.Fatalf("git commit -S: %v\n%s", err, out)
	}
	return Git(t, r.Work, "rev-parse", "HEAD")
}

// MergeSigned merges branch into the work tree's branch with a merge
// commit signed by s (git merge -S --no-ff).
func (r *Repo) MergeSigned(t testing.TB, s *Signer, branch string) string {
	t.Helper()
	out, err := gitEnv(r.Work, s.env, s.gitArgs("merge", "-q", "-S", "--no-ff", "-m", "merge "+branch, branch)...)
	if err != nil {
		t.Fatalf("git merge -S: %v\n%s", err, out)
	}
	return Git(t, r.Work, "rev-parse", "HEAD")
}
