#!/usr/bin/env bash
# Runs Autobahn|Testsuite (sections 1-11 by default) against our server and our client, with
# the blocking and the tokio adapter, and fails if any case is below the strict bar
# (see check.py). Called by scripts/test.sh; needs network only for the first wstest install.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
start=$(date +%s)
export WSTEST=${WSTEST:-$(bash autobahn/install-wstest.sh | tail -n 1)}
cargo build --release --features tokio --example autobahn_server --example autobahn_client
bin=target/release/examples
status=0
for adapter in blocking tokio; do
  bash autobahn/run.sh server "$adapter" -- "$bin/autobahn_server" --adapter "$adapter" || status=1
  bash autobahn/run.sh client "$adapter" -- "$bin/autobahn_client" --adapter "$adapter" || status=1
done
echo "autobahn: all runs took $(( $(date +%s) - start )) s"
exit $status
