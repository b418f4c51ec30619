#!/usr/bin/env bash
# Measures the tokio adapter's server memory per connection on loopback (Linux: reads
# VmRSS from /proc/PID/status), with examples/memory_probe.rs:
#
#   1. idle: IDLE_CONNS (default 10000) WebSocket connections, handshake done, nothing sent;
#   2. slow: SLOW_CONNS (default 1000) connections, each mid-way through a frame declaring
#      16 MiB: the header and SLOW_BYTES (default 1024) payload bytes, then 1 byte per second.
#
# Each case runs a fresh echo server in one process and the clients in another, reads the
# server's VmRSS before the clients connect and SETTLE_SECONDS (default 5) after they are all
# connected, and prints the difference per connection. Figures only: nothing is asserted.
#
#   bash scripts/measure-memory.sh
#   IDLE_CONNS=2000 SLOW_CONNS=200 bash scripts/measure-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE_CONNS=${IDLE_CONNS:-10000}
SLOW_CONNS=${SLOW_CONNS:-1000}
SLOW_BYTES=${SLOW_BYTES:-1024}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}

# Each process holds one socket per connection, plus a few.
need=$(( (IDLE_CONNS > SLOW_CONNS ? IDLE_CONNS : SLOW_CONNS) + 256 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    echo "ulimit -n hard limit $hard is below the $need descriptors needed;" \
         "lower IDLE_CONNS / SLOW_CONNS or raise the limit" >&2
    exit 1
  fi
  ulimit -n "$need"
fi

cargo build --release --features tokio --example memory_probe
probe=target/release/examples/memory_probe
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Waits up to $3 seconds for a line matching $2 in file $1 and prints it.
wait_for() {
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if grep -q "$2" "$1" 2>/dev/null; then
      grep -m1 "$2" "$1"
      return 0
    fi
    sleep 0.2
  done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

# measure NAME N CLIENT_ARGS...: one server, one client process, the server's growth.
measure() {
  local name=$1 n=$2
  shift 2
  "$probe" server 127.0.0.1:0 >"$work/server.out" 2>&1 &
  local server=$!
  pids+=("$server")
  local addr
  addr=$(wait_for "$work/server.out" '^listening ' 30 | awk '{ print $2 }')
  sleep 1
  local before
  before=$(rss_kib "$server")
  "$probe" "$1" "$addr" "${@:2}" >"$work/client.out" 2>&1 &
  local client=$!
  pids+=("$client")
  wait_for "$work/client.out" '^ready ' 600 >/dev/null
  sleep "$SETTLE_SECONDS"
  local after client_rss
  after=$(rss_kib "$server")
  client_rss=$(rss_kib "$client")
  kill "$client" "$server" 2>/dev/null || true
  wait "$client" "$server" 2>/dev/null || true
  local per=$(( (after - before) * 1024 / n ))
  printf '%-5s %6d connections: server VmRSS %7d KiB -> %7d KiB (+%d KiB), %6d bytes per connection; client VmRSS %d KiB\n' \
    "$name" "$n" "$before" "$after" "$(( after - before ))" "$per" "$client_rss"
  echo "RESULT case=$name conns=$n server_rss_before_kib=$before server_rss_after_kib=$after bytes_per_conn=$per"
}

echo "==> tokio echo server, memory per connection (ulimit -n $(ulimit -n))"
measure idle "$IDLE_CONNS" idle "$IDLE_CONNS"
measure slow "$SLOW_CONNS" slow "$SLOW_CONNS" "$SLOW_BYTES"
