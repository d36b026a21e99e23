"""fastmlp.sklearn.MLPClassifier vs sklearn.neural_network.MLPClassifier on the shipped digits.

Run: ``python benchmarks/compare_sklearn.py [--repeats 3] [--max-iter 20]``

Same fixed split (``fastmlp.datasets.digits_train_test()``), the same standardisation for both,
the same hyperparameters (scikit-learn's names and meaning), every epoch run (``tol=0``,
``n_iter_no_change=max_iter``). Each cell is the median of ``--repeats`` fits with seeds 0, 1, ...;
one warm-up fit per estimator and setting comes first and is not timed (for fastmlp it
compiles or loads the Numba kernels). Prints a markdown table.

This is a script, not part of the asv suite: it defines no ``time_``/``track_`` benchmarks, and
scikit-learn is imported only when it runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np

from fastmlp.datasets import digits_train_test

SETTINGS = {
    "online SGD (batch 1, momentum 0)": dict(batch_size=1, momentum=0.0),
    "mini-batch SGD (batch 32, momentum 0.9)": dict(batch_size=32, momentum=0.9),
}
COMMON = dict(
    hidden_layer_sizes=(32,), activation="tanh", solver="sgd", learning_rate_init=0.01,
    alpha=1e-4, nesterovs_momentum=True,
)  # fmt: skip


def _fit_and_score(cls, params, data, seed):
    X_train, y_train, X_test, y_test = data
    est = cls(**params, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: every epoch is run on purpose
        start = time.perf_counter()
        est.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return seconds, est.score(X_test, y_test), est.n_iter_


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=20)
    args = parser.parse_args(argv)

    import numba
    import sklearn
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.preprocessing import StandardScaler

    from fastmlp.sklearn import MLPClassifier as FastMLP

    X_train, y_train, X_test, y_test = digits_train_test()
    scaler = StandardScaler().fit(X_train)
    data = (scaler.transform(X_train), y_train, scaler.transform(X_test), y_test)

    print(
        f"Machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )
    print(
        f"Data: digits, {len(y_train)} train / {len(y_test)} test rows, standardised; "
        f"common settings: {COMMON}, max_iter={args.max_iter}, tol=0; "
        f"median of {args.repeats} fits (seeds 0..{args.repeats - 1}), warm-up fit excluded\n"
    )
    print("| setting | estimator | test accuracy | fit time (s) | epochs | speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for name, extra in SETTINGS.items():
        params = {**COMMON, **extra, "max_iter": args.max_iter, "tol": 0.0}
        params["n_iter_no_change"] = args.max_iter
        rows = {}
        for label, cls in (("scikit-learn", SkMLP), ("fastmlp", FastMLP)):
            _fit_and_score(cls, params, data, seed=0)  # warm-up (fastmlp: compile)
            runs = [_fit_and_score(cls, params, data, seed) for seed in range(args.repeats)]
            rows[label] = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
                runs[0][2],
            )
        sk_time = rows["scikit-learn"][0]
        for label, (seconds, accuracy, epochs) in rows.items():
            speedup = f"{sk_time / seconds:.1f}x" if label == "fastmlp" else "1.0x"
            print(f"| {name} | {label} | {accuracy:.4f} | {seconds:.3f} | {epochs} | {speedup} |")


if __name__ == "__main__":
    main()
