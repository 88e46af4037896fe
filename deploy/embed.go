// Package deploy holds sluice's install manifests, embedded so that
// `sluice install --export` prints them without a checkout.
package deploy

import "embed"

// FS is deploy/: the cluster-wide mode at the root (https-token/, or ssh/),
// the locked-down one in tenancy/, the shared objects in base/ and the Git
// credentials' settings in components/.
//
//go:embed kustomization.yaml base cluster components https-token ssh tenancy monitoring
var FS embed.FS
