package agent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
	"github.com/sluice-dev/sluice/imageupdate"
	"github.com/sluice-dev/sluice/internal/egress"
	"github.com/sluice-dev/sluice/render"
)

// imageScanner is --image-updates: between passes, when due, it lists the
// tags of every image a release's spec.imageUpdates names (once per image,
// however many releases name it) and commits each release's newer tag to
// its kustomization. The commit starts the canary; the scanner never
// changes the cluster.
type imageScanner struct {
	reg *imageupdate.Registry
	// schedule is when the next scan is due: set after a scan, brought
	// forward by a registry's push notification.
	schedule
	// hookSecret, when set, is what a notification's Authorization:
	// Bearer header must say.
	hookSecret []byte
	// forced is set by a push notification: the next scan also asks the
	// images that failed recently (not those a Retry-After holds back).
	forced atomic.Bool
	// proposed is the value last committed per release and image: one that
	// Git no longer names was reverted or rolled back, and is not proposed
	// again (only a newer tag is). A value a canary aborted is also read
	// from the release's status (abortedRevision), so that one holds
	// across restarts.
	proposed map[string]string
	// aborted caches the value an aborted revision's files name, per
	// revision, release and image.
	aborted map[string]string
	// mu guards state, which GET /images serves.
	mu    sync.Mutex
	state map[string]*imageState
}

// imageState is what the scanner knows of one image: served as JSON at
// GET /images on --listen.
type imageState struct {
	Image    string   `json:"image"`
	Releases []string `json:"releases"`
	// Scanned is the last listing that succeeded, Tags how many tags it
	// had.
	Scanned *time.Time `json:"scanned,omitempty"`
	Tags    int        `json:"tags"`
	// Error is the last listing's error, Failures how many listings in
	// a row failed, and NextTry when the image is asked again (backoff,
	// or the registry's Retry-After).
	Error    string     `json:"error,omitempty"`
	Failures int        `json:"failures,omitempty"`
	NextTry  *time.Time `json:"nextTry,omitempty"`

	rateLimited bool
	backoff     wait.Backoff
}

func newImageScanner(opts Options) (*imageScanner, error) {
	reg := &imageupdate.Registry{Transport: egress.Transport()}
	if len(opts.ImageDockerConfigs)+len(opts.ImageBasicAuth) > 0 {
		k := &imageupdate.Credentials{DockerConfigs: opts.ImageDockerConfigs, BasicAuth: opts.ImageBasicAuth}
		if err := k.Check(); err != nil {
			return nil, fmt.Errorf("--image-docker-config, --image-basic-auth: %w", err)
		}
		reg.Keychain = k
	}
	if opts.ImageUpdatesBranch != "" {
		if err := gitsource.ValidateBranch(opts.ImageUpdatesBranch + "/ns/name"); err != nil {
			return nil, fmt.Errorf("--image-updates-branch: %w", err)
		}
	}
	s := &imageScanner{reg: reg, schedule: schedule{interval: opts.ImageInterval}, proposed: map[string]string{}, aborted: map[string]string{}, state: map[string]*imageState{}}
	if opts.ImageHookSecretFile != "" {
		b, err := os.ReadFile(opts.ImageHookSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--image-hook-secret-file: %w", err)
		}
		if s.hookSecret = bytes.TrimSpace(b); len(s.hookSecret) == 0 {
			return nil, fmt.Errorf("--image-hook-secret-file %s is empty", opts.ImageHookSecretFile)
		}
	}
	return s, nil
}

// dueNow makes the next scan due at once, for every image but those a
// registry's Retry-After holds back.
func (s *imageScanner) dueNow() {
	s.forced.Store(true)
	s.schedule.dueNow()
}

// held says whether image is held back (by backoff after failures, or by
// Retry-After) at now, and records its releases.
func (s *imageScanner) held(image string, releases []string, now time.Time, forced bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[image]
	if st == nil {
		st = &imageState{Image: image}
		s.state[image] = st
	}
	st.Releases = releases
	return st.NextTry != nil && now.Before(*st.NextTry) && (!forced || st.rateLimited)
}

// record keeps a listing's outcome: a failure holds the image back until
// the registry's Retry-After, else for one interval, doubling with each
// failure in a row up to 16; a success clears that.
func (s *imageScanner) record(image string, tags int, err error, now time.Time) *imageState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[image]
	if err == nil {
		st.Scanned, st.Tags, st.Error, st.Failures, st.NextTry, st.rateLimited = &now, tags, "", 0, nil, false
		return st
	}
	if st.Failures == 0 {
		st.backoff = wait.Backoff{Duration: s.interval, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 16 * s.interval}
	}
	st.Failures++
	st.Error = err.Error()
	next := now.Add(st.backoff.Step())
	until, limited := imageupdate.IsRateLimited(err)
	if limited && until.After(next) {
		next = until
	}
	st.NextTry, st.rateLimited = &next, limited
	return st
}

// snapshot is the state of every image, sorted.
func (s *imageScanner) snapshot() []imageState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]imageState, 0, len(s.state))
	for _, st := range s.state {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out
}

