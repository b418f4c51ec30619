#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from spec-vectors/ (see seed.py).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf seeds
python3 seed.py seeds
