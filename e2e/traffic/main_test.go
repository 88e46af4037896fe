package traffic

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) { testcluster.MainTraffic(m, &cluster, report.print) }
