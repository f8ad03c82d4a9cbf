#!/usr/bin/env python3
"""PyTorch side of `swift run -c release ember-bench`: the same measurements, printed as JSON.

Usage: torch_bench.py SAMPLES MIN_SAMPLE_SECONDS N [N ...]

Prints one JSON object:
  {"version": str,
   "sgemm": {"1": {"64": GFLOP/s, ...}, "2": {...}},   # torch.mm(a, b, out=c), float32
   "add_ns": ns,            # a + b on 20-element float32 tensors, per op, one thread
   "matmul_small_ns": ns}   # (32x10) @ (10x20) float32, per op, one thread
Each figure is the median of SAMPLES timed samples taken after a warm-up, in rounds over the ops;
a sample repeats the op until it lasts at least MIN_SAMPLE_SECONDS. Per-op times include the Python call overhead, which
is what a PyTorch user pays per op.
"""
import json
import statistics
import sys
import time

import torch


def median_seconds_per_op(ops, samples, min_seconds):
    """Median seconds per call of each op, after a warm-up.

    Each op first gets a repetition count that makes one sample last at least min_seconds; then
    `samples` rounds each take one sample of every op in turn (as ember-bench does), so a passing
    disturbance skews one sample of several figures rather than every sample of one.
    """
    reps = []
    for op in ops:
        op()
        r = 1
        while True:
            start = time.perf_counter()
            for _ in range(r):
                op()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
            r *= 2 if elapsed < min_seconds / 4 else max(2, int(min_seconds / elapsed + 1))
        reps.append(r)
    times = [[] for _ in ops]
    for _ in range(samples):
        for i, op in enumerate(ops):
            start = time.perf_counter()
            for _ in range(reps[i]):
                op()
            times[i].append((time.perf_counter() - start) / reps[i])
    return [statistics.median(t) for t in times]


def main():
    samples = int(sys.argv[1])
    min_seconds = float(sys.argv[2])
    sizes = [int(s) for s in sys.argv[3:]]
    torch.manual_seed(0)
    result = {"version": torch.__version__, "sgemm": {}}
    with torch.no_grad():
        operands = {n: (torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)) for n in sizes}
        ops = [lambda o=operands[n]: torch.mm(o[0], o[1], out=o[2]) for n in sizes]
        for threads in (1, 2):
            torch.set_num_threads(threads)
            seconds = median_seconds_per_op(ops, samples, min_seconds)
            result["sgemm"][str(threads)] = {str(n): 2.0 * n**3 / s / 1e9 for n, s in zip(sizes, seconds)}
        torch.set_num_threads(1)
        x = torch.randn(20)
        y = torch.randn(20)
        a = torch.randn(32, 10)
        w = torch.randn(10, 20)
        add_s, matmul_s = median_seconds_per_op([lambda: x + y, lambda: torch.mm(a, w)], samples, min_seconds)
        result["add_ns"] = add_s * 1e9
        result["matmul_small_ns"] = matmul_s * 1e9
    print(json.dumps(result))


if __name__ == "__main__":
    main()
