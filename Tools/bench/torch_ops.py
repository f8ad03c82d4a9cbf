#!/usr/bin/env python3
"""PyTorch's side of `ember-bench --profile ops:N`: milliseconds per call of common ops on a
[1024, 1024] float32 tensor, one thread, in the same order and format (name, ms)."""
import sys
import time

import torch

torch.set_num_threads(1)
count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
u = torch.empty(1024, 1024).uniform_(0.5, 2)
v = torch.empty(1024, 1024).uniform_(0.5, 2)
row = torch.empty(1024).uniform_(0.5, 2)
ops = [
    ("add", lambda: u + v), ("mul", lambda: u * v), ("div", lambda: u / v), ("add_scalar", lambda: u + 1.5),
    ("mul_scalar", lambda: u * 1.5), ("add_row_broadcast", lambda: u + row), ("neg", lambda: -u),
    ("abs", lambda: u.abs()), ("exp", lambda: u.exp()), ("log", lambda: u.log()), ("sqrt", lambda: u.sqrt()),
    ("tanh", lambda: u.tanh()), ("sigmoid", lambda: u.sigmoid()), ("relu", lambda: u.relu()),
    ("gelu", lambda: torch.nn.functional.gelu(u)), ("silu", lambda: torch.nn.functional.silu(u)),
    ("pow2", lambda: u.pow(2)), ("clamp", lambda: u.clamp(0.8, 1.5)), ("maximum", lambda: torch.maximum(u, v)),
    ("gt", lambda: u > v), ("sum", lambda: u.sum()), ("sum_axis0", lambda: u.sum(0)), ("sum_axis1", lambda: u.sum(1)),
    ("mean", lambda: u.mean()), ("max", lambda: u.max()), ("softmax", lambda: u.softmax(1)),
    ("log_softmax", lambda: u.log_softmax(1)), ("transpose_contiguous", lambda: u.t().contiguous()),
]
with torch.no_grad():
    for name, op in ops:
        op()
        start = time.perf_counter()
        for _ in range(count):
            op()
        print(name, "%.3f" % ((time.perf_counter() - start) / count * 1e3))
