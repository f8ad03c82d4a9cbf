#!/usr/bin/env python3
"""PyTorch side of Ember's whole-workload benchmarks (see BENCHMARKS.md).

Runs the same workloads as `swift run -c release ember-workloads`. The Swift executable starts it
with Foundation's `Process` in `--serve` mode and asks for one workload at a time (JSON lines on
stdin and stdout), alternating with its own measurements. It can also be run on its own, printing
one JSON object:

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


def workload_builders(torch, sizes):
    """Every timed workload: key -> function that builds its state and returns the timed body."""
    from torch import nn
    F = nn.functional
    builders = {}

    def seed(key, training, nograd=False, step=False):
        def build():
            model = seed_network(nn)
            x = torch.randn(32, 10)
            y = torch.randint(0, 2, (32,))
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            model.train(training)
            if step:
                return train_step_fn(torch, model, opt, x, y)
            if nograd:
                def body():
                    with torch.no_grad():
                        model(x)
                return body
            return lambda: model(x)
        builders["seed." + key] = build

    seed("forward_train", training=True)
    seed("forward_eval_grad", training=False)
    seed("forward_eval_nograd", training=False, nograd=True)
    seed("train_step", training=True, step=True)

    def mlp_train():
        model = mlp(nn)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(128, 784)
        y = torch.randint(0, 10, (128,))
        model.train()
        return train_step_fn(torch, model, opt, x, y)
    builders["mlp.train_step_b128"] = mlp_train

    def mlp_eval(batch):
        def build():
            model = mlp(nn)
            model.eval()
            xb = torch.rand(batch, 784)

            def body():
                with torch.no_grad():
                    model(xb)
            return body
        return build
    for batch in (1024, 1):
        builders[f"mlp.eval_b{batch}"] = mlp_eval(batch)

    def sgemm(n):
        def build():
            a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
            return lambda: torch.mm(a, b, out=c)
        return build
    for n in sizes:
        builders[f"sgemm.{n}"] = sgemm(n)

    # Convolutions (Sources/EmberWorkloads/ConvWorkloads.swift builds the same).
    def lenet():
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))

    class BasicBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)

    def lenet_train():
        model = lenet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
        return train_step_fn(torch, model, opt, x, y)

    def lenet_eval():
        model = lenet().eval()
        x = torch.rand(64, 1, 28, 28)

        def body():
            with torch.no_grad():
                model(x)
        return body

    def resnet_train():
        model = nn.Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, target = torch.randn(32, 32, 32, 32), torch.randn(32, 32, 32, 32)

        def step():
            opt.zero_grad()
            F.mse_loss(model(x), target).backward()
            opt.step()
        return step

    def resnet_eval():
        model = nn.Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32)).eval()
        x = torch.randn(32, 32, 32, 32)

        def body():
            with torch.no_grad():
                model(x)
        return body

    builders["cnn.lenet_train_b64"] = lenet_train
    builders["cnn.lenet_eval_b64"] = lenet_eval
    builders["cnn.resnet_train_b32"] = resnet_train
    builders["cnn.resnet_eval_b32"] = resnet_eval

    # Eval-mode folding (Sources/EmberWorkloads/FusedWorkloads.swift): PyTorch's fuse_modules on
    # the same models (its fused copy keeps Dropout, the identity in eval).
    from torch.ao.quantization import fuse_modules

    def fused_mlp_eval(batch):
        def build():
            model = fuse_modules(mlp(nn).eval(), [["0", "1"], ["4", "5"]], inplace=False)
            xb = torch.rand(batch, 784)

            def body():
                with torch.no_grad():
                    model(xb)
            return body
        return build
    for batch in (1024, 1):
        builders[f"fused.mlp_eval_b{batch}"] = fused_mlp_eval(batch)

    def fused_resnet_eval():
        model = nn.Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32)).eval()
        model = fuse_modules(model, [[f"{i}.conv{j}", f"{i}.bn{j}"] for i in range(3) for j in (1, 2)], inplace=False)
        x = torch.randn(32, 32, 32, 32)

        def body():
            with torch.no_grad():
                model(x)
        return body
    builders["fused.resnet_eval_b32"] = fused_resnet_eval

    def conv(batch, cin, cout, side):
        def build():
            layer = nn.Conv2d(cin, cout, 3, padding=1)
            x = torch.rand(batch, cin, side, side)

            def body():
                with torch.no_grad():
                    layer(x)
            return body
        return build
    for batch, cin, cout, side in [(32, 32, 32, 32), (32, 64, 64, 16), (8, 128, 128, 16), (64, 1, 32, 28)]:
        builders[f"conv.{cin}x{cout}_{side}_b{batch}"] = conv(batch, cin, cout, side)
    return builders


def run_timings(args):
    """Times every workload of the selected groups, one after the other."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    wanted = set(args.only.split(",")) if args.only else None
    results = {}
    for key, build in workload_builders(torch, args.sizes).items():
        if wanted is None or key.split(".")[0] in wanted:
            results[key] = measure(build(), args.budget)
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}


def serve(args):
    """Answers timing requests from the Swift harness, one JSON object per line each way.

    Request: {"key": "seed.train_step", "budget": 0.5}. Reply: {"key": ..., "iterations": ...,
    "seconds": [...]} or {"error": ...}. A workload's state is built on its first request and kept,
    so the harness can alternate Ember and PyTorch samples of the same workload (both then see the
    same machine load). The thread count is fixed for the process (`--threads`): raising it with
    `torch.set_num_threads` after work has run made every small `mm` take 16 ms here (OpenMP).
    """
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    builders = workload_builders(torch, args.sizes)
    built = {}
    print(json.dumps({"torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        key = request["key"]
        try:
            if key not in built:
                built[key] = builders[key]()
            reply = {"key": key, **measure(built[key], float(request["budget"]))}
        except Exception as error:  # reported to the harness, which prints it
            reply = {"key": key, "error": repr(error)}
        print(json.dumps(reply), flush=True)


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
    loss = torch.zeros(())
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
        "final_loss": loss.item(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed samples per workload")
    p.add_argument("--only", default="", help="comma-separated groups: seed,mlp,sgemm")
    p.add_argument("--sizes", default="64,128,256,512,1024,2048",
                   type=lambda s: [int(v) for v in s.split(",") if v])
    p.add_argument("--memory-run", action="store_true")
    p.add_argument("--serve", action="store_true", help="answer JSON timing requests on stdin (used by ember-workloads)")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    if args.serve:
        serve(args)
        return
    out = memory_run(args) if args.memory_run else run_timings(args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
