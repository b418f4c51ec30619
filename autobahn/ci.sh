#!/usr/bin/env bash
# Runs Autobahn|Testsuite against our server and our client and fails if any case is below
# the strict bar (see check.py): sections 1-11 with the blocking adapter, and 1-13 (12 and 13
# are permessage-deflate) with the tokio adapter. wstest (CPython 2.7) is the bottleneck and
# uses one core, so the server and the client run of each adapter go side by side.
# Called by scripts/test.sh; needs network only for the first wstest install.
# AUTOBAHN_DEFLATE=0 leaves sections 12-13 out (a quicker local run).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
start=$(date +%s)
export WSTEST=${WSTEST:-$(bash autobahn/install-wstest.sh | tail -n 1)}
cargo build --release --features tokio --example autobahn_server --example autobahn_client
bin=target/release/examples
status=0
# Runs the server and the client run of one adapter at once; each prints its own summary.
pair() {
  local adapter=$1 t0 server client
  t0=$(date +%s)
  bash autobahn/run.sh server "$adapter" -- "$bin/autobahn_server" --adapter "$adapter" \
    > "autobahn/ci-server-$adapter.log" 2>&1 &
  server=$!
  bash autobahn/run.sh client "$adapter" -- "$bin/autobahn_client" --adapter "$adapter" \
    > "autobahn/ci-client-$adapter.log" 2>&1 &
  client=$!
  wait "$server" || status=1
  wait "$client" || status=1
  cat "autobahn/ci-server-$adapter.log" "autobahn/ci-client-$adapter.log"
  rm -f "autobahn/ci-server-$adapter.log" "autobahn/ci-client-$adapter.log"
  echo "autobahn: $adapter (server and client side by side) took $(( $(date +%s) - t0 )) s"
}
pair blocking
if [ "${AUTOBAHN_DEFLATE:-1}" = 1 ]; then
  export AUTOBAHN_EXCLUDE=""
fi
pair tokio
echo "autobahn: all runs took $(( $(date +%s) - start )) s"
exit $status
