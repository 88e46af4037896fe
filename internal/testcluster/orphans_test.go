package testcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClusterAnswersThenPanic checks that the package's cluster answers
// and, when run by TestNoOrphansAfterPanic, then panics on purpose with the
// cluster running.
func TestClusterAnswersThenPanic(t *testing.T) {
	if _, err := cluster.Clientset(t).Discovery().ServerVersion(); err != nil {
		t.Fatalf("the cluster does not answer: %v", err)
	}
	if os.Getenv("SLUICE_TESTCLUSTER_PANIC") != "" {
		panic("a test panics while the cluster runs")
	}
}

// TestNoOrphansAfterPanic runs this test binary again with a test that
// panics, and checks that none of the child's control-plane processes
// outlive it.
func TestNoOrphansAfterPanic(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterAnswersThenPanic$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SLUICE_TESTCLUSTER_PANIC=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the panicking child exited 0:\n%s", out)
	}
	m := regexp.MustCompile(`logs in (\S+)\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("child did not report its cluster:\n%s", out)
	}
	dir := string(m[1])
	defer os.RemoveAll(dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesMentioning(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans of the child's cluster still run: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// processesMentioning lists the command lines that contain s.
func processesMentioning(s string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
