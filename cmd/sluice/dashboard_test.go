package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storyClone is a clone (origin: the bundle's mirror) of the repository
// e2e TestDashboard recorded: a canary promoted, then one aborted.
func storyClone(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mirror, work := filepath.Join(root, "origin.git"), filepath.Join(root, "work")
	for _, args := range [][]string{
		{"clone", "-q", "--mirror", "../../dashboard/testdata/story.bundle", mirror},
		{"clone", "-q", mirror, work},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return work
}

func storyRelease(t *testing.T, work string) string {
	out, err := exec.Command("git", "-C", work, "log", "-1", "--format=%(trailers:key=Sluice-Release,valueonly,separator=)", "origin/sluice/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// sluice history -o svg writes the dashboard's timeline.
func TestHistorySVG(t *testing.T) {
	work := storyClone(t)
	id := storyRelease(t, work)
	out, errs, code := run(t, work, "history", id, "-o", "svg")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"<?xml", `<svg xmlns="http://www.w3.org/2000/svg"`, `class="mark abort"`, `class="mark fail"`, "canary weight of " + id} {
		if !strings.Contains(out, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
	if _, errs, code := run(t, work, "history", "nope/nothing", "-o", "svg"); code != 1 || !strings.Contains(errs, "no history for nope/nothing") {
		t.Errorf("an unknown release: exit %d %s", code, errs)
	}
}

// sluice dashboard serves the clone's releases until stopped.
func TestDashboardCommand(t *testing.T) {
	work := storyClone(t)
	id := storyRelease(t, work)
	cmd := exec.Command(sluiceBin, "dashboard", "--listen", "127.0.0.1:0")
	cmd.Dir = work
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.Fields(strings.TrimPrefix(line, "dashboard: "))[0]
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "release/" + id)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"✗ Aborted", "8. setWeight: 100", "<svg class=\"timeline\""} {
		if !strings.Contains(body, want) {
			t.Errorf("the release page lacks %q:\n%s", want, body)
		}
	}
}
