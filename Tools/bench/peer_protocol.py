"""What every peer script of `ember-workloads` shares (see BENCHMARKS.md, "Method").

A peer script (`torch_workloads.py`, `jax_workloads.py`) defines its workloads as builders (key ->
function that builds the state and returns the timed body) and a memory run, and hands them to
`main`. The Swift harness (`Sources/EmberWorkloads/Peer.swift`) talks to it with this protocol:

- `--serve --threads N --sizes ...`: prints a greeting line `{"framework": "JAX", "version":
  "0.10.2"}`, then answers one JSON request per line, `{"key": "seed.train_step", "budget": 0.5}`,
  with `{"key": ..., "iterations": ..., "seconds": [...]}`, `{"key": ..., "skipped": reason}` (the
  framework cannot run this workload) or `{"key": ..., "error": ...}`. A workload's state is built
  on its first request and kept, so the harness can alternate frameworks on the same workload.
- `--memory-run --model mlp|lenet --samples N --epochs N`: trains in this fresh process and prints
  `{"peak_rss_bytes": ..., "import_rss_bytes": ..., "seconds": ..., "final_loss": ...}`.
- Without either: times every workload one after the other and prints one JSON object.

Nothing here imports a framework.
"""

import argparse
import json
import resource
import sys
import time


class Skip(Exception):
    """Raised by a builder whose workload this framework cannot run; the message says why."""


def measure(fn, budget, sample_seconds=0.02, min_samples=5, max_samples=40):
    """Per-iteration times (seconds) of `fn`, one entry per sample of several iterations.

    The same schedule as the Swift side's `measure`: a warm-up of at least 3 calls and about a
    tenth of the budget, then samples of about `sample_seconds` each until `budget` is used.
    """
    start = time.perf_counter()
    calls = 0
    while calls < 3 or (time.perf_counter() - start < budget * 0.1 and calls < 1000):
        fn()
        calls += 1
    one = (time.perf_counter() - start) / calls
    iters = max(1, int(sample_seconds / max(one, 1e-9)))
    times = []
    begin = time.perf_counter()
    while len(times) < max_samples and (len(times) < min_samples or time.perf_counter() - begin < budget):
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter_ns() - t0) / 1e9 / iters)
    return {"iterations": iters, "seconds": times}


def status_bytes(field):
    """A `/proc/self/status` size field (`VmHWM`, `VmRSS`) in bytes; `ru_maxrss` where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def serve(framework, version, builders):
    """Answers the harness's timing requests on stdin (module docstring) until stdin closes."""
    built = {}
    print(json.dumps({"framework": framework, "version": version}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        key = request["key"]
        try:
            if key not in built:
                if key not in builders:
                    raise KeyError(f"no workload {key}")
                built[key] = builders[key]()
            reply = {"key": key, **measure(built[key], float(request["budget"]))}
        except Skip as reason:
            reply = {"key": key, "skipped": str(reason)}
        except Exception as error:  # reported to the harness, which prints it
            reply = {"key": key, "error": repr(error)}
        print(json.dumps(reply), flush=True)


def parse_arguments(description):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed samples per workload")
    p.add_argument("--only", default="", help="comma-separated groups: seed,mlp,sgemm,cnn,conv")
    p.add_argument("--sizes", default="64,128,256,512,1024,2048",
                   type=lambda s: [int(v) for v in s.split(",") if v])
    p.add_argument("--memory-run", action="store_true")
    p.add_argument("--model", default="mlp", choices=["mlp", "lenet"], help="memory run: the model trained")
    p.add_argument("--serve", action="store_true", help="answer JSON timing requests on stdin (used by ember-workloads)")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    return p.parse_args()


def main(args, framework, version, make_builders, memory_run):
    """Runs the mode the arguments ask for. `make_builders(sizes)` returns key -> builder;
    `memory_run(args)` returns the memory report."""
    if args.serve:
        serve(framework, version, make_builders(args.sizes))
        return
    if args.memory_run:
        out = memory_run(args)
    else:
        wanted = set(args.only.split(",")) if args.only else None
        results, skipped = {}, {}
        for key, build in make_builders(args.sizes).items():
            if wanted is None or key.split(".")[0] in wanted:
                try:
                    results[key] = measure(build(), args.budget)
                except Skip as reason:
                    skipped[key] = str(reason)
        out = {"framework": framework, "version": version, "threads": args.threads,
               "results": results, "skipped": skipped}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
