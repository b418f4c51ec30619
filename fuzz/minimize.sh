#!/usr/bin/env bash
# Keeps a fuzz campaign's corpus in the repository, minimized:
#   bash fuzz/minimize.sh TARGET
# merges seeds/TARGET/ and the working corpus corpus/TARGET/ with `cargo fuzz cmin` (the
# smallest set of inputs with the same coverage), then stores the inputs of that set that
# are not generated seeds as seeds/TARGET/min-<sha1>, replacing the previous min-* files.
# seed.sh keeps min-* files when it regenerates the rest. Needs nightly and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: minimize.sh TARGET}
mkdir -p "corpus/$target" "seeds/$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "seeds/$target"/* "corpus/$target"/* "$work/" 2>/dev/null || true
before=$(find "$work" -type f | wc -l)
cargo +nightly fuzz cmin "$target" "$work" >"$work.log" 2>&1 || { tail -n 30 "$work.log"; exit 1; }
rm -f "$work.log" "seeds/$target"/min-*
# Generated seeds stay under their own names (seed.py writes them again): skip their copies.
generated=$(find "seeds/$target" -type f -exec sha1sum {} + | cut -c1-16 | sort -u)
kept=0
for f in "$work"/*; do
  [ -f "$f" ] || continue
  sum=$(sha1sum "$f" | cut -c1-16)
  if grep -qx "$sum" <<<"$generated"; then continue; fi
  cp "$f" "seeds/$target/min-$sum"
  kept=$((kept + 1))
done
echo "$target: $before inputs minimized to $(find "$work" -type f | wc -l); $kept stored as seeds/$target/min-*"
