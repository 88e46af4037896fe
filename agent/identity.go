package agent

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/strategy"
)

// managerFor returns the Manager a release's objects are applied, pruned
// and read with: as the ServiceAccount sa of its namespace (else the
// agent's --default-service-account), impersonated, or as the agent
// itself when neither is set. ref is "<namespace>/<account>", "" for the
// agent, recorded in the status so removal uses the same identity.
func (a *Agent) managerFor(namespace, sa string) (mgr *reconcile.Manager, ref string, err error) {
	if sa == "" {
		sa = a.opts.DefaultServiceAccount
	}
	if sa == "" || namespace == "" {
		return a.mgr, "", nil
	}
	mgr, err = a.mgr.As(reconcile.ServiceAccountUser(namespace, sa))
	return mgr, namespace + "/" + sa, err
}

// runnerAs is the agent's check runner reading the checks' Secrets with
// mgr: as the release's identity.
func (a *Agent) runnerAs(mgr *reconcile.Manager) *strategy.Runner {
	r := a.runner
	r.Secrets = mgr
	return &r
}

// Reachable asks the API server for its version, within ten seconds.
func (a *Agent) Reachable(ctx context.Context) error {
	cfg := rest.CopyConfig(a.cfg)
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("%s: %w", a.cfg.Host, err)
	}
	return nil
}
