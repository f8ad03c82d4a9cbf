#!/usr/bin/env python3
"""PyTorch side of the data-parallel benchmark; Ember's side is `ember-distributed-check bench`
run under `mpirun -n N` (Tools/distributed/EmberDistributedCheck/Bench.swift).

Usage: torch_ddp_bench.py [--ranks N] [--warmup W] [--budget SECONDS] [--global-batch B]

Times one training step (zero_grad, forward, loss, backward, optimizer.step) of Ember's workload:
MLP Linear(784,512) BatchNorm1d ReLU Linear(512,256) BatchNorm1d ReLU Linear(256,10), float32,
cross entropy on randn inputs and labels in [0, 10), SGD (lr 0.01, momentum 0.9), global batch B
(default 256), one thread per rank (OMP/MKL too). --ranks 1 trains the plain model on all B rows;
--ranks N >= 2 spawns N processes (gloo, tcp://127.0.0.1) training B/N rows each, the model in
DistributedDataParallel (default buckets) with its BatchNorms converted to SyncBatchNorm.

CAVEAT: SyncBatchNorm.forward accepts only CUDA/HPU/XPU/PrivateUse1 inputs and raises ValueError
on CPU (so in torch 2.13). The script probes for this and then keeps per-rank BatchNorm1d and
reports "sync_batchnorm": false: such figures lack the all-reduces of batch statistics (forward
and backward of each BatchNorm) that Ember's SyncBatchNorm performs.

As on Ember's side: rank 0 plans max(10, budget / per-step) steps from the warm-up (timing all
but its first step), rounds up to a multiple of 5 and broadcasts the count, so every rank runs the
same steps; after a barrier they run in 5 blocks and the figure is the median block's ms per step.
Rank 0 prints one JSON line on stdout; warnings and errors go to stderr.
"""
import os

os.environ["OMP_NUM_THREADS"] = "1"  # before importing torch; spawned children inherit these
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import ctypes
import datetime
import json
import signal
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException
import torch.nn as nn
import torch.nn.functional as F

BLOCKS = 5


def positive(kind):
    def parse(text):
        value = kind(text)  # a ValueError becomes argparse's "invalid int value: 'x'"
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value
    parse.__name__ = kind.__name__
    return parse


def die_with_parent():
    """Linux: have the kernel SIGKILL this child if the parent dies, so no rank ever lingers."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def sync_batchnorm_works(rank):
    """SyncBatchNorm's device check raises before any collective, so every rank agrees."""
    try:
        nn.SyncBatchNorm(4).train()(torch.randn(2, 4))
        return True
    except ValueError as error:
        if rank == 0:
            print(f"torch_ddp_bench: SyncBatchNorm unavailable on CPU ({error}); "
                  "using per-rank BatchNorm1d", file=sys.stderr)
        return False


def bench(rank, world, port, args):
    torch.set_num_threads(1)
    distributed = world > 1
    sync_bn = False
    if distributed:
        die_with_parent()
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world, timeout=datetime.timedelta(seconds=60))
        sync_bn = sync_batchnorm_works(rank)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(),
                          nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(),
                          nn.Linear(256, 10))
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = torch.Generator().manual_seed(1 + rank)
    rows = args.global_batch // world
    x = torch.randn(rows, 784, generator=data)
    y = torch.randint(0, 10, (rows,), generator=data)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    barrier = dist.barrier if distributed else (lambda: None)
    barrier()
    # The first step (allocation, DDP's bucket setup) is far slower: plan from the others if any.
    start = time.perf_counter()
    for i in range(args.warmup):
        step()
        if i == 0:
            per_step, start = time.perf_counter() - start, time.perf_counter()
    if args.warmup > 1:
        per_step = (time.perf_counter() - start) / (args.warmup - 1)
    planned = torch.tensor([max(10, round(args.budget / max(per_step, 1e-6)))], dtype=torch.int64)
    if distributed:
        dist.broadcast(planned, src=0)
    steps = (int(planned.item()) + BLOCKS - 1) // BLOCKS * BLOCKS
    block_times = []
    barrier()
    for _ in range(BLOCKS):
        start = time.perf_counter()
        for _ in range(steps // BLOCKS):
            step()
        block_times.append((time.perf_counter() - start) / (steps // BLOCKS))
    median = statistics.median(block_times)
    if rank == 0:
        print(json.dumps({
            "framework": "pytorch", "ranks": world, "threads_per_rank": 1,
            "global_batch": args.global_batch, "ms_per_step": round(median * 1e3, 3),
            "samples_per_s": round(args.global_batch / median), "steps": steps,
            "sync_batchnorm": sync_bn, "torch": torch.__version__,
        }, separators=(",", ":")), flush=True)
    if distributed:
        barrier()
        dist.destroy_process_group()


def worker(rank, world, port, args):
    try:
        bench(rank, world, port, args)
    except KeyboardInterrupt:
        sys.exit(130)  # quietly: the parent reports the interruption


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=positive(int), default=1)
    parser.add_argument("--warmup", type=positive(int), default=5)
    parser.add_argument("--budget", type=positive(float), default=3.0, help="seconds of timed steps")
    parser.add_argument("--global-batch", type=positive(int), default=256)
    args = parser.parse_args()
    if args.global_batch % args.ranks:
        parser.error(f"--ranks {args.ranks} must divide the global batch {args.global_batch}")
    if args.ranks == 1:
        bench(0, 1, None, args)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so mp.spawn's cleanup runs
    try:
        mp.spawn(worker, args=(args.ranks, free_port(), args), nprocs=args.ranks, join=True,
                 daemon=True)
    except KeyboardInterrupt:
        sys.exit("torch_ddp_bench: interrupted")
    except ProcessException as error:
        sys.exit(f"torch_ddp_bench: a rank failed: {str(error).strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
