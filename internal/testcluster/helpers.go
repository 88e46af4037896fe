package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var apiextensionsCRDs = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Main starts one cluster for a test binary, runs the tests, and stops it,
// also when a test panics (Pdeathsig ends the components if the binary
// dies). On failure the components' logs are kept and their folder printed.
func Main(m *testing.M, c **Cluster) {
	runMain(m, c, Start, "control plane", nil)
}

// runMain starts a cluster with start, runs the tests and after (if any),
// stops the cluster and exits with the tests' code; on failure the
// components' logs are kept.
func runMain(m *testing.M, c **Cluster, start func(context.Context) (*Cluster, error), what string, after func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cl, err := start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "testcluster: %s up in %s (logs in %s)\n", what, cl.StartupTime.Round(time.Millisecond), cl.Dir)
	*c = cl
	code := 1
	defer func() {
		if code != 0 {
			cl.Keep()
			fmt.Fprintf(os.Stderr, "testcluster: component logs kept in %s\n", cl.Dir)
		}
		cl.Stop()
		os.Exit(code)
	}()
	code = m.Run()
	if after != nil {
		after()
	}
}

// Namespace creates a namespace for one test, deleted when it ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	name := fmt.Sprintf("t-%s", hex.EncodeToString(b))
	cs := c.Clientset(t)
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// Clientset returns a typed client for the cluster.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// WaitAvailable waits until the Deployment reports Available with every
// replica updated and ready.
func (c *Cluster) WaitAvailable(ctx context.Context, cs kubernetes.Interface, ns, name string, timeout time.Duration) (*appsv1.Deployment, error) {
	var d *appsv1.Deployment
	err := poll(ctx, timeout, func() (bool, error) {
		var err error
		d, err = cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != want || d.Status.AvailableReplicas != want || d.Status.Replicas != want {
			return false, nil
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}, "Deployment "+ns+"/"+name+" Available")
	return d, err
}

// Lazy starts a cluster the first time a test asks for one, for packages
// where only some tests need it. Stop it from TestMain after m.Run.
type Lazy struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Get returns the cluster, starting it on first use.
func (l *Lazy) Get(t testing.TB) *Cluster {
	t.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		l.cluster, l.err = Start(ctx)
	})
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.cluster
}

// Stop stops the cluster if one was started.
func (l *Lazy) Stop() {
	if l.cluster != nil {
		l.cluster.Stop()
	}
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount ns/name with a token from the TokenRequest API (valid a
// day), as a pod of that account would, and returns its path.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, ns, name string) (string, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return "", err
	}
	day := int64(24 * 60 * 60)
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &day}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", ns, name, err)
	}
	path := filepath.Join(c.Dir, fmt.Sprintf("sa-%s-%s.kubeconfig", ns, name))
	return path, writeKubeconfig(path, &rest.Config{Host: c.Config.Host, BearerToken: tok.Status.Token})
}
