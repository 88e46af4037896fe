// Package podrunner is test infrastructure: it makes the pods kwok runs
// answer HTTP, as a real container would. It never ships in sluice.
//
// For each running pod on the kwok node it serves HTTP on
// podIP:containerPort (every TCP port the pod's containers declare), and
// answers with the pod's version — the image tag — in the body and the
// X-Version header. The container's env says how the version behaves, so
// a bad version is a real thing that returns real 500s:
//
//	ERROR_RATE  share of requests answered 500 (0 to 1)
//	LATENCY     added to every answer (a Go duration)
//	FAIL_AFTER  every request after the first N is answered 500
//
// Two details decide whether traffic figures mean anything. A pod is
// marked Ready (its Ready and ContainersReady conditions) only once its
// server listens, as a readiness probe would — the test cluster's kwok
// leaves them False for that. And a pod that goes away (deletion
// requested, or after its preStop sleep when it has one, as a real pod's
// process would exit) takes its open connections with it: data planes pool
// keep-alive connections and kwok reuses pod IPs, so a server that only
// closed its listening socket would keep answering as the old version.
//
// The pods' IPs must be routable to this process: the traffic tests run in
// a private network namespace whose pod range is routed to loopback (see
// internal/netns).
package podrunner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// VersionHeader carries the answering pod's version.
const VersionHeader = "X-Version"

// PodHeader carries the answering pod's name.
const PodHeader = "X-Pod"

// Runner serves the pods of one node.
type Runner struct {
	cs   kubernetes.Interface
	node string
	logf func(format string, args ...any)

	mu   sync.Mutex
	pods map[types.UID]*pod
}

// pod is one pod's servers.
type pod struct {
	ip      string
	servers []*http.Server
	// up: every port listens; draining: deletion asked, serving until its
	// preStop sleep ends.
	up, draining bool
}

// New returns a runner for the pods on node; logf (may be nil) receives
// its errors.
func New(cs kubernetes.Interface, node string, logf func(string, ...any)) *Runner {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Runner{cs: cs, node: node, logf: logf, pods: map[types.UID]*pod{}}
}

// Run serves pods until ctx is done, then closes every server.
func (r *Runner) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactoryWithOptions(r.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", r.node).String()
	}))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.sync(ctx, o) },
		UpdateFunc: func(_, o any) { r.sync(ctx, o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				r.terminate(p)
			}
		},
	})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	r.mu.Lock()
	defer r.mu.Unlock()
	for uid, p := range r.pods {
		p.close()
		delete(r.pods, uid)
	}
	return nil
}

// sync starts a running pod's servers, or stops a pod that is going.
func (r *Runner) sync(ctx context.Context, o any) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		r.terminate(p)
		return
	}
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return
	}
	r.mu.Lock()
	cur, ok := r.pods[p.UID]
	if ok && cur.ip == p.Status.PodIP {
		up := cur.up
		r.mu.Unlock()
		if up && !ready(p) {
			r.markReady(ctx, p)
		}
		return
	}
	if ok {
		cur.close()
	}
	np := &pod{ip: p.Status.PodIP}
	r.pods[p.UID] = np
	r.mu.Unlock()
	go r.start(ctx, p, np)
}

// start listens on the pod's ports and marks it Ready once it serves. An
// address still held by a pod that is going (kwok reuses IPs; a pod with a
// preStop sleep keeps serving) is waited for, as a real pod's IP is not
// given out while in use.
func (r *Runner) start(ctx context.Context, p *corev1.Pod, np *pod) {
	for _, c := range p.Spec.Containers {
		b := newBehaviour(p, c)
		g := grpcServer(b)
		for _, port := range c.Ports {
			if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
				continue
			}
			addr := net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port.ContainerPort)))
			var l net.Listener
			var err error
			for deadline := time.Now().Add(time.Minute); ; {
				if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				r.logf("podrunner: %s/%s: listen %s: %v", p.Namespace, p.Name, addr, err)
				continue
			}
			srv := &http.Server{Handler: withGRPC(r.handler(b), g), ReadHeaderTimeout: 10 * time.Second, Protocols: h2c()}
			r.mu.Lock()
			if r.pods[p.UID] != np { // gone meanwhile
				r.mu.Unlock()
				l.Close()
				return
			}
			np.servers = append(np.servers, srv)
			r.mu.Unlock()
			go srv.Serve(l)
		}
	}
	r.mu.Lock()
	current := r.pods[p.UID] == np
	np.up = current
	r.mu.Unlock()
	if current {
		r.markReady(ctx, p)
	}
}

