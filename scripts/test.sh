#!/usr/bin/env bash
# The project's whole test run, on a fresh machine or an old one:
#   1. installs the test peers that are missing (Python websockets, Node ws + playwright-core,
#      Debian chromium, Autobahn|Testsuite's wstest on CPython 2.7);
#   2. runs every Rust test (unit, integration, property, interop, doc) with all features;
#   3. runs the chaos soak for SOAK_SECONDS (default 60; scripts/soak.sh);
#   4. runs Autobahn|Testsuite against our server and our client, blocking and tokio adapters;
#   5. builds every fuzz target and runs each for a short smoke (when nightly is available).
# Set RFC6455_SKIP_SOAK=1, RFC6455_SKIP_AUTOBAHN=1 or RFC6455_SKIP_FUZZ=1 to leave a stage
# out locally.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "installing test peers"
bash scripts/setup-peers.sh
export RFC6455_INTEROP=required

step "cargo test --all-features"
cargo test --all-features --no-fail-fast

if [ "${RFC6455_SKIP_SOAK:-0}" != 1 ]; then
  step "chaos soak (${SOAK_SECONDS:-60} s)"
  SOAK_SECONDS=${SOAK_SECONDS:-60} bash scripts/soak.sh
fi

if [ "${RFC6455_SKIP_AUTOBAHN:-0}" != 1 ]; then
  step "autobahn testsuite (1-11 blocking, 1-13 tokio)"
  bash autobahn/ci.sh
fi

if [ "${RFC6455_SKIP_FUZZ:-0}" != 1 ] && [ -d fuzz ] && [ -f fuzz/smoke.sh ]; then
  step "fuzz smoke"
  bash fuzz/smoke.sh
fi
step "all tests passed"
