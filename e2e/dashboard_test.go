package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

var updateDashboard = flag.Bool("update-dashboard", false, "rewrite dashboard/testdata/story.bundle and docs/img/dashboard-*.png from TestDashboard's run")

// chromium is Debian's headless browser (hack/testdeps.sh installs it).
const chromium = "/usr/bin/chromium"

// artifactDir is where a test saves what a person would look at
// (screenshots): $SLUICE_ARTIFACTS/<test>, else <tmp>/sluice-artifacts/<test>.
func artifactDir(t *testing.T) string {
	root := os.Getenv("SLUICE_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "sluice-artifacts")
	}
	dir := filepath.Join(root, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless Chromium tab at 1280×800, in Tokyo's time zone.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (make test installs Debian's chromium through hack/testdeps.sh)", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first call starts the browser: no timeout on its context.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, failing the test on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval is a JavaScript expression's value in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// text is the visible text of the first element matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("browser: the text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitText waits until sel's text contains want, the page left alone (no
// navigation: the page must update itself).
func waitText(t *testing.T, ctx context.Context, timeout time.Duration, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(s, want) {
			return
		}
		last = s
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the page's %s never said %q (last: %q)", sel, want, last)
}

// Scenario — the dashboard in a real browser during a real canary: the
// agent serves /ui/; the overview and the release page show the phase,
// step and weight at the gate; the approval commit updates the open page
// without a reload; after the promotion and after an abort the pages say
// so; the pages work without JavaScript and at a phone's width; times are
// in the viewer's zone with UTC in the tooltip. Screenshots go to the
// artifact directory.
func TestDashboard(t *testing.T) {
	t.Parallel()
	app, prom := servePrometheus(t, "canary", "canary-canary")
	// The check's window shortened to 5 s: a new version's check may not
	// reach back past the last one's drain (docs/analysis.md).
	w := newWorld(t, []string{"canary"}, "http://prometheus.monitoring:9090", prom.URL, "duration: 30s", "duration: 2s", "interval: 10s", "interval: 1s", "[1m]", "[5s]")
	listen := freeListen(t)
	w.start("--listen", listen)
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	base := "http://" + listen + "/ui"
	id := w.ns + "/canary"
	row := fmt.Sprintf(`tr[data-release=%q]`, id)
	art := artifactDir(t)
	ctx := browser(t)

	do(t, ctx, "open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(row)))
	if got := text(t, ctx, row+" .phase"); got != "✓ Succeeded" {
		t.Errorf("overview phase after the install: %q", got)
	}

	rev := w.commit("canary", "bump podinfo", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	st := w.waitStatus("canary", 120*time.Second, "waiting at the qa gate", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, `"qa"`)
	})
	if st.Canary == nil || st.Canary.Revision != rev {
		t.Fatalf("at the gate: %+v", st)
	}
	// The overview, mid-canary: what a person sees.
	waitText(t, ctx, 20*time.Second, row+" .phase", "Paused")
	if got := text(t, ctx, row+" .step"); got != "7/8 pause{gate: qa}" {
		t.Errorf("overview step at the gate: %q", got)
	}
	if got := text(t, ctx, row+" .weights"); got != "canary 25%" {
		t.Errorf("overview weight at the gate: %q", got)
	}
	overviewMid := screenshot(t, ctx, art, "overview-mid-canary.png")

	// The release page at the gate.
	do(t, ctx, "open the release page", chromedp.Navigate(base+"/release/"+id), chromedp.WaitVisible(chromedp.CSS("svg.timeline")))
	if got := text(t, ctx, "h1 .phase"); got != "‖ Paused" {
		t.Errorf("release page phase at the gate: %q", got)
	}
	if got := text(t, ctx, `li[aria-current="step"]`); got != "▶ 7. pause{gate: qa}" {
		t.Errorf("current step: %q", got)
	}
	if got := text(t, ctx, "pre.cmd"); !strings.Contains(got, "sluice approve "+id+" qa --push") {
		t.Errorf("the approval command to copy: %q", got)
	}
	passMarks := eval[int](t, ctx, `document.querySelectorAll("svg.timeline .mark.pass").length`)
	if passMarks < 1 {
		t.Errorf("the timeline shows %d passed checks after the check step", passMarks)
	}
	// Times in the viewer's zone (Tokyo here), UTC in the tooltip.
	shown := text(t, ctx, "table.history time")
	title := eval[string](t, ctx, `document.querySelector("table.history time").title`)
	if strings.HasSuffix(shown, "Z") || !strings.Contains(title, "UTC") {
		t.Errorf("a time shown as %q with tooltip %q: want the viewer's zone, UTC on hover", shown, title)
	}
	releaseMid := screenshot(t, ctx, art, "release-mid-canary.png")

	// The approval lands as a commit; the open page follows it by itself.
	eval[bool](t, ctx, `window.sluiceTestMark = "same page"; true`)
	w.sluice("approve", id, "qa", "--push")
	waitText(t, ctx, 90*time.Second, "h1 .phase", "Succeeded")
	mark := eval[string](t, ctx, `window.sluiceTestMark || "reloaded"`)
	if mark != "same page" {
		t.Errorf("the page reloaded to show the promotion (mark %q): want it updated in place", mark)
	}
	approveMarks := eval[int](t, ctx, `document.querySelectorAll("svg.timeline .mark.approve").length`)
	promoteMarks := eval[int](t, ctx, `document.querySelectorAll("svg.timeline .mark.promote").length`)
	if approveMarks != 1 || promoteMarks != 1 {
		t.Errorf("after the promotion the timeline has %d approval and %d promotion marks, want 1 and 1", approveMarks, promoteMarks)
	}
	screenshot(t, ctx, art, "release-promoted.png")

	// A bad version: its check fails, the canary aborts.
	app.SetErrorPercent("canary-canary", 50)
	gitserver.Git(t, w.repo.Work, "pull", "-q", "origin", "main")
	w.commit("canary", "bump to a bad version", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.2")})
	w.waitStatus("canary", 120*time.Second, "aborted", phaseIs(v1alpha1.PhaseAborted))
	waitText(t, ctx, 20*time.Second, "h1 .phase", "Aborted")
	failMarks := eval[int](t, ctx, `document.querySelectorAll("svg.timeline .mark.fail").length`)
	abortMarks := eval[int](t, ctx, `document.querySelectorAll("svg.timeline .mark.abort").length`)
	if failMarks < 1 || abortMarks != 1 {
		t.Errorf("after the abort the timeline has %d failed checks and %d abort marks", failMarks, abortMarks)
	}
	screenshot(t, ctx, art, "release-aborted.png")
	do(t, ctx, "open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(row)))
	if got := text(t, ctx, row+" .phase"); got != "✗ Aborted" {
		t.Errorf("overview phase after the abort: %q", got)
	}
	screenshot(t, ctx, art, "overview-aborted.png")

	// A phone's width: nothing wider than the screen.
	do(t, ctx, "a phone's width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)), chromedp.Navigate(base+"/release/"+id),
		chromedp.WaitVisible(chromedp.CSS("h1")))
	if eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`) {
		t.Error("the release page is wider than a phone's screen")
	}
	screenshot(t, ctx, art, "release-phone.png")

	// Without JavaScript the server-rendered page says the same.
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "JavaScript off", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(row)))
	if got := text(t, ctx, row+" .phase"); got != "✗ Aborted" {
		t.Errorf("overview phase without JavaScript: %q", got)
	}
	resp, err := http.Get(base + "/release/" + id + "/timeline.svg")
	if err != nil || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("timeline.svg: %v %v", resp, err)
	}
	resp.Body.Close()
	t.Logf("dashboard: screenshots in %s", art)

	if *updateDashboard {
		os.MkdirAll("../dashboard/testdata", 0o755)
		out, err := exec.Command("git", "-C", w.repo.Bare, "bundle", "create", mustAbs(t, "../dashboard/testdata/story.bundle"), "--all").CombinedOutput()
		if err != nil {
			t.Fatalf("git bundle: %v\n%s", err, out)
		}
		for from, to := range map[string]string{overviewMid: "../docs/img/dashboard-overview.png", releaseMid: "../docs/img/dashboard-release.png"} {
			b, _ := os.ReadFile(from)
			os.MkdirAll(filepath.Dir(to), 0o755)
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
