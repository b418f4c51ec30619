#!/usr/bin/env bash
# Install what the interop peer programs in tests/interop/ need, skipping whatever is
# already in place:
#   * tests/interop/.venv   Python venv with the websockets version pinned in
#                           tests/interop/requirements.txt (needs python3 >= 3.11;
#                           choose the interpreter with PYTHON=/path/to/python3)
#   * tests/interop/node_modules   ws + playwright-core, as pinned in package.json /
#                           package-lock.json (npm ci when the lock file exists)
#   * /usr/bin/chromium     Debian's chromium package, via apt-get (needs root)
#   * tinyproxy             Debian's tinyproxy package (the HTTP CONNECT proxy of
#                           tests/proxy.rs), via apt-get; pproxy (its SOCKS5 proxy) is in
#                           requirements.txt and so in the venv
#   * redis-server, nginx   Debian's packages (the message log and the load balancer of
#                           tests/chat_scale.rs, which starts its own instances), via apt-get
# Usage: scripts/setup-peers.sh        (safe to run repeatedly; fast when nothing is missing)
# Set SKIP_CHROMIUM=1 to leave the browser alone.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
interop=$root/tests/interop
say() { echo "setup-peers: $*"; }
apt_updated=0
apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing $*; install it (needs root and apt-get)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then apt-get update -q; apt_updated=1; fi
  apt-get install -y -q "$@"
}

# --- Python ------------------------------------------------------------------------------
venv=$interop/.venv
req=$interop/requirements.txt
python_ready() {
  # Every "name==version" line of requirements.txt must be installed at exactly that version.
  [ -x "$venv/bin/python" ] && "$venv/bin/python" - "$req" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        if version(name.strip()) != want.strip():
            sys.exit(1)
EOF
}
if python_ready; then
  say "python venv ok ($venv: $(tr '\n' ' ' <"$req" | sed 's/ *$//'))"
else
  py=${PYTHON:-python3}
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "need python3 >= 3.11 for $(tr '\n' ' ' <"$req")(set PYTHON=/path/to/python3)" >&2
    exit 1
  fi
  if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
    say "$py cannot create venvs; installing python3-venv with apt-get"
    apt_install python3-venv
  fi
  if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then  # absent or broken
    say "creating venv $venv with $("$py" -c 'import sys; print(sys.executable)')"
    rm -rf "$venv"
    "$py" -m venv "$venv"
  fi
  say "installing $(tr '\n' ' ' <"$req")into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  python_ready || { say "python packages still not as pinned after install" >&2; exit 1; }
fi

# --- Node --------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "node and npm are required (node >= 20)" >&2
  exit 1
fi
node_ready() {
  # Every dependency in package.json must be installed at exactly the pinned version.
  # shellcheck disable=SC2016  # JavaScript, not shell
  (cd "$interop" && node -e '
    const fs = require("fs");
    const deps = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies || {};
    for (const [name, want] of Object.entries(deps)) {
      const file = `node_modules/${name}/package.json`;
      if (!fs.existsSync(file) || JSON.parse(fs.readFileSync(file, "utf8")).version !== want) process.exit(1);
    }') 2>/dev/null
}
if node_ready; then
  say "node modules ok ($interop/node_modules)"
else
  cd "$interop"
  if [ -f package-lock.json ]; then
    say "npm ci in $interop"
    npm ci --no-audit --no-fund --loglevel=error
  else
    say "npm install in $interop (writes package-lock.json)"
    npm install --no-audit --no-fund --loglevel=error
  fi
  cd "$root"
  node_ready || { say "node modules still not as pinned after install" >&2; exit 1; }
fi

# --- Chromium ----------------------------------------------------------------------------
if [ "${SKIP_CHROMIUM:-0}" = 1 ]; then
  say "chromium skipped (SKIP_CHROMIUM=1)"
elif [ -x /usr/bin/chromium ]; then
  say "chromium ok (/usr/bin/chromium)"
else
  say "installing chromium with apt-get"
  apt_install chromium
  [ -x /usr/bin/chromium ] || { say "apt-get finished but /usr/bin/chromium is missing" >&2; exit 1; }
  say "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
fi
# --- Proxies (tests/proxy.rs) ---------------------------------------------------------------
if command -v tinyproxy >/dev/null 2>&1; then
  say "tinyproxy ok ($(tinyproxy -v 2>/dev/null || echo '?'))"
else
  say "installing tinyproxy with apt-get"
  apt_install tinyproxy
  command -v tinyproxy >/dev/null 2>&1 || { say "apt-get finished but tinyproxy is missing" >&2; exit 1; }
  # The package starts a system-wide instance on port 8888 where services can start; the
  # tests run their own, so stop it (quietly: in containers it never started).
  if command -v service >/dev/null 2>&1; then service tinyproxy stop >/dev/null 2>&1 || true; fi
  say "tinyproxy installed: $(tinyproxy -v 2>/dev/null || echo '?')"
fi
# --- Redis and nginx (tests/chat_scale.rs) -----------------------------------------------
# Both packages start a system-wide instance where services can start (Redis on 6379, nginx
# on port 80); the test runs its own on free ports, so stop those (quietly: in containers
# they never started). nginx is in /usr/sbin, which a non-root PATH may lack.
if command -v redis-server >/dev/null 2>&1; then
  say "redis-server ok ($(redis-server --version 2>/dev/null | cut -d' ' -f1-3 || echo '?'))"
else
  say "installing redis-server with apt-get"
  apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || { say "apt-get finished but redis-server is missing" >&2; exit 1; }
  if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
  say "redis-server installed: $(redis-server --version 2>/dev/null | cut -d' ' -f1-3 || echo '?')"
fi
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
if [ -x "$nginx_bin" ]; then
  say "nginx ok ($("$nginx_bin" -v 2>&1 || echo '?'))"
else
  say "installing nginx with apt-get"
  apt_install nginx
  [ -x /usr/sbin/nginx ] || { say "apt-get finished but /usr/sbin/nginx is missing" >&2; exit 1; }
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
  say "nginx installed: $(/usr/sbin/nginx -v 2>&1 || echo '?')"
fi
say "done"
