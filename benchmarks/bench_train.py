"""Training and inference speed, step latency and memory of ``fit``.

Every ``setup`` builds its model and makes one warm-up call, which compiles the kernels (or loads
them from Numba's disk cache): asv's 0.1 s ``warmup_time`` cannot absorb a compile, and no timed
figure here includes one. First-call cost is measured in ``bench_compile.py``.

asv runs every benchmark (and every parameter combination) in its own forked process and, when
``setup`` exists, re-runs ``setup`` before each timed sample, so each sample starts from a fresh
model. In-process caches therefore do not outlive one benchmark; what several benchmarks share is
computed once in ``setup_cache``.
"""

import inspect
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import fastmlp.bench
from fastmlp import MLP

from .common import (
    DTYPES,
    NETS,
    NETWORKS,
    compare,
    lr_of,
    make_model,
    mnist_like,
    random_rows,
    step_latency,
    train_inputs,
)


@cache
def _compare(net: str, dtype: str) -> dict:
    """``fastmlp.bench.compare``: fastmlp, the NumPy reference and the one-pass bound measured in
    one process (medians of 5 epochs); fastmlp against the bound as paired ratios, each fit
    between two bound runs, so both sides see the same machine noise."""
    return compare(net, dtype, repeats=5)


class TrainEpoch:
    """One epoch of online SGD in a fixed order, ``fit(X, y, epochs=1, shuffle=False)``, on the
    named networks (``fastmlp.bench.NETWORKS``), validation included, compile excluded."""

    params = (NETS, DTYPES)
    param_names = ["net", "dtype"]
    timeout = 300

    def setup_cache(self):
        # The three track_ benchmarks of one (net, dtype) run in three processes, so a per-process
        # cache would measure everything three times: measure every combination once, here, and
        # hand the (picklable) figures to every benchmark of the class.
        keys = ("fastmlp", "vs_reference", "vs_bound", "vs_limit")  # vs_limit: NaN before it
        return {
            (net, dtype): {k: _compare(net, dtype).get(k, float("nan")) for k in keys}
            for net in NETS
            for dtype in DTYPES
        }

    setup_cache.timeout = 900  # all 8 comparisons, ~45 s here; the reference is slow

    def setup(self, ratios, net, dtype):
        self.X, self.y = train_inputs(net, dtype)
        self.lr = lr_of(net)
        self.model = make_model(net, dtype)
        self.model.fit(self.X[:2], self.y[:2], epochs=1, lr=self.lr, shuffle=False)  # warm-up

    def time_train_epoch(self, ratios, net, dtype):
        self.model.fit(self.X, self.y, epochs=1, lr=self.lr, shuffle=False)

    def track_samples_per_second(self, ratios, net, dtype):
        return ratios[net, dtype]["fastmlp"]

    track_samples_per_second.unit = "samples/s"

    def track_speedup_vs_reference(self, ratios, net, dtype):
        return ratios[net, dtype]["vs_reference"]

    track_speedup_vs_reference.unit = "ratio"

    def track_fraction_of_memory_bound(self, ratios, net, dtype):
        return ratios[net, dtype]["vs_bound"]

    track_fraction_of_memory_bound.unit = "ratio"

    def track_fraction_of_arithmetic_limit(self, ratios, net, dtype):
        return ratios[net, dtype]["vs_limit"]

    track_fraction_of_arithmetic_limit.unit = "ratio"


class BlockedEpoch:
    """One epoch of ``fit`` (fixed order) on the nets whose layer 0 is large, with
    ``block_size=1`` (one sample at a time, the order before blocks) and with the default
    (layer 0 summed over blocks, ``fastmlp.tuning.block_size``): the ratio of the two is what
    the blocked kernel gives. Skipped on commits without ``block_size``."""

    params = (["mnist128", "wide"], DTYPES, ["1", "default"])
    param_names = ["net", "dtype", "block_size"]

    def setup(self, net, dtype, block_size):
        if "block_size" not in inspect.signature(MLP.fit).parameters:
            raise NotImplementedError("no blocked epochs in this commit")
        self.X, self.y = train_inputs(net, dtype)
        self.lr = lr_of(net)
        self.block_size = 1 if block_size == "1" else None
        self.model = make_model(net, dtype)
        self.model.fit(self.X[:16], self.y[:16], lr=self.lr, block_size=self.block_size)

    def time_epoch(self, net, dtype, block_size):
        self.model.fit(self.X, self.y, lr=self.lr, shuffle=False, block_size=self.block_size)


class ArithmeticPeak:
    """Multiply-adds per second of the kernels' register-tiled loop on data in L1
    (``fastmlp.bench.multiply_add_rate``): the yardstick of ``vs_limit``. Skipped on commits
    without it."""

    params = DTYPES
    param_names = ["dtype"]

    def setup(self, dtype):
        if not hasattr(fastmlp.bench, "multiply_add_rate"):
            raise NotImplementedError("no multiply_add_rate in this commit")

    def track_multiply_adds_per_second(self, dtype):
        return fastmlp.bench.multiply_add_rate(dtype)

    track_multiply_adds_per_second.unit = "multiply-adds/s"


