#!/usr/bin/env python3
"""Instructions per iteration of one ember-workloads workload, by function, under callgrind.

Runs `ember-workloads --profile KEY:N` under `valgrind --tool=callgrind` twice (N = LOW and
N = HIGH) and prints, per function, the difference divided by HIGH - LOW: exact instruction
counts per iteration with start-up, set-up and warm-up cancelled out. Instruction counts are
repeatable on a busy machine, where wall-clock timings are not.

    swift build -c release --product ember-workloads
    python3 Tools/bench/callgrind_per_iteration.py seed.train_step
    python3 Tools/bench/callgrind_per_iteration.py mlp.eval_b1 --low 20 --high 220 --inclusive
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile


def run(binary, key, n, threads, inclusive, out_dir):
    out = os.path.join(out_dir, f"cg.{n}.out")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                    "--profile", f"{key}:{n}", "--threads", str(threads)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    args = ["callgrind_annotate", "--threshold=100", "--auto=no"]
    if inclusive:
        args.append("--inclusive=yes")
    text = subprocess.run(args + [out], check=True, capture_output=True, text=True).stdout
    counts, total = {}, 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([\s\d.]+%\)\s+)?(.*)$", line)
        if not m:
            continue
        value = int(m.group(1).replace(",", ""))
        name = m.group(2).strip()
        if name.startswith("PROGRAM TOTALS"):
            total = value
        elif name:
            name = re.sub(r"\s*\[[^\]]*\]$", "", name)
            counts[name] = counts.get(name, 0) + value
    return total, counts


def demangle(names):
    try:
        out = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names),
                             capture_output=True, text=True, check=True).stdout.splitlines()
        return out if len(out) == len(names) else names
    except (OSError, subprocess.CalledProcessError):
        return names


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("key")
    p.add_argument("--low", type=int, default=200)
    p.add_argument("--high", type=int, default=2200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--inclusive", action="store_true", help="inclusive counts (callees included)")
    p.add_argument("--binary", default=".build/release/ember-workloads")
    p.add_argument("--no-strip", dest="strip", action="store_false",
                   help="profile the binary as built (needs debug info valgrind can read)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if a.strip:
            # valgrind 3.19 cannot read the DWARF 5 that clang writes for the C kernels: profile a
            # copy without debug info (function names stay; source lines go).
            stripped = os.path.join(d, "ember-workloads")
            subprocess.run(["objcopy", "--strip-debug", a.binary, stripped], check=True)
            a.binary = stripped
        t0, c0 = run(a.binary, a.key, a.low, a.threads, a.inclusive, d)
        t1, c1 = run(a.binary, a.key, a.high, a.threads, a.inclusive, d)
    n = a.high - a.low
    print(f"{a.key}: {(t1 - t0) / n:,.0f} instructions per iteration")
    rows = sorted(((c1.get(k, 0) - c0.get(k, 0)) / n, k) for k in set(c0) | set(c1))
    rows = [r for r in reversed(rows) if r[0] >= 0.5][: a.top]
    files = [k.split(":", 1)[0] if ":" in k else "" for _, k in rows]
    symbols = demangle([k.split(":", 1)[1] if ":" in k else k for _, k in rows])
    for (per, _), f, s in zip(rows, files, symbols):
        print(f"{per:12,.0f}  {os.path.basename(f)}: {s[:150]}")


if __name__ == "__main__":
    sys.exit(main())
