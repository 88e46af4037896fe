package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// imageStates reads the agent's GET /images.
func imageStates(t *testing.T, listen string) []struct {
	Image    string     `json:"image"`
	Error    string     `json:"error"`
	Failures int        `json:"failures"`
	NextTry  *time.Time `json:"nextTry"`
	Scanned  *time.Time `json:"scanned"`
} {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/images")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []struct {
		Image    string     `json:"image"`
		Error    string     `json:"error"`
		Failures int        `json:"failures"`
		NextTry  *time.Time `json:"nextTry"`
		Scanned  *time.Time `json:"scanned"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func freeListen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Scenario — a registry that rate-limits, then answers garbage: with a
// 429 and Retry-After the agent does not ask again before the time given;
// a malformed tag list is an error, not an empty or partial list, and the
// image is asked less and less often; neither commits anything, and
// GET /images says why. When the registry recovers the bump lands.
func TestImageScanFaults(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	reg.push(t, "shop/podinfo", "1.3.0")
	w := imageWorld(t, reg)
	listen := freeListen(t)
	w.start("--image-updates", "--image-interval", "1s", "--image-docker-config", reg.dockerConfig(t), "--listen", listen)
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	head := gitserver.Git(t, w.repo.Bare, "rev-parse", "main")

	// 429 with Retry-After: 4.
	reg.fault.Store("429")
	reg.push(t, "shop/podinfo", "1.4.0") // straight to the registry, not through the proxy
	limitedAt := reg.requests.Load()
	waitFor(t, 10*time.Second, "the agent to meet the 429", func() bool { return reg.requests.Load() > limitedAt })
	met := time.Now()
	var st = imageStates(t, listen)
	waitFor(t, 5*time.Second, "GET /images to say the registry rate-limited the agent", func() bool {
		st = imageStates(t, listen)
		return len(st) == 1 && strings.Contains(st[0].Error, "rate-limited")
	})
	first := reg.requests.Load()
	if st[0].NextTry == nil || st[0].NextTry.Sub(met) < 3*time.Second {
		t.Errorf("GET /images after a 429 with Retry-After: 4: %+v", st)
	}
	time.Sleep(time.Until(met.Add(3500 * time.Millisecond)))
	if n := reg.requests.Load(); n != first {
		t.Errorf("%d requests within the registry's Retry-After (1 s scans)", n-first)
	}

	// A malformed tag list.
	reg.fault.Store("malformed")
	listed := reg.lists.Load()
	waitFor(t, 10*time.Second, "a listing of the malformed tags", func() bool { return reg.lists.Load() > listed })
	spell := time.Now()
	time.Sleep(8 * time.Second)
	if n := reg.lists.Load() - listed; n > 4 {
		t.Errorf("%d listings of a failing image in 8 s at a 1 s interval; want backoff (1, 2, 4 s…)", n)
	}
	st = imageStates(t, listen)
	if len(st) != 1 || st[0].Failures < 2 || !strings.Contains(st[0].Error, "unexpected E") && !strings.Contains(st[0].Error, "unexpected end of JSON") {
		t.Errorf("GET /images after malformed tag lists: %+v", st)
	}
	if now := gitserver.Git(t, w.repo.Bare, "rev-parse", "main"); now != head {
		t.Errorf("a commit from a registry that rate-limited or answered garbage: %s", gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%s", "main"))
	}
	if s := w.status("canary"); s.Phase != v1alpha1.PhaseSucceeded || s.Canary != nil {
		t.Errorf("the release during registry faults: %s %s", s.Phase, s.Message)
	}

	// The registry recovers: the bump lands within the backoff.
	reg.fault.Store("")
	recovered := time.Now()
	waitFor(t, 30*time.Second, "the bump after the registry recovered", func() bool {
		return strings.HasSuffix(gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%(trailers:key=Sluice-Image-To,valueonly,separator=)", "main"), "1.4.0")
	})
	t.Logf("images: registry faults 429 then malformed for %.0fs, no commit; bump %.1fs after recovery", time.Since(spell).Seconds(), time.Since(recovered).Seconds())
	if st = imageStates(t, listen); len(st) != 1 || st[0].Error != "" || st[0].Scanned == nil {
		t.Errorf("GET /images after recovery: %+v", st)
	}
}

// Scenario — a tag whose canary was aborted is not proposed again, even
// by an agent restarted after the abort: 1.4.0 is bumped, aborted and
// rolled back; a new agent process scans and leaves 1.4.0 alone; 1.5.0
// is proposed.
func TestImageAbortedNotReproposed(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	reg.push(t, "shop/podinfo", "1.3.0")
	w := imageWorld(t, reg)
	w.commit("canary", "a gate before the full weight", map[string]string{
		"release.yaml": strings.Replace(w.file("canary", "release.yaml"), "{pause: {duration: 1s}}", "{pause: {gate: qa}}", 1),
	})
	args := []string{"--image-updates", "--image-interval", "1s", "--image-docker-config", reg.dockerConfig(t)}
	first := w.start(args...)
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	reg.push(t, "shop/podinfo", "1.4.0")
	w.waitStatus("canary", 60*time.Second, "1.4.0's canary at the gate", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && s.Canary != nil
	})
	gitserver.Git(t, w.repo.Work, "pull", "-q", "origin", "main")
	w.sluice("abort", w.ns+"/canary", "--push")
	w.waitStatus("canary", 60*time.Second, "aborted", phaseIs(v1alpha1.PhaseAborted))
	// The bump reverted by hand: Git names 1.3.0 again.
	gitserver.Git(t, w.repo.Work, "pull", "-q", "origin", "main")
	bump := gitserver.Git(t, w.repo.Work, "log", "-1", "--format=%H", "--grep", "Sluice-Image-To: 1.4.0")
	gitserver.Git(t, w.repo.Work, "revert", "--no-edit", bump)
	w.repo.Push(t)
	head := gitserver.Git(t, w.repo.Bare, "rev-parse", "main")
	time.Sleep(3 * time.Second) // the first agent sees the revert and scans
	// A new process: its memory is empty; the status branch is not.
	first.cmd.Process.Signal(syscall.SIGTERM)
	first.cmd.Wait()
	w.start(args...)
	time.Sleep(5 * time.Second) // five scans
	if now := gitserver.Git(t, w.repo.Bare, "rev-parse", "main"); now != head {
		t.Errorf("the aborted 1.4.0 proposed again after a restart: %s", gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%s%n%b", "main"))
	}
	reg.push(t, "shop/podinfo", "1.5.0")
	waitFor(t, 20*time.Second, "1.5.0 proposed", func() bool {
		return strings.HasSuffix(gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%(trailers:key=Sluice-Image-To,valueonly,separator=)", "main"), "1.5.0")
	})
}
