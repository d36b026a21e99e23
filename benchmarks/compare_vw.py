"""Per-event online learning from Python: fastmlp against Vowpal Wabbit's ``--nn``.

One pass of test-then-train (predict each event, then learn it) over the same generated
stream: 9 features, a non-linear binary label, one hidden layer of 32 tanh units. Prints, per
learner, the median µs per event over ``--repeats`` passes (fresh model each, learners
interleaved) and the progressive accuracy (deterministic: seeded stream, seeded models).

Vowpal Wabbit runs twice: with its own defaults (adaptive, normalised, invariant updates) and
as plain SGD (``--sgd -l LR --power_t 0 --holdout_off``), LR fastmlp's. Its examples are
formatted as text before the timed loop (VW's Python API takes text or parsed examples), so
its time is parsing, learning and finishing each example; fastmlp's is ``test_then_train`` on
a NumPy row and an int label. Two more VW rows show what a loop written as users write it
costs: ``predict`` then ``learn`` (two parses), and the text formatted from each NumPy row.

Differences that remain between the two networks: VW hashes
feature names into a weight table (18 bits) and adds a constant feature; it computes tanh
with a fast approximation and clips the hidden units' pre-activations to [-3, 3]; its hidden
layer learns through VW's base learner (squared loss on back-propagated targets), its output
is one logit under the logistic loss (labels -1/+1), where fastmlp has a 2-unit softmax with
cross-entropy (the same model, over-parameterised by one unit) and float64 arithmetic.

Run: ``python benchmarks/compare_vw.py`` (needs ``pip install vowpalwabbit``; the ``bench``
extra installs it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable

import numpy as np

from fastmlp import MLP

N_FEATURES, N_HIDDEN = 9, 32


def make_stream(n_events: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """``n_events`` rows of 9 standard-normal features and a non-linear 0/1 label."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_events, N_FEATURES))
    score = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + 0.5 * (X[:, 3] ** 2 - 1) + 0.3 * X[:, 4]
    return X, [int(v) for v in score > 0]


def run_fastmlp(X: np.ndarray, y: list[int], lr: float) -> tuple[float, float]:
    """(µs per event, progressive accuracy) of one test-then-train pass."""
    net = MLP((N_FEATURES, N_HIDDEN, 2), hidden="tanh", seed=0)
    rows = list(X)  # the events, as they would arrive: one row each
    correct = 0
    start = time.perf_counter()
    for x, label in zip(rows, y, strict=True):
        p0, p1 = net.test_then_train(x, label, lr).tolist()  # Python floats: cheap to compare
        correct += (p1 > p0) == label
    seconds = time.perf_counter() - start
    return seconds / len(y) * 1e6, correct / len(y)


_NAMES = [f"f{j}" for j in range(N_FEATURES)]


def vw_line(row: list[float], label: int) -> str:
    """One event in VW's text format, label -1/+1."""
    return f"{2 * label - 1} | " + " ".join(
        f"{n}:{v:.17g}" for n, v in zip(_NAMES, row, strict=True)
    )


def vw_lines(X: np.ndarray, y: list[int]) -> list[str]:
    """The events in VW's text format, formatted before any timing."""
    return [vw_line(row, label) for row, label in zip(X.tolist(), y, strict=True)]


def _workspace(flags: str):
    import vowpalwabbit

    return vowpalwabbit.Workspace(f"--nn {N_HIDDEN} --loss_function logistic --quiet {flags}")


def run_vw(lines: Iterable[str], y: list[int], flags: str) -> tuple[float, float]:
    """(µs per event, progressive accuracy) of one pass: parse and learn each example,
    reading the prediction VW made before its update (VW's fastest way from Python). A
    generator of ``lines`` formats each event inside the timed loop."""
    vw = _workspace(flags)
    correct = 0
    start = time.perf_counter()
    for line, label in zip(lines, y, strict=True):
        ex = vw.parse(line)
        vw.learn(ex)
        correct += (ex.get_simplelabel_prediction() > 0) == label
        vw.finish_example(ex)
    seconds = time.perf_counter() - start
    vw.finish()
    return seconds / len(y) * 1e6, correct / len(y)


def run_vw_predict_learn(lines: list[str], y: list[int]) -> tuple[float, float]:
    """The same with VW's two calls a test-then-train loop reads as: ``predict`` the text,
    then ``learn`` it (each parses it)."""
    vw = _workspace("")
    unlabelled = [line.split(" ", 1)[1] for line in lines]
    correct = 0
    start = time.perf_counter()
    for line, features, label in zip(lines, unlabelled, y, strict=True):
        correct += (vw.predict(features) > 0) == label
        vw.learn(line)
    seconds = time.perf_counter() - start
    vw.finish()
    return seconds / len(y) * 1e6, correct / len(y)


def run_vw_from_rows(X: np.ndarray, y: list[int]) -> tuple[float, float]:
    """``run_vw`` with each event's text formatted from its NumPy row in the loop, as a
    stream of numeric rows needs."""
    lines = (vw_line(row.tolist(), label) for row, label in zip(list(X), y, strict=True))
    return run_vw(lines, y, "")


def main(argv: list[str] | None = None) -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args(argv)
    X, y = make_stream(args.events)
    lines = vw_lines(X, y)
    learners = {
        "fastmlp test_then_train": lambda: run_fastmlp(X, y, args.lr),
        "VW --nn 32, defaults": lambda: run_vw(lines, y, ""),
        f"VW --nn 32 --sgd -l {args.lr} --power_t 0": lambda: run_vw(
            lines, y, f"--sgd -l {args.lr} --power_t 0 --holdout_off"
        ),
        "VW defaults, predict() then learn()": lambda: run_vw_predict_learn(lines, y),
        "VW defaults, text formatted per event": lambda: run_vw_from_rows(X, y),
    }
    run_fastmlp(X[:2000], y[:2000], args.lr)  # compile/load the kernels
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in learners}
    for _ in range(args.repeats):  # interleaved: the machine's drift hits every learner
        for name, run in learners.items():
            results[name].append(run())
    base = statistics.median(r[0] for r in results["fastmlp test_then_train"])
    print(f"{args.events} events, {N_FEATURES} features, one hidden layer of {N_HIDDEN} tanh; "
          f"median of {args.repeats} passes")  # fmt: skip
    print(f"| {'learner':<40} | {'us/event':>9} | {'x fastmlp':>9} | {'accuracy':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}:|{'-' * 10}:|{'-' * 9}:|")
    for name, runs in results.items():
        us = statistics.median(r[0] for r in runs)
        print(f"| {name:<40} | {us:9.2f} | {us / base:9.1f} | {runs[0][1]:8.4f} |")


if __name__ == "__main__":
    main()
