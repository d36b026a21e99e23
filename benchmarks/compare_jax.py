"""fastmlp's ``fit`` against JAX's ``jit`` + ``lax.scan`` on per-sample SGD, from one run.

The same per-sample SGD epoch (the bench's networks, ``fastmlp.bench.NETWORKS``: sizes,
activations, loss, data and lr; no shuffling, the rows in order) written as JAX users write it:
a loss of one sample, ``jax.value_and_grad``, the update ``p - lr * g`` on every array, and
``lax.scan`` over the samples, the whole epoch under ``jax.jit``. JAX starts from fastmlp's
initial parameters, and the parameters after one epoch are compared (printed as the largest
relative difference), so both sides are seen to do the same arithmetic. Prints samples/s of
each (median of ``--repeats`` epochs, the two interleaved) and their ratio.

Run: ``python benchmarks/compare_jax.py [--nets xor,digits] [--repeats 7]`` (needs
``pip install jax``; JAX is not a dependency of fastmlp, nor of its extras: it is imported
only here).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fastmlp import bench


def _jax_epoch(spec: bench.Network, dtype: str):
    """``(epoch(params, X, Y) -> (params, losses), to_jax, from_jax)`` for one network."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", dtype == "float64")
    acts = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}
    hidden = acts[spec.hidden]
    n_layers = len(spec.sizes) - 1

    def forward(params, x):
        a = x
        for l, (W, b) in enumerate(params):
            z = W @ a + b
            if l < n_layers - 1:
                a = hidden(z)
            elif spec.output == "softmax":
                return z  # the loss takes the logits
            else:
                a = acts[spec.output](z) if spec.output != "identity" else z
        return a

    def loss(params, x, y):
        out = forward(params, x)
        if spec.loss == "mse":
            return 0.5 * jnp.sum((out - y) ** 2)
        return jnp.sum(y * (jax.nn.logsumexp(out) - out))  # cross_entropy on a softmax

    grad = jax.value_and_grad(loss)
    lr = spec.lr

    def step(params, xy):
        value, g = grad(params, *xy)
        return jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g), value

    @jax.jit
    def epoch(params, X, Y):
        return jax.lax.scan(step, params, (X, Y))

    def to_jax(net):
        W = net.layout.weights(net.params)  # per layer (n_out, n_in), as fastmlp stores them
        b = net.layout.biases(net.params)
        return [(jnp.asarray(w.copy()), jnp.asarray(c.copy())) for w, c in zip(W, b, strict=True)]

    def from_jax(params):
        return np.concatenate(
            [np.concatenate([np.asarray(W).ravel(), np.asarray(b)]) for W, b in params]
        )

    return epoch, to_jax, from_jax


def compare(name: str, dtype: str, repeats: int) -> dict:
    """Samples/s of fastmlp's ``fit`` and of the JAX epoch on one network, interleaved."""
    import jax

    spec = bench.NETWORKS[name]
    X, y = bench.make_data(name)
    net = bench.make_model(name, dtype)
    Xc = np.ascontiguousarray(X, dtype=net.dtype)
    n_out = spec.sizes[-1]
    Y = np.eye(n_out)[y] if spec.output == "softmax" else np.asarray(y).reshape(-1, n_out)
    Y = Y.astype(net.dtype)
    epoch, to_jax, from_jax = _jax_epoch(spec, dtype)
    start = to_jax(net)
    Xj, Yj = jax.numpy.asarray(Xc), jax.numpy.asarray(Y)
    jax.block_until_ready(epoch(start, Xj, Yj))  # compile

    twin = bench.make_model(name, dtype)
    twin.fit(Xc, y, epochs=1, lr=spec.lr, shuffle=False)
    after = from_jax(epoch(start, Xj, Yj)[0])
    diff = float(np.max(np.abs(after - twin.params)) / np.max(np.abs(twin.params)))

    def run_fit() -> None:
        net.fit(Xc, y, epochs=1, lr=spec.lr, shuffle=False)

    def run_jax() -> None:
        jax.block_until_ready(epoch(start, Xj, Yj))

    run_fit()
    t_fit, t_jax = [], []
    for _ in range(repeats):
        t_fit.append(bench._elapsed(run_fit))
        t_jax.append(bench._elapsed(run_jax))
    n = Xc.shape[0]
    fast, slow = n / statistics.median(t_fit), n / statistics.median(t_jax)
    return {"net": name, "dtype": dtype, "fastmlp": fast, "jax": slow, "ratio": fast / slow,
            "max_rel_diff": diff}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default="xor,digits")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    import jax

    print(f"JAX {jax.__version__}, CPU; samples/s, median of {args.repeats} epochs, interleaved "
          f"({time.strftime('%Y-%m-%d')})")  # fmt: skip
    print(
        "| net | dtype | fastmlp fit | JAX jit + scan | fastmlp / JAX | params after, rel. diff |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name in args.nets.split(","):
        for dtype in args.dtypes.split(","):
            r = compare(name, dtype, args.repeats)
            print(f"| {name} | {dtype} | {r['fastmlp']:,.0f} | {r['jax']:,.0f} | "
                  f"{r['ratio']:.2f} | {r['max_rel_diff']:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
