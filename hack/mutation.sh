#!/usr/bin/env bash
# mutation.sh scores the decision code's tests with gremlins (a Go mutation
# tester, from the module proxy): strategy/ (the state machine, route and
# track builders; the check providers' I/O in checks_run.go is left out) and
# api/v1alpha1/ (parsing and validation). Tests needing a control plane or
# Prometheus are left out of the runs with the `mutation` build tag: they
# test I/O, and each mutant would pay for them. Prints
#   mutation: strategy efficacy X% (K killed, L lived), api efficacy Y% (...)
# and keeps the full reports in bin/mutation-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
GREMLINS_VERSION=${GREMLINS_VERSION:-v0.6.0}
bin=$(go env GOPATH)/bin/gremlins
[ -x "$bin" ] || go install "github.com/go-gremlins/gremlins/cmd/gremlins@${GREMLINS_VERSION}"
mkdir -p bin
score() { # name package [excludes...]
  local name=$1 pkg=$2; shift 2
  local report=bin/mutation-$name.txt
  "$bin" unleash --tags mutation --workers "${WORKERS:-2}" --timeout-coefficient 5 "$@" "$pkg" > "$report" 2>&1 || true
  local killed lived eff
  killed=$(grep -oE 'Killed: [0-9]+' "$report" | tail -1 | grep -oE '[0-9]+' || echo 0)
  lived=$(grep -oE 'Lived: [0-9]+' "$report" | tail -1 | grep -oE '[0-9]+' || echo 0)
  eff=$(grep -oE 'Test efficacy: [0-9.]+%' "$report" | tail -1 | grep -oE '[0-9.]+%' || echo "?")
  echo "$name efficacy $eff ($killed killed, $lived lived)"
}
s=$(score strategy ./strategy -E 'checks_run\.go$')
a=$(score api ./api/v1alpha1)
echo "mutation: $s, $a"
echo "survivors: grep LIVED bin/mutation-strategy.txt bin/mutation-api.txt"
