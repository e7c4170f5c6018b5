#!/usr/bin/env bash
# Regression guard for speed: the hot-path Go benchmarks with a short
# -benchtime, then every end-to-end scenario of cmd/pushpull-bench with small
# parameters against a pushpull built from this tree. Exits non-zero when a
# benchmark or a scenario fails (an error, a lost job, an undelivered event);
# the figures themselves are printed, not judged: a 2-core shared machine is
# too noisy for thresholds. BENCHMARKS.md has the full-size commands.
#
# Usage: scripts/bench.sh                 everything (a few minutes)
#        BENCHTIME=1s scripts/bench.sh    longer Go benchmarks
#        SKIP_GO=1 / SKIP_SCENARIOS=1     one half only
#        OUT=results.jsonl scripts/bench.sh   also keep the scenarios' JSON lines
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { echo "Go 1.26 or newer is required" >&2; exit 1; }

BENCHTIME=${BENCHTIME:-200ms}
step() { printf '\n=== %s\n' "$*"; }

if [ -z "${SKIP_GO:-}" ]; then
	# Packages with hot-path benchmarks: queue (enqueue, lease/ack), hub
	# (fan-out to 1,000 connections, event encoding), API decoding, device
	# lookups, providers and the dispatcher against the in-process fakes.
	pkgs=(./queue/ ./gateway/hub/ ./web/api/ ./devices/ ./gateway/push/ ./providers/apns/ ./providers/fcm/)
	step "go test -bench (benchtime $BENCHTIME)"
	go test -run '^$' -bench . -benchtime "$BENCHTIME" -count 1 "${pkgs[@]}"
fi

if [ -z "${SKIP_SCENARIOS:-}" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	step "build pushpull and pushpull-bench"
	go build -o "$tmp/pushpull" ./cmd/pushpull
	go build -o "$tmp/pushpull-bench" ./cmd/pushpull-bench
	out=${OUT:-$tmp/results.jsonl}
	scenario() {
		step "pushpull-bench $*"
		# Each run prints a summary line and a JSON line; keep the JSON.
		"$tmp/pushpull-bench" "$1" -bin "$tmp/pushpull" -timeout 2m "${@:2}" | tee "$tmp/last"
		tail -n 1 "$tmp/last" >>"$out"
	}
	scenario ingest -requests 200 -batch 100 -concurrency 32
	scenario deliver-apns -devices 200 -jobs 5000 -verify
	scenario deliver-fcm -devices 200 -jobs 5000 -verify
	scenario fanout -clients 200 -events 50
	scenario idle-memory -clients 1000 -settle 1s
	scenario publish-latency -rate 500 -duration 2s
	scenario recovery -devices 200 -jobs 5000
	step "all scenarios passed"
	if [ -n "${OUT:-}" ]; then echo "JSON lines appended to $OUT"; fi
fi
