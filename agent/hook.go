package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/egress"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxHookBody bounds what a hook request may send.
const maxHookBody = 1 << 20

// MinHookGap is the least time between two polls a push webhook causes:
// however many hooks arrive, the Git host sees at most one ls-remote per
// gap from them (one poll in flight, one queued).
const MinHookGap = time.Second

// errHookSignature: the hook is not signed with --hook-secret-file's secret.
var errHookSignature = errors.New("no valid signature: X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or X-Gitea-Signature/X-Forgejo-Signature (Gitea, Forgejo) with the hook secret")

// serveHook is POST /hook: a push webhook (GitHub, GitLab, Gitea, Forgejo)
// makes the next poll happen now. With a hook secret, only signed hooks
// count. A follower forwards the hook to the leader.
func (a *Agent) serveHook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHookBody+1))
	if err != nil || len(body) > maxHookBody {
		http.Error(w, "body unreadable or over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	if err := verifyHook(a.hookSecret, r.Header, body); err != nil {
		a.metrics.hooks.WithLabelValues("refused").Inc()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if ref := hookRef(body); ref != "" && a.opts.Branch != "" && ref != "refs/heads/"+a.opts.Branch {
		// Another branch moved (the agent's own status pushes among
		// them): nothing to poll for.
		a.metrics.hooks.WithLabelValues("ignored").Inc()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// A follower does not poll: it hands the hook to the leader, once.
	if f := a.leader.Load(); f != nil && r.Header.Get(forwardedHeader) == "" {
		if leading, addr := (*f)(); !leading {
			if err := forwardHook(r.Context(), addr, "/hook", r.Header, body); err != nil {
				http.Error(w, "follower: "+err.Error(), http.StatusBadGateway)
				return
			}
			a.metrics.hooks.WithLabelValues("forwarded").Inc()
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	a.metrics.hooks.WithLabelValues("accepted").Inc()
	a.Poll()
	w.WriteHeader(http.StatusAccepted)
}

// hookRef is the ref a push hook names ("ref" in GitHub's, GitLab's,
// Gitea's and Forgejo's push events), "" when the body names none.
func hookRef(body []byte) string {
	var ev struct {
		Ref string `json:"ref"`
	}
	if json.Unmarshal(body, &ev) != nil {
		return ""
	}
	return ev.Ref
}

// verifyHook checks the hook against the secret the way each Git host
// signs: GitHub's X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the
// body), Gitea's and Forgejo's X-Gitea-Signature / X-Forgejo-Signature (hex
// HMAC-SHA256), GitLab's X-Gitlab-Token (the secret itself). No secret:
// every hook counts.
func verifyHook(secret []byte, h http.Header, body []byte) error {
	if len(secret) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	equal := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if sig := h.Get("X-Hub-Signature-256"); sig != "" && equal(strings.TrimPrefix(sig, "sha256="), want) {
		return nil
	}
	for _, k := range []string{"X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature"} {
		if sig := h.Get(k); sig != "" && equal(sig, want) {
			return nil
		}
	}
	if tok := h.Get("X-Gitlab-Token"); tok != "" && equal(tok, string(secret)) {
		return nil
	}
	return errHookSignature
}

// LeaderFunc reports whether this replica holds the leader Lease and, when
// it does not, the address (host:port) of the leader's --listen, "" when
// unknown.
type LeaderFunc func() (leading bool, addr string)

// SetLeader tells a replica under leader election how to find the leader:
// a follower forwards POST /hook to it, so a push webhook sent through the
// Service to any replica reaches the one that polls.
func (a *Agent) SetLeader(f LeaderFunc) { a.leader.Store(&f) }

// Leading sets sluice_leader: 1 while this replica leads.
func (a *Agent) Leading(yes bool) {
	v := 0.0
	if yes {
		v = 1
	}
	a.metrics.leader.Set(v)
}

// forwardedHeader marks a hook a follower forwarded: it is never forwarded
// again, so two replicas that disagree on the leader cannot loop.
const forwardedHeader = "X-Sluice-Forwarded"

// forwardClient carries hooks to the leader.
var forwardClient = egress.Client(10 * time.Second)

// forwardHook posts the hook, with its headers and body (the leader checks
// the signature again), to the leader's path (/hook, /hook/registry).
func forwardHook(ctx context.Context, addr, path string, h http.Header, body []byte) error {
	if addr == "" {
		return errors.New("no leader known yet; retry")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = h.Clone()
	req.Header.Set(forwardedHeader, "1")
	resp, err := forwardClient.Do(req)
	if err != nil {
		return fmt.Errorf("forwarding to the leader at %s: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the leader at %s answered %s", addr, resp.Status)
	}
	return nil
}
