package reconcile

import (
	"fmt"
	"sort"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// Capabilities asks the API server for its version and for what it
// serves, as Helm's .Capabilities has them: every group/version, and every
// group/version/Kind.
func Capabilities(cfg *rest.Config) (version string, apiVersions []string, err error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", nil, fmt.Errorf("server version: %w", err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil && len(lists) == 0 {
		return "", nil, fmt.Errorf("discovery: %w", err)
	}
	seen := map[string]bool{}
	for _, l := range lists {
		seen[l.GroupVersion] = true
		for _, r := range l.APIResources {
			seen[l.GroupVersion+"/"+r.Kind] = true
		}
	}
	for gv := range seen {
		apiVersions = append(apiVersions, gv)
	}
	sort.Strings(apiVersions)
	return v.GitVersion, apiVersions, nil
}
