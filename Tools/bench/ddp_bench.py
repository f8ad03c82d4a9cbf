#!/usr/bin/env python3
"""The data-parallel benchmark of BENCHMARKS.md: Ember and PyTorch, 1 process and N ranks, interleaved.

Usage: Tools/bench/ddp_bench.py [--ranks N] [--rounds R] [--budget SECONDS] [--ember PATH]

Each round runs, in this order: Ember on 1 process, Ember on N ranks (`mpirun -n N
ember-distributed-check bench`), the same without overlapping bucket all-reduces with backward, PyTorch on 1 process, PyTorch DDP (gloo) on N ranks
(`torch_ddp_bench.py`). The workload (MLP 784-512-256-10 with BatchNorm1d, global batch 256, SGD
with momentum, one thread per rank) and the timing protocol are those two scripts'. The table gives
each configuration's median over the rounds (ms per step, samples/s), the scaling of N ranks over 1
process, and Ember over PyTorch. A fifth run per round times Ember's single process on one rank's
share of the batch (256 / N rows): each rank's compute without communication, so the scaling that
N ranks could reach with free communication is the 1-process time over that one. Build Ember first:

    swift build -c release --traits MPI --scratch-path .build-mpi --product EmberDistributedCheck

PyTorch cannot run SyncBatchNorm on CPU (see torch_ddp_bench.py): its N-rank figure uses per-rank
BatchNorm statistics and so skips the statistics all-reduces that Ember's SyncBatchNorm does.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(command, env):
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"ddp_bench: {' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=3)
    parser.add_argument("--ember", default=os.path.join(ROOT, ".build-mpi/release/EmberDistributedCheck"))
    args = parser.parse_args()
    if args.ranks < 2 or args.rounds < 1 or args.budget <= 0:
        sys.exit("ddp_bench: --ranks must be at least 2, --rounds at least 1, --budget positive")
    if not os.access(args.ember, os.X_OK):
        sys.exit(f"ddp_bench: {args.ember} is not built (see the usage)")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none"]
    budget = ["--budget", str(args.budget)]
    torch = [sys.executable, os.path.join(HERE, "torch_ddp_bench.py")]
    configurations = {
        ("ember", 1): mpirun + ["-n", "1", args.ember, "bench"] + budget,
        ("ember", args.ranks): mpirun + ["-n", str(args.ranks), args.ember, "bench"] + budget,
        ("ember-no-overlap", args.ranks): mpirun + ["-x", "EMBER_BENCH_OVERLAP=0", "-n", str(args.ranks), args.ember, "bench"] + budget,
        ("ember-shard", 1): mpirun + ["-n", "1", args.ember, "bench", "--global-batch", str(256 // args.ranks)] + budget,
        ("pytorch", 1): torch + ["--ranks", "1"] + budget,
        ("pytorch", args.ranks): torch + ["--ranks", str(args.ranks)] + budget,
    }
    times = {key: [] for key in configurations}
    details = {}
    for r in range(args.rounds):
        for key, command in configurations.items():
            result = run(command, env)
            times[key].append(result["ms_per_step"])
            details[key] = result
            print(f"round {r + 1}: {key[0]} {key[1]} rank(s): {result['ms_per_step']:.3f} ms/step", file=sys.stderr)
    median = {key: statistics.median(v) for key, v in times.items()}
    batch = details[("ember", 1)]["global_batch"]
    n = args.ranks
    print(f"| framework | ranks x threads | ms/step (median of {args.rounds}) | samples/s | {n} ranks over 1 process | Ember over PyTorch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (framework, ranks) in configurations:
        if framework == "ember-shard":
            continue
        ms = median[(framework, ranks)]
        base = "ember" if framework.startswith("ember") else framework
        scaling = f"{median[(base, 1)] / ms:.2f}x" if ranks > 1 else ""
        versus = f"{median[('pytorch', ranks)] / ms:.2f}x" if base == "ember" else ""
        sync = "" if ranks == 1 else (" (SyncBatchNorm)" if details[(framework, ranks)]["sync_batchnorm"] else " (per-rank BatchNorm)")
        print(f"| {framework}{sync} | {ranks} x 1 | {ms:.2f} | {batch / ms * 1000:.0f} | {scaling} | {versus} |")
    shard = median[("ember-shard", 1)]
    print(f"Ember, 1 process on {256 // n} rows (one rank's compute, no communication): {shard:.2f} ms/step; "
          f"the most {n} ranks could scale with free communication: {median[('ember', 1)] / shard:.2f}x; "
          f"communication and waiting cost {median[('ember', n)] - shard:.2f} ms per step")
    print(f"runs: {json.dumps({f'{k[0]}-{k[1]}': v for k, v in times.items()})}")


if __name__ == "__main__":
    main()
