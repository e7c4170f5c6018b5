#!/usr/bin/env bash
# Runs every pushpull suite: formatting and vet, the Go tests under the race
# detector, and — when their folders exist — the PHP, browser and Bitrix
# conformance suites, installing what they need when it is missing
# (Debian packages as root, npm packages with `npm ci`).
#
# Usage: scripts/test-all.sh            everything
#        SHORT=1 scripts/test-all.sh    Go tests in -short mode
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [ -x /usr/local/go/bin/go ]; then
			export PATH="/usr/local/go/bin:$PATH"
		else
			echo "Go is required (https://go.dev/dl/, 1.26 or newer)" >&2
			exit 1
		fi
	fi
}

apt_install() {
	# apt_install PKG... : install Debian packages that are missing.
	local missing=()
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	step "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

need_go
step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
short=()
[ -n "${SHORT:-}" ] && short=(-short)
go test -race "${short[@]}" -timeout 20m ./...

step "fuzz (short)"
# Every Fuzz* target for a few seconds: the seed corpus plus a little
# exploration; scripts/soak.sh runs them for a minute each.
FUZZTIME="${FUZZTIME:-3s}" scripts/fuzz.sh

step "govulncheck"
# Installed through the Go module proxy when missing. Findings fail the
# run (exit 3); an unreachable vulnerability database (offline sandbox)
# only warns.
if ! command -v govulncheck >/dev/null 2>&1; then
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
	export PATH="$gobin:$PATH"
	command -v govulncheck >/dev/null 2>&1 || go install golang.org/x/vuln/cmd/govulncheck@latest
fi
vulnout=$(mktemp)
if govulncheck ./... >"$vulnout" 2>&1; then
	tail -n 3 "$vulnout"
else
	rc=$?
	cat "$vulnout"
	if [ "$rc" -ne 3 ] && grep -q "fetching vulnerabilities" "$vulnout"; then
		echo "WARNING: govulncheck skipped: the vulnerability database (vuln.go.dev) is unreachable" >&2
	else
		rm -f "$vulnout"
		exit 1
	fi
fi
rm -f "$vulnout"

step "JS client unit tests (node --test)"
command -v node >/dev/null 2>&1 || apt_install nodejs
node --test web/static/test/unit/

if [ -f clients/php/run-tests.sh ]; then
	step "PHP suite"
	apt_install php-cli php-curl php-mbstring php-xml phpunit
	bash clients/php/run-tests.sh
fi

if [ -f web/static/test/browser/run-tests.sh ]; then
	step "browser suite"
	apt_install chromium
	bash web/static/test/browser/run-tests.sh
fi

if [ -f web/admin/test/browser/run-tests.sh ]; then
	step "admin dashboard browser suite"
	apt_install chromium
	bash web/admin/test/browser/run-tests.sh
fi

if [ -f conformance/run-tests.sh ]; then
	step "Bitrix conformance suite"
	bash conformance/run-tests.sh
fi

step "all suites passed"
