#!/usr/bin/env python3
"""PyTorch side of Ember's whole-workload benchmarks (see BENCHMARKS.md).

Runs the same workloads as `swift run -c release ember-workloads`. The Swift executable starts it
with Foundation's `Process` in `--serve` mode and asks for one workload at a time (JSON lines on
stdin and stdout, `peer_protocol.py`), alternating with its own measurements. It can also be run on
its own, printing one JSON object:

    python3 Tools/bench/torch_workloads.py --threads 1 --budget 1.0
    python3 Tools/bench/torch_workloads.py --memory-run --model mlp --samples 10000 --epochs 3
    python3 Tools/bench/torch_workloads.py --memory-run --model lenet --samples 6400 --epochs 3

Timing: each workload is warmed up, then timed in samples of several iterations (each sample
takes about 20 ms) until `--budget` seconds are used; the result is the per-iteration time of
every sample, summarised by the caller as a median and a spread. The model definitions,
batch sizes and optimizer settings must stay identical to `Sources/EmberWorkloads/`.
"""

import time

from peer_protocol import main, parse_arguments, status_bytes


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


def lenet(nn):
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


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

    def mlp_eval(batch, fold=None):
        def build():
            model = mlp(nn)
            model.eval()
            if fold is not None:
                model = fold(model)
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
        model = lenet(nn)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
        return train_step_fn(torch, model, opt, x, y)

    def lenet_eval():
        model = lenet(nn).eval()
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

    def fold_mlp(model):
        return fuse_modules(model, [["0", "1"], ["4", "5"]], inplace=False)
    for batch in (1024, 1):
        builders[f"fused.mlp_eval_b{batch}"] = mlp_eval(batch, fold_mlp)

    def fused_resnet_eval():
        model = nn.Sequential(BasicBlock(32), BasicBlock(32), BasicBlock(32)).eval()
        model = fuse_modules(model, [[f"{i}.conv{j}", f"{i}.bn{j}"] for i in range(3) for j in (1, 2)], inplace=False)
        x = torch.randn(32, 32, 32, 32)

        def body():
            with torch.no_grad():
                model(x)
        return body
    builders["fused.resnet_eval_b32"] = fused_resnet_eval

    # Issue #13: one TransformerEncoderLayer (training step with MSE and SGD; eval forward without
    # gradient, which takes PyTorch's fused fast path) and scaled dot-product attention alone.
    def encoder_layer():
        return nn.TransformerEncoderLayer(256, 8, dim_feedforward=1024, dropout=0.1, batch_first=True)

    def encoder_train():
        layer = encoder_layer()
        opt = torch.optim.SGD(layer.parameters(), lr=0.01, momentum=0.9)
        x, target = torch.randn(16, 128, 256), torch.randn(16, 128, 256)
        layer.train()

        def step():
            opt.zero_grad()
            loss = F.mse_loss(layer(x), target)
            loss.backward()
            opt.step()
        return step
    builders["transformer.encoder_train_b16_s128"] = encoder_train

    def encoder_eval():
        layer = encoder_layer()
        layer.eval()
        x = torch.randn(16, 128, 256)

        def body():
            with torch.no_grad():
                layer(x)
        return body
    builders["transformer.encoder_eval_b16_s128"] = encoder_eval

    def attention_eval():
        q, k, v = (torch.randn(4, 8, 512, 32) for _ in range(3))

        def body():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v)
        return body
    builders["transformer.attention_eval_s512"] = attention_eval

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


def memory_run(args):
    """Trains the MLP (batch 128, 784 features) or LeNet (batch 64, 1x28x28) for `--epochs` epochs on
    `--samples` synthetic samples and reports peak RSS; `import_rss_bytes` is the peak after
    `import torch` alone."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    import_rss = status_bytes("VmHWM")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    lenet_run = args.model == "lenet"
    x = torch.rand(args.samples, 1, 28, 28) if lenet_run else torch.rand(args.samples, 784)
    y = torch.randint(0, 10, (args.samples,))
    loader = DataLoader(TensorDataset(x, y), batch_size=64 if lenet_run else 128, shuffle=True)
    model = lenet(nn) if lenet_run else mlp(nn)
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
    return {"version": torch.__version__, "peak_rss_bytes": status_bytes("VmHWM"), "import_rss_bytes": import_rss,
            "seconds": seconds, "final_loss": loss.item()}


if __name__ == "__main__":
    arguments = parse_arguments(__doc__)
    import torch

    torch.manual_seed(0)
    if not arguments.memory_run:
        # Fixed for the process: raising it after work has run made every small `mm` take 16 ms
        # here (OpenMP), hence one server per thread count.
        torch.set_num_threads(arguments.threads)
    main(arguments, "PyTorch", torch.__version__, lambda sizes: workload_builders(torch, sizes), memory_run)
