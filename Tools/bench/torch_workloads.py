#!/usr/bin/env python3
"""PyTorch side of Ember's whole-workload benchmarks (see BENCHMARKS.md).

Runs the same workloads as `swift run -c release ember-workloads` and prints one JSON object on
stdout. The Swift executable calls this script with Foundation's `Process`; it can also be run on
its own:

    python3 Tools/bench/torch_workloads.py --threads 1 --budget 1.0
    python3 Tools/bench/torch_workloads.py --memory-run --samples 10000 --epochs 3

Timing: each workload is warmed up, then timed in samples of several iterations (each sample
takes about 20 ms) until `--budget` seconds are used; the result is the per-iteration time of
every sample, summarised by the caller as a median and a spread. The model definitions,
batch sizes and optimizer settings must stay identical to `Sources/EmberWorkloads/`.
"""

import argparse
import json
import resource
import sys
import time


def measure(fn, budget, sample_seconds=0.02, min_samples=5, max_samples=40):
    """Per-iteration times (seconds) of `fn`, one entry per sample of several iterations."""
    # Warm up: at least 3 calls and about a tenth of the budget.
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


def seed_network(nn):
    # Linear(10, 20) -> ReLU -> BatchNorm1d(20) -> Dropout(0.5) -> Linear(20, 2)
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.BatchNorm1d(20), nn.Dropout(0.5), nn.Linear(20, 2))


def mlp(nn):
    # 784 -> 512 -> 256 -> 10; BatchNorm1d, ReLU, Dropout(0.2) after each hidden Linear.
    return nn.Sequential(
        nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 10),
    )


def train_step_fn(torch, model, opt, x, y):
    F = torch.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def run_timings(args):
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    budget = args.budget
    wanted = set(args.only.split(",")) if args.only else None
    results = {}

    def want(group):
        return wanted is None or group in wanted

    if want("seed"):
        model = seed_network(nn)
        x = torch.randn(32, 10)
        y = torch.randint(0, 2, (32,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        results["seed.forward_train"] = measure(lambda: model(x), budget)
        model.eval()
        results["seed.forward_eval_grad"] = measure(lambda: model(x), budget)

        def eval_nograd():
            with torch.no_grad():
                model(x)
        results["seed.forward_eval_nograd"] = measure(eval_nograd, budget)
        model.train()
        results["seed.train_step"] = measure(train_step_fn(torch, model, opt, x, y), budget)

    if want("mlp"):
        model = mlp(nn)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(128, 784)
        y = torch.randint(0, 10, (128,))
        model.train()
        results["mlp.train_step_b128"] = measure(train_step_fn(torch, model, opt, x, y), budget)
        model.eval()
        for batch in (1024, 1):
            xb = torch.rand(batch, 784)

            def eval_nograd(xb=xb):
                with torch.no_grad():
                    model(xb)
            results[f"mlp.eval_b{batch}"] = measure(eval_nograd, budget)

    if want("sgemm"):
        for n in args.sizes:
            a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
            results[f"sgemm.{n}"] = measure(lambda a=a, b=b, c=c: torch.mm(a, b, out=c), budget)

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}


def memory_run(args):
    """Trains the MLP for `--epochs` epochs on synthetic MNIST-sized data and reports peak RSS."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x = torch.rand(args.samples, 784)
    y = torch.randint(0, 10, (args.samples,))
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    model = mlp(nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    start = time.perf_counter()
    loss = None
    for _ in range(args.epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    hwm = None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return {
        "torch": torch.__version__,
        "peak_rss_bytes": hwm,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "seconds": seconds,
        "final_loss": float(loss),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed samples per workload")
    p.add_argument("--only", default="", help="comma-separated groups: seed,mlp,sgemm")
    p.add_argument("--sizes", default="64,128,256,512,1024,2048",
                   type=lambda s: [int(v) for v in s.split(",") if v])
    p.add_argument("--memory-run", action="store_true")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    out = memory_run(args) if args.memory_run else run_timings(args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
