// Package registry runs a real OCI registry for tests: Debian's
// docker-registry (the CNCF distribution registry, installed by
// hack/testdeps.sh) on a loopback port, with htpasswd auth and push
// notifications when asked.
package registry

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is the registry the package runs.
const Binary = "/usr/bin/docker-registry"

// Options shape the registry.
type Options struct {
	// Username and Password, when set, turn on htpasswd auth.
	Username, Password string
	// NotifyURL, when set, receives push notifications carrying
	// "Authorization: Bearer NotifyToken".
	NotifyURL, NotifyToken string
}

// Registry is a running registry.
type Registry struct {
	// Addr is its host:port (plain HTTP on loopback).
	Addr string
	cmd  *exec.Cmd
}

// Start runs a registry until the test ends.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Registry{Addr: l.Addr().String()}
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n", filepath.Join(dir, "data"), r.Addr)
	if o.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(o.Username+":"+string(hash)+"\n"), 0o600)
		cfg += fmt.Sprintf("auth:\n  htpasswd: {realm: sluice, path: %s}\n", filepath.Join(dir, "htpasswd"))
	}
	if o.NotifyURL != "" {
		cfg += fmt.Sprintf("notifications:\n  endpoints:\n  - name: sluice\n    url: %s\n    headers: {Authorization: [Bearer %s]}\n    timeout: 2s\n    threshold: 10\n    backoff: 1s\n", o.NotifyURL, o.NotifyToken)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(Binary, "serve", filepath.Join(dir, "config.yml"))
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("%s: %v (hack/testdeps.sh installs docker-registry)", Binary, err)
	}
	t.Cleanup(r.Stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + r.Addr + "/v2/"); err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("the registry did not start")
		}
	}
}

// Stop kills the registry (a registry that is down); safe to call twice.
func (r *Registry) Stop() {
	if r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}
