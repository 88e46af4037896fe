// Package egress is sluice's one door to the network for HTTP and to
// other programs. sluice's own clients (Git, checks, notifications, hook
// forwarding) take their transport from Transport; once Deny has run,
// everything else in the process — kustomize's remote loader above all,
// which uses http.DefaultTransport and execs `git` from PATH — finds every
// dial refused and no program to run. It is the second wall behind the
// render's own refusal of remote sources, so a bypass of that check still
// fetches nothing and execs nothing.
package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// base is the standard transport as the process started, captured before
// Deny replaces http.DefaultTransport.
var base = http.DefaultTransport.(*http.Transport).Clone()

// path is PATH as the process started.
var path = os.Getenv("PATH")

// ErrDenied is the error of every dial through http.DefaultTransport
// after Deny.
var ErrDenied = errors.New("network access from this code path is disabled in sluice (only its own clients may connect)")

var denyOnce sync.Once

// Transport is a fresh copy of the standard transport for sluice's own
// clients; it is unaffected by Deny.
func Transport() *http.Transport { return base.Clone() }

// Client is an HTTP client on Transport with the timeout.
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport(), Timeout: timeout}
}

// Deny makes http.DefaultTransport refuse every dial and empties PATH, so
// code that was not given sluice's transport cannot reach the network and
// no program can be found to exec. Process-wide and permanent; call it
// first thing in main.
func Deny() {
	denyOnce.Do(func() {
		refuse := func(context.Context, string, string) (net.Conn, error) { return nil, ErrDenied }
		http.DefaultTransport = &http.Transport{Proxy: nil, DialContext: refuse, DialTLSContext: refuse}
		os.Setenv("PATH", "")
	})
}

// LookPath finds a program on PATH as the process started: for the few
// programs sluice itself runs on purpose (git in the CLI's commit verbs,
// KUBECTL_EXTERNAL_DIFF).
func LookPath(name string) (string, error) {
	if filepath.Base(name) != name {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// Command is exec.Command for a program found by LookPath.
func Command(name string, args ...string) *exec.Cmd {
	p, err := LookPath(name)
	if err != nil {
		p = name // exec reports the error when run
	}
	return exec.Command(p, args...)
}
