#!/usr/bin/env bash
# Bitrix conformance suite: the official PullClient (@bitrix24/b24jssdk,
# unmodified, with ws and xhr2) against a real server, for versions 3, 4, 5.
# Builds the server, installs the npm packages with `npm ci`, runs the tests;
# each test starts its server on free ports and always stops it.
#
# GATEWAY_KIND=pushpull runs cmd/pushpull with a [bitrix] section;
# GATEWAY_KIND=testserver runs web/bitrix/internal/testserver (the same
# routes on a real hub, for use before cmd/pushpull wires them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
kind="${GATEWAY_KIND:-pushpull}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
case "$kind" in
pushpull) (cd "$root" && go build -o "$tmp/pushpull" ./cmd/pushpull) ;;
testserver) (cd "$root" && go build -o "$tmp/pushpull" ./web/bitrix/internal/testserver) ;;
*) echo "GATEWAY_KIND must be pushpull or testserver" >&2; exit 2 ;;
esac
cd "$here"
if [ ! -d node_modules/@bitrix24/b24jssdk ] || [ ! -d node_modules/ws ] || [ ! -d node_modules/xhr2 ]; then
	npm ci --no-audit --no-fund
fi
export GATEWAY_BIN="$tmp/pushpull" GATEWAY_KIND="$kind"
node --test --test-concurrency=1 bitrix.test.mjs
