#!/usr/bin/env bash
# Checks what `cargo publish` would upload:
#   1. the file list holds only what a user of the crate needs (the library's sources, the
#      manifest, README, changelog and licenses) and all of those; anything else (a test
#      peer's node_modules, Autobahn reports, fuzz corpora, spec vectors, scripts) fails;
#   2. `cargo package` builds the packaged crate on its own (default features);
#   3. the packaged crate also compiles with every feature and as the no_std core.
# Needs the registry (or a warm cargo cache) for the dependencies. Tree state is not checked
# (--allow-dirty): CI runs on a clean checkout, and locally the list is what matters.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
target=${CARGO_TARGET_DIR:-$PWD/target}

echo "==> cargo package --list"
list=$(cargo package --list --allow-dirty --quiet)
printf '%s\n' "$list"

# Cargo adds .cargo_vcs_info.json, Cargo.lock and Cargo.toml.orig itself.
allowed='^(\.cargo_vcs_info\.json|Cargo\.lock|Cargo\.toml|Cargo\.toml\.orig|README\.md|CHANGELOG\.md|LICENSE-MIT|LICENSE-APACHE|src/.+\.rs)$'
unexpected=$(grep -Ev "$allowed" <<<"$list" || true)
if [ -n "$unexpected" ]; then
  printf 'package-check: unexpected files in the package (fix `include` in Cargo.toml):\n%s\n' \
    "$unexpected" >&2
  exit 1
fi
for required in Cargo.toml README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE src/lib.rs; do
  if ! grep -qx "$required" <<<"$list"; then
    echo "package-check: $required is missing from the package" >&2
    exit 1
  fi
done

echo "==> cargo package (builds the packaged crate)"
cargo package --allow-dirty --quiet

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
crate="$target/package/rfc6455-$version.crate"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
tar -xzf "$crate" -C "$unpacked"
manifest="$unpacked/rfc6455-$version/Cargo.toml"

# The same target dir as the rest of CI, so the dependencies already built are reused.
echo "==> cargo check the packaged crate with --all-features"
cargo check --quiet --manifest-path "$manifest" --target-dir "$target" --all-features
echo "==> cargo check the packaged crate with --no-default-features (the no_std core)"
cargo check --quiet --manifest-path "$manifest" --target-dir "$target" --no-default-features
echo "package-check: $(grep -c . <<<"$list") files, $(du -k "$crate" | cut -f1) KiB compressed"
