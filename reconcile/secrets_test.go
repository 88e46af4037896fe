package reconcile

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSecretKey(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	cs := cluster.Clientset(t)
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom"}, Data: map[string][]byte{"token": []byte("s3cret")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, Options{})
	if v, err := m.SecretKey(ctx, ns, "prom", "token"); err != nil || string(v) != "s3cret" {
		t.Errorf("token: %q %v", v, err)
	}
	if _, err := m.SecretKey(ctx, ns, "prom", "nope"); err == nil || !strings.Contains(err.Error(), `no key "nope"`) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := m.SecretKey(ctx, ns, "absent", "token"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing Secret: %v", err)
	}
}
