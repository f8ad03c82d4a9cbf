#!/usr/bin/env python3
"""JAX side of Ember's whole-workload benchmarks (see BENCHMARKS.md).

The same workloads as `torch_workloads.py` and `Sources/EmberWorkloads/`, written in plain
`jax.numpy` / `jax.lax` under `jax.jit` (no Flax, no Optax): BatchNorm with batch statistics and
running averages (momentum 0.1, unbiased running variance), inverted Dropout, cross entropy as
`log_softmax` and a mean, SGD with momentum 0.9 as PyTorch writes it (`buf = 0.9 buf + g;
p -= lr buf`), `lax.conv_general_dilated` (NCHW / OIHW) and `lax.reduce_window` max pooling.
Every timed call ends with `block_until_ready()`. Same protocol as `torch_workloads.py`
(`peer_protocol.py`):

    python3 Tools/bench/jax_workloads.py --threads 1 --budget 1.0
    python3 Tools/bench/jax_workloads.py --memory-run --model lenet --samples 6400 --epochs 3

Threads. XLA's CPU client sizes its thread pools from the CPUs the process may run on, and in
jaxlib 0.10 it ignores `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`
for matrix products (measured: 1.3 s of CPU per second of a 2048 matmul with the flags). So before
`import jax` the process restricts its CPU affinity to `--threads` CPUs (and sets those flags and
OMP/MKL/OpenBLAS thread counts to N for whatever honours them), runs one tiny computation so the
pools exist, then gives every thread back all CPUs, so the scheduler can move them like
PyTorch's and Ember's threads. With `--threads 1` the process then uses one CPU-second per second.

Not run in JAX: `seed.forward_eval_grad` (JAX records no tape: a forward pass is the same whether
or not a gradient is taken later, so "eval mode, recording" has no counterpart).
"""

import os
import sys
import time

from peer_protocol import Skip, main, parse_arguments, status_bytes


def limit_threads(threads):
    """Restricts the process to `threads` CPUs while XLA creates its thread pools (module docstring).
    Returns the CPUs to give back afterwards."""
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(sorted(everything)[:threads]))
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1 else ""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    return everything


def release_cpus(everything):
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), everything)
        except OSError:
            pass


# --- Layers as pure functions over dictionaries of arrays ---------------------------------------

def linear_init(key, fan_in, fan_out, bias=True):
    """PyTorch's default initialisation: uniform in +-1/sqrt(fan_in)."""
    import jax
    bound = fan_in ** -0.5
    kw, kb = jax.random.split(key)
    p = {"w": jax.random.uniform(kw, (fan_out, fan_in), minval=-bound, maxval=bound)}
    if bias:
        p["b"] = jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound)
    return p


def conv_init(key, cin, cout, k, bias=True):
    import jax
    bound = (cin * k * k) ** -0.5
    kw, kb = jax.random.split(key)
    p = {"w": jax.random.uniform(kw, (cout, cin, k, k), minval=-bound, maxval=bound)}
    if bias:
        p["b"] = jax.random.uniform(kb, (cout,), minval=-bound, maxval=bound)
    return p


def linear(p, x):
    y = x @ p["w"].T
    return y + p["b"] if "b" in p else y


