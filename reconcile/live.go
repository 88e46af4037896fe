package reconcile

import (
	"context"
	"fmt"
	"github.com/sluice-dev/sluice/internal/egress"
	"net"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// LoadConfig returns the REST config for kubeconfig when given, else the
// in-cluster config, else $KUBECONFIG or ~/.kube/config.
// Client-side rate limits are raised from client-go's 5 QPS, which would
// make a pass over hundreds of objects crawl.
func LoadConfig(kubeconfig string) (*rest.Config, error) {
	return LoadConfigContext(kubeconfig, "")
}

// LoadConfigContext is LoadConfig with a kubeconfig context other than the
// current one (kubectl's --context).
func LoadConfigContext(kubeconfig, context string) (*rest.Config, error) {
	cfg, err := loadConfig(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	// A credential plugin named without a path is found on PATH as the
	// process started (sluice empties PATH so nothing else runs).
	if cfg.ExecProvider != nil {
		if p, err := egress.LookPath(cfg.ExecProvider.Command); err == nil {
			cfg.ExecProvider.Command = p
		}
	}
	// client-go falls back to http.DefaultTransport for a config with no
	// TLS settings of its own (a CA from the system's roots), and sluice
	// disables that transport (package egress): a dialer of its own makes
	// client-go build the cluster's transport itself.
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	// No request may hang the loop on an API server that went away.
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	return cfg, nil
}

func loadConfig(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" && context == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
}

// LiveInventory finds the objects in the cluster labelled as the release's,
// in its namespace, across every kind the cluster lists: the inventory when
// status.yaml is not at hand (sluice diff).
func LiveInventory(ctx context.Context, cfg *rest.Config, release, namespace string) (Inventory, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	quiet := rest.CopyConfig(cfg)
	quiet.WarningHandler = rest.NoWarnings{}
	mc, err := metadata.NewForConfig(quiet)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	sel := ReleaseLabel + "=" + ReleaseLabelValue(release)
	var inv Inventory
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerb(r.Verbs, "list") || (gv.Group == "" && r.Kind == "Event") || gv.Group == "events.k8s.io" {
				continue
			}
			items, err := mc.Resource(gv.WithResource(r.Name)).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				continue // a kind we may not list is not ours
			}
			for i := range items.Items {
				it := &items.Items[i]
				if !appliedBySluice(it.ManagedFields) {
					continue // e.g. Endpoints, which copy the Service's labels
				}
				id := gv.String() + "/" + r.Kind + "/" + namespace + "/" + it.Name
				inv = append(inv, id)
			}
		}
	}
	return Inventory(nil).merge(inv), nil
}

// appliedBySluice reports whether sluice's field manager applied the object.
func appliedBySluice(fields []metav1.ManagedFieldsEntry) bool {
	for _, f := range fields {
		if f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func hasVerb(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

// merge returns inv plus ids, sorted and unique.
func (inv Inventory) merge(ids []string) Inventory {
	seen := map[string]bool{}
	var out Inventory
	for _, id := range append(append([]string{}, inv...), ids...) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
