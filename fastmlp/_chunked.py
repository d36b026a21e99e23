"""Training on a CSV file chunk by chunk: memory bounded by one chunk and the model.

Each epoch reads the file again: every chunk is preprocessed and trained on with one
``MLP.fit(..., epochs=1)`` call (shuffled within the chunk; each chunk put together from
segments all over the file, in a new random order each epoch: ``CsvSource.shuffled_chunks``). The
optimizer state (momentum, Adam moments) carries over between the calls; ``history_`` gets one
entry per epoch (the chunks' losses, weighted by their rows). The schedules, early stopping and
the validation split are done here across chunks, as ``fit`` does them across epochs: the
held-out rows (``--val-fraction``) are chosen by a hash of their line number, the same in every
epoch, and scored in a second pass at the end of each epoch.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import _report, _sources, optim
from ._table import TableError

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def held_out(lines: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A fixed pseudo-random choice of about ``fraction`` of the rows, by line number."""
    if not fraction:
        return np.zeros(len(lines), dtype=bool)
    x = lines.astype(np.uint64) * GOLDEN + np.uint64(seed & 0xFFFFFFFF)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


class _Monitor:
    """Early stopping and the adaptive schedule over epochs (as ``fastmlp._training``)."""

    def __init__(self, patience: int | None, tol: float, adaptive: bool) -> None:
        self.patience, self.tol, self.adaptive = patience, tol, adaptive
        self.best, self.wait, self.best_params = math.inf, 0, None
        self.best_metric = math.nan

    def after(self, monitored: float, params: np.ndarray, metric: float, lr: float):
        """Return whether to stop, and the next epoch's lr."""
        if monitored < self.best - self.tol:
            self.best, self.wait, self.best_metric = monitored, 0, metric
            if self.patience is not None:
                self.best_params = params.copy()
        else:
            self.wait += 1
        limit = self.patience or 10
        if self.wait < limit:
            return False, lr
        if not self.adaptive:
            return self.patience is not None, lr
        self.wait = 0
        lr /= optim.ADAPTIVE_DIVISOR
        return lr < optim.ADAPTIVE_MIN_LR, lr


def _epoch_lr(args, base: float, epoch: int, adaptive_lr: float) -> float:
    if args.schedule == "step":
        return base * args.gamma ** (epoch // args.step_size)
    if args.schedule == "adaptive":
        return adaptive_lr
    return base  # constant; invscaling is applied by fit per chunk (it counts samples)


def _train_pass(run, source, lr: float, bar, epoch: int) -> tuple[float, int, float, float]:
    """One epoch over the file's training rows: (mean loss, rows, seconds in fit, last lr)."""
    from ._cli_train import optimizer_kwargs

    net, pre, args = run.net, run.pre, run.args
    schedule = "invscaling" if args.schedule == "invscaling" else "constant"
    total, n, seconds, used = 0.0, 0, 0.0, lr
    rng = np.random.default_rng([args.seed & 0xFFFFFFFF, epoch])
    for chunk in source.shuffled_chunks(rng):
        keep = ~held_out(chunk.lines, args.val_fraction, args.seed)
        X = pre.transform(chunk.X[keep])
        Y = _sources.targets(pre, net.output, chunk, source.name)[keep]
        if bar is not None:
            bar.update(len(chunk.lines))
        if not len(Y):
            continue
        lengths = {k: len(v) for k, v in net.history_.items()}
        t0 = time.perf_counter()
        net.fit(X, Y, epochs=1, lr=lr, schedule=schedule, power_t=args.power_t,
                n_jobs=args.n_jobs, parallel=args.parallel, **optimizer_kwargs(args))  # fmt: skip
        seconds += time.perf_counter() - t0
        total += net.history_["loss"][-1] * len(Y)
        used = net.history_["lr"][-1]  # invscaling: this chunk's lr
        n += len(Y)
        for key, length in lengths.items():  # one history entry per epoch, not per chunk
            del net.history_[key][length:]
        del chunk, X, Y  # before the next chunk is read: one chunk in memory at a time
    return total / max(n, 1), n, seconds, used


def _validation_pass(run, source) -> tuple[float, float]:
    """(mean loss, accuracy or RMSE in target units) on the held-out rows."""
    net, pre, args = run.net, run.pre, run.args
    loss, score, n = 0.0, 0.0, 0
    for chunk in source.chunks():
        mask = held_out(chunk.lines, args.val_fraction, args.seed)
        if not mask.any():
            continue
        X = pre.transform(chunk.X[mask])
        Y = _sources.targets(pre, net.output, chunk, source.name)[mask]
        loss += net.loss(X, Y) * len(Y)
        if run.classify:
            truth = Y if net.output == "softmax" else Y >= 0.5
            score += float(np.sum(net.predict_classes(X) == truth))
        else:
            out = pre.unscale_target(net.predict(X)[:, 0])
            score += float(np.sum((out - pre.unscale_target(Y)) ** 2))
        n += len(Y)
        del chunk, X, Y
    if n == 0:
        raise TableError(f"{source.name}: --val-fraction {args.val_fraction} held out no rows")
    return loss / n, score / n if run.classify else math.sqrt(score / n)


def fit_chunked(run, source) -> None:
    args, net = run.args, run.net
    if args.val_fraction and not 0 < args.val_fraction < 1:
        raise TableError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    val = bool(args.val_fraction)
    table = _report.EpochTable(run._columns(val, False, True))
    adaptive = args.schedule == "adaptive"
    watching = args.patience is not None or adaptive
    monitor = _Monitor(args.patience, args.tol, adaptive) if watching else None
    lr_now = run.lr
    started = time.perf_counter()
    for epoch in range(args.epochs):
        lr = _epoch_lr(args, run.lr, epoch, lr_now)
        bar = _report.progress_bar(None, "row", not args.no_progress, leave=False)
        try:
            loss, n, seconds, lr = _train_pass(run, source, lr, bar, epoch)
        finally:
            if bar is not None:
                bar.close()
        if n == 0:
            raise TableError(f"{source.name}: no training rows left after --val-fraction")
        h = net.history_
        h["loss"].append(loss)
        h["lr"].append(lr)
        row = {"epoch": epoch + 1, "loss": loss, "lr": lr,
               "samples/s": n / seconds if seconds > 0 else math.inf}  # fmt: skip
        metric = math.nan
        if val:
            row["val loss"], metric = _validation_pass(run, source)
            row["val acc" if run.classify else "val rmse"] = metric
            h["val_loss"].append(row["val loss"])
            if run.classify:
                h["val_accuracy"].append(metric)
        table.row(row)
        if monitor is not None:
            stop, lr_now = monitor.after(row["val loss"] if val else loss, net.params, metric,
                                         lr_now)  # fmt: skip
            if stop:
                break
    run.seconds = time.perf_counter() - started
    if monitor is not None and monitor.best_params is not None:
        net.params = monitor.best_params
        metric = monitor.best_metric
    if val:
        run.final["validation"] = metric
