package reconcile

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

// cluster is the real control plane every test in this package uses.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) { testcluster.Main(m, &cluster) }
