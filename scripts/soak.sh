#!/usr/bin/env bash
# The reliability suites in long mode (make soak): every crash scenario 20
# times, a provider outage of a minute, 2,000 WebSocket clients for a
# minute, and the disk and hostile-input suites, then every fuzz target for
# a minute. The FIGURE lines (the numbers RELIABILITY.md quotes) are
# collected into soak-figures.txt.
#
# Usage: scripts/soak.sh              long mode, without the race detector
#        RACE=1 scripts/soak.sh       under the race detector (slower)
#        FUZZTIME=10s scripts/soak.sh shorter fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"

race=()
[ -n "${RACE:-}" ] && race=(-race)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "=== reliability suites (PUSHPULL_SOAK=1; this takes a while)"
status=0
PUSHPULL_SOAK=1 go test "${race[@]}" -count=1 -timeout 150m -v -run 'TestReliability' ./cmd/pushpull/ >"$log" 2>&1 || status=1
grep -E '^(--- |FAIL|ok|PASS)|FIGURE' "$log" || true

echo "=== hostile input suites"
go test "${race[@]}" -count=1 -v -run 'Hostile' ./web/api/ ./web/client/ ./web/bitrix/ >>"$log" 2>&1 || status=1
grep -E '^(--- FAIL|FAIL|ok)|FIGURE hostile' "$log" || true
[ "$status" -eq 0 ] || tail -n 80 "$log"

grep -o 'FIGURE .*' "$log" >soak-figures.txt || true
echo "figures written to soak-figures.txt"
[ "$status" -eq 0 ] || { echo "soak: a suite failed" >&2; exit 1; }

echo "=== fuzz (long)"
FUZZTIME="${FUZZTIME:-1m}" scripts/fuzz.sh
echo "soak passed"
