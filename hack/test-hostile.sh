#!/usr/bin/env bash
# test-hostile.sh runs the hostile-input tests — the testdata/hostile corpus
# through `sluice validate` and the render beside a recording HTTP server and
# git (cmd/sluice), the egress wall and the budgets (render), and one release
# per case beside 50 healthy ones under a real agent (e2e) — and prints
#   hostile: N cases refused, F fetches, E execs, peak RSS X MiB, healthy push->applied Y s
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
go test -count=1 -v -run 'TestHostileInputs|TestSecondWall|TestBudgets' ./cmd/sluice ./render > "$out" 2>&1 || status=1
go test -count=1 -v -run 'TestHostileBesideHealthy' ./e2e >> "$out" 2>&1 || status=1
grep -E -- '^(ok|FAIL|--- FAIL)' "$out" || true
corpus=$(grep -oE 'hostile: [0-9]+ cases refused, [0-9]+ fetches, [0-9]+ execs' "$out" | tail -1)
agent=$(grep -oE 'hostile-agent: .*' "$out" | tail -1)
echo "$agent"
n=$(sed -E 's/hostile: ([0-9]+) cases.*/\1/' <<<"$corpus")
f1=$(sed -E 's/.* ([0-9]+) fetches.*/\1/' <<<"$corpus")
e=$(sed -E 's/.* ([0-9]+) execs.*/\1/' <<<"$corpus")
f2=$(sed -E 's/.* ([0-9]+) fetches.*/\1/' <<<"$agent")
rss=$(sed -E 's/.*peak RSS ([0-9]+) MiB.*/\1/' <<<"$agent")
p2a=$(sed -E 's/.*push->applied ([0-9.]+) s.*/\1/' <<<"$agent")
echo "hostile: $n cases refused, $((f1 + f2)) fetches, $e execs, peak RSS $rss MiB, healthy push->applied $p2a s"
exit $status
