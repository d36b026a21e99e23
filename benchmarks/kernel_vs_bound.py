"""The training kernel against the one-pass bound on a small, warm slice of a network's data.

Run: ``python benchmarks/kernel_vs_bound.py mnist128 [--rows 300] [--laps 10] [--repeats 21]``

``fastmlp._kernels.train_epoch`` (what ``fit`` runs for plain online SGD) and the one-pass bound
(``_kernels.one_pass_bound``) visit the same order: the network's first ``--rows`` rows,
``--laps`` times. Each timed run comes right after untimed runs of the same job (``_elapsed``:
for ``WARMUP_SECONDS``), fastmlp and bound alternate, and the script prints best/best and the
median of the paired ratios (each kernel time against the bound time right after it).

Why: on the VM of the README's figures, memory left idle for ~0.1 s is slow to touch again,
and an epoch over the full 6,000 (mnist128) or 1,500 (wide) rows streams more data than stays
warm, so ``python -m fastmlp.bench`` times stalls for those networks (docs/performance.md,
"Warm-up"). A few hundred rows stay in cache and warm; what is left is the kernel's own efficiency.
Medians still catch the VM's other stalls: best/best is the least disturbed figure.

This is a script, not part of the asv suite: it defines no ``time_``/``track_`` benchmarks.
"""

from __future__ import annotations

import argparse

import numpy as np

from fastmlp import _kernel_args as KA
from fastmlp import _kernels as K
from fastmlp import _validation as V
from fastmlp.bench import NETWORKS, _elapsed, bound_buffer, make_data, make_model


def measure(name: str, dtype: str, rows: int, laps: int, repeats: int) -> dict:
    """Samples/s of the kernel and the bound (best), best/best and median paired ratio."""
    spec = NETWORKS[name]
    X, y = make_data(name)
    net = make_model(name, dtype)
    X = np.ascontiguousarray(X[:rows], dtype=net.dtype)
    Y = V.check_Y(y[:rows], X.shape[0], spec.sizes[-1], spec.output, spec.loss, net.dtype)
    net.fit(X[:2], Y[:2], lr=spec.lr)  # compile (or load) the kernels
    order = np.tile(np.arange(X.shape[0], dtype=np.int64), laps)
    losses = np.empty(order.shape[0], dtype=net.dtype)
    lr = net.dtype.type(spec.lr)
    P = bound_buffer(net)
    args = KA.KernelArgs.of(net)
    tiny = net.dtype.type(1e-9)
    K.one_pass_bound(P, X, order[:2], tiny)

    def kernel() -> None:
        K.train_epoch(net.params, args.meta, args.loss_code, X, Y, order, lr, args.zs,
                      args.acts, args.deltas, losses)  # fmt: skip

    def bound() -> None:
        K.one_pass_bound(P, X, order, tiny)

    t_kernel, t_bound = [], []
    for _ in range(repeats):  # each timed run right after a warm-up run of itself
        t_kernel.append(_elapsed(kernel))
        t_bound.append(_elapsed(bound))
    t_kernel, t_bound = np.array(t_kernel), np.array(t_bound)
    n = order.shape[0]
    return {
        "kernel": n / t_kernel.min(),
        "bound": n / t_bound.min(),
        "best_over_best": t_bound.min() / t_kernel.min(),
        "paired_median": float(np.median(t_bound / t_kernel)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", help="comma-separated network names")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--laps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args(argv)
    for name in args.nets.split(","):
        for dtype in args.dtypes.split(","):
            r = measure(name, dtype, args.rows, args.laps, args.repeats)
            print(f"{name} {dtype}, first {args.rows} rows x {args.laps}: kernel "
                  f"{r['kernel']:,.0f}/s, bound {r['bound']:,.0f}/s (best); fraction of the "
                  f"bound: best/best {r['best_over_best']:.2f}, paired median "
                  f"{r['paired_median']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
