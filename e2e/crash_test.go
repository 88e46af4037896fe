package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// checkHistory asserts the status commits of a canary walk are consistent:
// weights the steps allow, steps advancing one at a time, none repeated.
func checkHistory(t *testing.T, trailers []string, allowed []int64) {
	t.Helper()
	seen := map[string]bool{}
	prevStep := -1
	for _, tr := range trailers {
		f := strings.Split(tr, "|")
		if len(f) != 3 {
			t.Fatalf("trailer %q", tr)
		}
		step, _ := strconv.Atoi(f[1])
		weight, _ := strconv.ParseInt(f[2], 10, 64)
		if !slices.Contains(allowed, weight) {
			t.Errorf("weight %d, which no step sets: %v", weight, trailers)
		}
		if f[0] == "Progressing" && step > 0 {
			if seen[tr] {
				t.Errorf("transition %s repeated: %v", tr, trailers)
			}
			if step > prevStep+1 && prevStep >= 0 {
				t.Errorf("step %d after %d: a step skipped: %v", step, prevStep, trailers)
			}
		}
		if step == 0 {
			prevStep = 0
		} else {
			prevStep = step
		}
		seen[tr] = true
	}
}

// crashFreeTrailers runs the gated canary of TestCrashAnywhere with no
// crash: the exact transitions a crashed run must also commit.
func crashFreeTrailers(t *testing.T) []string {
	w := newWorld(t, []string{"canary"}, "duration: 30s", "duration: 1s")
	gatedCanary(w)
	w.start()
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	w.commit("canary", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	w.waitStatus("canary", 60*time.Second, "at the gate", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, "qa")
	})
	w.sluice("approve", w.ns+"/canary", "qa", "--push")
	w.waitStatus("canary", 90*time.Second, "promoted", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil && len(w.trailers("canary")) > 2
	})
	return w.trailers("canary")
}

// Scenario 8 — crash anywhere: kill -9 the agent at 20 random moments
// through a canary (at least 5 while the canary is live), restarting it
// each time; the live route matches the status whenever the release waits
// at its gate, and the run commits exactly the transitions of a run with
// no crash.
func TestCrashAnywhere(t *testing.T) {
	t.Parallel()
	want := crashFreeTrailers(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (SLUICE_CRASH_SEED=%d replays the kill times)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 8))
	w := newWorld(t, []string{"canary"}, "duration: 30s", "duration: 1s")
	gatedCanary(w)
	a := w.start()
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	w.commit("canary", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	approved, midCanary := false, 0
	for kill := range 20 {
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		a.cmd.Process.Signal(syscall.SIGKILL)
		a.cmd.Wait()
		st := w.status("canary")
		if st.Canary != nil {
			midCanary++
		}
		atGate := st.Phase == v1alpha1.PhasePaused && strings.Contains(st.Message, "qa")
		t.Logf("kill %d at %s step %d weight %d", kill+1, st.Phase, st.Step, st.Weight)
		// Approve only after several kills landed at the gate, so the
		// crashes cover the live canary.
		if !approved && atGate && midCanary >= 8 {
			w.sluice("approve", w.ns+"/canary", "qa", "--push")
			approved = true
		}
		a = w.start()
		if atGate && !approved {
			if wt := w.weights("canary"); wt["canary-canary"] != int64(st.Weight) || wt["canary"] != int64(100-st.Weight) {
				t.Errorf("after restart %d the route is %v, the status says weight %d", kill+1, wt, st.Weight)
			}
		}
	}
	if midCanary < 5 {
		t.Errorf("only %d of 20 kills landed while the canary was live", midCanary)
	}
	st := w.waitStatus("canary", 90*time.Second, "the gate or promotion", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil && len(w.trailers("canary")) > 2 ||
			s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, "qa")
	})
	if st.Phase == v1alpha1.PhasePaused {
		w.sluice("approve", w.ns+"/canary", "qa", "--push")
		w.waitStatus("canary", 90*time.Second, "promoted", func(s v1alpha1.ReleaseStatus) bool {
			return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil
		})
	}
	waitFor(t, drained, "the canary track deleted after promotion and its drain", func() bool { return !w.exists("canary-canary") })
	got := w.trailers("canary")
	checkHistory(t, got, []int64{0, 5, 25, 100})
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("transitions with crashes differ from a crash-free run:\n got %v\nwant %v", got, want)
	}
}

