#!/bin/bash
# A/B of release builds of ember-workloads on one workload, interleaved:
#   Tools/bench/ab.sh KEY CALLS ROUNDS BINARY[:VAR=VALUE,...] ...
# Each round runs every binary once with `--time KEY:CALLS --threads ${THREADS:-1}`; the table
# gives, per binary, the median over rounds of its fastest call and of its median call (ms). The
# fastest call is the one least disturbed by other load on a shared machine; compare binaries
# built side by side from the two revisions (copies of .build/release/ember-workloads).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: Tools/bench/ab.sh KEY CALLS ROUNDS BINARY[:VAR=VALUE,...] ..." >&2
  exit 2
fi
key=$1; calls=$2; rounds=$3; shift 3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  for spec in "$@"; do
    bin=${spec%%:*}; vars=""
    [ "$spec" != "$bin" ] && vars=${spec#*:}
    line=$(env ${vars//,/ } "$bin" --time "$key:$calls" --threads "${THREADS:-1}")
    echo "$spec $line" >> "$out"
  done
done
python3 - "$out" <<'PY'
import sys, statistics, collections
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    p = line.split()
    runs.setdefault(p[0], []).append((float(p[p.index("min") + 1]), float(p[p.index("median") + 1])))
base = None
for spec, v in runs.items():
    fastest = statistics.median(m for m, _ in v); typical = statistics.median(d for _, d in v)
    base = base or fastest
    print(f"{spec:40s} fastest {fastest:9.3f}  median {typical:9.3f} ms  ({fastest / base:.3f}x the first)  fastest per round: "
          + " ".join(f"{m:.2f}" for m, _ in v))
PY
