package traffic

import (
	"os/exec"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

func kubectl(args ...string) (string, error) {
	k, err := testcluster.Kubectl()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(k, append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}
