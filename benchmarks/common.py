"""Shared, deterministic benchmark inputs.

The named networks, their data and the measuring helpers come from ``fastmlp.bench``: one source
of truth for this asv suite and ``python -m fastmlp.bench``. Networks are append-only there;
everything added here is append-only too (benchmark history depends on inputs never changing).
Only the public API of ``fastmlp`` and ``fastmlp.bench`` is used, so older commits stay
benchmarkable.
"""

from functools import cache

import numpy as np

from fastmlp.bench import NETWORKS, compare, make_data, make_model, step_latency

__all__ = [
    "DTYPES",
    "NETS",
    "NETWORKS",
    "compare",
    "lr_of",
    "make_data",
    "make_model",
    "mnist_like",
    "random_rows",
    "step_latency",
    "train_inputs",
]

NETS = list(NETWORKS)  # xor, digits, mnist128, wide
DTYPES = ["float64", "float32"]


def lr_of(net: str) -> float:
    """The learning rate of a named network (the one ``fastmlp.bench`` uses)."""
    return NETWORKS[net].lr


@cache
def train_inputs(net: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """A network's training data with ``X`` converted once to a C-contiguous array of ``dtype``,
    so ``fit`` uses it in place (no conversion inside the timed call)."""
    X, y = make_data(net)
    return np.ascontiguousarray(X, dtype=dtype), y


@cache
def random_rows(n_rows: int, n_in: int, dtype: str, seed: int = 0) -> np.ndarray:
    """``(n_rows, n_in)`` uniform values in [0, 1), C-contiguous, of ``dtype``; fixed seed."""
    return np.random.default_rng(seed).random((n_rows, n_in), dtype=np.dtype(dtype).type)


def mnist_like(n_rows: int = 60_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-sized random data for the ``mnist128`` net: ``X`` float32 ``(n_rows, 784)`` in
    [0, 1), C-contiguous, and integer labels ``y`` in 0..9. Not cached: callers own the arrays."""
    rng = np.random.default_rng(seed)
    n_in, n_out = NETWORKS["mnist128"].sizes[0], NETWORKS["mnist128"].sizes[-1]
    X = rng.random((n_rows, n_in), dtype=np.float32)
    y = rng.integers(0, n_out, size=n_rows)
    return X, y
