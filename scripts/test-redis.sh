#!/usr/bin/env bash
# Tests of the Redis store (credpool-store's RedisStore) against a real redis-server:
#   1. installs Debian's redis-server if missing (scripts/setup-redis.sh);
#   2. the Rust tests store/tests/redis.rs (each starts, kills and restarts its own server
#      on a free loopback port: down at open, lost mid-run and back, slow, refresh races,
#      a holder stalled past its lease);
#   3. starts one server on a free loopback port (stopped on exit) and runs, with its URL in
#      CREDPOOL_REDIS_URL, the Node and Python binding tests against Redis
#      (tests/node/redis.test.mjs, tests/python/test_redis.py; they skip without it), then
#      the stress test over it (tests/stress/run.py --redis): a mixed run of Rust, Node and
#      Python workers, then the crash test; the binding tests run again over TLS
#      (rediss://, a second server with a CA and certificate made here, trusted through
#      SSL_CERT_FILE), and store/tests/redis_tls.rs checks a wrong CA is refused;
#   4. negative controls (broken writers that skip the merge, or the per-row version
#      checks: the checker must catch lost updates or refresh replays), then a mixed run whose server (started by run.py) is SIGKILLed
#      mid-run and restarted 800 ms later (--redis-outage): decisions continue, queued
#      marks are merged.
#
#   scripts/test-redis.sh
#
# The Node and Python bindings must be built (scripts/test.sh builds them first).
# STRESS_REDIS_MIX / STRESS_REDIS_CRASH_MIX choose the workers (default
# rust=3,node=2,python=2 and rust=2,node=1,python=1), STRESS_OPS / STRESS_ROUNDS the sizes,
# STRESS_PYTHON / STRESS_NODE the interpreters.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CREDPOOL_ROOT"

bash scripts/setup-redis.sh

echo "== cargo test -p credpool-store --test redis --test redis_tls (with redis-server, and over TLS)"
cargo test -q -p credpool-store --test redis --test redis_tls -- --include-ignored

cargo build -q --release -p credpool-store --example stress_worker
worker=$CARGO_TARGET_DIR/release/examples/stress_worker
mix=${STRESS_REDIS_MIX:-rust=3,node=2,python=2}
crash_mix=${STRESS_REDIS_CRASH_MIX:-rust=2,node=1,python=1}
python=${STRESS_PYTHON:-$CREDPOOL_CACHE/venv-py/bin/python}
node=${STRESS_NODE:-node}

# Refuse to run when a binding is missing or predates the Redis store (rather than
# silently testing less).
if ! "$node" -e "
  const { Store } = require('./bindings-node/index.js');
  if (typeof Store?.prototype?.confirmRefresh !== 'function') process.exit(1)" 2>/dev/null; then
  echo "test-redis.sh: the Node binding (bindings-node) has no Redis-capable Store; build it (scripts/test.sh)" >&2
  exit 1
fi
if ! "$python" -c "import credpool; credpool.Store.flush" 2>/dev/null; then
  echo "test-redis.sh: $python cannot import a Redis-capable credpool.Store; build the Python binding (scripts/test.sh)" >&2
  exit 1
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize no --loglevel warning >"$dir/redis.log" 2>&1 &
server=$!
# The same over TLS: a CA and a server certificate made here, a second server that
# listens with TLS only; the bindings trust the CA through SSL_CERT_FILE (what rustls's
# native roots read), so their Redis tests run unchanged over rediss://.
tls_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=credpool test CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" \
  -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 1 -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
redis-server --port 0 --tls-port "$tls_port" --bind 127.0.0.1 --save '' --appendonly no \
  --tls-cert-file "$dir/server.pem" --tls-key-file "$dir/server.key" \
  --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no --dir "$dir" \
  --daemonize no --loglevel warning >"$dir/redis-tls.log" 2>&1 &
tls_server=$!
cleanup() {
  kill "$server" "$tls_server" 2>/dev/null || true
  wait "$server" "$tls_server" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { cat "$dir/redis.log" >&2; exit 1; }
url="redis://127.0.0.1:$port"

echo "== node binding against Redis ($url)"
CREDPOOL_REDIS_URL=$url CREDPOOL_IMPL=napi "$node" --test tests/node/redis.test.mjs
echo "== python binding against Redis ($url)"
(cd bindings-python && CREDPOOL_REDIS_URL=$url "$python" -m pytest -q -rs ../tests/python/test_redis.py)
tls_url="rediss://127.0.0.1:$tls_port"
for _ in $(seq 100); do
  redis-cli --tls --cacert "$dir/ca.pem" -p "$tls_port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
echo "== node binding against Redis over TLS ($tls_url)"
SSL_CERT_FILE=$dir/ca.pem CREDPOOL_REDIS_URL=$tls_url CREDPOOL_IMPL=napi "$node" --test tests/node/redis.test.mjs
echo "== python binding against Redis over TLS ($tls_url)"
(cd bindings-python && SSL_CERT_FILE=$dir/ca.pem CREDPOOL_REDIS_URL=$tls_url \
  "$python" -m pytest -q -rs ../tests/python/test_redis.py)

stress() {
  python3 tests/stress/run.py --rust-worker "$worker" --node "$node" --python "$python" "$@"
}
run() { stress --redis "$url" "$@"; }
echo "== stress over Redis ($url)"
run --mix "$mix" --ops "${STRESS_OPS:-150}"
run --crash --crash-mix "$crash_mix" --rounds "${STRESS_ROUNDS:-15}"
echo "== negative controls over Redis (writers that skip the merge, or the version checks, must be caught)"
run --mix rust=6 --ops 100 --negative-control nomerge
# Without version checks only writers racing on one row lose updates: more of them, longer.
run --mix rust=8 --ops 400 --negative-control nolock
echo "== stress over Redis with an outage (server killed mid-run, restarted 800 ms later)"
stress --redis-server "$(command -v redis-server)" --redis-outage 800 --mix "$mix" \
  --ops "${STRESS_OPS:-150}"
