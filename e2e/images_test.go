package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/registry"
)

// testRegistry is a real registry with htpasswd auth, behind a proxy
// that counts tag listings.
type testRegistry struct {
	*registry.Registry
	proxy string // host:port the agent uses
	lists atomic.Int64
	// requests counts every request through the proxy; fault, when set,
	// is what the proxy answers tag listings with instead of the
	// registry's answer: "429" (with Retry-After: 4) or "malformed".
	requests atomic.Int64
	fault    atomic.Value
	user     authn.Authenticator
}

// startRegistry starts the registry; with notify set, it posts its push
// notifications there with the bearer token.
func startRegistry(t *testing.T, notify ...string) *testRegistry {
	t.Helper()
	o := registry.Options{Username: "ci", Password: "registry-pw"}
	if len(notify) == 2 {
		o.NotifyURL, o.NotifyToken = notify[0], notify[1]
	}
	r := &testRegistry{Registry: registry.Start(t, o), user: &authn.Basic{Username: "ci", Password: "registry-pw"}}
	target, _ := url.Parse("http://" + r.Addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		fault, _ := r.fault.Load().(string)
		switch {
		case fault == "429":
			w.Header().Set("Retry-After", "4")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}`, http.StatusTooManyRequests)
			return
		case !strings.HasSuffix(req.URL.Path, "/tags/list"):
		case fault == "malformed":
			r.lists.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"name":"shop/podinfo","tags":["1.4.0",`)
			return
		default:
			r.lists.Add(1)
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.proxy = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push writes a small random image as repo:tag.
func (r *testRegistry) push(t *testing.T, repo, tag string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(r.Addr + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(r.user)); err != nil {
		t.Fatal(err)
	}
}

// dockerConfig is a config.json with the registry's credentials, keyed
// by the address the agent uses.
func (r *testRegistry) dockerConfig(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("ci:registry-pw"))
	os.WriteFile(f, []byte(fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, r.proxy, auth)), 0o600)
	return f
}

// imageRelease is the canary example with its image from the test
// registry and kept within policy by the agent.
func imageRelease(ns, name, image, tag, policy string) map[string]string {
	return map[string]string{
		"release.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    scaleDownDelay: 1s
    canary:
      steps: [{setWeight: 50}, {pause: {duration: 1s}}, {setWeight: 100}]
  imageUpdates:
  - image: %[3]s
    policy: {semver: %[4]q}
`, name, ns, image, policy),
		"kustomization.yaml": fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources: [deployment.yaml, service.yaml, route.yaml]
configMapGenerator:
- name: canary-config
  literals: [GREETING=hello]
# The image, as the agent keeps it:
images:
- name: ghcr.io/sluice-dev/podinfo
  newName: %s
  newTag: %q
`, ns, image, tag),
	}
}

