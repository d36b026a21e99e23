"""fastmlp.river against River's own models on River's bundled streams, from one run.

Run: ``python benchmarks/compare_river.py [--repeats 3] [--no-knn]``

Each model runs ``river.evaluate.progressive_val_score`` (one pass, every event predicted, then
learned) on Bananas, Phishing and ImageSegments (accuracy) and TrumpApproval (MAE); the models
that need scaled inputs have River's ``StandardScaler`` in front. Each stream is read into
memory once, so the figures are the models' own cost (StandardScaler included), not the CSV
parsing. River's models run with their defaults, seeded (kNN: 5 neighbours and its default
SWINN index with ``seed=0``, ~0.5 ms per event; ``--no-knn`` leaves it out). µs/event is the
median of ``--repeats`` runs; the runs of the models on one stream are interleaved, so each
median sees the same machine noise. The scores are deterministic (seeded models) and taken from
the first run. One untimed warm-up of fastmlp on each stream comes first (it loads the Numba
kernels). Prints a markdown table.

This is a script, not part of the asv suite (``bench_river.py`` is); River is imported only
when it runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

CLASSIFICATION = ("Bananas", "Phishing", "ImageSegments")
REGRESSION = ("TrumpApproval",)


def classifiers(multiclass: bool, knn: bool) -> dict[str, Callable]:
    from river import linear_model, neighbors, preprocessing, tree

    from fastmlp.river import MLPClassifier

    scaled = preprocessing.StandardScaler
    linear = (
        ("River SoftmaxRegression", lambda: scaled() | linear_model.SoftmaxRegression())
        if multiclass
        else ("River LogisticRegression", lambda: scaled() | linear_model.LogisticRegression())
    )
    models = dict(
        [
            ("fastmlp MLPClassifier", lambda: scaled() | MLPClassifier(seed=0)),
            linear,
            ("River HoeffdingAdaptiveTree", lambda: tree.HoeffdingAdaptiveTreeClassifier(seed=0)),
        ]
    )
    if knn:
        models["River KNNClassifier"] = lambda: (
            scaled() | neighbors.KNNClassifier(engine=neighbors.SWINN(seed=0))
        )
    return models


def regressors(knn: bool) -> dict[str, Callable]:
    from river import dummy, linear_model, neighbors, preprocessing, stats, tree

    from fastmlp.river import MLPRegressor

    scaled = preprocessing.StandardScaler
    models = {
        "fastmlp MLPRegressor": lambda: scaled() | MLPRegressor(seed=0),
        "River LinearRegression": lambda: scaled() | linear_model.LinearRegression(),
        "River HoeffdingAdaptiveTree": lambda: (
            scaled() | tree.HoeffdingAdaptiveTreeRegressor(seed=0)
        ),
    }
    if knn:
        models["River KNNRegressor"] = lambda: (
            scaled() | neighbors.KNNRegressor(engine=neighbors.SWINN(seed=0))
        )
    models["running mean"] = lambda: dummy.StatisticRegressor(stats.Mean())
    return models


def run(events: list, make: Callable, metric: Callable) -> tuple[float, float]:
    """One progressive validation: (score, µs per event)."""
    from river import evaluate

    model = make()
    start = time.perf_counter()
    score = evaluate.progressive_val_score(events, model, metric()).get()
    return score, (time.perf_counter() - start) / len(events) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-knn", action="store_true", help="leave River's kNN out (slow)")
    args = parser.parse_args(argv)

    import numba
    import river
    from river import datasets, metrics

    print(
        f"Machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}, "
        f"River {river.__version__}; {time.strftime('%Y-%m-%d')}"
    )
    print(
        f"progressive_val_score, one pass; µs/event: median of {args.repeats} interleaved runs, "
        "streams in memory, StandardScaler included where used\n"
    )
    print("| stream | events | model | score | µs/event |")
    print("|---|---:|---|---:|---:|")
    jobs = [(name, metrics.Accuracy, "accuracy") for name in CLASSIFICATION]
    jobs += [(name, metrics.MAE, "MAE") for name in REGRESSION]
    for name, metric, label in jobs:
        ds = getattr(datasets, name)()
        events = list(ds)
        if label == "MAE":
            models = regressors(not args.no_knn)
        else:
            multiclass = len({y for _, y in events}) > 2
            models = classifiers(multiclass, not args.no_knn)
        run(events[:200], next(iter(models.values())), metric)  # warm-up: load the kernels
        scores: dict[str, float] = {}
        times: dict[str, list[float]] = {m: [] for m in models}
        for _ in range(args.repeats):
            for model_name, make in models.items():
                score, us = run(events, make, metric)
                scores.setdefault(model_name, score)
                times[model_name].append(us)
        for model_name in models:
            digits = 4 if label == "accuracy" else 3
            shown = f"{scores[model_name]:.{digits}f}"
            print(
                f"| {name} | {len(events):,} | {model_name} | {label} {shown} | "
                f"{statistics.median(times[model_name]):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