class ParallelEpoch:
    """One epoch of ``fit(n_jobs=2)`` (fixed order), ``parallel="rows"`` (exact SGD, rows split
    between two threads) and ``"hogwild"`` (two threads taking samples, shared parameters);
    compare with ``TrainEpoch.time_train_epoch`` of the same net for the speed-up.
    ``"independent"`` is the yardstick: two models fit serially side by side, one per thread
    (twice the work, nothing shared), so 2x its time over this one is what two threads could
    give at best on the machine at that moment."""

    params = (["mnist128", "wide"], DTYPES, ["rows", "hogwild", "independent"])
    param_names = ["net", "dtype", "parallel"]

    def setup(self, net, dtype, parallel):
        self.X, self.Y = train_inputs(net, dtype)
        self.lr = lr_of(net)
        self.model = make_model(net, dtype)
        if parallel == "independent":
            self.twin = make_model(net, dtype, seed=1)
            for model in (self.model, self.twin):
                model.fit(self.X[:4], self.Y[:4], lr=1e-9)  # compile
            self.pool = ThreadPoolExecutor(1)
        else:
            self.model.fit(self.X[:4], self.Y[:4], lr=1e-9, n_jobs=2, parallel=parallel)

    def teardown(self, net, dtype, parallel):
        if parallel == "independent":
            self.pool.shutdown()

    def time_parallel_epoch(self, net, dtype, parallel):
        if parallel == "independent":
            future = self.pool.submit(self.twin.fit, self.X, self.Y, lr=self.lr, shuffle=False)
            self.model.fit(self.X, self.Y, lr=self.lr, shuffle=False)
            future.result()
        else:
            self.model.fit(self.X, self.Y, lr=self.lr, shuffle=False, n_jobs=2, parallel=parallel)


class Predict:
    """``predict`` on 10,000 rows (uniform in [0, 1), C-contiguous, the model's dtype), with the
    default ``n_jobs`` (threads for large inputs)."""

    params = (["digits", "mnist128"], DTYPES)
    param_names = ["net", "dtype"]
    n_rows = 10_000

    def setup(self, net, dtype):
        self.X = random_rows(self.n_rows, NETWORKS[net].sizes[0], dtype)
        self.model = make_model(net, dtype)
        # Warm-up on all rows: 10,000 rows take the threaded path (n_jobs=None), 2 rows would not.
        self.model.predict(self.X)

    def time_predict(self, net, dtype):
        self.model.predict(self.X)


class StepLatency:
    """One ``net.step(x, y, lr)`` call from Python on xor, validation included (the streaming
    API). ``time_step`` is one call per asv sample (asv re-runs ``setup`` between samples);
    ``track_step_microseconds`` is the median per-call time of loops of 20,000 calls, the more
    precise figure (``time_step`` includes asv's timer overhead, a few tenths of a us)."""

    params = DTYPES
    param_names = ["dtype"]
    repeat = (20, 200, 5.0)  # single ~1 us calls: take many samples

    def setup(self, dtype):
        X, y = train_inputs("xor", dtype)
        self.x, self.y = X[0].copy(), y[0].astype(dtype)
        self.lr = lr_of("xor")
        self.model = make_model("xor", dtype)
        # Warm-up: the first calls after loading the kernels are 10-20x slower (measured: 20 us
        # for the second call, ~1.5 us from the fourth on), and asv times one call per sample.
        for _ in range(100):
            self.model.step(self.x, self.y, self.lr)

    def time_step(self, dtype):
        self.model.step(self.x, self.y, self.lr)

    def track_step_microseconds(self, dtype):
        return step_latency(dtype, calls=20_000) * 1e6

    track_step_microseconds.unit = "us"


class PeakMemory:
    """Memory of ``fit`` (one epoch, default shuffling) of the mnist128 net on 60,000 x 784
    float32 rows in [0, 1) with labels 0..9: 188 MB of data.

    ``peakmem_fit`` is asv's figure, the maximum RSS of the whole benchmark process: Python,
    NumPy, Numba, the loaded kernels and the data (loaded from ``setup_cache``) included. A copy
    of ``X`` inside ``fit`` would add 188 MB to it. ``track_fit_extra_memory_mb`` is what ``fit``
    itself allocates (tracemalloc, which sees NumPy's buffers): O(params + n_samples), not a copy
    of ``X``.
    """

    timeout = 300
    net, dtype = "mnist128", "float32"

    def setup_cache(self):
        X, y = mnist_like(60_000)
        # Compile here, in asv's setup_cache process, so that the kernels are in Numba's disk
        # cache and the measured process only loads them (compiling costs ~50 MB of RSS).
        make_model(self.net, self.dtype).fit(X[:2], y[:2], lr=lr_of(self.net))
        return X, y

    def setup(self, data):
        X, y = data
        self.model = make_model(self.net, self.dtype)
        self.model.fit(X[:2], y[:2], lr=lr_of(self.net))  # warm-up: load the kernels

    def peakmem_fit(self, data):
        X, y = data
        self.model.fit(X, y, epochs=1, lr=lr_of(self.net))

    def track_fit_extra_memory_mb(self, data):
        X, y = data
        tracemalloc.start()
        try:
            self.model.fit(X, y, epochs=1, lr=lr_of(self.net))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak / 2**20

    track_fit_extra_memory_mb.unit = "MB"
