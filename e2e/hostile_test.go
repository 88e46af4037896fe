package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// healthyRelease is one small rolling release, app-i.
func healthyRelease(ns string, i int, image string) map[string]string {
	name := fmt.Sprintf("app-%d", i)
	dir := "releases/" + ns + "/" + name + "/"
	return map[string]string{
		dir + "release.yaml":       "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  workload: {kind: Deployment, name: " + name + "}\n  strategy: {rolling: {}}\n",
		dir + "kustomization.yaml": "resources: [deployment.yaml]\n",
		dir + "deployment.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + "}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: " + name + "}}\n  template:\n    metadata: {labels: {app: " + name + "}}\n    spec: {containers: [{name: app, image: \"" + image + "\"}]}\n",
	}
}

// hostileReleases lays every case of testdata/hostile out as a release of
// ns, h-<case>, with its URLs pointing at hostport.
func hostileReleases(t *testing.T, ns, hostport string) (map[string]string, int) {
	t.Helper()
	root := "../testdata/hostile"
	files := map[string]string{}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "_base" {
			continue
		}
		n++
		dir := "releases/" + ns + "/h-" + d.Name() + "/"
		for _, src := range []string{filepath.Join(root, "_base"), filepath.Join(root, d.Name())} {
			entries, _ := os.ReadDir(src)
			for _, e := range entries {
				if e.Name() == "expect" {
					continue
				}
				b, _ := os.ReadFile(filepath.Join(src, e.Name()))
				s := strings.ReplaceAll(string(b), "HOSTPORT", hostport)
				s = strings.ReplaceAll(s, "metadata: {name: app, namespace: hostile}", "metadata: {name: h-"+d.Name()+", namespace: "+ns+"}")
				files[dir+e.Name()] = s
			}
		}
	}
	return files, n
}

// peakRSS is the high-water mark of a process's resident memory, in MiB.
func peakRSS(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// pushToApplied bumps app-0's image and times until its status has the new
// commit as stable: what a push costs a healthy release.
func pushToApplied(w *world, image string) time.Duration {
	w.t.Helper()
	dir := "releases/" + w.ns + "/app-0/"
	files := healthyRelease(w.ns, 0, image)
	rev := w.repo.Commit(w.t, "bump app-0", map[string]string{dir + "deployment.yaml": files[dir+"deployment.yaml"]})
	w.repo.Push(w.t)
	start := time.Now()
	w.waitStatus("app-0", 60*time.Second, "the bump applied", func(s v1alpha1.ReleaseStatus) bool {
		return s.Stable != nil && s.Stable.Revision == rev
	})
	return time.Since(start)
}

// TestHostileBesideHealthy: one release per hostile case sits beside 50
// healthy releases under one agent. Every hostile release fails with its
// reason in its status, nothing is fetched, the agent stays within the
// memory limit deploy/ gives it, and a push to a healthy release is applied
// as fast as in the same fleet without the hostile releases.
func TestHostileBesideHealthy(t *testing.T) {
	// Not parallel: its hundred releases would load the shared machine
	// while the timing-sensitive stories (outages, crashes) run.
	const healthy = 50
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fetches.Add(1) }))
	defer srv.Close()
	hostport := strings.TrimPrefix(srv.URL, "http://")

	run := func(withHostile bool) (time.Duration, float64, int) {
		w := newWorld(t, nil)
		files := map[string]string{}
		for i := range healthy {
			for k, v := range healthyRelease(w.ns, i, "ghcr.io/sluice-dev/podinfo:6.7.0") {
				files[k] = v
			}
		}
		cases := 0
		if withHostile {
			var hostile map[string]string
			hostile, cases = hostileReleases(t, w.ns, hostport)
			for k, v := range hostile {
				files[k] = v
			}
		}
		w.repo.Commit(t, "the fleet", files)
		w.repo.Push(t)
		a := w.start()
		w.waitStatus(fmt.Sprintf("app-%d", healthy-1), 120*time.Second, "the fleet installed", phaseIs(v1alpha1.PhaseSucceeded))
		for i := range healthy {
			w.waitStatus(fmt.Sprintf("app-%d", i), 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
		}
		refused := 0
		if withHostile {
			dirs, _ := os.ReadDir("../testdata/hostile")
			for _, d := range dirs {
				if !d.IsDir() || d.Name() == "_base" {
					continue
				}
				st := w.waitStatus("h-"+d.Name(), 60*time.Second, "refused", phaseIs(v1alpha1.PhaseFailed))
				want, _ := os.ReadFile(filepath.Join("../testdata/hostile", d.Name(), "expect"))
				if st.Error == nil || !strings.Contains(st.Error.Message, strings.TrimSpace(string(want))) {
					t.Errorf("h-%s: status error %+v, want %q", d.Name(), st.Error, strings.TrimSpace(string(want)))
					continue
				}
				refused++
			}
			if refused != cases {
				t.Errorf("%d of %d hostile releases refused", refused, cases)
			}
		}
		var took []time.Duration
		for _, image := range []string{"6.7.1", "6.7.2", "6.7.3"} {
			took = append(took, pushToApplied(w, "ghcr.io/sluice-dev/podinfo:"+image))
		}
		slices.Sort(took)
		return took[1], peakRSS(t, a.cmd.Process.Pid), refused
	}
	base, baseRSS, _ := run(false)
	with, rss, refused := run(true)
	if n := fetches.Load(); n != 0 {
		t.Errorf("%d fetches", n)
	}
	if rss > 256 {
		t.Errorf("peak RSS %.0f MiB, over the 256 MiB limit of deploy/", rss)
	}
	t.Logf("hostile-agent: %d cases refused beside %d healthy releases, %d fetches, peak RSS %.0f MiB (%.0f MiB without them), healthy push->applied %.2f s (%.2f s without them; medians of 3)",
		refused, healthy, fetches.Load(), rss, baseRSS, with.Seconds(), base.Seconds())
}
