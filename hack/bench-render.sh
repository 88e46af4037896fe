#!/usr/bin/env bash
# bench-render.sh: `sluice render` vs `kubectl kustomize` on the same
# generated source of 1,000 objects, each a fresh process (cold), RUNS times.
# Prints both medians and the ratio (goal: sluice <= 0.8x).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-7}
n=${OBJECTS:-1000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
./hack/gen-source.sh "$tmp" "$n"
rel=$tmp/releases/bench/app
# The kubectl built with the control plane (make testbin), not the machine's.
kubectl=$(ls "$(dirname "$0")"/../bin/testbin/*/kubectl 2>/dev/null | head -n 1)
[ -x "$kubectl" ] || { echo "bench-render: kubectl not found: run make testbin"; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

# Same output, so the two do the same work.
bin/sluice render "$rel" | grep -c '^kind:' > "$tmp/a"
"$kubectl" kustomize "$rel" | grep -c '^kind:' > "$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || { echo "object counts differ: $(cat "$tmp/a") vs $(cat "$tmp/b")"; exit 1; }

for ((i = 0; i < runs; i++)); do
  time_ms bin/sluice render "$rel" >> "$tmp/sluice"
  time_ms "$kubectl" kustomize "$rel" >> "$tmp/kubectl"
done
s=$(median < "$tmp/sluice"); k=$(median < "$tmp/kubectl")
printf 'render %d objects, median of %d cold runs: sluice render %s ms, kubectl kustomize %s ms, ratio %.2fx (goal <= 0.80x)\n' \
  "$n" "$runs" "$s" "$k" "$(echo "$s / $k" | bc -l)"
