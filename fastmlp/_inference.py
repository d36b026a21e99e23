"""Inference on validated inputs: outputs of many rows (on threads over blocks of rows when the
input is large) and the mean loss. ``MLP.predict`` and ``MLP.loss`` validate, then call these.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from . import _kernel_args as KA
from . import _kernels as K
from . import _validation as V
from . import tuning
from .layout import work_buffer

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["classes", "mean_loss", "predict", "predict_rows", "sample_gradient"]


def predict(net: MLP, X: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """Outputs ``(n_samples, n_out)`` of ``X`` (checked but not yet scanned for NaN/inf).

    ``n_jobs=None`` uses every available core when the input is large
    (``tuning.PARALLEL_PREDICT_WORK`` multiply-adds) and one thread otherwise."""
    n_samples = X.shape[0]
    out = np.empty((n_samples, net.layout.n_out), dtype=net.dtype)
    work = n_samples * net.n_params
    if n_jobs is None:
        big = work > tuning.PARALLEL_PREDICT_WORK and n_samples >= 64
        n_jobs = tuning.available_cores() if big else 1
    n_jobs = min(V.check_positive_int("n_jobs", n_jobs), n_samples)
    if n_jobs == 1:
        V.check_finite("X", X)
        predict_rows(net, X, out)
        return out
    # More blocks than threads, taken in turn by whichever thread is free: a thread slowed by
    # the machine then does fewer blocks instead of holding up the rest at the end.
    n_blocks = work // tuning.PARALLEL_PREDICT_WORK
    n_blocks = min(n_samples, max(n_jobs, min(8 * n_jobs, n_blocks)))
    bounds = np.linspace(0, n_samples, n_blocks + 1).astype(int)
    with ThreadPoolExecutor(n_jobs) as pool:
        jobs = [pool.submit(_predict_finite_rows, net, X[lo:hi], out[lo:hi])
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]  # fmt: skip
        n_bad = sum(job.result() for job in jobs)
    if n_bad:
        V.check_finite("X", X)  # raises, naming the first non-finite entry
    return out


def predict_rows(net: MLP, X: np.ndarray, out: np.ndarray) -> None:
    """``out[...] =`` the outputs of validated, finite ``X`` (this thread)."""
    zs, acts = KA.block_buffers(net.layout, net.dtype)
    K.predict_batch(net._params, net._args.meta, X, out, zs, acts)


def _predict_finite_rows(net: MLP, X: np.ndarray, out: np.ndarray) -> int:
    """``predict_rows`` after scanning this block of X for NaN/inf (in the calling thread, so
    the scan runs in parallel too); returns the non-finite count, predicting nothing if it is
    not 0."""
    n_bad = K.count_nonfinite(X.reshape(-1))  # a C-contiguous block: a view
    if n_bad == 0:
        predict_rows(net, X, out)
    return n_bad


def mean_loss(net: MLP, X: np.ndarray, Y: np.ndarray) -> float:
    """Mean per-sample loss over validated ``(X, Y)``, parameters unchanged."""
    zs, acts = KA.block_buffers(net.layout, net.dtype)
    deltas = work_buffer(net.layout.n_units, net.dtype)
    losses = np.empty(X.shape[0], dtype=net.dtype)
    args = net._args
    K.loss_batch(net._params, args.meta, args.loss_code, X, Y, zs, acts, deltas, losses)
    return float(np.mean(losses, dtype=np.float64))


def classes(net: MLP, out: np.ndarray) -> np.ndarray:
    """Classes of outputs ``out``: argmax for softmax; ``out >= 0.5`` for sigmoid, ``(n,)``
    for one output."""
    if net.output == "softmax":
        return np.argmax(out, axis=1)
    labels = (out >= 0.5).astype(np.int64)
    return labels[:, 0] if net.layout.n_out == 1 else labels


def sample_gradient(net: MLP, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dLoss/dparams of one validated sample (``x``, ``y`` of shape ``(1, n)``), a new array."""
    zs, acts, deltas = KA.unit_buffers(net.layout, net.dtype)
    grad = work_buffer(net.n_params, net.dtype)
    args = net._args
    K.sample_gradient(net._params, args.meta, args.loss_code, x, y, 0, zs, acts, deltas, grad)
    return grad
