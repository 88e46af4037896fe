package gitserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHServer is Debian's sshd on a loopback port, letting one client key run
// git-shell (upload-pack and receive-pack) as the current user.
type SSHServer struct {
	// Addr is host:port.
	Addr string
	// User to connect as.
	User string
	// ClientKey is the private key file sshd accepts.
	ClientKey string
	// KnownHosts lists the server's host keys (ed25519 and RSA) for Addr.
	KnownHosts string
	dir        string
}

// StartSSH runs sshd until the test ends. It needs openssh-server
// (`.ci/run` installs it).
func StartSSH(t testing.TB) *SSHServer {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(sshd); err != nil {
		t.Fatalf("sshd not installed (apt-get install openssh-server): %v", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("/run/sshd: %v", err)
	}
	dir := t.TempDir()
	keygen := func(typ, file string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-f", file).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	keygen("ed25519", filepath.Join(dir, "host_ed25519"))
	keygen("rsa", filepath.Join(dir, "host_rsa"))
	keygen("ed25519", filepath.Join(dir, "client"))

	pub, _ := os.ReadFile(filepath.Join(dir, "client.pub"))
	authorized := `command="git-shell -c \"$SSH_ORIGINAL_COMMAND\"",no-port-forwarding,no-pty,no-agent-forwarding ` + string(pub)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	u, _ := user.Current()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_ed25519
HostKey %[2]s/host_rsa
AuthorizedKeysFile %[2]s/authorized_keys
PidFile %[2]s/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers %[3]s
LogLevel VERBOSE
`, port, dir, u.Username)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log, _ := os.Create(filepath.Join(dir, "sshd.log"))
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Logf("sshd log:\n%s", data)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var known strings.Builder
	for _, k := range []string{"host_ed25519.pub", "host_rsa.pub"} {
		b, _ := os.ReadFile(filepath.Join(dir, k))
		f := strings.Fields(string(b))
		fmt.Fprintf(&known, "[127.0.0.1]:%d %s %s\n", port, f[0], f[1])
	}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &SSHServer{Addr: addr, User: u.Username, ClientKey: filepath.Join(dir, "client"), KnownHosts: kh, dir: dir}
}

// RepoURL is the ssh:// URL of a bare repository at an absolute path.
func (s *SSHServer) RepoURL(bare string) string {
	return fmt.Sprintf("ssh://%s@%s%s", s.User, s.Addr, bare)
}

// WrongKnownHosts writes a known_hosts file giving Addr another key (as if
// the server's key had changed) and returns its path.
func (s *SSHServer) WrongKnownHosts(t testing.TB) string {
	t.Helper()
	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(other + ".pub")
	f := strings.Fields(string(b))
	_, port, _ := net.SplitHostPort(s.Addr)
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("[127.0.0.1]:%s %s %s\n", port, f[0], f[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// OtherKey makes a client key sshd does not accept.
func (s *SSHServer) OtherKey(t testing.TB) string {
	t.Helper()
	k := filepath.Join(t.TempDir(), "wrong")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return k
}
