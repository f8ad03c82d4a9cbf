#!/usr/bin/env python3
"""PyTorch side of `swift run -c release ember-bench`: the same measurements, printed as JSON.

Usage: torch_bench.py SAMPLES MIN_SAMPLE_SECONDS N [N ...]

Prints one JSON object:
  {"version": str,
   "sgemm": {"1": {"64": GFLOP/s, ...}, "2": {...}},   # torch.mm(a, b, out=c), float32
   "add_ns": ns,            # a + b on 20-element float32 tensors, per op, one thread
   "matmul_small_ns": ns}   # (32x10) @ (10x20) float32, per op, one thread
Each figure is the median of SAMPLES timed samples taken after a warm-up; a sample repeats the op
until it lasts at least MIN_SAMPLE_SECONDS. Per-op times include the Python call overhead, which
is what a PyTorch user pays per op.
"""
import json
import statistics
import sys
import time

import torch


def per_op_seconds(op, samples, min_seconds):
    """Median seconds per call of `op` over `samples` samples, after a warm-up."""
    op()
    reps = 1
    while True:  # find a repetition count that makes one sample last min_seconds
        start = time.perf_counter()
        for _ in range(reps):
            op()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
        reps *= 2 if elapsed < min_seconds / 4 else max(2, int(min_seconds / elapsed + 1))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(reps):
            op()
        times.append((time.perf_counter() - start) / reps)
    return statistics.median(times)


def main():
    samples = int(sys.argv[1])
    min_seconds = float(sys.argv[2])
    sizes = [int(s) for s in sys.argv[3:]]
    torch.manual_seed(0)
    result = {"version": torch.__version__, "sgemm": {}}
    with torch.no_grad():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rates = {}
            for n in sizes:
                a = torch.randn(n, n)
                b = torch.randn(n, n)
                c = torch.empty(n, n)
                seconds = per_op_seconds(lambda: torch.mm(a, b, out=c), samples, min_seconds)
                rates[str(n)] = 2.0 * n**3 / seconds / 1e9
            result["sgemm"][str(threads)] = rates
        torch.set_num_threads(1)
        x = torch.randn(20)
        y = torch.randn(20)
        result["add_ns"] = per_op_seconds(lambda: x + y, samples, min_seconds) * 1e9
        a = torch.randn(32, 10)
        w = torch.randn(10, 20)
        result["matmul_small_ns"] = per_op_seconds(lambda: torch.mm(a, w), samples, min_seconds) * 1e9
    print(json.dumps(result))


if __name__ == "__main__":
    main()
