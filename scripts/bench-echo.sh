#!/usr/bin/env bash
# Echo benchmark: our tokio echo server against the peer libraries' echo servers
# (benches/peers: tokio-tungstenite, fastwebsockets, tokio-websockets, yawc, sockudo-ws) and a
# plain TCP echo, driven by examples/load.rs; prints messages/s, the server's CPU time per
# message, and our ratios to each peer. Optionally also the accept rate (new connections and
# handshakes per second) and idle memory per connection.
#
# Usage: scripts/bench-echo.sh
# Environment:
#   ROUNDS=3        runs per (server, workload); the median is reported
#   SCALE=1         multiplies the messages per run (a few seconds per run at 1; may be 0.05)
#   WORKLOADS="100x16 500x16384 1x65536 64x20x16 64x1024x16 500x16384x4 10x16384x16"
#                   CONNSxBYTES[xWINDOW]: connections, message bytes, messages in flight per
#                   connection (default 1: send, wait for the echo, repeat)
#   KIND=binary     or text (ASCII text messages)
#   SERVERS="rfc6455 tungstenite fastwebsockets tokio-websockets yawc sockudo tcp"
#   ACCEPT=3000     connections for the accept-rate run (scaled by SCALE; 0 skips it)
#   ACCEPT_SERVERS="rfc6455 tungstenite fastwebsockets"
#   ACCEPT_PARALLEL=16   handshakes under way at once
#   IDLE=0          set to e.g. 10000 to also measure idle memory per connection
#   SOURCES=8       client source addresses 127.0.0.1..127.0.0.SOURCES (accept and idle runs)
#   PORT=9301       first port used
# Servers run on the same multi-threaded tokio runtime; the load tool runs on one thread.
# On a shared machine the absolute numbers move; compare the ratios, measured in one run.
#
# The last lines, one per workload and peer, are for scripts:
#   ratio WORKLOAD PEER MSGS_RATIO CPU_RATIO
# MSGS_RATIO = our msgs/s / the peer's (above 1: we are faster); CPU_RATIO = our server CPU
# per message / the peer's (below 1: we use less). For the accept run WORKLOAD is `accept`
# and the ratios are of connections per second and CPU per connection.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295
export CARGO_TERM_COLOR=never
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
IDLE=${IDLE:-0}
WORKLOADS=${WORKLOADS:-"100x16 500x16384 1x65536 64x20x16 64x1024x16 500x16384x4 10x16384x16"}
KIND=${KIND:-binary}
SERVERS=${SERVERS:-"rfc6455 tungstenite fastwebsockets tokio-websockets yawc sockudo tcp"}
ACCEPT=${ACCEPT:-3000}
ACCEPT_SERVERS=${ACCEPT_SERVERS:-"rfc6455 tungstenite fastwebsockets"}
ACCEPT_PARALLEL=${ACCEPT_PARALLEL:-16}
SOURCES=${SOURCES:-8}
PORT=${PORT:-9301}
target=${CARGO_TARGET_DIR:-$root/target}
peers_target=${PEERS_TARGET_DIR:-$target/bench-peers}
case $KIND in binary) kind_flag=() ;; text) kind_flag=(--text) ;; *) echo "KIND is binary or text" >&2; exit 2 ;; esac

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

# Both processes hold one descriptor per connection (the hard limit here may be 20,000).
want_fds=$(( (IDLE > 0 ? IDLE : 0) + 1000 ))
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$want_fds" -le "$hard" ] || want_fds=$hard
ulimit -n "$want_fds" 2>/dev/null || echo "could not raise ulimit -n to $want_fds" >&2

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

msgs_for() { # CONNS BYTES WINDOW -> messages per connection
  local conns=$1 bytes=$2 window=$3 total
  # Aim at a few seconds per run on a 2-core machine; pipelined runs go faster.
  if [ "$bytes" -le 1024 ]; then total=200000; elif [ "$bytes" -le 16384 ]; then total=60000; else total=50000; fi
  [ "$window" -gt 1 ] && total=$((total * 3))
  awk -v t="$total" -v s="$SCALE" -v c="$conns" 'BEGIN { m = int(t * s / c + 0.999); print (m < 1 ? 1 : m) }'
}

raw_flag() { if [ "$1" = tcp ]; then echo --raw; fi; }

