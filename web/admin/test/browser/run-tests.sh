#!/usr/bin/env bash
# Admin dashboard browser test: builds pushpull, installs playwright-core
# with `npm ci` (it drives Debian's /usr/bin/chromium; no browser is
# downloaded) and runs admin.test.mjs against the real binary. The
# screenshot goes to .ci/out/admin.png (not committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/pushpull" ./cmd/pushpull)
cd "$here"
if [ ! -d node_modules/playwright-core ]; then
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
export GATEWAY_BIN="$tmp/pushpull"
export GATEWAY_ARTIFACTS="${GATEWAY_ARTIFACTS:-$root/.ci/out}"
node --test --test-concurrency=1 admin.test.mjs
