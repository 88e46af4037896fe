#!/usr/bin/env bash
# demo.sh: the embedded local run. For now it checks every example release
# exactly as the agent would and shows what each renders to and its digests.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/sluice
echo "==> sluice validate examples/"
$bin validate examples/
for d in examples/releases/*/*/; do
  name=${d#examples/releases/}; name=${name%/}
  n=$($bin render "$d" | grep -c '^kind:')
  printf '==> %-22s %2d objects  digest %s  version %s\n' "$name" "$n" \
    "$($bin render "$d" --digest | cut -c1-19)" "$($bin render "$d" --version-digest | cut -c1-19)"
done
echo "==> sluice render examples/releases/demo/canary"
$bin render examples/releases/demo/canary
