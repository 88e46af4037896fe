// Command benchapply compares the reconcile package with
// `kubectl apply --server-side` on the same 500 objects and the same real
// control plane, and counts the API requests of a pass over unchanged
// objects. Run by `make bench`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/internal/testcluster"
	"github.com/sluice-dev/sluice/reconcile"
)

// counter counts API requests by method.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
	next   http.RoundTripper
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	key := r.Method
	if strings.Contains(r.URL.RawQuery, "dryRun=All") {
		key += " (dry-run)"
	}
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *counter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

func objects(ns string, n, round int) string {
	var b strings.Builder
	for i := range n / 2 {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%[1]d, namespace: %[2]s, annotations: {round: "%[3]d"}}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-%[1]d}}
  template:
    metadata: {labels: {app: app-%[1]d}}
    spec:
      containers: [{name: app, image: "app:%[3]d"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-%[1]d, namespace: %[2]s}
data: {round: "%[3]d"}
`, i, ns, round)
	}
	return b.String()
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func main() {
	n := flag.Int("n", 500, "objects per apply")
	runs := flag.Int("runs", 5, "applies per tool")
	flag.Parse()
	ctx := context.Background()
	kubectlBin, err := testcluster.Kubectl()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err := testcluster.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Stop()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		c.Stop()
		os.Exit(1)
	}

	cnt := &counter{counts: map[string]int{}}
	cfg := rest.CopyConfig(c.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { cnt.next = rt; return cnt }
	m, err := reconcile.New(cfg, reconcile.Options{Concurrency: 8})
	if err != nil {
		fail(err)
	}
	for _, ns := range []string{"bench-sluice", "bench-kubectl"} {
		if err := testcluster.ApplyYAML(ctx, c.Config, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n")); err != nil {
			fail(err)
		}
	}

	var sluice, kubectl []time.Duration
	for round := 0; round <= *runs; round++ {
		objs, err := testcluster.DecodeYAML([]byte(objects("bench-sluice", *n, round)))
		if err != nil {
			fail(err)
		}
		start := time.Now()
		if _, err := m.Apply(ctx, reconcile.Set{Release: "bench-sluice/app", Namespace: "bench-sluice", Objects: objs}, reconcile.ApplyOptions{}); err != nil {
			fail(err)
		}
		d := time.Since(start)

		cmd := exec.Command(kubectlBin, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "--field-manager", "bench", "-f", "-")
		cmd.Stdin = strings.NewReader(objects("bench-kubectl", *n, round))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start = time.Now()
		if err := cmd.Run(); err != nil {
			fail(fmt.Errorf("kubectl: %v\n%s", err, out.String()))
		}
		k := time.Since(start)
		if round == 0 {
			continue // creation round: warms both up
		}
		sluice, kubectl = append(sluice, d), append(kubectl, k)
	}
	ms, mk := median(sluice), median(kubectl)
	fmt.Printf("apply %d changed objects, median of %d: reconcile %s, kubectl apply --server-side %s, ratio %.2fx (goal <= 1.00x)\n",
		*n, *runs, ms.Round(time.Millisecond), mk.Round(time.Millisecond), float64(ms)/float64(mk))

	// A pass over unchanged objects: no writes.
	objs, _ := testcluster.DecodeYAML([]byte(objects("bench-sluice", *n, *runs)))
	cnt.reset()
	start := time.Now()
	res, err := m.Apply(ctx, reconcile.Set{Release: "bench-sluice/app", Namespace: "bench-sluice", Objects: objs}, reconcile.ApplyOptions{})
	if err != nil {
		fail(err)
	}
	d := time.Since(start)
	counts := cnt.reset()
	writes := counts["PATCH"] + counts["POST"] + counts["PUT"] + counts["DELETE"]
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	fmt.Printf("unchanged pass over %d objects: %s, writes %d, changed=%v, requests %s\n", *n, d.Round(time.Millisecond), writes, res.Changed(), strings.Join(parts, " "))
}
