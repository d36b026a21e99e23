"""One event at a time: the per-event calls of a stream on the issue's (9, 32, 2) net, where a
call's cost is mostly the Python around one kernel call (``fastmlp._streaming``,
``fastmlp.sklearn._online``). Each ``time_*`` is one call on one row.
"""

import time

import numpy as np

from fastmlp import MLP

from .common import DTYPES

N_FEATURES, N_HIDDEN = 9, 32  # the stream net of issue 19: (9, 32, 2)


def _median_us(call, loops=7, calls=5000):
    """Median over ``loops`` of the mean µs per call of ``calls`` back-to-back calls (the
    precise figure; asv's own timing of a single sub-microsecond call is coarser)."""
    times = []
    for _ in range(loops):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return float(np.median(times))


def _rows(dtype, n=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, N_FEATURES)).astype(dtype)
    labels = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, labels


class StepEvent:
    """``MLP.step``, ``MLP.test_then_train`` and a one-row ``MLP.predict``: softmax output,
    the target an int class label or a one-hot row of the model's dtype."""

    params = (DTYPES, ["label", "one-hot"])
    param_names = ["dtype", "target"]
    repeat = (20, 200, 5.0)

    def setup(self, dtype, target):
        self.net = MLP((N_FEATURES, N_HIDDEN, 2), seed=0, dtype=dtype)
        X, labels = _rows(dtype)
        self.x, self.row = X[0], X[:1]
        self.y = int(labels[0]) if target == "label" else np.eye(2, dtype=dtype)[labels[0]]
        for _ in range(500):  # compile/load the kernels, warm the caches
            self.net.step(self.x, self.y, 1e-6)
            self.net.predict(self.row)

    def time_step(self, dtype, target):
        self.net.step(self.x, self.y, 1e-6)

    def time_test_then_train(self, dtype, target):
        if not hasattr(self.net, "test_then_train"):  # older commits
            raise NotImplementedError
        self.net.test_then_train(self.x, self.y, 1e-6)

    def time_predict_one_row(self, dtype, target):
        self.net.predict(self.row)

    def track_step_us(self, dtype, target):
        return _median_us(lambda: self.net.step(self.x, self.y, 1e-6))

    track_step_us.unit = "us"

    def track_predict_one_row_us(self, dtype, target):
        return _median_us(lambda: self.net.predict(self.row))

    track_predict_one_row_us.unit = "us"


class SklearnEvent:
    """``fastmlp.sklearn``'s ``partial_fit``, ``predict`` and ``predict_proba`` of one row
    (default estimator parameters but the hidden layer)."""

    params = ["binary", "multiclass", "regressor"]
    param_names = ["task"]
    repeat = (20, 100, 5.0)

    def setup(self, task):
        try:
            from fastmlp.sklearn import MLPClassifier, MLPRegressor
        except ImportError:  # scikit-learn not installed
            raise NotImplementedError from None
        X, labels = _rows("float64", 200)
        if task == "multiclass":
            labels = labels + (X[:, 2] > 0.5)
        y = X[:, 0] * 30.0 + 100.0 if task == "regressor" else labels
        if task == "regressor":
            self.est = MLPRegressor((N_HIDDEN,), random_state=0).partial_fit(X, y)
        else:
            self.est = MLPClassifier((N_HIDDEN,), random_state=0)
            self.est.partial_fit(X, y, classes=np.unique(y))
        self.row, self.y = X[:1], y[:1]
        for _ in range(300):
            self.est.partial_fit(self.row, self.y)
            self.est.predict(self.row)

    def time_partial_fit_one_row(self, task):
        self.est.partial_fit(self.row, self.y)

    def time_predict_one_row(self, task):
        self.est.predict(self.row)

    def time_predict_proba_one_row(self, task):
        if task == "regressor":
            raise NotImplementedError
        self.est.predict_proba(self.row)

    def track_partial_fit_one_row_us(self, task):
        return _median_us(lambda: self.est.partial_fit(self.row, self.y), calls=2000)

    track_partial_fit_one_row_us.unit = "us"

    def track_predict_one_row_us(self, task):
        return _median_us(lambda: self.est.predict(self.row), calls=2000)

    track_predict_one_row_us.unit = "us"