// Scenario — a new image in the registry becomes a commit, and the
// commit a canary: a tag within the policy is committed within one scan
// interval and promoted; one outside it is not; a registry that is down
// makes no commit; two releases naming one image cost one tag listing per
// scan.
func TestImageUpdates(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	reg.push(t, "shop/podinfo", "1.3.0")
	image := reg.proxy + "/shop/podinfo"
	w := newWorld(t, []string{"canary"})
	files := map[string]string{}
	for _, rel := range []string{"canary", "canary-b"} {
		for f, c := range imageRelease(w.ns, rel, image, "1.3.0", ">=1.3.0 <2") {
			files["releases/"+w.ns+"/"+rel+"/"+f] = c
		}
	}
	// canary-b shares canary's manifests but names its own objects.
	for _, f := range []string{"deployment.yaml", "service.yaml", "route.yaml"} {
		files["releases/"+w.ns+"/canary-b/"+f] = strings.ReplaceAll(w.file("canary", f), "canary", "canary-b")
	}
	files["releases/"+w.ns+"/canary-b/release.yaml"] = strings.ReplaceAll(files["releases/"+w.ns+"/canary-b/release.yaml"], "name: canary}", "name: canary-b}")
	files["releases/"+w.ns+"/canary-b/release.yaml"] = strings.ReplaceAll(files["releases/"+w.ns+"/canary-b/release.yaml"], "{route: canary, service: canary}", "{route: canary-b, service: canary-b}")
	files["releases/"+w.ns+"/canary-b/kustomization.yaml"] = strings.ReplaceAll(files["releases/"+w.ns+"/canary-b/kustomization.yaml"], "name: canary-config", "name: canary-b-config")
	// canary-b pins the digest the tag names.
	files["releases/"+w.ns+"/canary-b/release.yaml"] += "    pin: digest\n"
	w.repo.Commit(t, "two releases kept at the newest podinfo 1.x", files)
	w.repo.Push(t)
	w.start("--image-updates", "--image-interval", "2s", "--image-docker-config", reg.dockerConfig(t))
	for _, rel := range []string{"canary", "canary-b"} {
		w.waitStatus(rel, 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	}

	// One tag listing per scan for the image both releases name.
	before := reg.lists.Load()
	time.Sleep(5 * time.Second)
	if n := reg.lists.Load() - before; n < 1 || n > 4 {
		t.Errorf("%d tag listings in 5 s at a 2 s interval for one image named by two releases; want one per scan", n)
	}

	pushed := time.Now()
	reg.push(t, "shop/podinfo", "1.4.0")
	var bump string
	waitFor(t, 30*time.Second, "the bump committed on main", func() bool {
		out := gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%H %(trailers:key=Sluice-Image-To,valueonly,separator=)", "--", "releases/"+w.ns+"/canary/kustomization.yaml")
		if strings.HasSuffix(out, " 1.4.0") {
			bump = strings.Fields(out)[0]
			return true
		}
		return false
	})
	committed := time.Since(pushed)
	trailers := gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%(trailers)", bump)
	for _, want := range []string{"Sluice-Image: " + image, "Sluice-Image-From: 1.3.0", "Sluice-Image-To: 1.4.0", "Sluice-Policy: semver >=1.3.0 <2"} {
		if !strings.Contains(trailers, want) {
			t.Errorf("the bump's trailers lack %q:\n%s", want, trailers)
		}
	}
	var started time.Duration
	st := w.waitStatus("canary", 60*time.Second, "1.4.0 promoted", func(s v1alpha1.ReleaseStatus) bool {
		if s.Canary != nil && started == 0 {
			started = time.Since(pushed)
		}
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Stable.Revision != "" && s.Canary == nil && started > 0
	})
	d, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "canary", metav1.GetOptions{})
	if err != nil || !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, "/shop/podinfo:1.4.0") {
		t.Errorf("after the promotion the stable Deployment runs %v (%v); status %+v", d.Spec.Template.Spec.Containers, err, st)
	}
	// canary-b, pinned: the tag and its digest, promoted too.
	pinned := regexp.MustCompile(`newTag: "?1\.4\.0@sha256:[0-9a-f]{64}"?`)
	w.waitStatus("canary-b", 60*time.Second, "canary-b at 1.4.0@sha256:… promoted", func(s v1alpha1.ReleaseStatus) bool {
		return pinned.MatchString(w.file("canary-b", "kustomization.yaml")) && s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil && s.Stable != nil && s.Stable.Revision == gitserver.Git(t, w.repo.Bare, "rev-parse", "main")
	})
	if d, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "canary-b", metav1.GetOptions{}); err != nil || !strings.Contains(d.Spec.Template.Spec.Containers[0].Image, ":1.4.0@sha256:") {
		t.Errorf("canary-b's Deployment: %v %v", d.Spec.Template.Spec.Containers, err)
	}
	t.Logf("images: push->commit %.1fs (poll, 2s interval), ->canary started %.1fs", committed.Seconds(), started.Seconds())

	// Outside the range: nothing.
	head := gitserver.Git(t, w.repo.Bare, "rev-parse", "main")
	reg.push(t, "shop/podinfo", "2.0.0")
	time.Sleep(6 * time.Second)
	if now := gitserver.Git(t, w.repo.Bare, "rev-parse", "main"); now != head {
		t.Errorf("2.0.0 (outside >=1.3.0 <2) was committed: %s", gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%s", "main"))
	}

	// The registry down: scans fail, nothing is committed, releases stay.
	reg.Stop()
	time.Sleep(5 * time.Second)
	if now := gitserver.Git(t, w.repo.Bare, "rev-parse", "main"); now != head {
		t.Error("a commit while the registry was down")
	}
	if s := w.status("canary"); s.Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("with the registry down the release is %s: %s", s.Phase, s.Message)
	}
}

// imageWorld is a world whose canary release is kept at the newest
// podinfo 1.x of the registry, from 1.3.0.
func imageWorld(t *testing.T, reg *testRegistry) *world {
	t.Helper()
	w := newWorld(t, []string{"canary"})
	files := map[string]string{}
	for f, c := range imageRelease(w.ns, "canary", reg.proxy+"/shop/podinfo", "1.3.0", "^1.3") {
		files["releases/"+w.ns+"/canary/"+f] = c
	}
	w.repo.Commit(t, "canary kept at the newest podinfo 1.x", files)
	w.repo.Push(t)
	return w
}

