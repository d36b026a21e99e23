"""Training and inference speed. Kernels are compiled in ``setup`` (one warm-up call), so no
timed figure includes compile time; compile time is measured in bench_compile.py."""

import tracemalloc
from functools import cache

import numpy as np

from fastmlp import bench

from .common import DTYPES, MLP, NETS, NETWORKS, make_model, train_inputs


@cache
def _compare(net: str, dtype: str) -> dict:
    # fastmlp, the NumPy reference and the one-pass bound, interleaved in one process.
    return bench.compare(net, dtype, repeats=5)


class TrainEpoch:
    """One epoch of online SGD in a fixed order (``fit(..., shuffle=False)``), per network."""

    params = (NETS, DTYPES)
    param_names = ["net", "dtype"]
    timeout = 600

    def setup(self, net, dtype):
        self.X, self.y = train_inputs(net, dtype)
        self.model = make_model(net, dtype)
        self.lr = NETWORKS[net].lr
        self.model.fit(self.X[:2], self.y[:2], lr=self.lr)  # compile or load the kernels

    def time_train_epoch(self, net, dtype):
        self.model.fit(self.X, self.y, epochs=1, lr=self.lr, shuffle=False)

    def track_samples_per_second(self, net, dtype):
        return _compare(net, dtype)["fastmlp"]

    track_samples_per_second.unit = "samples/s"

    def track_speedup_vs_reference(self, net, dtype):
        return _compare(net, dtype)["vs_reference"]

    track_speedup_vs_reference.unit = "ratio"

    def track_fraction_of_memory_bound(self, net, dtype):
        return _compare(net, dtype)["vs_bound"]

    track_fraction_of_memory_bound.unit = "ratio"


class Predict:
    """``predict`` on 10,000 rows."""

    params = (["digits", "mnist128"], DTYPES)
    param_names = ["net", "dtype"]

    def setup(self, net, dtype):
        n_in = NETWORKS[net].sizes[0]
        rng = np.random.default_rng(0)
        self.X = rng.random((10_000, n_in)).astype(dtype)
        self.model = make_model(net, dtype)
        self.model.predict(self.X[:2])

    def time_predict(self, net, dtype):
        self.model.predict(self.X)


class StepLatency:
    """One ``net.step(x, y, lr)`` call from Python on xor, validation included."""

    params = DTYPES
    param_names = ["dtype"]

    def setup(self, dtype):
        self.model = make_model("xor", dtype)
        self.x = np.array([0.0, 1.0], dtype=dtype)
        self.y = np.array([1.0], dtype=dtype)
        self.model.step(self.x, self.y, 0.4)

    def time_step(self, dtype):
        self.model.step(self.x, self.y, 0.4)

    def track_step_microseconds(self, dtype):
        return bench.step_latency(dtype) * 1e6

    track_step_microseconds.unit = "us"


class PeakMemory:
    """Memory of ``fit`` on 60,000 x 784 float32 rows (mnist128): the data (188 MB) plus
    O(params + n_samples); no copy of X, no allocation per sample."""

    timeout = 600

    def setup_cache(self):
        rng = np.random.default_rng(0)
        X = rng.random((60_000, 784), dtype=np.float32)
        y = rng.integers(0, 10, size=60_000)
        return X, y

    def setup(self, data):
        self.model = MLP((784, 128, 10), hidden="relu", dtype=np.float32)
        self.model.fit(data[0][:2], data[1][:2], lr=0.001)

    def peakmem_fit(self, data):
        # asv's peakmem is the whole process's maximum RSS (data, NumPy and Numba included).
        self.model.fit(data[0], data[1], epochs=1, lr=0.001)

    def track_fit_extra_memory_mb(self, data):
        """Peak memory allocated during one fit epoch, data excluded (tracemalloc)."""
        tracemalloc.start()
        self.model.fit(data[0], data[1], epochs=1, lr=0.001)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20

    track_fit_extra_memory_mb.unit = "MB"
