#!/usr/bin/env bash
# Run Autobahn|Testsuite against one of our testees and check the result.
#
#   autobahn/run.sh server NAME -- CMD...
#       Tests a server. CMD is started with "127.0.0.1:PORT" appended as its last argument
#       (PORT is a free port picked here), e.g.
#         autobahn/run.sh server blocking -- target/release/examples/autobahn_server --adapter blocking
#       Once the port accepts connections, `wstest -m fuzzingclient` runs the cases against
#       ws://127.0.0.1:PORT; then CMD is stopped (SIGTERM).
#
#   autobahn/run.sh client NAME -- CMD...
#       Tests a client. A fuzzingserver (autobahn/fuzzingserver.py, loopback only) is started
#       on a free port, then `CMD ws://127.0.0.1:PORT NAME` runs. CMD must GET /getCaseCount,
#       run every case via /runCase?case=N&agent=NAME (echoing all messages), and finally
#       open /updateReports?agent=NAME so that the report is written.
#
# Reports go to autobahn/reports/<server|client>-NAME/ (wiped first); the testee's and
# wstest's output go to testee.log and wstest.log in that directory. Afterwards
# autobahn/check.py judges index.json against the strict bar and autobahn/expected.json.
# Exit status: 0 only if CMD behaved (did not die early / exited 0) and the checker passed.
#
# Environment:
#   AUTOBAHN_CASES     comma list of case patterns        (default: *)
#   AUTOBAHN_EXCLUDE   comma list of patterns to exclude  (default: 12.*,13.*)
#   AUTOBAHN_TIMEOUT   seconds allowed for the whole test run (default: 300, or 1800 when
#                      sections 12/13 are not excluded; they take 10-15 minutes)
#   AUTOBAHN_START_TIMEOUT  seconds to wait for a port to accept connections (default: 30)
#   WSTEST             path of wstest (default: whatever autobahn/install-wstest.sh prints;
#                      it installs wstest into $WSTEST_PREFIX or ~/.cache/rfc6455-wstest)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 4 ] || usage
role=$1
name=$2
[ "$3" = "--" ] || usage
shift 3
case "$role" in server|client) ;; *) usage ;; esac
if ! [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]]; then
  echo "run.sh: NAME must match [A-Za-z0-9._-]+ (it is used in URLs and file names)" >&2
  exit 2
fi

cases=${AUTOBAHN_CASES:-*}
exclude=${AUTOBAHN_EXCLUDE-12.*,13.*}
if [ -z "${AUTOBAHN_TIMEOUT:-}" ]; then
  if [[ ",$exclude," == *",12.*,"* && ",$exclude," == *",13.*,"* ]]; then
    AUTOBAHN_TIMEOUT=300
  else
    AUTOBAHN_TIMEOUT=1800
  fi
fi
start_timeout=${AUTOBAHN_START_TIMEOUT:-30}

wstest=${WSTEST:-}
if [ -z "$wstest" ]; then
  wstest=$("$here/install-wstest.sh" | tail -n 1)
fi
py27=$(dirname "$wstest")/python

outdir=$here/reports/$role-$name
rm -rf "$outdir"
mkdir -p "$outdir"
testee_log=$outdir/testee.log
wstest_log=$outdir/wstest.log
spec=$outdir/spec.json

# --- helpers -------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# JSON list from a comma list ("" -> []).
json_list() {
  python3 -c 'import json, sys
print(json.dumps([p.strip() for p in sys.argv[1].split(",") if p.strip()]))' "$1"
}

# wait_port PORT PID: poll until 127.0.0.1:PORT accepts TCP, PID dies, or we give up.
wait_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + start_timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: process $pid exited before 127.0.0.1:$port accepted connections" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "run.sh: 127.0.0.1:$port did not accept connections within ${start_timeout}s" >&2
  return 1
}

# stop PID: SIGTERM, then SIGKILL if it lingers. Returns nothing useful; never fails.
stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 80); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

bg_pid=
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  if [ -n "$bg_pid" ]; then stop "$bg_pid"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_tail() {
  echo "--- last lines of $1 ---" >&2
  tail -n 20 "$1" >&2 || true
  echo "---" >&2
}

port=$(free_port)
url=ws://127.0.0.1:$port
cases_json=$(json_list "$cases")
exclude_json=$(json_list "$exclude")
status=0
started=$SECONDS

if [ "$role" = server ]; then
  cat >"$spec" <<EOF
{
  "outdir": "$outdir",
  "servers": [{"agent": "$name", "url": "$url"}],
  "cases": $cases_json,
  "exclude-cases": $exclude_json,
  "exclude-agent-cases": {}
}
EOF
  echo "run.sh: starting server testee: $* 127.0.0.1:$port"
  timeout -k 5 "$((AUTOBAHN_TIMEOUT + 60))" "$@" "127.0.0.1:$port" >"$testee_log" 2>&1 &
  bg_pid=$!
  if ! wait_port "$port" "$bg_pid"; then
    show_tail "$testee_log"
    exit 1
  fi
  echo "run.sh: running wstest fuzzingclient against $url (cases $cases_json, excluding $exclude_json)"
  if ! (cd "$outdir" && timeout -k 5 "$AUTOBAHN_TIMEOUT" "$wstest" -m fuzzingclient -s "$spec") >"$wstest_log" 2>&1; then
    echo "run.sh: wstest fuzzingclient failed or timed out after ${AUTOBAHN_TIMEOUT}s" >&2
    show_tail "$wstest_log"
    status=1
  fi
  if ! kill -0 "$bg_pid" 2>/dev/null; then
    rc=0
    wait "$bg_pid" || rc=$?
    echo "run.sh: server testee exited during the run (status $rc)" >&2
    show_tail "$testee_log"
    status=1
  fi
  stop "$bg_pid"
  bg_pid=
else
  cat >"$spec" <<EOF
{
  "url": "$url",
  "outdir": "$outdir",
  "cases": $cases_json,
  "exclude-cases": $exclude_json,
  "exclude-agent-cases": {}
}
EOF
  echo "run.sh: starting fuzzingserver on $url (cases $cases_json, excluding $exclude_json)"
  timeout -k 5 "$((AUTOBAHN_TIMEOUT + 60))" "$py27" "$here/fuzzingserver.py" "$spec" >"$wstest_log" 2>&1 &
  bg_pid=$!
  if ! wait_port "$port" "$bg_pid"; then
    show_tail "$wstest_log"
    exit 1
  fi
  echo "run.sh: running client testee: $* $url $name"
  rc=0
  timeout -k 5 "$AUTOBAHN_TIMEOUT" "$@" "$url" "$name" >"$testee_log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 124 ]; then
      echo "run.sh: client testee timed out after ${AUTOBAHN_TIMEOUT}s" >&2
    else
      echo "run.sh: client testee exited with status $rc" >&2
    fi
    show_tail "$testee_log"
    status=1
  fi
  stop "$bg_pid"
  bg_pid=
fi

echo "run.sh: test run took $((SECONDS - started))s; reports in $outdir"
if [ ! -f "$outdir/index.json" ]; then
  echo "run.sh: no index.json was written" >&2
  [ "$role" = client ] && echo "run.sh: (the client must open /updateReports?agent=$name at the end)" >&2
  exit 1
fi
python3 "$here/check.py" --role "$role" --agent "$name" "$outdir" || status=1
exit "$status"
