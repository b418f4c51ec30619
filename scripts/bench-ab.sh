#!/usr/bin/env bash
# A/B of our own code: runs two builds of the `frames` bench alternately, rfc6455 alone
# (`--interleaved` with ONLY=rfc6455), and prints each build's median time per workload and
# the ratio B/A (below 1: B is faster); with STAT=min, each build's fastest sample instead.
# Alternating the builds keeps host drift out of the comparison. Make the two binaries
# first, e.g.
#   cargo bench -p rfc6455-benches --bench frames --no-run   # prints target/release/deps/frames-HASH
#   cp target/release/deps/frames-HASH /tmp/frames-a   # then change the code, build again
#   scripts/bench-ab.sh /tmp/frames-a target/release/deps/frames-HASH2 [FILTER] [RUNS]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.cpu.x86_rep_movsb_threshold=4294967295}
python3 - "$1" "$2" "${3:-}" "${4:-5}" <<'PY'
import os, re, statistics, subprocess, sys
a, b, filt, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = dict(os.environ, ONLY="rfc6455", ROUNDS=os.environ.get("ROUNDS", "7"))
unit = {"ns": 1, "us": 1e3, "ms": 1e6}
times = {a: {}, b: {}}
order = []
for run in range(runs):
    for binary in ((a, b) if run % 2 == 0 else (b, a)):
        args = [binary, "--bench", "--interleaved"] + ([filt] if filt else [])
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.match(r"(\S+/\S+)\s+([\d.]+) (ns|us|ms)", line)
            if m:
                if m[1] not in order:
                    order.append(m[1])
                times[binary].setdefault(m[1], []).append(float(m[2]) * unit[m[3]])
# STAT=min (passed on to the bench): the fastest sample of each build, least moved by load.
stat = min if os.environ.get("STAT") == "min" else statistics.median
name = "min" if stat is min else "median"
print(f"{'workload':<28}{'A ' + name:>12}{'B ' + name:>12}{'B/A':>7}   ({runs} alternating runs)")
for w in order:
    if w not in times[a] or w not in times[b]:
        continue  # a row only one build has (a bench added since A)
    ta, tb = stat(times[a][w]), stat(times[b][w])
    print(f"{w:<28}{ta / 1e3:>10.1f}us{tb / 1e3:>10.1f}us{tb / ta:>7.2f}")
PY