// imageTarget is one release's policy for one image.
type imageTarget struct {
	p      *v1alpha1.Parsed
	update v1alpha1.ImageUpdate
}

// scanImages scans the images of the releases at the spec head the last
// pass applied, commits what is newer, and says whether it committed.
func (a *Agent) scanImages(ctx context.Context) bool {
	s := a.images
	s.again()
	forced := s.forced.Swap(false)
	if a.appliedSpec.IsZero() {
		return false
	}
	tree, err := a.tree(a.appliedSpec)
	if err != nil {
		a.log.Warn("image updates: spec tree", zap.Error(err))
		return false
	}
	statusTree := tree
	if !a.src.SameBranch() {
		statusTree = nil
		if !a.appliedStatus.IsZero() {
			statusTree, _ = a.tree(a.appliedStatus)
		}
	}
	byImage := map[string][]imageTarget{}
	for _, p := range a.servedReleases(tree) {
		for _, u := range p.Release.Spec.ImageUpdates {
			byImage[u.Image] = append(byImage[u.Image], imageTarget{p, u})
		}
	}
	images := make([]string, 0, len(byImage))
	for image := range byImage {
		images = append(images, image)
	}
	sort.Strings(images)
	committed := false
	for _, image := range images {
		var releases []string
		for _, t := range byImage[image] {
			releases = append(releases, t.p.Release.ID())
		}
		if s.held(image, releases, time.Now(), forced) {
			continue
		}
		a.metrics.imageScans.Inc()
		tags, err := s.reg.Tags(ctx, image)
		st := s.record(image, len(tags), err, time.Now())
		if err != nil {
			a.metrics.imageScanErrors.Inc()
			a.log.Warn("image updates: listing tags failed; nothing is committed for this image until a listing succeeds",
				zap.String("image", image), zap.Int("failures", st.Failures), zap.Time("nextTry", *st.NextTry), zap.Error(err))
			continue
		}
		for _, t := range byImage[image] {
			if a.proposeImage(ctx, tree, statusTree, t, tags) {
				committed = true
			}
		}
	}
	return committed
}

// proposeImage commits the tag t's policy takes from tags when Git names
// another, and says whether it did.
func (a *Agent) proposeImage(ctx context.Context, tree, statusTree *gitsource.TreeFS, t imageTarget, tags []string) bool {
	s := a.images
	id := t.p.Release.ID()
	log := a.log.With(zap.String("release", id), zap.String("image", t.update.Image))
	tag, ok := imageupdate.Latest(t.update.Policy, tags)
	if !ok {
		return false
	}
	value := tag
	if t.update.Pin == "digest" {
		d, err := s.reg.Digest(ctx, t.update.Image, tag)
		if err != nil {
			a.metrics.imageScanErrors.Inc()
			log.Warn("image updates: resolving the digest failed", zap.String("tag", tag), zap.Error(err))
			return false
		}
		value = tag + "@" + d
	}
	key := id + "|" + t.update.Image
	current := currentImageTag(tree, t.p, t.update.Image)
	if current == value || s.proposed[key] == value {
		return false
	}
	if aborted := a.abortedImage(ctx, statusTree, t); aborted == value {
		log.Debug("image updates: the newest tag is the one the canary aborted; waiting for a newer one", zap.String("tag", value))
		return false
	}
	err := a.commitImage(ctx, t, value)
	if err != nil {
		a.metrics.imageScanErrors.Inc()
		log.Error("image updates: the commit failed; the next scan tries again", zap.String("to", value), zap.Error(err))
		return false
	}
	s.proposed[key] = value
	a.metrics.imageProposals.Inc()
	if a.opts.ImageUpdatesBranch != "" {
		log.Info("image update pushed for a pull request", zap.String("branch", imageBranch(a.opts.ImageUpdatesBranch, t.p.Release)), zap.String("from", current), zap.String("to", value))
		return false // nothing on the spec branch to apply
	}
	log.Info("image update committed", zap.String("from", current), zap.String("to", value))
	return true
}

// abortedImage is the value the release's last aborted canary revision
// (its status's abortedRevision) gave image, "" when none: read from Git,
// so a restart keeps the promise not to propose an aborted tag again.
func (a *Agent) abortedImage(ctx context.Context, statusTree *gitsource.TreeFS, t imageTarget) string {
	st, err := readStatus(statusTree, path.Join(path.Dir(t.p.File), v1alpha1.StatusFile))
	if err != nil || st.AbortedRevision == "" {
		return ""
	}
	key := st.AbortedRevision + "|" + t.p.Release.ID() + "|" + t.update.Image
	if v, ok := a.images.aborted[key]; ok {
		return v
	}
	h := plumbing.NewHash(st.AbortedRevision)
	if err := a.src.FetchCommit(ctx, a.opts.Branch, h); err != nil {
		a.log.Warn("image updates: the aborted revision is not fetchable", zap.String("revision", st.AbortedRevision), zap.Error(err))
		return ""
	}
	tree, err := a.tree(h)
	if err != nil {
		return ""
	}
	v := currentImageTag(tree, t.p, t.update.Image)
	a.images.aborted[key] = v
	return v
}

