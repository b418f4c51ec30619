#!/usr/bin/env bash
# Measures the tokio adapter's server memory per connection on loopback (Linux: reads
# VmRSS from /proc/PID/status), with examples/memory_probe.rs:
#
#   1. idle: WebSocket connections, handshake done, nothing sent, opened in stages
#      (IDLE_STAGES, default "1000 5000 19000" connections in all); the server's memory is
#      read at each stage; then again with permessage-deflate negotiated on every connection
#      (`idle+deflate`; DEFLATE=0 skips it);
#   2. slow: SLOW_CONNS (default 1000) connections, each mid-way through a frame declaring
#      16 MiB: the header and SLOW_BYTES (default 1024) payload bytes, then 1 byte per second;
#   3. deflate, active and idle (DEFLATE=0 skips it): DEFLATE_STAGES (default 10000)
#      connections with permessage-deflate negotiated, each of which exchanged DEFLATE_MSGS
#      (default 5) JSON chat messages right after its handshake, at two server settings:
#      `defaults` (the library's) and `cheapest` (no context takeover either way, 9-bit
#      windows). `-active` runs the server with the memory policy's idle delay at an hour,
#      so every connection still holds its compressor and decompressor, as a busy one does;
#      `-idle` runs it at the default delay (DEFAULT_RELEASE_AFTER, 1 s, well under
#      SETTLE_SECONDS), so the streams were freed before the memory is read.
#      `-permessage` is the defaults with `MemoryPolicy::PerMessage` (nothing kept between
#      messages but the windows, at a CPU cost per message).
#      glibc keeps freed blocks under its mmap threshold for reuse instead of returning them
#      to the system (the threshold rises to 128 KiB and more as large blocks are freed), so
#      after a burst the server's RSS keeps the decompressors (~47 KiB each) the connections
#      have freed. The `-idle` cases run again with the server under
#      MALLOC_MMAP_THRESHOLD_=32768 (`+mmap32k`), where blocks of 32 KiB and more go back to
#      the system when freed: what the connections themselves still hold.
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
DEFLATE_STAGES=${DEFLATE_STAGES:-10000}
DEFLATE_MSGS=${DEFLATE_MSGS:-5}

largest=$SLOW_CONNS
for n in $IDLE_STAGES $DEFLATE_STAGES; do [ "$n" -gt "$largest" ] && largest=$n; done
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

start_server() { # [DEFLATE POLICY] -> sets $server and $addr; $SERVER_ENV: its environment
  env ${SERVER_ENV:-} "$probe" server 127.0.0.1:0 "$@" >"$work/server.out" 2>&1 &
  server=$!
  pids+=("$server")
  addr=$(wait_for "$work/server.out" '^listening ' 30 | awk '{ print $2 }')
  sleep 1
}

report() { # NAME N BEFORE_KIB AFTER_KIB CLIENT_PID
  local name=$1 n=$2 before=$3 after=$4 client=$5
  local per=$(( (after - before) * 1024 / n ))
  printf '%-24s %6d connections: server VmRSS %7d KiB -> %7d KiB (+%d KiB), %6d bytes per connection; client VmRSS %d KiB\n' \
    "$name" "$n" "$before" "$after" "$(( after - before ))" "$per" "$(rss_kib "$client")"
  echo "RESULT case=$name conns=$n server_rss_before_kib=$before server_rss_after_kib=$after bytes_per_conn=$per"
}

# idle: one server; one client that opens the stages one after another, told to go on
# through a FIFO on its standard input.
measure_idle() { # NAME plain|deflate [MSGS STAGES SERVER_DEFLATE SERVER_POLICY]
  local name=$1 mode=$2 msgs=${3:-0}
  local stages=(${4:-$IDLE_STAGES})
  start_server "${5:-default}" "${6:-idle}"
  local before
  before=$(rss_kib "$server")
  rm -f "$work/control" "$work/client.out"
  mkfifo "$work/control"
  "$probe" idle "$addr" "$(IFS=,; echo "${stages[*]}")" "$SOURCES" "$mode" "$msgs" \
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
if [ "$DEFLATE" != 0 ]; then
  echo "==> permessage-deflate, $DEFLATE_MSGS chat messages each way per connection"
  measure_idle defaults-active deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" default idle:3600
  measure_idle defaults-idle deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" default idle
  measure_idle cheapest-active deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" cheap idle:3600
  measure_idle cheapest-idle deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" cheap idle
  measure_idle defaults-permessage deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" default permessage
  SERVER_ENV=MALLOC_MMAP_THRESHOLD_=32768
  measure_idle defaults-idle+mmap32k deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" default idle
  measure_idle cheapest-idle+mmap32k deflate "$DEFLATE_MSGS" "$DEFLATE_STAGES" cheap idle
  measure_idle plain+mmap32k plain 0 "$DEFLATE_STAGES" off idle
  SERVER_ENV=
fi
