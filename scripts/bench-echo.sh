#!/usr/bin/env bash
# Echo benchmark: our tokio echo server against tokio-tungstenite, fastwebsockets and a plain
# TCP echo, driven by examples/load.rs (one message in flight per connection), printing
# messages/s, the server's CPU time per message, and our ratios to each peer.
#
# Usage: scripts/bench-echo.sh
# Environment:
#   ROUNDS=3        runs per (server, workload); the median is reported
#   SCALE=1         multiplies the messages per run (a few seconds per run at 1; may be 0.2)
#   IDLE=0          set to e.g. 10000 to also measure idle memory per connection
#   WORKLOADS="100x16 500x16384 1x65536"   CONNSxBYTES
#   PORT=9301       first port used
# Servers run on the same multi-threaded tokio runtime; the load tool runs on one thread.
# On a shared machine the absolute numbers move; compare the ratios, measured in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295
export CARGO_TERM_COLOR=never
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
IDLE=${IDLE:-0}
WORKLOADS=${WORKLOADS:-"100x16 500x16384 1x65536"}
PORT=${PORT:-9301}
target=${CARGO_TARGET_DIR:-$root/target}
peers_target=${PEERS_TARGET_DIR:-$target/bench-peers}

echo "==> building (release)" >&2
cargo build -q --release --features tokio --example autobahn_server --example load
(cd benches/peers && CARGO_TARGET_DIR=$peers_target cargo build -q --release)
ours_bin=$target/release/examples/autobahn_server
load_bin=$target/release/examples/load
peers_bin=$peers_target/release/bench-echo-peers

results=$(mktemp)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -f "$results"
}
trap cleanup EXIT

start_server() { # NAME PORT
  local name=$1 port=$2
  case $name in
    rfc6455) "$ours_bin" --adapter tokio "127.0.0.1:$port" >/dev/null & ;;
    *) "$peers_bin" "$name" "127.0.0.1:$port" >/dev/null & ;;
  esac
  server_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server $name did not start on port $port" >&2
  exit 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

msgs_for() { # CONNS BYTES -> messages per connection
  local conns=$1 bytes=$2 total
  # Aim at a few seconds per run on a 2-core machine.
  if [ "$bytes" -le 1024 ]; then total=200000; elif [ "$bytes" -le 16384 ]; then total=60000; else total=50000; fi
  awk -v t="$total" -v s="$SCALE" -v c="$conns" 'BEGIN { m = int(t * s / c + 0.999); print (m < 1 ? 1 : m) }'
}

servers="rfc6455 tungstenite fastwebsockets tcp"
port=$PORT
for round in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    conns=${w%x*}
    bytes=${w#*x}
    msgs=$(msgs_for "$conns" "$bytes")
    for s in $servers; do
      port=$((port + 1))
      start_server "$s" "$port"
      raw=()
      [ "$s" = tcp ] && raw=(--raw)
      line=$("$load_bin" "${raw[@]}" --url "ws://127.0.0.1:$port/" --conns "$conns" \
        --msgs "$msgs" --size "$bytes" --pid "$server_pid" --label "$s" | tee /dev/stderr | grep '^RESULT')
      echo "$w $line" >>"$results"
      stop_server
    done
  done
  echo "--- round $round of $ROUNDS done" >&2
done

if [ "$IDLE" -gt 0 ]; then
  ulimit -n $((IDLE * 2 + 1000)) 2>/dev/null || echo "could not raise ulimit -n; idle test may fail" >&2
  for s in $servers; do
    port=$((port + 1))
    start_server "$s" "$port"
    raw=()
    [ "$s" = tcp ] && raw=(--raw)
    line=$("$load_bin" "${raw[@]}" --url "ws://127.0.0.1:$port/" --idle "$IDLE" \
      --pid "$server_pid" --label "$s" | tee /dev/stderr | grep '^RESULT')
    echo "idle $line" >>"$results"
    stop_server
  done
fi

echo "machine: $(nproc) CPUs, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$ROUNDS" <<'EOF'
import sys, statistics
from collections import defaultdict
rate = defaultdict(list); cpu = defaultdict(list); idle = {}
for line in open(sys.argv[1]):
    w, _, *kv = line.split()
    d = dict(x.split("=", 1) for x in kv)
    if w == "idle":
        idle[d["label"]] = float(d["bytes_per_conn"])
        continue
    rate[(w, d["label"])].append(float(d["msgs_per_s"]))
    if d["cpu_us_per_msg"] != "NA":
        cpu[(w, d["label"])].append(float(d["cpu_us_per_msg"]))
med = lambda xs: statistics.median(xs) if xs else float("nan")
workloads = list(dict.fromkeys(w for w, _ in rate))
peers = ["tungstenite", "fastwebsockets", "tcp"]
print(f"\nEcho benchmark, median of {sys.argv[2]} runs "
      "(GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295)")
print("workload = connections x message bytes; ratio = rfc6455 / peer "
      "(msgs/s: higher is better; CPU/msg: lower is better)\n")
hdr = f"{'workload':<12}{'server':<16}{'msgs/s':>12}{'CPU us/msg':>12}{'msgs/s ratio':>14}{'CPU ratio':>11}"
print(hdr); print("-" * len(hdr))
for w in workloads:
    ours_r, ours_c = med(rate[(w, "rfc6455")]), med(cpu[(w, "rfc6455")])
    print(f"{w:<12}{'rfc6455':<16}{ours_r:>12.0f}{ours_c:>12.2f}{'':>14}{'':>11}")
    for p in peers:
        r, c = med(rate[(w, p)]), med(cpu[(w, p)])
        print(f"{'':<12}{p:<16}{r:>12.0f}{c:>12.2f}{ours_r / r:>14.2f}{ours_c / c:>11.2f}")
if idle:
    print("\nIdle memory (server RSS growth per open connection):")
    for s, b in idle.items():
        print(f"  {s:<16}{b:>10.0f} bytes")
EOF