// serveImages is GET /images: the scanner's state of every image.
func (a *Agent) serveImages(w http.ResponseWriter, r *http.Request) {
	if a.images == nil {
		http.Error(w, "image updates are off (--image-updates)", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(a.images.snapshot())
}

// imageBranch is the pull-request branch of a release's image updates:
// <prefix>/<namespace>/<name>.
func imageBranch(prefix string, r *v1alpha1.Release) string {
	return path.Join(prefix, r.Metadata.Namespace, r.Metadata.Name)
}

// currentImageTag is the newTag the release's kustomization gives image.
func currentImageTag(tree *gitsource.TreeFS, p *v1alpha1.Parsed, image string) string {
	data, err := tree.ReadFile("/" + kustomizationPath(tree, p))
	if err != nil {
		return ""
	}
	return imageupdate.Tag(data, image)
}

// kustomizationPath is the release's kustomization file, repository
// relative (kustomization.yaml when a Helm release has none yet).
func kustomizationPath(tree *gitsource.TreeFS, p *v1alpha1.Parsed) string {
	return strings.TrimPrefix(render.KustomizationPath(tree, "/"+p.SourceDir()), "/")
}

// commitImage writes value as the image's newTag on the spec branch, one
// commit per release and change, with trailers saying what moved.
func (a *Agent) commitImage(ctx context.Context, t imageTarget, value string) error {
	id := t.p.Release.ID()
	// On the spec branch, or, with --image-updates-branch, on a branch of
	// the release's own for a pull request, started at the spec head.
	branch, from := a.opts.Branch, plumbing.ZeroHash
	if a.opts.ImageUpdatesBranch != "" {
		branch, from = imageBranch(a.opts.ImageUpdatesBranch, t.p.Release), a.appliedSpec
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	_, err := a.src.WriteFrom(ctx, branch, from, func(ctx context.Context, _ plumbing.Hash, head *gitsource.TreeFS) (*gitsource.CommitSpec, error) {
		kf := kustomizationPath(head, t.p)
		data, err := head.ReadFile("/" + kf)
		if err != nil && head.Exists("/"+kf) {
			return nil, err
		}
		out, old, err := imageupdate.SetTag(data, t.update.Image, value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kf, err)
		}
		if old == value {
			return nil, nil // someone committed it first
		}
		from := old
		if from == "" {
			from = "(none)"
		}
		msg := gitsource.FormatMessage(fmt.Sprintf("sluice: %s %s %s → %s", id, t.update.Image, from, value),
			fmt.Sprintf("The registry has %s:%s, the newest tag the release's policy (%s) allows; this commit starts its rollout.", t.update.Image, value, t.update.Policy.Name()),
			[]gitsource.Trailer{{Key: "Sluice-Release", Value: id}, {Key: "Sluice-Image", Value: t.update.Image},
				{Key: "Sluice-Image-From", Value: old}, {Key: "Sluice-Image-To", Value: value}, {Key: "Sluice-Policy", Value: t.update.Policy.Name()}})
		return &gitsource.CommitSpec{Message: msg, Files: []gitsource.FileChange{{Path: kf, Data: out}}}, nil
	})
	return err
}

// registryEvents is the Docker distribution registry's notification
// envelope, as much of it as sluice reads.
type registryEvents struct {
	Events []struct {
		Action string `json:"action"`
		Target struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"target"`
	} `json:"events"`
}

// serveRegistryHook is POST /hook/registry: a registry's push
// notification makes the next image scan due at once (it scans, it does
// not trust the notification's tag). With --image-hook-secret-file, only
// notifications carrying "Authorization: Bearer <secret>" count.
func (a *Agent) serveRegistryHook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	s := a.images
	if s == nil {
		http.Error(w, "image updates are off (--image-updates)", http.StatusNotFound)
		return
	}
	if len(s.hookSecret) > 0 {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), s.hookSecret) != 1 {
			a.metrics.hooks.WithLabelValues("refused").Inc()
			http.Error(w, "no valid Authorization: Bearer header", http.StatusUnauthorized)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHookBody+1))
	if err != nil || len(body) > maxHookBody {
		http.Error(w, "body unreadable or over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	var env registryEvents
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "not a registry notification: "+err.Error(), http.StatusBadRequest)
		return
	}
	// A follower does not scan: it hands the notification to the leader.
	if f := a.leader.Load(); f != nil && r.Header.Get(forwardedHeader) == "" {
		if leading, addr := (*f)(); !leading {
			if err := forwardHook(r.Context(), addr, "/hook/registry", r.Header, body); err != nil {
				http.Error(w, "follower: "+err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	pushes := 0
	for _, e := range env.Events {
		if e.Action == "push" && e.Target.Tag != "" {
			pushes++
		}
	}
	if pushes > 0 {
		a.metrics.hooks.WithLabelValues("registry").Inc()
		s.dueNow()
		a.Poll()
	}
	w.WriteHeader(http.StatusAccepted)
}
