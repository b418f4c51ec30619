#!/usr/bin/env bash
# Measures the tokio adapter's server memory per connection on loopback (Linux: reads
# VmRSS from /proc/PID/status), with examples/memory_probe.rs:
#
#   1. idle: WebSocket connections, handshake done, nothing sent, opened in stages
#      (IDLE_STAGES, default "1000 5000 19000" connections in all); the server's memory is
#      read at each stage; then again with permessage-deflate negotiated on every connection
#      (`idle+deflate`; DEFLATE=0 skips it);
#   2. slow: SLOW_CONNS (default 1000) connections, each mid-way through a frame declaring
#      16 MiB: the header and SLOW_BYTES (default 1024) payload bytes, then 1 byte per second.
#
# Each case runs a fresh echo server in one process and the clients in another (each process
# holds one descriptor per connection, so the largest stage must stay under `ulimit -Hn`,
# 20,000 here), the client sockets spread over the source addresses 127.0.0.1 ..
# 127.0.0.SOURCES (default 16). It reads the server's VmRSS before the clients connect and
# SETTLE_SECONDS (default 5) after each stage is connected, and prints the growth per
# connection. Figures only: nothing is asserted.
#
#   bash scripts/measure-memory.sh
#   IDLE_STAGES="500 2000" SLOW_CONNS=200 bash scripts/measure-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE_STAGES=${IDLE_STAGES:-"1000 5000 19000"}
SLOW_CONNS=${SLOW_CONNS:-1000}
SLOW_BYTES=${SLOW_BYTES:-1024}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}
SOURCES=${SOURCES:-16}
DEFLATE=${DEFLATE:-1}

largest=$SLOW_CONNS
for n in $IDLE_STAGES; do [ "$n" -gt "$largest" ] && largest=$n; done
# One socket per connection, plus the runtime's own descriptors and the listener.
need=$((largest + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    echo "ulimit -n hard limit $hard is below the $need descriptors needed;" \
         "lower IDLE_STAGES / SLOW_CONNS or raise the limit" >&2
    exit 1
  fi
  ulimit -n "$need"
fi

cargo build --release --features tokio --example memory_probe
probe=${CARGO_TARGET_DIR:-target}/release/examples/memory_probe
work=$(mktemp -d)
pids=()
cleanup() {
  exec 7>&- 2>/dev/null || true
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

start_server() { # sets $server and $addr
  "$probe" server 127.0.0.1:0 >"$work/server.out" 2>&1 &
  server=$!
  pids+=("$server")
  addr=$(wait_for "$work/server.out" '^listening ' 30 | awk '{ print $2 }')
  sleep 1
}

report() { # NAME N BEFORE_KIB AFTER_KIB CLIENT_PID
  local name=$1 n=$2 before=$3 after=$4 client=$5
  local per=$(( (after - before) * 1024 / n ))
  printf '%-12s %6d connections: server VmRSS %7d KiB -> %7d KiB (+%d KiB), %6d bytes per connection; client VmRSS %d KiB\n' \
    "$name" "$n" "$before" "$after" "$(( after - before ))" "$per" "$(rss_kib "$client")"
  echo "RESULT case=$name conns=$n server_rss_before_kib=$before server_rss_after_kib=$after bytes_per_conn=$per"
}

# idle: one server; one client that opens the stages one after another, told to go on
# through a FIFO on its standard input.
measure_idle() { # NAME plain|deflate
  local name=$1 mode=$2
  local stages=($IDLE_STAGES)
  start_server
  local before
  before=$(rss_kib "$server")
  rm -f "$work/control" "$work/client.out"
  mkfifo "$work/control"
  "$probe" idle "$addr" "$(IFS=,; echo "${stages[*]}")" "$SOURCES" "$mode" \
    <"$work/control" >"$work/client.out" 2>&1 &
  local client=$!
  pids+=("$client")
  exec 7>"$work/control"
  for n in "${stages[@]}"; do
    wait_for "$work/client.out" "^ready $n\$" 900 >/dev/null
    sleep "$SETTLE_SECONDS"
    report "$name" "$n" "$before" "$(rss_kib "$server")" "$client"
    echo go >&7
  done
  exec 7>&-
  kill "$client" "$server" 2>/dev/null || true
  wait "$client" "$server" 2>/dev/null || true
}

measure_slow() {
  start_server
  local before
  before=$(rss_kib "$server")
  "$probe" slow "$addr" "$SLOW_CONNS" "$SLOW_BYTES" >"$work/client.out" 2>&1 &
  local client=$!
  pids+=("$client")
  wait_for "$work/client.out" '^ready ' 600 >/dev/null
  sleep "$SETTLE_SECONDS"
  report slow "$SLOW_CONNS" "$before" "$(rss_kib "$server")" "$client"
  kill "$client" "$server" 2>/dev/null || true
  wait "$client" "$server" 2>/dev/null || true
}

echo "==> tokio echo server, memory per connection (ulimit -n $(ulimit -n), $SOURCES source addresses)"
measure_idle idle plain
if [ "$DEFLATE" != 0 ]; then measure_idle idle+deflate deflate; fi
if [ "$SLOW_CONNS" -gt 0 ]; then measure_slow; fi
