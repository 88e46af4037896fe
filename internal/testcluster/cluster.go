package testcluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sluice-dev/sluice/internal/netns"
)

// Version is the Kubernetes release the binaries are built at; it matches
// the client-go in go.mod.
const Version = "v1.37.2"

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds the data, certificates, logs and kubeconfig.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string
	// Config is the admin REST config.
	Config *rest.Config
	// StartupTime is how long Start took.
	StartupTime time.Duration

	// Gateway, in a traffic cluster (StartTraffic): the data plane in front
	// of the pods.
	Gateway *Gateway

	bin     string
	traffic bool
	// onStop runs first in Stop (the pod runner).
	onStop  []func()
	mu      sync.Mutex
	procs   []*proc
	stopped []*proc
	keep    bool
}

type proc struct {
	name   string
	binary string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *os.File
}

// BinDir finds the test binaries: $SLUICE_TESTBIN, bin/testbin/<Version>
// in the module, or the shared cache under $HOME.
func BinDir() (string, error) {
	var tried []string
	if d := os.Getenv("SLUICE_TESTBIN"); d != "" {
		tried = append(tried, d)
	}
	if root, err := moduleRoot(); err == nil {
		tried = append(tried, filepath.Join(root, "bin", "testbin", Version))
	}
	if home, err := os.UserHomeDir(); err == nil {
		tried = append(tried, filepath.Join(home, ".cache", "sluice", "testbin", Version))
	}
	for _, d := range tried {
		if _, err := os.Stat(filepath.Join(d, "kube-apiserver")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("test binaries not found in %s: run `make testbin`", strings.Join(tried, ", "))
}

// Kubectl is the kubectl built with the control plane (same Kubernetes
// version), so no test depends on whatever kubectl the machine has.
func Kubectl() (string, error) {
	d, err := BinDir()
	if err != nil {
		return "", err
	}
	k := filepath.Join(d, "kubectl")
	if _, err := os.Stat(k); err != nil {
		return "", fmt.Errorf("kubectl not found in %s: run `make testbin`", d)
	}
	return k, nil
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("go.mod not found")
		}
		d = filepath.Dir(d)
	}
}

// FreePorts reserves n distinct free loopback ports.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// Start runs a control plane and waits until a Deployment can become
// Available on it. Stop it with Stop, also when a test fails.
func Start(ctx context.Context) (*Cluster, error) {
	return start(ctx, false)
}

func start(ctx context.Context, traffic bool) (*Cluster, error) {
	begin := time.Now()
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin, traffic: traffic}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	c.StartupTime = time.Since(begin)
	return c, nil
}

const adminToken = "sluice-admin-token"