def conv(p, x, padding=0):
    from jax import lax
    y = lax.conv_general_dilated(x, p["w"], (1, 1), [(padding, padding)] * 2,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p["b"][None, :, None, None] if "b" in p else y


def max_pool2(x):
    import jax.numpy as jnp
    from jax import lax
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def batch_norm(p, stats, x, training, axes):
    """BatchNorm over `axes` (batch, and spatial for 2-D). Returns the output and the new running
    statistics (unchanged in eval mode)."""
    import jax.numpy as jnp
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    if training:
        mean = x.mean(axes)
        var = x.var(axes)
        count = x.size // x.shape[1]
        stats = {"mean": 0.9 * stats["mean"] + 0.1 * mean,
                 "var": 0.9 * stats["var"] + 0.1 * var * count / (count - 1)}
    else:
        mean, var = stats["mean"], stats["var"]
    y = (x - mean.reshape(shape)) * (1 / jnp.sqrt(var.reshape(shape) + 1e-5))
    return y * p["gamma"].reshape(shape) + p["beta"].reshape(shape), stats


def bn_init(c):
    import jax.numpy as jnp
    return {"gamma": jnp.ones(c), "beta": jnp.zeros(c)}, {"mean": jnp.zeros(c), "var": jnp.ones(c)}


def dropout(key, x, rate, training):
    import jax
    if not training:
        return x
    keep = jax.random.bernoulli(key, 1 - rate, x.shape)
    return x * keep / (1 - rate)


def cross_entropy(logits, labels):
    import jax
    import jax.numpy as jnp
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()


def sgd_momentum(params, grads, momentum, lr=0.01, beta=0.9):
    """PyTorch's SGD with momentum (dampening 0): `buf = beta buf + g; p -= lr buf` (the buffer
    starts at zero, so the first step's buffer is the gradient, as in PyTorch)."""
    import jax
    momentum = jax.tree_util.tree_map(lambda b, g: beta * b + g, momentum, grads)
    params = jax.tree_util.tree_map(lambda p, b: p - lr * b, params, momentum)
    return params, momentum


# --- Models: (init, apply) where apply(params, stats, x, key, training) -> (out, stats) ----------

def seed_model():
    """Linear(10, 20) -> ReLU -> BatchNorm1d(20) -> Dropout(0.5) -> Linear(20, 2)."""
    import jax

    def init(key):
        k1, k2 = jax.random.split(key)
        bn, stats = bn_init(20)
        return {"l1": linear_init(k1, 10, 20), "bn": bn, "l2": linear_init(k2, 20, 2)}, {"bn": stats}

    def apply(p, s, x, key, training):
        h, bn = batch_norm(p["bn"], s["bn"], jax.nn.relu(linear(p["l1"], x)), training, (0,))
        return linear(p["l2"], dropout(key, h, 0.5, training)), {"bn": bn}
    return init, apply


def mlp_model():
    """784 -> 512 -> 256 -> 10; BatchNorm1d, ReLU, Dropout(0.2) after each hidden Linear."""
    import jax

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        bn1, s1 = bn_init(512)
        bn2, s2 = bn_init(256)
        return ({"l1": linear_init(k1, 784, 512), "bn1": bn1, "l2": linear_init(k2, 512, 256), "bn2": bn2,
                 "l3": linear_init(k3, 256, 10)}, {"bn1": s1, "bn2": s2})

    def apply(p, s, x, key, training):
        k1, k2 = jax.random.split(key) if training else (None, None)
        h, s1 = batch_norm(p["bn1"], s["bn1"], linear(p["l1"], x), training, (0,))
        h = dropout(k1, jax.nn.relu(h), 0.2, training)
        h, s2 = batch_norm(p["bn2"], s["bn2"], linear(p["l2"], h), training, (0,))
        h = dropout(k2, jax.nn.relu(h), 0.2, training)
        return linear(p["l3"], h), {"bn1": s1, "bn2": s2}
    return init, apply


def lenet_model():
    """Conv2d(1,32,3) ReLU MaxPool2d(2) Conv2d(32,64,3) ReLU MaxPool2d(2) Flatten Linear(1600,128)
    ReLU Linear(128,10), on 1x28x28."""
    import jax

    def init(key):
        k = jax.random.split(key, 4)
        return ({"c1": conv_init(k[0], 1, 32, 3), "c2": conv_init(k[1], 32, 64, 3),
                 "l1": linear_init(k[2], 1600, 128), "l2": linear_init(k[3], 128, 10)}, {})

    def apply(p, s, x, key, training):
        h = max_pool2(jax.nn.relu(conv(p["c1"], x)))
        h = max_pool2(jax.nn.relu(conv(p["c2"], h)))
        h = jax.nn.relu(linear(p["l1"], h.reshape(h.shape[0], -1)))
        return linear(p["l2"], h), s
    return init, apply


def resnet_model(blocks=3, c=32):
    """`blocks` basic blocks: conv3x3(bias=False)-BN-ReLU-conv3x3-BN, plus the input, then ReLU."""
    import jax

    def init(key):
        params, stats = [], []
        for k in jax.random.split(key, blocks):
            k1, k2 = jax.random.split(k)
            bn1, s1 = bn_init(c)
            bn2, s2 = bn_init(c)
            params.append({"c1": conv_init(k1, c, c, 3, bias=False), "bn1": bn1,
                           "c2": conv_init(k2, c, c, 3, bias=False), "bn2": bn2})
            stats.append({"bn1": s1, "bn2": s2})
        return params, stats

    def apply(p, s, x, key, training):
        new = []
        for bp, bs in zip(p, s):
            h, s1 = batch_norm(bp["bn1"], bs["bn1"], conv(bp["c1"], x, 1), training, (0, 2, 3))
            h, s2 = batch_norm(bp["bn2"], bs["bn2"], conv(bp["c2"], jax.nn.relu(h), 1), training, (0, 2, 3))
            x = jax.nn.relu(h + x)
            new.append({"bn1": s1, "bn2": s2})
        return x, new
    return init, apply


def make_train_step(apply, loss):
    """A jitted step: forward in training mode, loss, gradients, SGD with momentum. The state
    (parameters, momentum, running statistics, random key) is threaded through and donated."""
    import jax

    def step(params, momentum, stats, key, x, y):
        key, sub = jax.random.split(key)

        def objective(p):
            out, new_stats = apply(p, stats, x, sub, True)
            return loss(out, y), new_stats
        (value, new_stats), grads = jax.value_and_grad(objective, has_aux=True)(params)
        params, momentum = sgd_momentum(params, grads, momentum)
        return params, momentum, new_stats, key, value
    return jax.jit(step, donate_argnums=(0, 1, 2, 3))


class Trainer:
    """Holds a model's state between timed calls; `step(x, y)` runs one training step."""

    def __init__(self, model, seed=0):
        import jax
        init, apply = model
        self.params, self.stats = init(jax.random.PRNGKey(seed))
        self.momentum = jax.tree_util.tree_map(lambda p: p * 0, self.params)
        self.key = jax.random.PRNGKey(seed + 1)
        self.apply = apply

    def compile(self, loss):
        self._step = make_train_step(self.apply, loss)
        return self

    def step(self, x, y):
        self.params, self.momentum, self.stats, self.key, value = self._step(
            self.params, self.momentum, self.stats, self.key, x, y)
        return value


def mse(out, target):
    return ((out - target) ** 2).mean()


def workload_builders(sizes):
    """Every timed workload: key -> function that builds its state and returns the timed body."""
    import jax
    import jax.numpy as jnp

    rng = jax.random.PRNGKey(0)
    builders = {}

    def training_body(model, x, y, loss=cross_entropy):
        trainer = Trainer(model).compile(loss)
        return lambda: trainer.step(x, y).block_until_ready()

    def forward_body(model, x, training):
        init, apply = model
        params, stats = init(jax.random.PRNGKey(0))
        if training:
            # The running statistics are updated and the dropout key advanced on every call.
            def fwd(params, stats, key, x):
                key, sub = jax.random.split(key)
                out, stats = apply(params, stats, x, sub, True)
                return out, stats, key
            f = jax.jit(fwd, donate_argnums=(1, 2))
            state = {"stats": stats, "key": jax.random.PRNGKey(1)}

            def body():
                out, state["stats"], state["key"] = f(params, state["stats"], state["key"], x)
                out.block_until_ready()
            return body
        f = jax.jit(lambda params, stats, x: apply(params, stats, x, None, False)[0])
        return lambda: f(params, stats, x).block_until_ready()

    kx, ky = jax.random.split(rng)
    seed_x, seed_y = jax.random.normal(kx, (32, 10)), jax.random.randint(ky, (32,), 0, 2)

    def no_recording():
        raise Skip("JAX records no tape: an eval forward is the same with or without a later gradient")
    builders["seed.forward_train"] = lambda: forward_body(seed_model(), seed_x, True)
    builders["seed.forward_eval_grad"] = no_recording
    builders["seed.forward_eval_nograd"] = lambda: forward_body(seed_model(), seed_x, False)
    builders["seed.train_step"] = lambda: training_body(seed_model(), seed_x, seed_y)

    mlp_x, mlp_y = jax.random.uniform(kx, (128, 784)), jax.random.randint(ky, (128,), 0, 10)
    builders["mlp.train_step_b128"] = lambda: training_body(mlp_model(), mlp_x, mlp_y)
    for batch in (1024, 1):
        xb = jax.random.uniform(kx, (batch, 784))
        builders[f"mlp.eval_b{batch}"] = (lambda xb: lambda: forward_body(mlp_model(), xb, False))(xb)

    def sgemm(n):
        def build():
            a, b = jax.random.uniform(kx, (n, n)), jax.random.uniform(ky, (n, n))
            f = jax.jit(jnp.dot)
            return lambda: f(a, b).block_until_ready()
        return build
    for n in sizes:
        builders[f"sgemm.{n}"] = sgemm(n)

    lenet_x, lenet_y = jax.random.uniform(kx, (64, 1, 28, 28)), jax.random.randint(ky, (64,), 0, 10)
    builders["cnn.lenet_train_b64"] = lambda: training_body(lenet_model(), lenet_x, lenet_y)
    builders["cnn.lenet_eval_b64"] = lambda: forward_body(lenet_model(), lenet_x, False)
    res_x, res_t = jax.random.normal(kx, (32, 32, 32, 32)), jax.random.normal(ky, (32, 32, 32, 32))
    builders["cnn.resnet_train_b32"] = lambda: training_body(resnet_model(), res_x, res_t, loss=mse)
    builders["cnn.resnet_eval_b32"] = lambda: forward_body(resnet_model(), res_x, False)

    def conv_alone(batch, cin, cout, side):
        def build():
            p = conv_init(jax.random.PRNGKey(0), cin, cout, 3)
            x = jax.random.uniform(kx, (batch, cin, side, side))
            f = jax.jit(lambda p, x: conv(p, x, 1))
            return lambda: f(p, x).block_until_ready()
        return build
    for batch, cin, cout, side in [(32, 32, 32, 32), (32, 64, 64, 16), (8, 128, 128, 16), (64, 1, 32, 28)]:
        builders[f"conv.{cin}x{cout}_{side}_b{batch}"] = conv_alone(batch, cin, cout, side)

    def no_encoder_layer():
        raise Skip("no TransformerEncoderLayer is written for JAX here; attention alone is compared")
    builders["transformer.encoder_train_b16_s128"] = no_encoder_layer
    builders["transformer.encoder_eval_b16_s128"] = no_encoder_layer

    def attention_eval():
        # jax.nn.dot_product_attention takes [batch, length, heads, dim]; the same sizes as
        # Ember's and PyTorch's [4, 8, 512, 32].
        q, k, v = (jax.random.normal(key, (4, 512, 8, 32)) for key in jax.random.split(kx, 3))
        f = jax.jit(jax.nn.dot_product_attention)
        return lambda: f(q, k, v).block_until_ready()
    builders["transformer.attention_eval_s512"] = attention_eval
    return builders


def memory_run(args):
    """Trains the MLP (batch 128) or LeNet (batch 64) for `--epochs` epochs on `--samples` synthetic
    samples, shuffled each epoch (a NumPy permutation; the last partial batch kept, as PyTorch's
    DataLoader does), and reports peak RSS; `import_rss_bytes` is the peak after `import jax`."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import_rss = status_bytes("VmHWM")
    lenet_run = args.model == "lenet"
    rng = np.random.default_rng(0)
    shape = (args.samples, 1, 28, 28) if lenet_run else (args.samples, 784)
    x = rng.random(shape, dtype=np.float32)
    y = rng.integers(0, 10, args.samples).astype(np.int32)
    batch = 64 if lenet_run else 128
    trainer = Trainer(lenet_model() if lenet_run else mlp_model()).compile(cross_entropy)
    start = time.perf_counter()
    loss = jnp.zeros(())
    for _ in range(args.epochs):
        order = rng.permutation(args.samples)
        for i in range(0, args.samples, batch):
            index = order[i:i + batch]
            loss = trainer.step(jnp.asarray(x[index]), jnp.asarray(y[index]))
    loss = float(loss)
    seconds = time.perf_counter() - start
    return {"version": jax.__version__, "peak_rss_bytes": status_bytes("VmHWM"), "import_rss_bytes": import_rss,
            "seconds": seconds, "final_loss": loss}


if __name__ == "__main__":
    arguments = parse_arguments(__doc__)
    cpus = limit_threads(1 if arguments.memory_run else arguments.threads)
    import warnings

    warnings.filterwarnings("ignore", message=".*[Dd]onat.*")
    import jax
    import jax.numpy as jnp

    jax.jit(lambda a: a @ a)(jnp.ones((64, 64))).block_until_ready()  # the thread pools now exist
    release_cpus(cpus)
    main(arguments, "JAX", jax.__version__, workload_builders, memory_run)
