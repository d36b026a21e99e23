"""Shared benchmark inputs. The networks and their data come from ``fastmlp.bench`` (one source
of truth for asv and ``python -m fastmlp.bench``); everything here is deterministic."""

from functools import cache

import numpy as np

from fastmlp import MLP
from fastmlp.bench import NETWORKS, make_data, make_model

__all__ = ["NETWORKS", "NETS", "DTYPES", "make_data", "make_model", "train_inputs", "MLP"]

NETS = list(NETWORKS)  # xor, digits, mnist128, wide (append-only)
DTYPES = ["float64", "float32"]


@cache
def train_inputs(name: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """X converted once to a C-contiguous array of the dtype (so fit copies nothing), and y."""
    X, y = make_data(name)
    return np.ascontiguousarray(X, dtype=dtype), y
