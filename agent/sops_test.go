package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestSOPSSecrets: a SOPS-encrypted Secret in a release is applied
// decrypted with the agent's --sops-age-key-file; the plaintext is in the
// cluster only — not in the status branch, not in the log.
func TestSOPSSecrets(t *testing.T) {
	ctx := context.Background()
	enc, err := os.ReadFile("../testdata/sops/secret.enc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := fixture(t, "NAMESPACE", "rolling")
	files["releases/NAMESPACE/rolling/db.sops.yaml"] = string(enc)
	files["releases/NAMESPACE/rolling/kustomization.yaml"] = strings.Replace(files["releases/NAMESPACE/rolling/kustomization.yaml"], "resources:\n", "resources:\n- db.sops.yaml\n", 1)
	e := newEnv(t, files, func(o *Options) { o.SOPSAgeKeyFiles = []string{"../testdata/sops/test.agekey"} })
	e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	s, err := cluster.Clientset(t).CoreV1().Secrets(e.ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data["password"]) != "s3cr3t-value" || string(s.Data["token"]) != "token-value" {
		t.Errorf("the Secret applied: %v", s.Data)
	}
	history := gitserver.Git(t, e.repo.Bare, "log", "-p", "sluice/status")
	for _, secret := range []string{"s3cr3t-value", "token-value", "dG9rZW4tdmFsdWU="} {
		if strings.Contains(history, secret) {
			t.Errorf("the status branch holds %q", secret)
		}
		for _, entry := range e.logs.All() {
			if strings.Contains(entry.Message, secret) || strings.Contains(fmt.Sprint(entry.ContextMap()), secret) {
				t.Errorf("the log holds %q: %s", secret, entry.Message)
			}
		}
	}
}
