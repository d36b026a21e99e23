"""Per-event costs on the (9, 32, 2) stream net: prints one JSON object {call: median µs}.

Run it against two checkouts in turn to compare them in one session (docs/performance.md,
"One event at a time"): ``PYTHONPATH=<checkout> python benchmarks/per_event.py``, from an
environment where fastmlp is not installed in editable mode. ``--anchors`` adds scikit-learn's
own ``MLPClassifier``. Calls that a checkout lacks (``test_then_train``) are left out.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

from fastmlp import MLP


def median_us(call, calls: int, loops: int = 7) -> float:
    """Median over ``loops`` of the mean µs per call of ``calls`` calls, after a warm-up."""
    for _ in range(max(200, calls // 10)):
        call()
    times = []
    for _ in range(loops):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return float(np.median(times))


def stream_loop(rows: list, labels: list) -> float:
    """µs per event of a predict-then-learn pass with a fresh net."""
    net = MLP((9, 32, 2), seed=0)
    start = time.perf_counter()
    if hasattr(net, "test_then_train"):
        for x, label in zip(rows, labels, strict=True):
            net.test_then_train(x, label, 0.05)
    else:
        for x, label in zip(rows, labels, strict=True):
            net.predict(x[None])
            net.step(x, label, 0.05)
    return (time.perf_counter() - start) / len(rows) * 1e6


def sklearn_costs(X: np.ndarray, labels: np.ndarray, anchors: bool) -> dict[str, float]:
    """One-row calls of fastmlp.sklearn's estimators (and scikit-learn's own MLP)."""
    from fastmlp.sklearn import MLPClassifier, MLPRegressor

    res = {}
    row, label = X[5:6], labels[5:6]
    clf = MLPClassifier((32,), random_state=0).partial_fit(X[:50], labels[:50], classes=[0, 1])
    res["sklearn MLPClassifier.partial_fit 1 row"] = median_us(
        lambda: clf.partial_fit(row, label), 2000
    )
    res["sklearn MLPClassifier.predict 1 row"] = median_us(lambda: clf.predict(row), 2000)
    res["sklearn MLPClassifier.predict_proba 1 row"] = median_us(
        lambda: clf.predict_proba(row), 2000
    )
    target = X[:, 0] * 3.0
    reg = MLPRegressor((32,), random_state=0).partial_fit(X[:50], target[:50])
    res["sklearn MLPRegressor.partial_fit 1 row"] = median_us(
        lambda: reg.partial_fit(row, target[5:6]), 2000
    )
    res["sklearn MLPRegressor.predict 1 row"] = median_us(lambda: reg.predict(row), 2000)
    if anchors:
        from sklearn.neural_network import MLPClassifier as SklearnMLP

        sk = SklearnMLP((32,), solver="sgd", batch_size=1, random_state=0)
        sk.partial_fit(X[:50], labels[:50], classes=[0, 1])
        res["scikit-learn's MLPClassifier.partial_fit 1 row"] = median_us(
            lambda: sk.partial_fit(row, label), 1000
        )
        res["scikit-learn's MLPClassifier.predict_proba 1 row"] = median_us(
            lambda: sk.predict_proba(row), 1000
        )
    return res


def main() -> None:
    """Print the JSON object."""
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 9))
    labels = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    net = MLP((9, 32, 2), seed=0)
    x, onehot = X[0], np.eye(2)[1]
    res = {
        "step(x, int label)": median_us(lambda: net.step(x, 1, 1e-6), 20000),
        "step(x, one-hot)": median_us(lambda: net.step(x, onehot, 1e-6), 20000),
        "predict(x[None])": median_us(lambda: net.predict(x[None]), 20000),
    }
    if hasattr(net, "test_then_train"):
        res["test_then_train(x, label)"] = median_us(lambda: net.test_then_train(x, 1, 1e-6), 20000)
    rows, label_list = list(X), labels.tolist()
    stream_loop(rows, label_list)  # warm-up
    res["predict + learn loop per event"] = float(
        np.median([stream_loop(rows, label_list) for _ in range(7)])
    )
    res.update(sklearn_costs(X, labels, "--anchors" in sys.argv))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