port=$PORT
for round in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    IFS=x read -r conns bytes window <<<"$w"
    window=${window:-1}
    msgs=$(msgs_for "$conns" "$bytes" "$window")
    warmup=$(( 20 * window ))
    for s in $SERVERS; do
      port=$((port + 1))
      start_server "$s" "$port"
      # shellcheck disable=SC2046
      line=$("$load_bin" $(raw_flag "$s") "${kind_flag[@]}" --url "ws://127.0.0.1:$port/" \
        --conns "$conns" --msgs "$msgs" --size "$bytes" --window "$window" --warmup "$warmup" \
        --pid "$server_pid" --label "$s" | tee -a /dev/stderr | grep '^RESULT')
      echo "$w $line" >>"$results"
      stop_server
    done
  done
  if [ "$ACCEPT" -gt 0 ]; then
    n=$(awk -v a="$ACCEPT" -v s="$SCALE" 'BEGIN { m = int(a * s); print (m < 50 ? 50 : m) }')
    for s in $ACCEPT_SERVERS; do
      port=$((port + 1))
      start_server "$s" "$port"
      # shellcheck disable=SC2046
      line=$("$load_bin" $(raw_flag "$s") --url "ws://127.0.0.1:$port/" --accept "$n" \
        --parallel "$ACCEPT_PARALLEL" --sources "$SOURCES" --pid "$server_pid" --label "$s" \
        | tee -a /dev/stderr | grep '^RESULT')
      echo "accept $line" >>"$results"
      stop_server
    done
  fi
  echo "--- round $round of $ROUNDS done" >&2
done

if [ "$IDLE" -gt 0 ]; then
  for s in $SERVERS; do
    port=$((port + 1))
    start_server "$s" "$port"
    # shellcheck disable=SC2046
    line=$("$load_bin" $(raw_flag "$s") --url "ws://127.0.0.1:$port/" --idle "$IDLE" \
      --sources "$SOURCES" --pid "$server_pid" --label "$s" | tee -a /dev/stderr | grep '^RESULT')
    echo "idle $line" >>"$results"
    stop_server
  done
fi

echo "machine: $(nproc) CPUs, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$ROUNDS" "$KIND" "$SERVERS" <<'EOF'
import sys, statistics
from collections import defaultdict
rate = defaultdict(list); cpu = defaultdict(list); idle = {}
for line in open(sys.argv[1]):
    w, _, *kv = line.split()
    d = dict(x.split("=", 1) for x in kv)
    if w == "idle":
        idle[d["label"]] = float(d["bytes_per_conn"])
        continue
    key = (w, d["label"])
    if w == "accept":
        rate[key].append(float(d["accepts_per_s"]))
        c = d["cpu_us_per_accept"]
    else:
        rate[key].append(float(d["msgs_per_s"]))
        c = d["cpu_us_per_msg"]
    if c != "NA":
        cpu[key].append(float(c))
med = lambda xs: statistics.median(xs) if xs else float("nan")
div = lambda a, b: a / b if b else float("nan")
workloads = list(dict.fromkeys(w for w, _ in rate))
peers = [s for s in sys.argv[4].split() if s != "rfc6455"]
print(f"\nEcho benchmark, {sys.argv[3]} messages, median of {sys.argv[2]} runs "
      "(GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295)")
print("workload = connections x message bytes [x messages in flight]; ratio = rfc6455 / peer "
      "(msgs/s: higher is better; CPU/msg: lower is better)")
print("accept = new connections + opening handshakes per second, CPU per connection\n")
hdr = f"{'workload':<14}{'server':<18}{'msgs/s':>12}{'CPU us/msg':>12}{'msgs/s ratio':>14}{'CPU ratio':>11}"
print(hdr); print("-" * len(hdr))
lines = []
for w in workloads:
    if (w, "rfc6455") not in rate:
        continue
    ours_r, ours_c = med(rate[(w, "rfc6455")]), med(cpu[(w, "rfc6455")])
    print(f"{w:<14}{'rfc6455':<18}{ours_r:>12.0f}{ours_c:>12.2f}{'':>14}{'':>11}")
    for p in peers:
        if (w, p) not in rate:
            continue
        r, c = med(rate[(w, p)]), med(cpu[(w, p)])
        print(f"{'':<14}{p:<18}{r:>12.0f}{c:>12.2f}{div(ours_r, r):>14.2f}{div(ours_c, c):>11.2f}")
        lines.append(f"ratio {w} {p} {div(ours_r, r):.3f} {div(ours_c, c):.3f}")
if idle:
    print("\nIdle memory (server RSS growth per open connection):")
    for s, b in idle.items():
        print(f"  {s:<18}{b:>10.0f} bytes")
print()
print("\n".join(lines))
EOF
