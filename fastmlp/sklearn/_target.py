"""``TargetScaler``: ``MLPRegressor``'s standardisation of its targets (``normalize_y``).

Per-sample SGD on raw targets in the hundreds takes steps in the hundreds and diverges at any
learning rate that still learns in a few epochs; on standardised targets the defaults work
whatever the target's unit. The network learns ``(y - mean_) / scale_``; ``predict`` maps back.

A stream (``partial_fit``) does not know its targets' statistics in advance, so they are
running statistics (count, mean and sum of squared deviations, merged batch by batch: Chan,
Golub & LeVeque 1979), and the ``(mean_, scale_)`` in use are renewed only when the running
ones drift from them: the standard deviation by more than a factor ``DRIFT``, or the mean by
more than ``scale_ / 2``; that happens a few times early in a stream, then seldom or never.
A renewal rescales the output layer (and its optimizer state) so that the network's
predictions on the targets' own scale are unchanged: the output is the identity, so
``W' = W s/s'`` and ``b' = (b s + m - m') / s'`` give ``m' + s' (W' h + b') = m + s (W h + b)``
exactly, up to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from .._output_scaling import rescale_output
from ..model import MLP

__all__ = ["DRIFT", "TargetScaler"]

DRIFT = 2.0  # renew (mean_, scale_) when the running std is off by more than this factor


class TargetScaler:
    """Running statistics of a regressor's targets and the ``(mean_, scale_)`` in use.

    Parameters
    ----------
    n_out : int
        The number of targets (the network's outputs).
    dtype : numpy dtype
        The model's dtype (transformed targets and predictions are in it).
    """

    def __init__(self, n_out: int, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.count = 0
        self.run_mean = np.zeros(n_out)
        self.run_m2 = np.zeros(n_out)
        self._use(np.zeros(n_out), np.ones(n_out))

    def __getstate__(self) -> dict:
        return {"n_out": len(self.mean_), "dtype": self.dtype.name, "count": self.count,
                "run_mean": self.run_mean, "run_m2": self.run_m2, "mean": self.mean_,
                "scale": self.scale_}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["n_out"], np.dtype(state["dtype"]))
        self.count = state["count"]
        self.run_mean, self.run_m2 = state["run_mean"].copy(), state["run_m2"].copy()
        self._use(state["mean"], state["scale"])

    def _use(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean_, self.scale_ = mean.copy(), scale.copy()
        self.mean_d, self.scale_d = mean.astype(self.dtype), scale.astype(self.dtype)
        self.identity = bool(np.all(mean == 0.0) and np.all(scale == 1.0))

    def _merge(self, Y: np.ndarray) -> None:
        n = Y.shape[0]
        mean = Y.mean(axis=0, dtype=np.float64)
        m2 = ((Y - mean) ** 2).sum(axis=0, dtype=np.float64)
        total = self.count + n
        delta = mean - self.run_mean
        self.run_mean = self.run_mean + delta * (n / total)
        self.run_m2 = self.run_m2 + m2 + delta * delta * (self.count * n / total)
        self.count = total

    def _target_scale(self) -> np.ndarray:
        """The running standard deviation, 1 where it is 0 (a constant target so far)."""
        std = np.sqrt(self.run_m2 / max(self.count, 1))
        return np.where(std > 0.0, std, 1.0)

    def _drifted(self, mean: np.ndarray, scale: np.ndarray) -> bool:
        ratio = scale / self.scale_
        return bool(
            np.any(ratio > DRIFT) or np.any(ratio < 1.0 / DRIFT)
            or np.any(np.abs(mean - self.mean_) > 0.5 * self.scale_)
        )  # fmt: skip

    def update(self, Y: np.ndarray, net: MLP, others: list[np.ndarray], enabled: bool) -> None:
        """Merge the targets ``Y`` (n_samples, n_out) into the running statistics; renew
        ``(mean_, scale_)`` if they drifted (to the identity when ``enabled`` is false), and
        rescale the output layer of ``net`` and of the flat parameter copies ``others``."""
        if enabled:
            self._merge(Y)
            mean, scale = self.run_mean, self._target_scale()
            if not self._drifted(mean, scale):
                return
        elif self.identity:
            return
        else:
            mean, scale = np.zeros_like(self.mean_), np.ones_like(self.scale_)
        rescale_output(net, others, self.mean_, self.scale_, mean, scale)
        self._use(mean, scale)

    def update_one(self, y: float) -> bool:
        """``update`` of one value of a one-output regressor in Python floats, by the same
        formulas as ``_merge`` (so both paths agree bit for bit); returns False, changing
        nothing, if it would renew the scaling."""
        total = self.count + 1
        delta = y - float(self.run_mean[0])
        mean = float(self.run_mean[0]) + delta * (1 / total)
        m2 = float(self.run_m2[0]) + 0.0 + delta * delta * (self.count * 1 / total)
        std = math.sqrt(m2 / total)
        scale, used = (std if std > 0.0 else 1.0), float(self.scale_[0])
        ratio = scale / used
        if ratio > DRIFT or ratio < 1.0 / DRIFT or abs(mean - float(self.mean_[0])) > 0.5 * used:
            return False
        self.count = total
        self.run_mean[0] = mean
        self.run_m2[0] = m2
        return True

    def reset(self, Y: np.ndarray, enabled: bool) -> None:
        """Start anew (a new network): the statistics of ``Y`` in use when ``enabled``."""
        self.count = 0
        self.run_mean[...] = 0.0
        self.run_m2[...] = 0.0
        if enabled:
            self._merge(Y)
            self._use(self.run_mean, self._target_scale())
        else:
            self._use(np.zeros_like(self.mean_), np.ones_like(self.scale_))

    def transform(self, Y: np.ndarray) -> np.ndarray:
        """``(Y - mean_) / scale_``, C-contiguous in the model's dtype (Y itself if identity)."""
        if self.identity:
            return Y
        return np.ascontiguousarray((Y - self.mean_) / self.scale_, dtype=self.dtype)

    def inverse(self, out: np.ndarray) -> np.ndarray:
        """Network outputs ``out`` (n_samples, n_out) on the targets' scale, in place."""
        if not self.identity:
            out *= self.scale_d
            out += self.mean_d
        return out
