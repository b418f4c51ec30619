#!/usr/bin/env bash
# Chaos soak (examples/soak.rs): our client and server, both adapters, through a
# fault-injecting proxy, with sequence-numbered, checksummed messages both ways.
#
#   1. fault-free phase: 200 connections for 10 s, `--faults off`: every accepted message
#      must arrive and every connection must close cleanly (1000 both ways);
#   2. faulted phase: SOAK_CONNS (default 2000) connections for SOAK_SECONDS (default 60)
#      with chunking, delays, stalls, half-closes and RSTs: what arrives must be a prefix of
#      what was accepted, in order and byte-exact, no connection may hang, and memory and
#      descriptors must come back to their baseline.
#
# Usage: scripts/soak.sh
# Environment: SOAK_SECONDS (default 60), SOAK_CONNS (2000), SOAK_CLEAN_SECONDS (10) and
# SOAK_CLEAN_CONNS (200) for the fault-free phase, and every other SOAK_* variable the
# example reads (SOAK_SEED, SOAK_MSG_RATE, SOAK_SYNC_EVERY, SOAK_*_RATE: see the doc comment
# in examples/soak.rs), passed through to both phases. Exits non-zero if either phase fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295
cargo build --release --example soak --features tokio
target_dir="${CARGO_TARGET_DIR:-target}"
soak="$target_dir/release/examples/soak"

seconds="${SOAK_SECONDS:-60}"
conns="${SOAK_CONNS:-2000}"
clean_seconds="${SOAK_CLEAN_SECONDS:-10}"
clean_conns="${SOAK_CLEAN_CONNS:-200}"
# The flags below win over these for each phase.
unset SOAK_SECONDS SOAK_CONNS SOAK_FAULTS

status=0
clean_log="$(mktemp)"
faulted_log="$(mktemp)"
trap 'rm -f "$clean_log" "$faulted_log"' EXIT

echo "== soak, fault-free: $clean_conns connections, $clean_seconds s"
"$soak" --faults off --conns "$clean_conns" --seconds "$clean_seconds" | tee "$clean_log" ||
    status=1

echo "== soak, faulted: $conns connections, $seconds s"
"$soak" --faults on --conns "$conns" --seconds "$seconds" | tee "$faulted_log" || status=1

echo "== soak results"
echo "fault-free: $(tail -n 1 "$clean_log")"
echo "faulted:    $(tail -n 1 "$faulted_log")"
if [ "$status" -ne 0 ]; then
    echo "soak: FAILED" >&2
fi
exit "$status"
