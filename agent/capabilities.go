package agent

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
)

// capabilitiesTTL is how long the cluster's version and API list are
// taken as known before they are asked again.
const capabilitiesTTL = 10 * time.Minute

// clusterCapabilities answers what Helm charts see of the cluster, asked
// of the API server when a chart first renders and every capabilitiesTTL
// after; when the API server cannot say, the last answer (or Helm's
// defaults) stands.
type clusterCapabilities struct {
	agent *Agent

	mu   sync.Mutex
	caps render.Capabilities
	at   time.Time
}

func (c *clusterCapabilities) get() render.Capabilities {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < capabilitiesTTL {
		return c.caps
	}
	version, apis, err := reconcile.Capabilities(c.agent.cfg)
	c.at = time.Now()
	if err != nil {
		c.agent.log.Warn("cluster capabilities for Helm charts", zap.Error(err))
		return c.caps
	}
	c.caps = render.Capabilities{KubeVersion: version, APIVersions: apis}
	return c.caps
}
