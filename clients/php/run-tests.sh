#!/usr/bin/env bash
# Runs the PHP client's PHPUnit suite against a real pushpull:
#   builds the Go binary from the repository root, starts it on free
#   loopback ports with a temporary data dir and a generated API key and
#   client JWT secret, waits for /readyz, runs phpunit, and always stops
#   the server. Arguments go to phpunit (e.g. --testsuite unit, --filter X).
#
# Needs: go (or /usr/local/go/bin/go), php-cli with curl, phpunit
# (Debian package, or vendor/bin/phpunit after composer install).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"

phpunit="${PHPUNIT:-}"
if [[ -z "$phpunit" ]]; then
  if [[ -x "$here/vendor/bin/phpunit" ]]; then phpunit="$here/vendor/bin/phpunit"; else phpunit="phpunit"; fi
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # Give it its shutdown timeout, then make sure.
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building pushpull..." >&2
(cd "$root" && go build -o "$tmp/pushpull" ./cmd/pushpull)

free_port() {
  php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'
}
rand_str() { php -r "echo bin2hex(random_bytes($1));"; }

key="test-$(rand_str 16)"
secret="$(rand_str 24)"

# A port picked free may be taken before the server binds it: try a few times.
started=""
for attempt in 1 2 3; do
  api_port="$(free_port)"; client_port="$(free_port)"
  mkdir -p "$tmp/data$attempt"
  PUSHPULL_API_ADDR="127.0.0.1:$api_port" \
  PUSHPULL_CLIENT_ADDR="127.0.0.1:$client_port" \
  PUSHPULL_SERVER_DATA_DIR="$tmp/data$attempt" \
  PUSHPULL_API_KEYS="$key" \
  PUSHPULL_CLIENT_JWT_SECRET="$secret" \
    "$tmp/pushpull" >"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if curl -fsS "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then started=1; break; fi
    sleep 0.1
  done
  [[ -n "$started" ]] && break
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  echo "pushpull did not become ready (attempt $attempt):" >&2
  tail -n 20 "$tmp/server.log" >&2 || true
done
if [[ -z "$started" ]]; then
  echo "giving up: pushpull would not start" >&2
  exit 1
fi
echo "pushpull ready: api 127.0.0.1:$api_port, client 127.0.0.1:$client_port" >&2

export PUSHPULL_TEST_URL="http://127.0.0.1:$api_port"
export PUSHPULL_TEST_CLIENT_URL="http://127.0.0.1:$client_port"
export PUSHPULL_TEST_KEY="$key"
export PUSHPULL_TEST_JWT_SECRET="$secret"

status=0
"$phpunit" -c "$here/phpunit.xml" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- last lines of the pushpull log ---" >&2
  tail -n 40 "$tmp/server.log" >&2 || true
fi
exit $status
