#!/usr/bin/env bash
# Prints our speed relative to each peer library for every criterion workload that ran:
# ratio = peer time / rfc6455 time (above 1: we are faster). Reads the latest results from
# target/criterion/**/new/ ($CRITERION_HOME or $CARGO_TARGET_DIR/criterion if set), so run the
# benches first, e.g.
#   GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295 \
#     cargo bench -p rfc6455-benches --bench frames -- --warm-up-time 1 --measurement-time 3
#   scripts/bench-ratios.sh [FILTER]      # FILTER: substring of the benchmark id
# Times are criterion's median estimates (steadier than the mean on a busy machine).
# Benchmarks without a library suffix (mask/align, mask/offset) are listed with their
# throughput only.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}
[ -d "$dir" ] || { echo "no criterion results under $dir; run cargo bench -p rfc6455-benches first" >&2; exit 1; }
python3 - "$dir" "${1:-}" <<'EOF'
import json, os, sys
root, want = sys.argv[1], sys.argv[2]
# The last part of an id names the library; every id ending in one of these is a row of the
# workload before it. `memcpy` is the one-copy floor some decode rows carry.
LIBS = ["rfc6455", "tungstenite", "fastwebsockets", "memcpy"]
rows = {}   # workload -> {lib: (ns, bytes)}
solo = []   # (id, ns, bytes)
for dirpath, _, files in os.walk(root):
    if not dirpath.endswith(os.sep + "new") or "benchmark.json" not in files:
        continue
    bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
    est = json.load(open(os.path.join(dirpath, "estimates.json")))
    full = bench["full_id"]
    if want and want not in full:
        continue
    ns = est["median"]["point_estimate"]
    tp = (bench.get("throughput") or {}).get("Bytes")
    workload, _, lib = full.rpartition("/")
    if lib in LIBS:
        rows.setdefault(workload, {})[lib] = (ns, tp)
    else:
        solo.append((full, ns, tp))

def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"

def fmt_rate(ns, tp):
    return f"{tp / ns:.2f} GB/s" if tp else ""

def key(w):
    # Natural order: group, then sizes as numbers where they appear.
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", w)]

# One column pair (time, ratio) per peer that appears in any selected row.
peers = [p for p in LIBS[1:] if any(p in libs for libs in rows.values())]
widths = {p: max(len(p), 9) + 2 for p in peers}
hdr = f"{'workload':<34}{'rfc6455':>22}" + "".join(f"{p:>{widths[p]}}{'ratio':>7}" for p in peers)
print("ratio = peer time / rfc6455 time (>1: rfc6455 faster); median estimates")
print(hdr)
print("-" * len(hdr))
for w in sorted(rows, key=key):
    libs = rows[w]
    if "rfc6455" not in libs:
        continue
    ours, tp = libs["rfc6455"]
    line = f"{w:<34}{fmt_time(ours):>10} {fmt_rate(ours, tp):>11}"
    for p in peers:
        if p in libs:
            t, _ = libs[p]
            line += f"{fmt_time(t):>{widths[p]}}{t / ours:>7.2f}"
        else:
            line += f"{'-':>{widths[p]}}{'':>7}"
    print(line)
if solo:
    print()
    for full, ns, tp in sorted(solo, key=lambda r: key(r[0])):
        print(f"{full:<34}{fmt_time(ns):>10} {fmt_rate(ns, tp):>11}")
EOF
