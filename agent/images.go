package agent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"

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
	reg      *imageupdate.Registry
	interval time.Duration
	// next is when the next scan is due (unix ns): set by the loop after
	// a scan, brought forward by a registry's push notification.
	next atomic.Int64
	// hookSecret, when set, is what a notification's Authorization:
	// Bearer header must say.
	hookSecret []byte
	// proposed is the value last committed per release and image: one that
	// Git no longer names was reverted or rolled back, and is not proposed
	// again (only a newer tag is). Kept in memory: after a restart the
	// scanner may propose it once more.
	proposed map[string]string
}

func newImageScanner(opts Options) (*imageScanner, error) {
	reg := &imageupdate.Registry{Transport: egress.Transport()}
	if len(opts.ImageDockerConfigs) > 0 {
		k, err := imageupdate.KeychainFromFiles(opts.ImageDockerConfigs...)
		if err != nil {
			return nil, fmt.Errorf("--image-docker-config: %w", err)
		}
		reg.Keychain = k
	}
	if opts.ImageUpdatesBranch != "" {
		if err := gitsource.ValidateBranch(opts.ImageUpdatesBranch + "/ns/name"); err != nil {
			return nil, fmt.Errorf("--image-updates-branch: %w", err)
		}
	}
	s := &imageScanner{reg: reg, interval: opts.ImageInterval, proposed: map[string]string{}}
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

// until is how long before the next scan is due.
func (s *imageScanner) until() time.Duration { return time.Until(time.Unix(0, s.next.Load())) }

// dueNow makes the next scan due at once.
func (s *imageScanner) dueNow() { s.next.Store(time.Now().UnixNano()) }

// imageTarget is one release's policy for one image.
type imageTarget struct {
	p      *v1alpha1.Parsed
	update v1alpha1.ImageUpdate
}

// scanImages scans the images of the releases at the spec head the last
// pass applied, commits what is newer, and says whether it committed.
func (a *Agent) scanImages(ctx context.Context) bool {
	s := a.images
	// The next scan in one interval, give or take a tenth, so replicas
	// and registries do not see scans in lockstep.
	s.next.Store(time.Now().Add(s.interval + time.Duration((rand.Float64()-0.5)*0.2*float64(s.interval))).UnixNano())
	if a.appliedSpec.IsZero() {
		return false
	}
	tree, err := a.tree(a.appliedSpec)
	if err != nil {
		a.log.Warn("image updates: spec tree", zap.Error(err))
		return false
	}
	files, _ := v1alpha1.FindReleases(tree, "/", a.opts.Path)
	byImage := map[string][]imageTarget{}
	for _, f := range files {
		p, err := render.ReadRelease(tree, "/", f)
		if err != nil || (len(a.opts.Namespaces) > 0 && !slices.Contains(a.opts.Namespaces, p.Release.Metadata.Namespace)) {
			continue // the pass reports it
		}
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
		a.metrics.imageScans.Inc()
		tags, err := s.reg.Tags(ctx, image)
		if err != nil {
			a.metrics.imageScanErrors.Inc()
			a.log.Warn("image updates: listing tags failed; the next scan tries again", zap.String("image", image), zap.Error(err))
			continue
		}
		for _, t := range byImage[image] {
			if a.proposeImage(ctx, tree, t, tags) {
				committed = true
			}
		}
	}
	return committed
}

// proposeImage commits the tag t's policy takes from tags when Git names
// another, and says whether it did.
func (a *Agent) proposeImage(ctx context.Context, tree *gitsource.TreeFS, t imageTarget, tags []string) bool {
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
