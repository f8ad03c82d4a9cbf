#!/usr/bin/env python3
"""PyTorch side of `swift run -c release ember-rnn-bench`: the same LSTM measurements, as JSON.

Usage: torch_rnn_bench.py THREADS SAMPLES WARMUP

Model: nn.LSTM(64, 128, num_layers=2, dropout=0.2, batch_first=True), input [32, 50, 64] float32.
Prints one JSON object with the median milliseconds of SAMPLES timed calls (after WARMUP calls):
  {"version": str, "threads": int,
   "forward_eval_ms":  model.eval(), forward under torch.no_grad(),
   "forward_train_ms": model.train(), forward recording the graph (dropout between the layers),
   "train_step_ms":    zero_grad, forward, MSE loss, backward, SGD step (lr 0.01)}
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def median_ms(op, samples, warmup):
    for _ in range(warmup):
        op()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        op()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    threads, samples, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.LSTM(64, 128, num_layers=2, dropout=0.2, batch_first=True)
    x = torch.randn(32, 50, 64)
    target = torch.randn(32, 50, 128)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def forward_eval():
        with torch.no_grad():
            model(x)

    def forward_train():
        model(x)

    def train_step():
        optimizer.zero_grad()
        out, _ = model(x)
        F.mse_loss(out, target).backward()
        optimizer.step()

    result = {"version": torch.__version__, "threads": threads}
    model.eval()
    result["forward_eval_ms"] = median_ms(forward_eval, samples, warmup)
    model.train()
    result["forward_train_ms"] = median_ms(forward_train, samples, warmup)
    result["train_step_ms"] = median_ms(train_step, samples, warmup)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
