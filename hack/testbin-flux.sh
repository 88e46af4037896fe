#!/usr/bin/env bash
# testbin-flux.sh builds Flux's source-controller and kustomize-controller
# (for the fleet benchmark only) from the Go module proxy into the test
# binary cache, with their CRDs. Idempotent.
set -euo pipefail
FLUX_VERSION=${FLUX_VERSION:-v1.9.6}
cache=${SLUICE_TESTBIN_CACHE:-$HOME/.cache/sluice/testbin}/flux-$FLUX_VERSION
mkdir -p "$cache"
if [ -s "$cache/source-controller" ] && [ -s "$cache/kustomize-controller" ] && [ -s "$cache/crds.yaml" ]; then
  echo "testbin-flux: $cache complete"; exit 0
fi
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init testbin/flux >/dev/null 2>&1
go mod edit -go=1.26.0 \
  -require=github.com/fluxcd/source-controller@$FLUX_VERSION \
  -require=github.com/fluxcd/kustomize-controller@$FLUX_VERSION \
  -replace=github.com/opencontainers/go-digest=github.com/opencontainers/go-digest@v1.0.1-0.20220411205349-bde1400a84be \
  -replace=sigs.k8s.io/kustomize/api=sigs.k8s.io/kustomize/api@v0.21.1 \
  -replace=sigs.k8s.io/kustomize/kyaml=sigs.k8s.io/kustomize/kyaml@v0.21.1 \
  -replace=gopkg.in/yaml.v3=gopkg.in/yaml.v3@v3.0.1 \
  -replace=github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0
go build -o "$cache/source-controller" github.com/fluxcd/source-controller
go build -o "$cache/kustomize-controller" github.com/fluxcd/kustomize-controller
src=$(go list -m -f '{{.Dir}}' github.com/fluxcd/source-controller)
kus=$(go list -m -f '{{.Dir}}' github.com/fluxcd/kustomize-controller)
first=1
for f in "$src"/config/crd/bases/*.yaml "$kus"/config/crd/bases/*.yaml; do
  [ $first -eq 1 ] || echo "---"; first=0; cat "$f"
done > "$cache/crds.yaml"
ls -la "$cache"
