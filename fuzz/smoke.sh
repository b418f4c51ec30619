#!/usr/bin/env bash
# Builds every fuzz target and runs each, one at a time, for FUZZ_SMOKE_SECONDS (default 20)
# from the committed seeds in fuzz/seeds/<target>/ (new inputs go to a temporary directory).
# A crash fails the script; its input is kept under fuzz/artifacts/<target>/.
#
# Needs the nightly toolchain (cargo-fuzz builds with sanitizers); without it this prints a
# SKIPPED line and exits 0. Installs cargo-fuzz if it is missing.
#
# Long runs (one fuzzer at a time, a persistent git-ignored corpus):
#   cd fuzz && cargo +nightly fuzz run server_connection corpus/server_connection \
#       seeds/server_connection -- -max_total_time=600 -print_final_stats=1
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SMOKE_SECONDS:-20}

if ! command -v rustup >/dev/null || ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "SKIPPED fuzz smoke: the nightly toolchain is not installed (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo +nightly install cargo-fuzz --locked
fi

echo "==> cargo +nightly fuzz build"
cargo +nightly fuzz build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$target" "seeds/$target"
  echo "==> $target: ${seconds}s from $(find "seeds/$target" -type f | wc -l) seeds"
  if ! cargo +nightly fuzz run "$target" "$work/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$work/$target.log" 2>&1; then
    tail -n 60 "$work/$target.log"
    echo "FAILED fuzz smoke: $target (crash input under fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$work/$target.log" || true
done
echo "fuzz smoke passed"
