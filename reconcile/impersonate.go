package reconcile

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServiceAccountUser is the user name Kubernetes gives the ServiceAccount
// name in namespace: what impersonating it asks for.
func ServiceAccountUser(namespace, name string) string {
	return fmt.Sprintf("system:serviceaccount:%s:%s", namespace, name)
}

// As returns a Manager that applies, prunes, diffs and reads as user
// (Kubernetes impersonation, the way Flux applies a Kustomization as its
// serviceAccountName): what user's RBAC does not allow fails with the API
// server's Forbidden. It shares m's RESTMapper, guard rails and workload
// watch (Deployments are observed as the agent). Managers are kept per
// user; "" is m itself.
func (m *Manager) As(user string) (*Manager, error) {
	if user == "" {
		return m, nil
	}
	m.asMu.Lock()
	defer m.asMu.Unlock()
	if as, ok := m.as[user]; ok {
		return as, nil
	}
	cfg := rest.CopyConfig(m.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Mapper: m.mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, err
	}
	rm := ssa.NewResourceManager(c, polling.NewStatusPoller(c, m.mapper, polling.Options{}), ssa.Owner{Field: FieldManager, Group: "sluice.dev"})
	rm.SetConcurrency(m.opts.Concurrency)
	as := &Manager{rm: rm, client: c, mapper: m.mapper, opts: m.opts, cfg: cfg, agent: m}
	if m.as == nil {
		m.as = map[string]*Manager{}
	}
	m.as[user] = as
	return as, nil
}
