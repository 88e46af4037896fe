// Package testcluster runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake
// nodes whose pods really go through ReplicaSets, scheduling and readiness),
// with the Gateway API standard CRDs installed.
//
// The binaries come from `make testbin` (hack/testbin.sh), built from the Go
// module proxy at pinned versions. One cluster per test binary, started from
// TestMain; one namespace per test.
package testcluster
