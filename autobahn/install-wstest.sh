#!/usr/bin/env bash
# Install Autobahn|Testsuite (`wstest` 0.8.2, which only runs on Python 2.7) from PyPI
# into a private virtualenv.
#
#   autobahn/install-wstest.sh [PREFIX]
#
# PREFIX defaults to $WSTEST_PREFIX, else ~/.cache/rfc6455-wstest.
# The last line printed is the absolute path of the `wstest` executable.
# Running it again is cheap: an install that already works is left alone.
#
# Python 2.7 is taken from $PY27 if set, otherwise from pyenv
# (e.g. /root/.pyenv/versions/2.7.18/bin/python) or a python2.7 on PATH.
# Exact versions of every dependency are pinned in autobahn/constraints.txt.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=${1:-${WSTEST_PREFIX:-$HOME/.cache/rfc6455-wstest}}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
env27=$prefix/py27
wstest=$env27/bin/wstest

works() { [ -x "$wstest" ] && "$wstest" --help >/dev/null 2>&1; }

if works; then
  echo "$wstest"
  exit 0
fi

# --- locate a CPython 2.7 that has ssl -------------------------------------------------
find_py27() {
  local cand
  if [ -n "${PY27:-}" ]; then echo "$PY27"; return; fi
  local roots=()
  if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root)"); fi
  roots+=("$HOME/.pyenv" "/root/.pyenv")
  for r in "${roots[@]}"; do
    for cand in "$r"/versions/2.7*/bin/python2.7 "$r"/versions/2.7*/bin/python; do
      if [ -x "$cand" ]; then echo "$cand"; return; fi
    done
  done
  command -v python2.7 || true
}
py27=$(find_py27)
if [ -z "$py27" ] || ! "$py27" -c 'import sys, ssl; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
  echo "install-wstest: need CPython 2.7 with ssl (none found; set PY27=/path/to/python2.7)" >&2
  exit 2
fi
echo "install-wstest: using $py27" >&2

# --- build the environment ---------------------------------------------------------------
# The stdlib venv module of Python 2 does not exist, and current virtualenv releases dropped
# 2.7 targets; 20.21.1 is the last one that can still create them. Keep it in a small
# Python 3 venv of its own.
tools=$prefix/tools
if [ ! -x "$tools/bin/virtualenv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check 'virtualenv==20.21.1'
fi
rm -rf "$env27"
"$tools/bin/virtualenv" --quiet --python "$py27" "$env27"

log=$prefix/pip-install.log
if ! "$env27/bin/pip" install --disable-pip-version-check --no-cache-dir \
      --constraint "$script_dir/constraints.txt" 'autobahntestsuite==0.8.2' >"$log" 2>&1; then
  echo "install-wstest: pip install failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi

if ! works; then
  echo "install-wstest: installed, but '$wstest --help' fails" >&2
  exit 1
fi
echo "$wstest"
