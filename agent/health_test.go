package agent

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestUnreachableAPIServerDoesNotStopThePolling: with the API server gone
// from the start, the loop still polls Git on its interval (the Deployment
// watch waits beside it) and /healthz stays ok while passes return; a loop
// whose passes stop returning fails /healthz.
func TestUnreachableAPIServerDoesNotStopThePolling(t *testing.T) {
	kc, err := os.ReadFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(t.TempDir(), "kubeconfig")
	// A port nothing listens on: every request fails at once.
	lines := strings.Split(string(kc), "\n")
	for i, l := range lines {
		if strings.Contains(l, "server:") {
			lines[i] = "    server: https://127.0.0.1:1"
		}
	}
	os.WriteFile(dead, []byte(strings.Join(lines, "\n")), 0o600)
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), func(o *Options) { o.Kubeconfig = dead; o.Interval = 200 * time.Millisecond })
	addr := serve(t, e.agent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Run(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for counterValue(t, e.agent, "sluice_git_polls_total") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Git polled %v times in 20 s with the API server down", counterValue(t, e.agent, "sluice_git_polls_total"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while passes return", code)
	}
	cancel()
	<-done
	// A loop stuck in a pass: running, no pass returned for longer than allowed.
	e.agent.running.Store(true)
	e.agent.lastPass.Store(time.Now().Add(-e.agent.StallAfter() - time.Second).UnixNano())
	if code := get(t, "http://"+addr+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz = %d with the loop stuck", code)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestForbiddenClusterListDoesNotStopThePolling: the agent's token may do
// everything in the release's namespace but list Deployments cluster-wide
// (the watch's list is forbidden, and keeps being retried beside the
// loop). Git is still polled, the release is still reconciled from
// Deployments read per pass, and /healthz stays ok.
func TestForbiddenClusterListDoesNotStopThePolling(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := cluster.Clientset(t)
	home := cluster.Namespace(t) // where the agent's ServiceAccount lives
	if _, err := cs.CoreV1().ServiceAccounts(home).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "agent"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(home).CreateToken(ctx, "agent", &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cluster.Config.Host, InsecureSkipTLSVerify: true}
	kc.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "agent"}
	kc.CurrentContext = "test"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), func(o *Options) { o.Kubeconfig = kubeconfig; o.Interval = 200 * time.Millisecond })
	// Everything in the release's namespace, nothing cluster-wide.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}}
	if _, err := cs.RbacV1().Roles(e.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "agent"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "agent", Namespace: home}}}
	if _, err := cs.RbacV1().RoleBindings(e.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The cluster-wide list really is forbidden to this token.
	agentCS, err := kubernetes.NewForConfig(&rest.Config{Host: cluster.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agentCS.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("cluster-wide list with the agent's token: err = %v, want Forbidden", err)
	}

	addr := serve(t, e.agent)
	done := make(chan error, 1)
	go func() { done <- e.agent.Run(ctx) }()
	deadline := time.Now().Add(90 * time.Second)
	for e.status(e.ns+"/rolling").Phase != v1alpha1.PhaseSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("release not reconciled with the watch's list forbidden: %+v (git polls %v)", e.status(e.ns+"/rolling"), counterValue(t, e.agent, "sluice_git_polls_total"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	polls := counterValue(t, e.agent, "sluice_git_polls_total")
	time.Sleep(time.Second)
	if after := counterValue(t, e.agent, "sluice_git_polls_total"); after < polls+2 {
		t.Errorf("Git polled %v times in the second after the release settled, want ≥ 2", after-polls)
	}
	if e.agent.watching.Load() {
		t.Error("the watch reports synced though its list is forbidden")
	}
	if code := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while passes return", code)
	}
	cancel()
	<-done
}