// Scenario 10 — the cluster is rebuilt mid-canary: a fresh empty control
// plane and a new agent bring stable and canary back at the step's weight
// from Git alone.
func TestClusterRebuilt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first, err := testcluster.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldOn(t, first, []string{"canary"}, "duration: 30s", "duration: 1s")
	gatedCanary(w)
	a := w.start()
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	w.commit("canary", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	st := w.waitStatus("canary", 60*time.Second, "at the gate", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, "qa")
	})
	a.cmd.Process.Signal(syscall.SIGTERM)
	a.cmd.Wait()
	first.Stop()

	second, err := testcluster.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	// The same namespace on the new cluster, the same repository.
	w.cl, w.cs = second, second.Clientset(t)
	if err := testcluster.ApplyYAML(ctx, second.Config, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+w.ns+"}\n")); err != nil {
		t.Fatal(err)
	}
	w.dyn = dynamicFor(t, second)
	start := time.Now()
	w.start()
	if _, err := second.WaitAvailable(ctx, w.cs, w.ns, "canary", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := second.WaitAvailable(ctx, w.cs, w.ns, "canary-canary", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the route at the step's weight", func() bool {
		wt := w.weights("canary")
		return wt["canary"] == int64(100-st.Weight) && wt["canary-canary"] == int64(st.Weight)
	})
	t.Logf("stable, canary and route at weight %d back %s after the new agent started", st.Weight, time.Since(start).Round(100*time.Millisecond))
	if now := w.status("canary"); now.Step != st.Step || now.Weight != st.Weight || now.Canary.Revision != st.Canary.Revision {
		t.Errorf("status moved on the new cluster: %+v", now)
	}
	d, _ := w.cs.AppsV1().Deployments(w.ns).Get(ctx, "canary", metav1.GetOptions{})
	if !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":6.7.0") {
		t.Errorf("the new cluster's stable runs %s, want the stable revision's 6.7.0", d.Spec.Template.Spec.Containers[0].Image)
	}
}

// Scenario 12 — outages: the API server and the Git server each down 30s
// during a canary: no deletions, no spurious transitions, and the canary
// resumes.
func TestOutages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	own, err := testcluster.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			own.Keep()
			t.Logf("the outage cluster's logs are kept in %s", own.Dir)
		}
		own.Stop()
	}()
	w := newWorldOn(t, own, []string{"canary"}, "duration: 30s", "duration: 1s")
	gatedCanary(w)
	w.start()
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	w.commit("canary", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	w.waitStatus("canary", 60*time.Second, "at the gate", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, "qa")
	})
	before := len(w.trailers("canary"))
	uids := w.uids()

	// The API server goes away for 30 seconds.
	if err := own.StopComponent("kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)
	if err := own.StartComponent(ctx, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	// The Git server goes away for 30 seconds. (An approval pushed during
	// this outage is the agent-level TestApprovalDuringGitOutage.)
	w.srv.SetDown(true)
	time.Sleep(30 * time.Second)
	if after := len(w.trailers("canary")); after != before {
		t.Errorf("transitions during the outages: %v", w.trailers("canary")[before:])
	}
	w.srv.SetDown(false)
	w.sluice("approve", w.ns+"/canary", "qa", "--push")
	// Nothing was deleted and created again: every object keeps its UID.
	for id, uid := range w.uids() {
		if uids[id] != uid {
			t.Errorf("%s was replaced during the outages (uid %s → %s)", id, uids[id], uid)
		}
	}
	if len(uids) < 5 {
		t.Errorf("only %d objects to compare: %v", len(uids), uids)
	}
	w.waitStatus("canary", 240*time.Second, "promoted after the outages", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil
	})
	checkHistory(t, w.trailers("canary"), []int64{0, 5, 25, 100})
}

// uids maps the release's live objects (both tracks, Services, route) to
// their UIDs.
func (w *world) uids() map[string]string {
	w.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, n := range []string{"canary", "canary-canary"} {
		if d, err := w.cs.AppsV1().Deployments(w.ns).Get(ctx, n, metav1.GetOptions{}); err == nil {
			out["Deployment/"+n] = string(d.UID)
		}
		if s, err := w.cs.CoreV1().Services(w.ns).Get(ctx, n, metav1.GetOptions{}); err == nil {
			out["Service/"+n] = string(s.UID)
		}
	}
	if r, err := w.dyn.Resource(httpRoutes).Namespace(w.ns).Get(ctx, "canary", metav1.GetOptions{}); err == nil {
		out["HTTPRoute/canary"] = string(r.GetUID())
	}
	return out
}