func (c *Cluster) start(ctx context.Context) error {
	ports, err := FreePorts(6)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]

	// etcd
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	if err := c.run("etcd", "etcd",
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", etcdPeer),
		"--unsafe-no-fsync", "--log-level", "warn",
	); err != nil {
		return err
	}

	// kube-apiserver: token auth, RBAC, self-signed serving certs.
	if err := c.writeAuth(); err != nil {
		return err
	}
	apiArgs := []string{}
	if c.traffic {
		// In the traffic namespace there is no default route; the API
		// server needs an address to advertise that is not loopback.
		apiArgs = append(apiArgs, "--advertise-address", netns.APIAddress)
	}
	if err := c.run("kube-apiserver", "kube-apiserver", append(apiArgs,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", filepath.Join(c.Dir, "certs"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(c.Dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(c.Dir, "sa.key"),
		"--token-auth-file", filepath.Join(c.Dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/16", // room for fleets of Services
		"--disable-admission-plugins", "ServiceAccount",
		"--v", "1",
	)...); err != nil {
		return err
	}
	c.Config = &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", apiPort),
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200, Burst: 400,
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.Config); err != nil {
		return err
	}
	if err := waitReady(ctx, c.Config, 60*time.Second); err != nil {
		return err
	}

	kc := []string{"--kubeconfig", c.Kubeconfig, "--authentication-kubeconfig", c.Kubeconfig, "--authorization-kubeconfig", c.Kubeconfig}
	if err := c.run("kube-controller-manager", "kube-controller-manager", append(kc,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(kcmPort),
		"--controllers", "*,-nodeipam,-ttl,-serviceaccount-token",
		// kwok's node never re-reports its pods Ready once the node
		// lifecycle controller has marked them not ready (a kubelet
		// would), so an API server outage longer than the grace period
		// (TestOutages: 30 s, plus the restart on a loaded machine) would
		// leave every pod unready for good: an artifact, not a story.
		"--node-monitor-grace-period", "5m",
		// HPAs are reconciled every second (default 15 s), so stories with
		// autoscaled workloads do not wait on the sync period.
		"--horizontal-pod-autoscaler-sync-period", "1s",
		// A real cluster's controller-manager is given more than the
		// default 20 requests/s; a fleet of Deployments otherwise waits on
		// its client-side rate limit, whatever applied them.
		"--kube-api-qps", "100", "--kube-api-burst", "200",
	)...); err != nil {
		return err
	}
	if err := c.run("kube-scheduler", "kube-scheduler", append(kc,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(schedPort),
		"--kube-api-qps", "100", "--kube-api-burst", "200",
	)...); err != nil {
		return err
	}
	stages, nodeIP := filepath.Join(c.bin, "kwok-stages.yaml"), "127.0.0.1"
	if c.traffic {
		if stages, err = c.honestStages(); err != nil {
			return err
		}
		nodeIP = netns.NodeIP
	}
	if err := c.run("kwok", "kwok",
		"--kubeconfig", c.Kubeconfig,
		"--config", stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
		"--cidr", "10.244.0.1/16", "--node-ip", nodeIP,
		"--server-address", fmt.Sprintf("127.0.0.1:%d", kwokPort),
	); err != nil {
		return err
	}
	if err := setup(ctx, c.Config, filepath.Join(c.bin, "gateway-crds.yaml")); err != nil {
		return err
	}
	if c.traffic {
		return c.startGateway(ctx, apiPort)
	}
	return nil
}

// writeAuth writes the admin token file and the service-account key pair.
func (c *Cluster) writeAuth() error {
	if err := os.WriteFile(filepath.Join(c.Dir, "tokens.csv"),
		[]byte(adminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "sa.key"),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, InsecureSkipTLSVerify: true}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "test"
	return clientcmd.WriteToFile(*kc, path)
}

// run starts one component, its output in <Dir>/<name>.log. The process
// gets SIGKILL if the test binary dies, so no orphan outlives a panic.
func (c *Cluster) run(name, binary string, args ...string) error {
	log, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.bin, binary), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, binary: binary, args: args, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}

// StopComponent stops one component (an outage) and waits for it to exit.
func (c *Cluster) StopComponent(name string) error {
	c.mu.Lock()
	var p *proc
	for i, q := range c.procs {
		if q.name == name {
			p = q
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no running component %s", name)
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
	c.stopped = append(c.stopped, p)
	return nil
}

// StartComponent starts a component stopped by StopComponent again, with
// the same flags, and for the API server waits until it is ready.
func (c *Cluster) StartComponent(ctx context.Context, name string) error {
	for i, p := range c.stopped {
		if p.name != name {
			continue
		}
		c.stopped = append(c.stopped[:i], c.stopped[i+1:]...)
		if err := c.run(p.name, p.binary, p.args...); err != nil {
			return err
		}
		if name == "kube-apiserver" {
			return waitReady(ctx, c.Config, 60*time.Second)
		}
		return nil
	}
	return fmt.Errorf("component %s was not stopped", name)
}

// Exited names the components that have exited; a healthy cluster has none.
func (c *Cluster) Exited() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.procs {
		select {
		case <-p.done:
			out = append(out, p.name)
		default:
		}
	}
	return out
}

// Keep leaves the data directory in place after Stop (for a failed run's
// logs).
func (c *Cluster) Keep() { c.keep = true }

// Stop ends every component, newest first: SIGTERM, then SIGKILL after 10
// seconds, and waits, so a following cluster can reuse nothing by accident.
func (c *Cluster) Stop() {
	c.mu.Lock()
	procs, onStop := c.procs, c.onStop
	c.procs, c.onStop = nil, nil
	c.mu.Unlock()
	for _, f := range onStop {
		f()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		p.log.Close()
	}
	if !c.keep {
		os.RemoveAll(c.Dir)
	}
}
