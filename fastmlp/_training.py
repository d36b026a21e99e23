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

__all__ = ["Monitor", "Stopping", "epoch_loss", "evaluate", "run", "split_validation"]


@dataclass(slots=True)
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


class Monitor:
    """Early stopping (Keras' ``EarlyStopping``) and the ``adaptive`` schedule
    (scikit-learn's: lr / 5 on a plateau), watching the validation loss if there is validation
    data, else the training loss."""

    __slots__ = ("stopping", "adaptive", "has_val", "patience", "best", "wait", "best_params")

    def __init__(self, stopping: Stopping, adaptive: bool, has_val: bool) -> None:
        self.stopping, self.adaptive, self.has_val = stopping, adaptive, has_val
        self.patience = stopping.patience or 10  # the adaptive schedule's default
        self.best, self.wait = math.inf, 0
        self.best_params: np.ndarray | None = None

    def after_epoch(
        self, logs: dict[str, float], params: np.ndarray, lr: float
    ) -> tuple[bool, float]:
        """Take an epoch's ``logs``; return whether to stop, and the next epoch's lr."""
        monitored = logs["val_loss"] if self.has_val else logs["loss"]
        if monitored < self.best - self.stopping.tol:
            self.best, self.wait = monitored, 0
            if self.stopping.patience is not None and self.stopping.restore_best:
                self.best_params = params.copy()
        else:
            self.wait += 1
        if self.wait < self.patience:
            return False, lr
        if not self.adaptive:
            return True, lr
        self.wait = 0
        lr /= optim.ADAPTIVE_DIVISOR
        return lr < optim.ADAPTIVE_MIN_LR, lr


def _epoch_logs(net: MLP, losses, weights, order, lr, seconds, X_val, Y_val) -> dict[str, float]:
    """The logs of one epoch (what ``callback`` receives), appended to ``net.history_``."""
    logs = {
        "loss": epoch_loss(losses, weights, order),
        "lr": lr,
        "samples_per_s": order.shape[0] / seconds if seconds > 0 else math.inf,
    }
    if X_val is not None:
        logs["val_loss"], accuracy = evaluate(net, X_val, Y_val)
        if accuracy is not None:
            logs["val_accuracy"] = accuracy
    for key in _state.HISTORY_KEYS:
        if key in logs:
            net.history_[key].append(logs[key])
    return logs


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
    lr = settings.lr
    # built only when something is monitored: fit's per-call overhead matters in loops
    watching = stopping.patience is not None or adaptive
    monitor = Monitor(stopping, adaptive, X_val is not None) if watching else None
    bar = Progress(epochs, X.shape[0]) if stopping.progress else None
    try:
        for epoch in range(epochs):
            if not adaptive:
                lr = optim.scheduled_lr(settings, len(net.history_["loss"]), net.n_samples_seen_)
            order = rng.permutation(X.shape[0]) if shuffle else np.arange(X.shape[0])
            started = time.perf_counter()
            losses = run_epoch(X, Y, order, lr, epoch)
            seconds = time.perf_counter() - started
            logs = _epoch_logs(net, losses, weights, order, lr, seconds, X_val, Y_val)
            if bar is not None:
                bar.update(epoch, logs)
            callback = stopping.callback
            stop = bool(callback(epoch, dict(logs))) if callback is not None else False
            if monitor is not None:
                stop_now, lr = monitor.after_epoch(logs, net._params, lr)  # adaptive: lr / 5
                stop = stop_now or stop
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    if monitor is not None and monitor.best_params is not None:
        net._params[...] = monitor.best_params
