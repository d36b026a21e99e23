"""The epoch loop of ``MLP.fit``: the learning-rate schedule, shuffling, validation, early
stopping, callbacks, the progress bar and ``history_``. One epoch itself is run by a runner
from ``fastmlp._epochs``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from . import _inference, _state, optim
from . import _validation as V
from .progress import Progress

if TYPE_CHECKING:
    from ._epochs import EpochRunner
    from .model import MLP

__all__ = ["Stopping", "epoch_loss", "evaluate", "run", "split_validation"]


@dataclass(frozen=True)
class Stopping:
    """Validated early-stopping and reporting settings of one ``fit`` call."""

    patience: int | None
    tol: float
    restore_best: bool
    callback: Callable[[int, dict[str, float]], object] | None
    progress: bool


def epoch_loss(losses: np.ndarray, weights: np.ndarray | None, order: np.ndarray) -> float:
    """Mean of an epoch's per-sample losses, weighted by ``weights[order]`` when given."""
    if weights is None:  # np.mean's sum and division, without its Python overhead
        return float(np.add.reduce(losses, dtype=np.float64)) / losses.shape[0]
    w = weights[order].astype(np.float64)
    total = w.sum()
    return float(np.dot(w, losses) / total) if total > 0 else float(np.mean(losses))


def split_validation(
    net: MLP,
    X: np.ndarray,
    Y: np.ndarray,
    weights: np.ndarray | None,
    validation_data: tuple[ArrayLike, ArrayLike] | None,
    validation_fraction: float,
    rng: np.random.Generator,
) -> tuple:
    """``(X, Y, weights, X_val, Y_val)``: validation data checked, or split off X."""
    fraction = V.check_fraction("validation_fraction", validation_fraction)
    if validation_data is not None:
        if fraction:
            raise ValueError("give validation_data or validation_fraction, not both.")
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise TypeError(
                "validation_data must be a pair (X_val, Y_val), got "
                f"{type(validation_data).__name__}."
            )
        X_val = V.check_X(validation_data[0], net.layout.n_in, net.dtype, "X_val")
        Y_val = V.check_Y(
            validation_data[1], X_val.shape[0], net.layout.n_out, net.output, net.loss_name,
            net.dtype, name="Y_val",
        )  # fmt: skip
        return X, Y, weights, X_val, Y_val
    if not fraction:
        return X, Y, weights, None, None
    n_samples = X.shape[0]
    n_val = math.ceil(n_samples * fraction)
    if n_val >= n_samples:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {n_samples} samples leaves no "
            "training data."
        )
    perm = rng.permutation(n_samples)
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    weights = None if weights is None else weights[train]
    return X[train], Y[train], weights, X[val], Y[val]


def evaluate(net: MLP, X: np.ndarray, Y: np.ndarray) -> tuple[float, float | None]:
    """Mean loss on validated ``(X, Y)``, and accuracy for sigmoid/softmax outputs."""
    loss = _inference.mean_loss(net, X, Y)
    if net.output == "identity":
        return loss, None
    out = np.empty_like(Y)
    _inference.predict_rows(net, X, out)
    if net.output == "softmax":
        return loss, float(np.mean(out.argmax(axis=1) == Y.argmax(axis=1)))
    return loss, float(np.mean((out >= 0.5) == (Y >= 0.5)))


def run(
    net: MLP,
    run_epoch: EpochRunner,
    data: tuple,
    epochs: int,
    settings: optim.Settings,
    stopping: Stopping,
    rng: np.random.Generator,
    shuffle: bool,
) -> None:
    """Up to ``epochs`` epochs over ``data = (X, Y, weights, X_val, Y_val)``, appending to
    ``net.history_``; with ``patience`` and ``restore_best``, ends on the best epoch's
    parameters."""
    X, Y, weights, X_val, Y_val = data
    adaptive = settings.schedule == "adaptive"
    patience = stopping.patience
    monitor_patience = patience or (10 if adaptive else None)
    best, wait, best_params = math.inf, 0, None
    current_lr = settings.lr
    bar = Progress(epochs, X.shape[0]) if stopping.progress else None
    try:
        for epoch in range(epochs):
            if not adaptive:
                current_lr = optim.scheduled_lr(
                    settings, len(net.history_["loss"]), net.n_samples_seen_
                )
            order = rng.permutation(X.shape[0]) if shuffle else np.arange(X.shape[0])
            started = time.perf_counter()
            losses = run_epoch(X, Y, order, current_lr, epoch)
            seconds = time.perf_counter() - started
            logs = {
                "loss": epoch_loss(losses, weights, order),
                "lr": current_lr,
                "samples_per_s": X.shape[0] / seconds if seconds > 0 else math.inf,
            }
            if X_val is not None:
                logs["val_loss"], accuracy = evaluate(net, X_val, Y_val)
                if accuracy is not None:
                    logs["val_accuracy"] = accuracy
            for key in _state.HISTORY_KEYS:
                if key in logs:
                    net.history_[key].append(logs[key])
            if bar is not None:
                bar.update(epoch, logs)
            callback = stopping.callback
            stop = bool(callback(epoch, dict(logs))) if callback is not None else False
            if monitor_patience is not None:
                monitored = logs["val_loss"] if X_val is not None else logs["loss"]
                if monitored < best - stopping.tol:
                    best, wait = monitored, 0
                    if patience is not None and stopping.restore_best:
                        best_params = net._params.copy()
                else:
                    wait += 1
                if wait >= monitor_patience:
                    if adaptive:
                        wait = 0
                        current_lr /= optim.ADAPTIVE_DIVISOR
                        stop |= current_lr < optim.ADAPTIVE_MIN_LR
                    else:
                        stop = True
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_params is not None:
        net._params[...] = best_params
