#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from spec-vectors/ (see seed.py). The minimized corpora of long
# campaigns (seeds/<target>/min-*, written by minimize.sh) are kept.
set -euo pipefail
cd "$(dirname "$0")"
find seeds -type f ! -name 'min-*' -delete 2>/dev/null || true
python3 seed.py seeds
