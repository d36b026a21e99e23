"""One-run speed comparison: ``python -m fastmlp.bench``.

For each named network x dtype it measures, in the same process, the median over ``--repeats``
runs of:

- fastmlp: one epoch of ``MLP.fit(X, Y, epochs=1, shuffle=False)`` (validation included,
  compile excluded);
- the NumPy reference (``fastmlp.reference.train_epoch``) on the first ``--ref-samples`` rows;
- the one-pass bound: one read-modify-write pass over a parameter-sized buffer per sample
  (``_kernels.one_pass_bound``); exact per-sample SGD summed one sample at a time must at least
  do that. ``fit``'s blocked epochs (``tuning.block_size``) sum layer 0 over blocks of samples
  and can pass it;
- the arithmetic limit: two multiply-adds per parameter per sample (a blocked layer 0's
  product and update) at the peak multiply-add rate of the kernels' own register-tiled loop
  (``_kernels.multiply_add_peak``, measured in the same run).

and prints samples/s and the ratios fastmlp/reference, fastmlp/bound and fastmlp/limit, plus
the latency of one ``step`` call from Python on xor. The networks and data are shared with
``benchmarks/``.

fastmlp/bound is the median of paired ratios: each repeat times the bound, then ``fit``, then
the bound again, and takes ``fit`` against the mean of the two bound runs around it (as
``parallel_speedups`` does), so a slow patch of the machine hits both sides. The reference's
repeats run after all of those: its long Python loop slows the work that follows it for a
while, so with it between the repeats ``fit`` (and, less, the bound) read slower than the same
run again, and fastmlp/bound came out lower than with the reference in its own block.

Every timed run comes right after untimed warm-up runs of the same job for ``WARMUP_SECONDS``
(the reference: one, on its first ``WARMUP_REF_SAMPLES`` rows), the second bound run of a pair
too: ``fit`` leaves the bound's buffer untouched for a whole epoch, and it would stall (below).
On a virtual machine, memory left untouched for a fraction of a second can be slow to touch
again: the first pass over it, or an epoch right after a pause, can take many times as long as
the same work run a second time. Interleaving without the warm-up timed that instead of the
kernels. So a figure is the steady
state of a job run again on warm memory, as in the 2nd and later epochs of a ``fit``.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np

from . import _kernels as K
from . import _validation as V
from . import datasets, reference, tuning
from .layout import work_buffer
from .model import MLP

__all__ = ["NETWORKS", "Network", "bound_buffer", "compare", "main", "make_data", "make_model"]


@dataclass(frozen=True)
class Network:
    """A named benchmark network: layer sizes, activations, loss and its data set."""

    name: str
    sizes: tuple[int, ...]
    hidden: str
    output: str
    loss: str
    data: str
    lr: float


# Append-only: benchmark history depends on these never changing.
NETWORKS = {
    "xor": Network("xor", (2, 3, 2, 1), "sigmoid", "sigmoid", "mse", "xor20000", 0.4),
    "digits": Network("digits", (64, 32, 10), "tanh", "softmax", "cross_entropy", "digits", 0.02),
    "mnist128": Network(
        "mnist128", (784, 128, 10), "relu", "softmax", "cross_entropy", "random6000", 0.001
    ),
    "wide": Network(
        "wide", (784, 512, 256, 10), "relu", "softmax", "cross_entropy", "random1500", 0.001
    ),
}


@cache
def make_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic data of a network: ``X`` float64 and ``y`` (labels or (n, 1) targets)."""
    net = NETWORKS[name]
    rng = np.random.default_rng(12345)
    if net.data == "xor20000":
        X4, Y4 = datasets.xor()
        rows = rng.integers(0, 4, size=20_000)
        return X4[rows], Y4[rows]
    if net.data == "digits":
        return datasets.load_digits()
    n_samples = {"random6000": 6_000, "random1500": 1_500}[net.data]
    X = rng.random((n_samples, net.sizes[0]))
    y = rng.integers(0, net.sizes[-1], size=n_samples)
    return X, y


