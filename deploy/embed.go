// Package deploy holds sluice's install manifests, embedded so that
// `sluice install --export` prints them without a checkout.
package deploy

import "embed"

// FS is deploy/: the cluster-wide mode at the root, the locked-down one in
// tenancy/, the shared objects in base/.
//
//go:embed kustomization.yaml rbac.yaml base tenancy monitoring
var FS embed.FS
