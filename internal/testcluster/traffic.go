package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/internal/netns"
	"github.com/sluice-dev/sluice/internal/podrunner"
)

// Gateway is the traffic cluster's data plane: Traefik, out of cluster,
// serving the Gateway gateway-system/public (GatewayClass traefik) that
// the example routes attach to.
type Gateway struct {
	// URL is the Gateway's HTTP listener ("http://127.0.0.1:P").
	URL string
	// MetricsURL is Traefik's Prometheus endpoint.
	MetricsURL string
	// MetricsTarget is its host:port, for a Prometheus scrape config.
	MetricsTarget string
	// Pods answers for the pods on the kwok node.
	Pods *podrunner.Runner
}

// GatewayNamespace and GatewayName name the Gateway routes attach to.
const (
	GatewayNamespace = "gateway-system"
	GatewayName      = "public"
)

// StartTraffic runs a control plane whose pods answer: kwok gives pods
// IPs in netns.PodCIDR and leaves them unready until the pod runner serves
// them (as a readiness probe would), and Traefik serves the Gateway API.
// It must run inside the traffic network namespace (netns.Reexec).
func StartTraffic(ctx context.Context) (*Cluster, error) {
	if !netns.Inside() {
		return nil, errors.New("a traffic cluster runs inside the traffic network namespace: call netns.Reexec from TestMain (MainTraffic does)")
	}
	c, err := start(ctx, true)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// MainTraffic is Main for a traffic test binary: it re-runs the binary in
// a private network namespace, starts a traffic cluster there with its pod
// runner, runs the tests and stops everything. after, when not nil, runs
// once the tests have (a summary of their figures).
func MainTraffic(m *testing.M, c **Cluster, after func()) {
	if !netns.Inside() {
		code, err := netns.Reexec()
		if err != nil {
			fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	runMain(m, c, StartTraffic, "traffic control plane and gateway", after)
}

// honestStages writes kwok's stages with the pod-ready stage leaving Ready
// and ContainersReady False: the pod runner sets them once it serves.
func (c *Cluster) honestStages() (string, error) {
	data, err := os.ReadFile(filepath.Join(c.bin, "kwok-stages.yaml"))
	if err != nil {
		return "", err
	}
	docs := strings.Split(string(data), "\n---\n")
	found := false
	for i, d := range docs {
		if !strings.Contains(d, "name: pod-ready\n") {
			continue
		}
		for _, typ := range []string{"Ready", "ContainersReady"} {
			from := "status: \"True\"\n        type: " + typ + "\n"
			if !strings.Contains(d, from) {
				return "", fmt.Errorf("kwok's pod-ready stage has no %s condition to hold back", typ)
			}
			d = strings.Replace(d, from, "status: \"False\"\n        type: "+typ+"\n", 1)
		}
		docs[i], found = d, true
	}
	if !found {
		return "", errors.New("kwok's stages have no pod-ready stage")
	}
	p := filepath.Join(c.Dir, "kwok-stages.yaml")
	return p, os.WriteFile(p, []byte(strings.Join(docs, "\n---\n")), 0o644)
}

var gatewaysGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}

// startGateway starts the pod runner and Traefik, creates the Gateway and
// waits until Traefik has programmed it.
func (c *Cluster) startGateway(ctx context.Context, apiPort int) error {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.Dir, "podrunner.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var logMu sync.Mutex
	runner := podrunner.New(cs, NodeName, func(f string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(logFile, time.Now().Format("15:04:05.000 ")+f+"\n", a...)
	})
	// The runner lives as long as the cluster (Stop ends it), not as long
	// as the start's context.
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runner.Run(rctx)
		logFile.Close()
	}()
	c.mu.Lock()
	c.onStop = append(c.onStop, func() { cancel(); <-done })
	c.mu.Unlock()
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	web, api, metrics := ports[0], ports[1], ports[2]
	if err := c.run("traefik", "traefik",
		"--entryPoints.web.address=127.0.0.1:"+strconv.Itoa(web),
		"--entryPoints.traefik.address=127.0.0.1:"+strconv.Itoa(api),
		"--entryPoints.metrics.address=127.0.0.1:"+strconv.Itoa(metrics),
		"--ping=true",
		"--metrics.prometheus=true",
		"--metrics.prometheus.entryPoint=metrics",
		"--metrics.prometheus.addServicesLabels=true",
		"--metrics.prometheus.buckets=0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5",
		"--providers.kubernetesgateway=true",
		"--providers.kubernetesgateway.endpoint=https://127.0.0.1:"+strconv.Itoa(apiPort),
		"--providers.kubernetesgateway.token="+adminToken,
		"--providers.kubernetesgateway.certauthfilepath="+filepath.Join(c.Dir, "certs", "apiserver.crt"),
		"--providers.kubernetesgateway.statusaddress.ip=127.0.0.1",
		"--log.level=INFO",
	); err != nil {
		return err
	}
	gw := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  gatewayClassName: traefik
  listeners:
  - name: web
    port: %[3]d
    protocol: HTTP
    allowedRoutes: {namespaces: {from: All}}
`, GatewayNamespace, GatewayName, web)
	if err := ApplyYAML(ctx, c.Config, []byte(gw)); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := poll(ctx, 60*time.Second, func() (bool, error) {
		u, err := dyn.Resource(gatewaysGVR).Namespace(GatewayNamespace).Get(ctx, GatewayName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return conditionTrue(u, "Programmed"), nil
	}, "Gateway "+GatewayNamespace+"/"+GatewayName+" Programmed by Traefik"); err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics))
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}, "Traefik's metrics endpoint"); err != nil {
		return err
	}
	c.Gateway = &Gateway{URL: fmt.Sprintf("http://127.0.0.1:%d", web), MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics),
		MetricsTarget: fmt.Sprintf("127.0.0.1:%d", metrics), Pods: runner}
	return nil
}
