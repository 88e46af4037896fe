// Command sluice is the sluice agent and its command-line tools.
package main

import (
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/egress"
	"os"
)

func main() {
	// Nothing sluice does reaches the network or runs a program except
	// through its own clients (Git, the API server, checks, notifications)
	// and the git its commit verbs run: a kustomization that slips past
	// the render's checks still fetches nothing and execs nothing.
	egress.Deny()
	err := newRootCommand().Execute()
	if err == nil {
		return
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(os.Stderr, ex.msg)
		}
		os.Exit(ex.code)
	}
	fmt.Fprintln(os.Stderr, "sluice:", err)
	os.Exit(2)
}

// exitError ends the command with a code; msg, if any, goes to stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }
