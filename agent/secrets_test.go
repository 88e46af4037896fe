package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestNoCredentialAnywhere plants secrets where users put them — the Git
// password in --repo, Slack-style webhook URLs whose path is the secret
// (one from --notify-url-file) — makes the notifications fail so their
// errors are logged, runs a release to Succeeded, and searches for the
// secrets in the agent's whole log, its Events, the status branch, its
// cache directory and its metrics.
func TestNoCredentialAnywhere(t *testing.T) {
	const hookSecret, fileSecret = "T0SECRET/B0SECRET/xoxSecretPath", "T1SECRET/B1SECRET/anotherSecretPath"
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer failing.Close()
	urlFile := filepath.Join(t.TempDir(), "notify-url")
	os.WriteFile(urlFile, []byte("http://127.0.0.1:1/services/"+fileSecret+"\n"), 0o600)
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), func(o *Options) {
		o.Repo = strings.Replace(o.Repo, "http://", "http://sluice:"+password+"@", 1)
		o.GitPasswordFile = ""
		o.NotifyURLs = []string{failing.URL + "/services/" + hookSecret}
		o.NotifyURLFiles = []string{urlFile}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.agent.notify.run(ctx)
	e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	deadline := time.Now().Add(20 * time.Second)
	for e.logs.FilterMessage("notification failed").Len() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the notifications did not fail as planned: %d failures logged", e.logs.FilterMessage("notification failed").Len())
		}
		time.Sleep(100 * time.Millisecond)
	}

	places := map[string]string{}
	var log strings.Builder
	for _, entry := range e.logs.All() {
		fmt.Fprintf(&log, "%s %v\n", entry.Message, entry.ContextMap())
	}
	places["log"] = log.String()
	events, err := cluster.Clientset(t).CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(events)
	places["events"] = string(b)
	places["status branch"] = gitserver.Git(t, e.repo.Bare, "log", "-p", "sluice/status")
	var cache strings.Builder
	filepath.WalkDir(e.opts.CacheDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			cache.Write(b)
		}
		return nil
	})
	places["cache directory"] = cache.String()
	mfs, _ := e.agent.metrics.reg.Gather()
	places["metrics"] = fmt.Sprint(mfs)
	if !strings.Contains(places["cache directory"], "[remote \"origin\"]") || !strings.Contains(places["log"], "notification failed") {
		t.Fatal("the search would find nothing: the cache's git config or the failure lines are missing")
	}
	for where, text := range places {
		for _, secret := range []string{password, hookSecret, fileSecret, "xoxSecretPath", "anotherSecretPath"} {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("%s holds the secret %q: …%s…", where, secret, text[max(0, i-80):min(len(text), i+len(secret)+20)])
			}
		}
	}
}
