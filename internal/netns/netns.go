// Package netns is test infrastructure: it runs a test binary inside a
// private network namespace where the pod range is routed to loopback, so
// the pods kwok runs can have real, routable IPs (a process binds
// 10.244.x.y:8080 for a pod) while the API server's EndpointSlice
// validation, which refuses loopback IPs, is satisfied. Nothing here
// touches the host's own network configuration: the route exists only in
// the namespace, which goes away with the test binary.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// PodCIDR is the pod range routed to loopback inside the namespace.
const PodCIDR = "10.244.0.0/16"

// NodeIP is the kwok node's address in the namespace, and APIAddress the
// address the API server advertises (it needs one that is not loopback).
const (
	NodeIP     = "10.244.0.1"
	APIAddress = "10.244.255.254"
)

const marker = "SLUICE_IN_NETNS"

// Inside reports whether this process runs in the namespace Reexec made.
func Inside() bool { return os.Getenv(marker) == "1" }

// Reexec runs this binary again, with the same arguments, in a new network
// namespace (a user namespace too when not root, as `unshare -rn` does),
// with loopback up and PodCIDR routed to it, and returns its exit code.
// Call it from TestMain when Inside is false.
func Reexec() (int, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return 0, fmt.Errorf("unshare (util-linux) not found: %w", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return 0, fmt.Errorf("ip (iproute2) not found: %w", err)
	}
	flags := "-n"
	if os.Geteuid() != 0 {
		flags = "-rn"
	}
	script := `ip link set lo up && ip route add local ` + PodCIDR + ` dev lo && exec "$0" "$@"`
	args := append([]string{flags, "--", "sh", "-c", script, os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), marker+"=1")
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