def make_model(name: str, dtype: str = "float64", seed: int = 0) -> MLP:
    """Return a fresh ``MLP`` for the named network."""
    net = NETWORKS[name]
    return MLP(net.sizes, hidden=net.hidden, output=net.output, loss=net.loss, seed=seed,
               dtype=dtype)  # fmt: skip


def bound_buffer(net: MLP) -> np.ndarray:
    """Return the one-pass bound's buffer for ``net``.

    As many parameters as it has (rounded down to whole rows), as rows of ``n_in``, aligned like
    ``params``; the bound does one read-modify-write pass over it per visited sample.
    """
    n_in = net.layout.n_in
    n_rows = max(1, net.n_params // n_in)
    return work_buffer(n_rows * n_in, net.dtype).reshape(n_rows, n_in)


WARMUP_REF_SAMPLES = 256  # the reference's warm-up run: a short one, its full run is slow
WARMUP_SECONDS = 0.002  # a job's own warm-up: repeated until this long (see the module doc)


PEAK_ROW = 256  # multiply_add_peak's rows: 8 x 256 floats stay in L1 in either dtype
PEAK_REPEATS = 20_000  # 82 million multiply-adds per call, ~2-4 ms


def multiply_add_rate(dtype: str, repeats: int = 5) -> float:
    """Return the multiply-adds per second of ``_kernels.multiply_add_peak``, on one core.

    The best of ``repeats`` calls, each after the warm-up of ``_elapsed``: the rate the
    kernels' register-tiled loop reaches on data in L1. A peak, so the fastest call (noise
    only slows a call down; with the median, mnist128 float32 once read 1.04 of the limit).
    """
    A = np.random.default_rng(0).random((8, PEAK_ROW)).astype(dtype)
    K.multiply_add_peak(A, 1)  # compile

    def run_peak() -> None:
        K.multiply_add_peak(A, PEAK_REPEATS)

    seconds = [_elapsed(run_peak) for _ in range(repeats)]
    return 16 * PEAK_ROW * PEAK_REPEATS / min(seconds)


def _elapsed(fn: Callable[[], object], warmup: Callable[[], object] | None = None) -> float:
    """Return the seconds of one call of ``fn``, right after untimed calls of ``warmup``.

    The warm-up is the given one, once, or by default ``fn`` itself, repeated until
    ``WARMUP_SECONDS`` have passed. So the timed call finds its memory recently touched and
    follows a few ms of the same work, not of another job (see the module doc).
    """
    if warmup is None:
        start = time.perf_counter()
        fn()
        while time.perf_counter() - start < WARMUP_SECONDS:
            fn()
    else:
        warmup()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(name: str, dtype: str, repeats: int = 5, ref_samples: int = 2000) -> dict:
    """Samples/s of fastmlp, the reference and the bound for one network, in one process."""
    spec = NETWORKS[name]
    X, y = make_data(name)
    net = make_model(name, dtype)
    n = X.shape[0]
    Xc = np.ascontiguousarray(X, dtype=net.dtype)
    net.fit(Xc[:2], y[:2], epochs=1, lr=spec.lr)  # compile (or load) the kernels

    # The reference works on one-hot float64 targets in the network's dtype.
    n_ref = min(n, ref_samples)
    Y_ref = V.check_Y(y[:n_ref], n_ref, spec.sizes[-1], spec.output, spec.loss, net.dtype)
    X_ref = Xc[:n_ref]
    acts = [*net.hidden, net.output]
    order_ref = np.arange(n_ref)
    p_ref = net.params.copy()

    P = bound_buffer(net)
    order = np.arange(n, dtype=np.int64)
    lr_t = net.dtype.type(1e-9)
    K.one_pass_bound(P, Xc, order[:2], lr_t)

    def run_ref(order_ref: np.ndarray) -> None:
        reference.train_epoch(net.layout, p_ref, acts, spec.loss, X_ref, Y_ref, order_ref, spec.lr)

    def run_fit() -> None:
        net.fit(Xc, y, epochs=1, lr=spec.lr, shuffle=False)

    def run_bound() -> None:
        K.one_pass_bound(P, Xc, order, lr_t)

    t_fast, t_bound, paired = [], [], []
    for _ in range(repeats):  # fit between two runs of the bound (see the module doc)
        before = _elapsed(run_bound)
        fast = _elapsed(run_fit)
        after = _elapsed(run_bound)  # its own warm-up again: fit does not touch its buffer
        t_fast.append(fast)
        t_bound += [before, after]
        paired.append((before + after) / 2 / fast)
    t_ref = [  # after them: its long Python loop slows the next few ms of other work
        _elapsed(
            lambda: run_ref(order_ref),
            lambda: (X_ref.sum(), run_ref(order_ref[:WARMUP_REF_SAMPLES])),
        )
        for _ in range(repeats)
    ]
    fast = n / float(np.median(t_fast))
    ref = n_ref / float(np.median(t_ref))
    limit = multiply_add_rate(dtype, repeats) / (2 * net.n_params)
    return {
        "net": name,
        "dtype": dtype,
        "n_params": net.n_params,
        "fastmlp": fast,
        "reference": ref,
        "bound": n / float(np.median(t_bound)),
        "vs_reference": fast / ref,
        "vs_bound": float(np.median(paired)),
        "limit": limit,
        "vs_limit": fast / limit,
    }


def step_latency(dtype: str = "float64", calls: int = 20_000, repeats: int = 5) -> float:
    """Median seconds per ``net.step(x, y, lr)`` call from Python on xor (validation included)."""
    net = make_model("xor", dtype)
    X, Y = make_data("xor")
    x, yv = X[0].astype(dtype), Y[0].astype(dtype)
    net.step(x, yv, 0.4)
    per_call = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            net.step(x, yv, 0.4)
        per_call.append((time.perf_counter() - t) / calls)
    return float(np.median(per_call))


def _nothing() -> None:
    """No warm-up: the runs just before warmed the memory up already."""


def parallel_speedups(name: str, dtype: str, repeats: int = 5, n_jobs: int = 2) -> dict:
    """Return same-run speed-ups on ``n_jobs`` threads over one.

    Timed: ``fit(n_jobs=...)`` with ``parallel="rows"`` and with ``parallel="hogwild"`` over
    serial ``fit`` (one epoch, fixed order), and for mnist128 ``predict`` of 100,000 rows (the
    issue's case). ``independent`` is the yardstick: ``n_jobs`` separate models, each fit
    serially in its own thread, i.e. ``n_jobs`` times the work with nothing shared and no
    barrier; its speed-up is the most ``n_jobs`` threads can give on this machine at that moment
    (below ``n_jobs`` when other processes or the hypervisor take CPU time, or when the cores
    share a cache or memory bus).

    Per key: ``paired``, the quartiles ``[q25, median, q75]`` of paired ratios (each parallel
    time against the mean of the serial times just before and after it, so a slow patch of a
    shared machine hits both sides), and ``best``, best serial time over best parallel time
    (noise only ever slows a run down, so the best times are the least disturbed ones).
    """
    X, Y = make_data(name)
    X = np.ascontiguousarray(X, dtype=dtype)
    model = make_model(name, dtype)
    lr = NETWORKS[name].lr
    for parallel in ("rows", "hogwild"):  # compile
        model.fit(X[:4], Y[:4], lr=1e-9, n_jobs=n_jobs, parallel=parallel)
    twins = [make_model(name, dtype, seed=k) for k in range(1, n_jobs)]
    for twin in twins:
        twin.fit(X[:4], Y[:4], lr=1e-9)
    serial_fit = functools.partial(model.fit, X, Y, lr=lr, shuffle=False)

    def independent() -> None:
        with ThreadPoolExecutor(max(1, len(twins))) as pool:
            futures = [pool.submit(twin.fit, X, Y, lr=lr, shuffle=False) for twin in twins]
            serial_fit()
            for future in futures:
                future.result()

    # key: (one thread, n_jobs threads)
    runs = {"independent": (serial_fit, independent)} | {
        parallel: (serial_fit, functools.partial(serial_fit, n_jobs=n_jobs, parallel=parallel))
        for parallel in ("rows", "hogwild")
    }
    if name == "mnist128":
        rows = np.random.default_rng(1).random((100_000, X.shape[1])).astype(dtype)
        runs["predict"] = (functools.partial(model.predict, rows, n_jobs=1),
                           functools.partial(model.predict, rows, n_jobs=n_jobs))  # fmt: skip
    keys = tuple(runs)
    work = {key: n_jobs if key == "independent" else 1 for key in keys}  # in serial epochs
    serial = {key: [] for key in keys}
    par = {key: [] for key in keys}
    ratios = {key: [] for key in keys}
    for _ in range(repeats):
        for key, (one, many) in runs.items():
            many()  # warm-up: touches all that ``one`` and ``many`` touch (see the module doc)
            before, t, after = (
                _elapsed(one, _nothing),
                _elapsed(many, _nothing),
                _elapsed(one, _nothing),
            )
            serial[key] += [before, after]
            par[key].append(t)
            ratios[key].append(work[key] * (before + after) / 2 / t)
    return {"net": name, "dtype": dtype} | {
        key: {
            "paired": np.percentile(ratios[key], [25, 50, 75]).tolist(),
            "best": work[key] * min(serial[key]) / min(par[key]),
        }
        for key in keys
    }


def format_table(rows: Sequence[dict]) -> str:
    head = (
        f"| {'network':<9}| {'dtype':<8}| {'params':>8} | {'fastmlp /s':>12} | "
        f"{'reference /s':>12} | {'bound /s':>12} | {'limit /s':>12} | {'vs ref':>7} | "
        f"{'vs bound':>8} | {'vs limit':>8} |"
    )
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(
            f"| {r['net']:<9}| {r['dtype']:<8}| {r['n_params']:>8,} | {r['fastmlp']:>12,.0f} | "
            f"{r['reference']:>12,.0f} | {r['bound']:>12,.0f} | {r['limit']:>12,.0f} | "
            f"{r['vs_reference']:>6.1f}x | {r['vs_bound']:>8.2f} | {r['vs_limit']:>8.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print its table and the parallel speed-ups.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        The exit code, 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m fastmlp.bench", description="fastmlp vs reference vs one-pass bound"
    )
    parser.add_argument("--nets", default=",".join(NETWORKS), help="comma-separated names")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref-samples", type=int, default=2000)
    parser.add_argument(
        "--parallel", default="mnist128,wide", help="nets for the 2-thread fit / predict ratios"
    )
    args = parser.parse_args(argv)
    rows = []
    for name in args.nets.split(","):
        for dtype in args.dtypes.split(","):
            rows.append(compare(name, dtype, args.repeats, args.ref_samples))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, medians of {args.repeats} interleaved repeats"
    )
    print(format_table(rows))
    for dtype in args.dtypes.split(","):
        print(f"step(x, y, lr) on xor, {dtype}: {step_latency(dtype) * 1e6:.2f} us per call")
    n_jobs = tuning.available_cores()
    for name in filter(None, args.parallel.split(",")):
        for dtype in args.dtypes.split(","):
            r = parallel_speedups(name, dtype, args.repeats, n_jobs)
            labels = {"independent": "independent fits (yardstick)", "rows": "fit rows",
                      "hogwild": "fit hogwild", "predict": "predict 1e5 rows"}  # fmt: skip
            print(f"{name} {dtype}, {n_jobs} threads vs 1, best/best and median [quartiles] of "
                  "paired ratios: " + "; ".join(
                      f"{labels[key]} {r[key]['best']:.2f}x, {r[key]['paired'][1]:.2f}x "
                      f"[{r[key]['paired'][0]:.2f}-{r[key]['paired'][2]:.2f}]"
                      for key in labels if key in r))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
