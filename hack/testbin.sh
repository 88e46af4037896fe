#!/usr/bin/env bash
# testbin.sh builds the real control-plane binaries the tests run against,
# from the Go module proxy only, at pinned versions:
#   kube-apiserver, kube-controller-manager, kube-scheduler,
#   kubectl (the tests' client, same version)              (k8s.io/kubernetes)
#   etcd                                                     (go.etcd.io/etcd/server/v3)
#   kwok                                                     (sigs.k8s.io/kwok)
#   traefik, the Gateway API data plane of the traffic tests (github.com/traefik/traefik/v3)
#   helm, at the Helm SDK's version in go.mod, for render parity tests only (helm.sh/helm/v4)
# plus the kwok Stage objects and the Gateway API standard CRDs as files.
#
# The binaries live in $HOME/.cache/sluice/testbin/<version>/ and
# bin/testbin/<version> links there, so a fresh clone on the same machine
# (CI, a later session) reuses them. Idempotent: a run with everything present
# does nothing.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
GATEWAY_VERSION=${GATEWAY_VERSION:-v1.6.3}
TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
HELM_VERSION=${HELM_VERSION:-$(sed -n 's#^[[:space:]]*helm.sh/helm/v4 \(v[^ ]*\).*#\1#p' "$(cd "$(dirname "$0")/.." && pwd)/go.mod")}
VERSION=${K8S_VERSION}

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SLUICE_TESTBIN_CACHE:-$HOME/.cache/sluice/testbin}/$VERSION
link=$root/bin/testbin/$VERSION

mkdir -p "$cache" "$root/bin/testbin"
if [ ! -e "$link" ]; then ln -sfn "$cache" "$link"; fi

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
want=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwok-stages.yaml gateway-crds.yaml traefik helm)
missing=()
for f in "${want[@]}"; do [ -s "$cache/$f" ] || missing+=("$f"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "testbin: $cache complete"
  exit 0
fi
echo "testbin: building ${missing[*]} into $cache"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

moddir() { (cd "$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); }

has() { [ -s "$cache/$1" ]; }

# Kubernetes control plane: k8s.io/kubernetes replaces its staging modules
# with local paths, so a throwaway module replaces each with its v0.x tag.
if ! has kube-apiserver || ! has kube-controller-manager || ! has kube-scheduler || ! has kubectl; then
  d=$work/k8s; mkdir -p "$d"; cd "$d"
  go mod init testbin/k8s >/dev/null 2>&1
  go mod edit -go=1.26.0
  kdir=$(moddir "$d" "k8s.io/kubernetes@$K8S_VERSION")
  staging=${K8S_VERSION/v1./v0.}
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$kdir/go.mod"); do
    go mod edit -replace="$m=$m@$staging"
  done
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy -e >/dev/null 2>&1 || true
  go build -o "$cache/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
fi

if ! has etcd; then
  d=$work/etcd; mkdir -p "$d"; cd "$d"
  go mod init testbin/etcd >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy -e >/dev/null 2>&1 || true
  go build -o "$cache/etcd" go.etcd.io/etcd/server/v3
fi

if ! has kwok || ! has kwok-stages.yaml; then
  d=$work/kwok; mkdir -p "$d"; cd "$d"
  go mod init testbin/kwok >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="sigs.k8s.io/kwok@$KWOK_VERSION"
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' > tools.go
  go mod tidy -e >/dev/null 2>&1 || true
  has kwok || go build -o "$cache/kwok" sigs.k8s.io/kwok/cmd/kwok
  kw=$(moddir "$d" "sigs.k8s.io/kwok@$KWOK_VERSION")
  {
    cat "$kw/kustomize/stage/node/fast/node-initialize.yaml"
    echo "---"
    cat "$kw/kustomize/stage/node/heartbeat/node-heartbeat.yaml"
    for f in "$kw"/kustomize/stage/pod/fast/*.yaml; do
      [ "$(basename "$f")" = kustomization.yaml ] && continue
      echo "---"; cat "$f"
    done
  } > "$cache/kwok-stages.yaml.tmp"
  mv "$cache/kwok-stages.yaml.tmp" "$cache/kwok-stages.yaml"
fi

if ! has gateway-crds.yaml; then
  d=$work/gw; mkdir -p "$d"; cd "$d"
  go mod init testbin/gw >/dev/null 2>&1
  gw=$(moddir "$d" "sigs.k8s.io/gateway-api@$GATEWAY_VERSION")
  first=1
  for f in "$gw"/config/crd/standard/*.yaml; do
    [ $first -eq 1 ] || echo "---"; first=0; cat "$f"
  done > "$cache/gateway-crds.yaml.tmp"
  mv "$cache/gateway-crds.yaml.tmp" "$cache/gateway-crds.yaml"
fi

# Traefik: its go.mod has replace directives, so `go install …@version`
# refuses it; it is built inside a writable copy of its own module
# directory, where they apply. (v3.7 needs modules the proxy refuses.)
if ! has traefik; then
  d=$work/traefik-mod; mkdir -p "$d"; cd "$d"
  go mod init testbin/traefik >/dev/null 2>&1
  src=$(moddir "$d" "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")
  cp -r "$src" "$work/traefik"; chmod -R u+w "$work/traefik"; cd "$work/traefik"
  go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" -o "$cache/traefik.tmp" ./cmd/traefik
  mv "$cache/traefik.tmp" "$cache/traefik"
fi

# helm: the same version as the SDK sluice renders charts with, so the
# parity tests compare renderers, not Helm releases.
if ! has helm; then
  GOBIN=$work/gobin go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv "$work/gobin/helm" "$cache/helm"
fi

ls -la "$cache"
