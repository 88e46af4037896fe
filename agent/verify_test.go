package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestVerifiedCommits: under --verify-commits only commits signed (git
// commit -S, gpg and ssh) by a trusted, unexpired key are applied; a
// refused head leaves the last verified commit serving, and the release's
// status, a Warning Event and a metric say why. In all mode an unsigned
// commit under a signed merge is refused too, and a force-push away from
// it recovers.
func TestVerifiedCommits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice := gitserver.GPGKey(t, "alice", false)
	mallory := gitserver.GPGKey(t, "mallory", false)
	old := gitserver.GPGKey(t, "old", true)
	bob := gitserver.SSHKey(t, "bob@example.com", "")
	dir := t.TempDir()
	pgp, signers := filepath.Join(dir, "team.asc"), filepath.Join(dir, "allowed_signers")
	os.WriteFile(pgp, []byte(alice.Trusted+old.Trusted), 0o644)
	os.WriteFile(signers, []byte(bob.Trusted), 0o644)

	files := fixture(t, "NAMESPACE", "rolling")
	e := newEnv(t, files, func(o *Options) {
		o.VerifyCommits, o.TrustedKeysFiles = "head", []string{pgp, signers}
	})
	go e.agent.notify.run(ctx)
	rel := e.ns + "/rolling"
	kustomization := "releases/" + e.ns + "/rolling/kustomization.yaml"
	base := files["releases/NAMESPACE/rolling/kustomization.yaml"] // newEnv put the namespace in the values
	signedBy := func(who string) map[string]string {
		return map[string]string{kustomization: base + "commonAnnotations:\n  signed-by: " + who + "\n"}
	}
	served := func() string {
		t.Helper()
		d, err := cluster.Clientset(t).AppsV1().Deployments(e.ns).Get(ctx, "rolling", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return d.Annotations["signed-by"] + "@"
	}
	unverified := func() float64 { return counterValue(t, e.agent, "sluice_spec_unverified_total") }

	// The test repository's first commit is unsigned: nothing is applied.
	if _, err := e.agent.Pass(ctx); err == nil || !strings.Contains(err.Error(), "not signed") || !strings.Contains(err.Error(), "nothing is applied") {
		t.Fatalf("unsigned first head: pass error %v", err)
	}
	if s := served(); s != "" {
		t.Fatalf("an unsigned head was applied: %q", s)
	}

	// Signed by alice (gpg, trusted): applied.
	good := e.repo.CommitSigned(t, alice, "alice's change", signedBy("alice"))
	e.repo.Push(t)
	e.passUntil(rel, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if s := served(); s != "alice@" {
		t.Fatalf("alice's signed commit not applied: %q", s)
	}

	// Refused heads: an untrusted key, an expired key, a force-push of an
	// unsigned history. Each is reported once; alice's commit serves.
	refuse := func(name, want string, push func()) {
		t.Helper()
		before := unverified()
		push()
		for range 2 { // the second pass must not report again
			if _, err := e.agent.Pass(ctx); err != nil {
				t.Fatalf("%s: pass: %v", name, err)
			}
		}
		if n := unverified() - before; n != 1 {
			t.Errorf("%s: counted %v times", name, n)
		}
		if s := served(); s != "alice@" {
			t.Fatalf("%s: applied: %q", name, s)
		}
		st := e.status(rel)
		if !strings.Contains(st.Message, "not applied (--verify-commits=head)") || !strings.Contains(st.Message, want) || !strings.Contains(st.Message, short(good)+", the last verified commit, keeps serving") {
			t.Errorf("%s: status message %q", name, st.Message)
		}
		if st.ObservedRevision != good {
			t.Errorf("%s: observed revision %s, want the verified %s", name, st.ObservedRevision, good)
		}
	}
	refuse("untrusted gpg key", "signed by an OpenPGP key that is not trusted", func() {
		e.repo.CommitSigned(t, mallory, "mallory's change", signedBy("mallory"))
		e.repo.Push(t)
	})
	waitEvent(t, ctx, e.ns, "rolling", "SluiceUnverifiedCommit", "OpenPGP key that is not trusted")
	refuse("expired gpg key", "expired", func() {
		e.repo.CommitSigned(t, old, "an old key's change", signedBy("old"))
		e.repo.Push(t)
	})
	refuse("unsigned history force-pushed", "not signed", func() {
		gitserver.Git(t, e.repo.Work, "checkout", "-q", "--orphan", "other")
		e.repo.Commit(t, "unrelated unsigned history", signedBy("nobody"))
		gitserver.Git(t, e.repo.Work, "push", "-q", "-f", "origin", "other:main")
		gitserver.Git(t, e.repo.Work, "checkout", "-q", "-B", "main", "origin/main")
	})
	if v := gaugeValue(t, e.agent, "sluice_spec_head_verified"); v != 0 {
		t.Errorf("sluice_spec_head_verified = %v while refused", v)
	}

	// bob (ssh, trusted) signs on top: applied, head verified again.
	gitserver.Git(t, e.repo.Work, "fetch", "-q", "origin")
	gitserver.Git(t, e.repo.Work, "reset", "-q", "--hard", good)
	e.repo.CommitSigned(t, bob, "bob's change", signedBy("bob"))
	gitserver.Git(t, e.repo.Work, "push", "-q", "-f", "origin", "main")
	e.passUntil(rel, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded && served() == "bob@" }, nil)
	if v := gaugeValue(t, e.agent, "sluice_spec_head_verified"); v != 1 {
		t.Errorf("sluice_spec_head_verified = %v once verified", v)
	}

	// all mode: an unsigned commit on a branch merged by a signed merge is
	// refused; head mode would have taken the merge.
	bobHead := e.repo.Head(t, "main")
	opts := e.opts
	opts.VerifyCommits, opts.VerifyCommitsSince = "all", bobHead
	opts.CacheDir = filepath.Join(t.TempDir(), "cache-all")
	all, err := New(opts, e.agent.log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.Pass(ctx); err != nil {
		t.Fatalf("all mode at a verified head: %v", err)
	}
	gitserver.Git(t, e.repo.Work, "checkout", "-q", "-b", "feature")
	sneaky := e.repo.Commit(t, "unsigned on a branch", signedBy("sneaky"))
	gitserver.Git(t, e.repo.Work, "checkout", "-q", "main")
	e.repo.MergeSigned(t, bob, "feature")
	e.repo.Push(t)
	if _, err := all.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if s := served(); s != "bob@" {
		t.Fatalf("all mode applied a signed merge of an unsigned commit: %q", s)
	}
	if m := e.status(rel).Message; !strings.Contains(m, "commit "+short(sneaky)) || !strings.Contains(m, "not signed") {
		t.Errorf("all mode status message %q does not name the unsigned commit %s", m, short(sneaky))
	}
	// Dropping it (a force-push back, then a signed commit) recovers.
	gitserver.Git(t, e.repo.Work, "reset", "-q", "--hard", bobHead)
	e.repo.CommitSigned(t, alice, "alice again", map[string]string{kustomization: base + "commonAnnotations:\n  signed-by: alice2\n"})
	gitserver.Git(t, e.repo.Work, "push", "-q", "-f", "origin", "main")
	deadline := time.Now().Add(60 * time.Second)
	for served() != "alice2@" {
		if time.Now().After(deadline) {
			t.Fatalf("all mode did not apply a verified head after the bad commit was dropped: %q", served())
		}
		if _, err := all.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEvent waits for a Warning Event of reason on the named object.
func waitEvent(t *testing.T, ctx context.Context, ns, name, reason, says string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, err := cluster.Clientset(t).CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events.Items {
			if ev.Reason == reason && ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, says) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s Warning Event on %s saying %q", reason, name, says)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUnsignedApprovalIsIgnored: under --verify-commits=head a gate
// approval pushed in an unsigned commit does not open the gate (the head
// is refused, the canary waits where it was); once a trusted key signs a
// head above it, that signer vouches for the tree and the gate opens.
func TestUnsignedApprovalIsIgnored(t *testing.T) {
	ctx := context.Background()
	alice := gitserver.SSHKey(t, "alice@example.com", "")
	signers := filepath.Join(t.TempDir(), "allowed_signers")
	os.WriteFile(signers, []byte(alice.Trusted), 0o644)
	files := fixture(t, "NAMESPACE", "canary")
	const steps = "      - setWeight: 20\n      - pause: {gate: ship}\n      - setWeight: 100\n"
	files["releases/NAMESPACE/canary/release.yaml"] = canaryWith(steps, "")
	e := newEnv(t, files, func(o *Options) { o.VerifyCommits, o.TrustedKeysFiles = "head", []string{signers} })
	rel, dir := e.ns+"/canary", "releases/"+e.ns+"/canary/"
	e.repo.CommitSigned(t, alice, "signed install", nil)
	e.repo.Push(t)
	e.passUntil(rel, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	bump := e.repo.CommitSigned(t, alice, "6.7.1", map[string]string{dir + "deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	atGate := e.passUntil(rel, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, "ship")
	}, nil)

	approved := strings.ReplaceAll(canaryWith(steps, "  gates:\n    approved:\n    - {gate: ship, revision: "+bump[:7]+"}\n"), "NAMESPACE", e.ns)
	unsigned := e.repo.Commit(t, "approve ship", map[string]string{dir + "release.yaml": approved})
	e.repo.Push(t)
	for range 3 {
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := e.status(rel)
	if st.Phase != v1alpha1.PhasePaused || st.Step != atGate.Step || st.Weight != atGate.Weight {
		t.Fatalf("an unsigned approval moved the canary: phase %s step %d", st.Phase, st.Step)
	}
	if !strings.Contains(st.Message, "commit "+short(unsigned)) || !strings.Contains(st.Message, "not signed") {
		t.Errorf("status message %q does not name the unsigned approval", st.Message)
	}
	// A signed head above it vouches for the tree, the approval included.
	e.repo.CommitSigned(t, alice, "alice vouches for the approval", nil)
	e.repo.Push(t)
	e.passUntil(rel, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil }, nil)
}