// terminate stops a pod that is going: at once, or after its preStop
// sleep (lifecycle.preStop.sleep.seconds), during which it keeps serving —
// what lets a data plane that lags behind the endpoints stop sending it
// requests first, as in a real cluster.
func (r *Runner) terminate(p *corev1.Pod) {
	r.mu.Lock()
	cur, ok := r.pods[p.UID]
	if !ok || cur.draining {
		r.mu.Unlock()
		return
	}
	cur.draining = true
	r.mu.Unlock()
	if d := preStopSleep(p); d > 0 {
		time.AfterFunc(d, func() { r.stop(p.UID) })
		return
	}
	r.stop(p.UID)
}

func preStopSleep(p *corev1.Pod) time.Duration {
	var d time.Duration
	for _, c := range p.Spec.Containers {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			d = max(d, time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second)
		}
	}
	return d
}

// stop closes a pod's servers and every connection they hold.
func (r *Runner) stop(uid types.UID) {
	r.mu.Lock()
	p, ok := r.pods[uid]
	delete(r.pods, uid)
	r.mu.Unlock()
	if ok {
		p.close()
	}
}

func (p *pod) close() {
	for _, s := range p.servers {
		s.Close() // listeners and open connections, idle or not
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// markReady sets the pod's Ready and ContainersReady conditions, as the
// kubelet does when its readiness probe passes.
func (r *Runner) markReady(ctx context.Context, p *corev1.Pod) {
	now := time.Now().UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":%q},{"type":"ContainersReady","status":"True","lastTransitionTime":%q}]}}`, now, now)
	_, err := r.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	if err != nil && ctx.Err() == nil {
		r.logf("podrunner: %s/%s: marking Ready: %v", p.Namespace, p.Name, err)
	}
}

// behaviour is how one container answers.
type behaviour struct {
	pod       string
	version   string
	errorRate float64
	latency   time.Duration
	failAfter int64 // -1: never
	count     atomic.Int64
}

func newBehaviour(p *corev1.Pod, c corev1.Container) *behaviour {
	b := &behaviour{pod: p.Name, version: Version(c.Image), failAfter: -1}
	for _, e := range c.Env {
		switch e.Name {
		case "ERROR_RATE":
			b.errorRate, _ = strconv.ParseFloat(e.Value, 64)
		case "LATENCY":
			b.latency, _ = time.ParseDuration(e.Value)
		case "FAIL_AFTER":
			if n, err := strconv.ParseInt(e.Value, 10, 64); err == nil {
				b.failAfter = n
			}
		}
	}
	return b
}

// Version is an image's tag ("ghcr.io/x/podinfo:6.7.1" → "6.7.1"), or the
// image itself when it has none.
func Version(image string) string {
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return image
}

func (r *Runner) handler(b *behaviour) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := b.count.Add(1)
		if b.latency > 0 {
			select {
			case <-time.After(b.latency):
			case <-req.Context().Done():
				return
			}
		}
		w.Header().Set(VersionHeader, b.version)
		w.Header().Set(PodHeader, b.pod)
		code := http.StatusOK
		if (b.failAfter >= 0 && n > b.failAfter) || (b.errorRate > 0 && rand.Float64() < b.errorRate) {
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "version=%s pod=%s code=%d\n", b.version, b.pod, code)
	})
}
