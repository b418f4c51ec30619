#!/usr/bin/env bash
# Runs the tests of the crate's one `unsafe` module (`raw`) under Miri, twice: as
# built for any x86-64 (Miri reports no AVX2, so the safe loop runs) and with AVX2 enabled at
# compile time, so the runtime check passes and the `unsafe` call into the AVX2 build is
# interpreted too. Needs the nightly toolchain with the `miri` component
# (`rustup +nightly component add miri`), which is why the CI job does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/miri-check
cargo +nightly miri test --lib raw::
RUSTFLAGS="-C target-feature=+avx2" cargo +nightly miri test --lib raw::
