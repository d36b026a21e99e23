"""Per-event online learning from Python: fastmlp against Vowpal Wabbit's ``--nn``.

One pass of test-then-train (predict each event, then learn it) over the same generated
stream: 9 features, a non-linear binary label, one hidden layer of 32 tanh units. Prints, per
learner, the median µs per event over ``--repeats`` passes (fresh model each, learners
interleaved) and the progressive accuracy (deterministic: seeded stream, seeded models).

fastmlp runs twice: with a learning rate that decays as ``0.05 / sqrt(1 + t / 1000)`` at
event t (the inverse square root of VW's default ``--power_t 0.5``, computed in the loop: the
lr is an argument of each call), and with a constant ``--lr``. Vowpal Wabbit runs twice: with
its own defaults (adaptive, normalised, invariant updates, decayed with ``--power_t 0.5``) and
as plain SGD (``--sgd -l LR --power_t 0 --holdout_off``), LR the constant one. Accuracy is
given on the timed stream and as the mean over ``--streams`` streams (seeds 0, 1, ...; the
decay's two round constants were picked on seed 0, the other seeds check that they carry
over). VW's examples are formatted as text before the timed loop (its Python API takes text
or parsed examples), so its time is parsing, learning and finishing each example; fastmlp's
is ``test_then_train`` on a NumPy row and an int label. Two more VW rows show what a loop
written as users write it costs: ``predict`` then ``learn`` (two parses), and the text
formatted from each NumPy row.

Differences that remain between the two networks: VW hashes feature names into a weight table
(18 bits) and adds a constant feature; it computes tanh with a fast approximation and clips the
hidden units' pre-activations to [-3, 3]; its hidden layer learns through VW's base learner
(squared loss on back-propagated targets), its output is one logit under the logistic loss
(labels -1/+1), where fastmlp has a 2-unit softmax with cross-entropy (the same model,
over-parameterised by one unit) and float64 arithmetic.

Run: ``python benchmarks/compare_vw.py`` (needs ``pip install vowpalwabbit``; the ``bench``
extra installs it).
"""

from __future__ import annotations

import argparse
import math
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


def run_fastmlp(
    X: np.ndarray, y: list[int], lr: float, decay_events: float = 0.0
) -> tuple[float, float]:
    """(µs per event, progressive accuracy) of one test-then-train pass: the learning rate
    ``lr``, or with ``decay_events`` > 0 ``lr / sqrt(1 + t / decay_events)`` at event t (the
    inverse-square-root decay of VW's default ``--power_t 0.5``, computed in the loop)."""
    net = MLP((N_FEATURES, N_HIDDEN, 2), hidden="tanh", seed=0)
    rows = list(X)  # the events, as they would arrive: one row each
    correct = 0
    start = time.perf_counter()
    for t, (x, label) in enumerate(zip(rows, y, strict=True)):
        lr_t = lr / math.sqrt(1.0 + t / decay_events) if decay_events else lr
        p0, p1 = net.test_then_train(x, label, lr_t).tolist()  # Python floats: cheap to compare
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


def learners(X: np.ndarray, y: list[int], lr: float, decay_lr: float, decay_events: float):
    """The timed passes on one stream, by table row."""
    lines = vw_lines(X, y)
    return {
        f"fastmlp, lr {decay_lr:g}/sqrt(1+t/{decay_events:g})": lambda: run_fastmlp(
            X, y, decay_lr, decay_events
        ),
        f"fastmlp, constant lr {lr:g}": lambda: run_fastmlp(X, y, lr),
        "VW --nn 32, defaults": lambda: run_vw(lines, y, ""),
        f"VW --nn 32 --sgd -l {lr:g} --power_t 0": lambda: run_vw(
            lines, y, f"--sgd -l {lr} --power_t 0 --holdout_off"
        ),
        "VW defaults, predict() then learn()": lambda: run_vw_predict_learn(lines, y),
        "VW defaults, text formatted per event": lambda: run_vw_from_rows(X, y),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--streams",
        type=int,
        default=3,
        help="streams (seeds 0..N-1) the mean accuracy is taken over",
    )
    parser.add_argument("--lr", type=float, default=0.01, help="the constant-lr rows' lr")
    parser.add_argument("--decay-lr", type=float, default=0.05)
    parser.add_argument("--decay-events", type=float, default=1000.0)
    args = parser.parse_args(argv)
    X, y = make_stream(args.events)
    timed = learners(X, y, args.lr, args.decay_lr, args.decay_events)
    run_fastmlp(X[:2000], y[:2000], args.lr)  # compile/load the kernels
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in timed}
    for _ in range(args.repeats):  # interleaved: the machine's drift hits every learner
        for name, run in timed.items():
            results[name].append(run())
    accuracies = {name: [runs[0][1]] for name, runs in results.items()}
    for seed in range(1, args.streams):  # the other streams: accuracy only, one pass each
        X_s, y_s = make_stream(args.events, seed)
        for name, run in learners(X_s, y_s, args.lr, args.decay_lr, args.decay_events).items():
            accuracies[name].append(run()[1])
    base = statistics.median(r[0] for r in next(iter(results.values())))
    print(f"{args.events} events, {N_FEATURES} features, one hidden layer of {N_HIDDEN} tanh; "
          f"median of {args.repeats} passes on stream 0; accuracy on stream 0 and the mean "
          f"over streams 0..{args.streams - 1}")  # fmt: skip
    print(f"| {'learner':<40} | {'us/event':>9} | {'x fastmlp':>9} | {'accuracy':>8} "
          f"| {'mean':>6} |")  # fmt: skip
    print(f"|{'-' * 42}|{'-' * 10}:|{'-' * 10}:|{'-' * 9}:|{'-' * 7}:|")
    for name, runs in results.items():
        us = statistics.median(r[0] for r in runs)
        acc = accuracies[name]
        print(f"| {name:<40} | {us:9.2f} | {us / base:9.1f} | {acc[0]:8.4f} "
              f"| {statistics.fmean(acc):6.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