// Scenario — the registry's push notification: with a scan interval of
// ten minutes, a pushed tag is committed within seconds of the push; a
// notification without the shared secret does nothing.
func TestImageUpdateNotification(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("registry-hook-token\n"), 0o600)
	reg := startRegistry(t, "http://"+listen+"/hook/registry", "registry-hook-token")
	reg.push(t, "shop/podinfo", "1.3.0")
	w := imageWorld(t, reg)
	w.start("--image-updates", "--image-interval", "10m", "--image-docker-config", reg.dockerConfig(t),
		"--image-hook-secret-file", secret, "--listen", listen)
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	time.Sleep(time.Second) // the first scan, at start, is done

	// Without the token: refused.
	resp, err := http.Post("http://"+listen+"/hook/registry", "application/json", strings.NewReader(`{"events":[{"action":"push","target":{"repository":"shop/podinfo","tag":"9.9.9"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a notification without the token: %s", resp.Status)
	}

	pushed := time.Now()
	reg.push(t, "shop/podinfo", "1.4.0")
	waitFor(t, 20*time.Second, "the bump committed after the notification", func() bool {
		return strings.HasSuffix(gitserver.Git(t, w.repo.Bare, "log", "-1", "--format=%(trailers:key=Sluice-Image-To,valueonly,separator=)", "main"), "1.4.0")
	})
	committed := time.Since(pushed)
	var started time.Duration
	w.waitStatus("canary", 60*time.Second, "1.4.0's canary", func(s v1alpha1.ReleaseStatus) bool {
		if s.Canary != nil && started == 0 {
			started = time.Since(pushed)
		}
		return started > 0
	})
	t.Logf("images: push->commit %.1fs (notification), ->canary started %.1fs", committed.Seconds(), started.Seconds())
	if committed > 10*time.Second {
		t.Errorf("the notification did not make the scan happen at once: %s", committed)
	}
}

// Scenario — pull-request mode: with --image-updates-branch the bump goes
// to a branch of the release's own, started at the spec head, and nothing
// runs until it is merged; the merge starts the canary.
func TestImageUpdatesPRBranch(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	reg.push(t, "shop/podinfo", "1.3.0")
	w := imageWorld(t, reg)
	w.start("--image-updates", "--image-interval", "1s", "--image-docker-config", reg.dockerConfig(t), "--image-updates-branch", "sluice/images")
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	main := gitserver.Git(t, w.repo.Bare, "rev-parse", "main")
	reg.push(t, "shop/podinfo", "1.4.0")
	branch := "sluice/images/" + w.ns + "/canary"
	waitFor(t, 20*time.Second, "the bump pushed to "+branch, func() bool {
		out, err := exec.Command("git", "-C", w.repo.Bare, "log", "-1", "--format=%(trailers:key=Sluice-Image-To,valueonly,separator=)", branch).Output()
		return err == nil && strings.TrimSpace(string(out)) == "1.4.0"
	})
	if parent := gitserver.Git(t, w.repo.Bare, "rev-parse", branch+"^"); parent != main {
		t.Errorf("the branch starts at %s, not the spec head %s", parent, main)
	}
	time.Sleep(3 * time.Second) // scans go on: nothing more is pushed, main is untouched
	if now := gitserver.Git(t, w.repo.Bare, "rev-parse", "main"); now != main {
		t.Error("PR mode committed on the spec branch")
	}
	if n := gitserver.Git(t, w.repo.Bare, "rev-list", "--count", main+".."+branch); n != "1" {
		t.Errorf("%s commits on the branch, want 1", n)
	}
	if s := w.status("canary"); s.Canary != nil {
		t.Errorf("a canary started before the merge: %+v", s)
	}
	// The pull request is merged: the canary starts.
	gitserver.Git(t, w.repo.Work, "fetch", "-q", "origin", branch)
	gitserver.Git(t, w.repo.Work, "merge", "-q", "--ff-only", "FETCH_HEAD")
	w.repo.Push(t)
	w.waitStatus("canary", 60*time.Second, "1.4.0 promoted after the merge", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Stable.Revision == gitserver.Git(t, w.repo.Bare, "rev-parse", "main")
	})
}
