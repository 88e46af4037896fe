#!/usr/bin/env bash
# testbin-argo.sh builds Argo Rollouts' controller (for the canary benchmark
# only) from the Go module proxy into the test binary cache, with its CRDs.
# Idempotent. Argo Rollouts v1.10.2 asks for Go 1.26.10: the toolchain
# setting stays inside this throwaway module; sluice itself stays on Go 1.26.
set -euo pipefail
ARGO_VERSION=${ARGO_VERSION:-v1.10.2}
ARGO_TOOLCHAIN=${ARGO_TOOLCHAIN:-go1.27.3}
cache=${SLUICE_TESTBIN_CACHE:-$HOME/.cache/sluice/testbin}/argo-rollouts-$ARGO_VERSION
mkdir -p "$cache"
if [ -s "$cache/rollouts-controller" ] && [ -s "$cache/crds.yaml" ]; then
  echo "testbin-argo: $cache complete"; exit 0
fi
export GOTOOLCHAIN=$ARGO_TOOLCHAIN GOFLAGS=-mod=mod
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
# The module's go.mod, for its replace directives (a replace only counts in
# the main module, so the throwaway module copies all of them).
modfile=$(go mod download -json "github.com/argoproj/argo-rollouts@$ARGO_VERSION" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
cat > go.mod <<MOD
module testbin/argo

go 1.26.10

require github.com/argoproj/argo-rollouts $ARGO_VERSION
MOD
sed -n '/^replace (/,/^)/p' "$modfile" >> go.mod
grep '^replace [^(]' "$modfile" >> go.mod || true
echo "testbin-argo: $(grep -c '=>' go.mod) replace directives"
go build -o "$cache/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller
dir=$(go list -m -f '{{.Dir}}' github.com/argoproj/argo-rollouts)
first=1
for f in "$dir"/manifests/crds/*.yaml; do
  case "$f" in */kustomization.yaml) continue;; esac
  [ $first -eq 1 ] || echo "---"; first=0; cat "$f"
done > "$cache/crds.yaml"
ls -la "$cache"
