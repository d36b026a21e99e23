"""``train_many``: train many independent small models at once, one per core.

The common case of hyperparameter sweeps and ensembles of tiny nets. Every model trains in the
same Numba kernels as ``MLP.fit``; the kernels release the GIL (``nogil=True``), so a pool of
threads runs one model per core with no copy of the data and no process start-up.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from numpy.typing import ArrayLike

from . import _validation as V
from . import tuning
from .model import MLP

__all__ = ["train_many"]

_MODEL_KEYS = set(inspect.signature(MLP.__init__).parameters) - {"self"}
# "seed" is the model's (initial weights and shuffling stream), not fit's shuffling override
_FIT_KEYS = set(inspect.signature(MLP.fit).parameters) - {"self", "X", "Y"} - _MODEL_KEYS


def _split(config: Mapping[str, Any], index: int) -> tuple[dict, dict]:
    if not isinstance(config, Mapping):
        raise TypeError(f"configs[{index}] must be a dict, got {type(config).__name__}.")
    unknown = sorted(set(config) - _MODEL_KEYS - _FIT_KEYS)
    if unknown:
        raise ValueError(
            f"configs[{index}] has unknown key(s) {unknown}; keys are MLP's arguments "
            f"{sorted(_MODEL_KEYS)} and fit's {sorted(_FIT_KEYS)}."
        )
    if "layer_sizes" not in config:
        raise ValueError(f"configs[{index}] needs 'layer_sizes'.")
    model = {k: v for k, v in config.items() if k in _MODEL_KEYS}
    fit = {k: v for k, v in config.items() if k in _FIT_KEYS}
    return model, fit


def train_many(
    configs: Sequence[Mapping[str, Any]],
    X: ArrayLike,
    Y: ArrayLike,
    n_jobs: int | None = None,
) -> list[MLP]:
    """Train one model per config on the same data, in parallel; returns them in order.

    Parameters
    ----------
    configs : sequence of dict
        Each holds ``MLP``'s arguments (``layer_sizes`` required, ``hidden``, ``output``,
        ``loss``, ``seed``, ``dtype``, ...) and ``fit``'s (``epochs``, ``lr``, ``batch_size``,
        ``momentum``, ...), e.g. ``{"layer_sizes": (2, 3, 1), "output": "sigmoid", "loss":
        "mse", "seed": 4, "epochs": 100, "lr": 0.5}``.
    X, Y : array_like
        Training data shared by all models (as ``MLP.fit`` takes it).
    n_jobs : int or None
        Threads; None uses every core this process may run on (its affinity mask).

    Every model is exactly what ``MLP(**model_args).fit(X, Y, **fit_args)`` gives (each model
    owns its buffers and random streams). All configs are checked before any training starts;
    the first error of a fit is re-raised once all have finished.
    """
    if isinstance(configs, Mapping) or not isinstance(configs, Sequence):
        raise TypeError("configs must be a list of dicts (one per model).")
    if len(configs) == 0:
        raise ValueError("configs is empty: give at least one model's settings.")
    parts = [_split(config, i) for i, config in enumerate(configs)]
    models = [MLP(**model_args) for model_args, _ in parts]  # constructor errors before training
    if n_jobs is None:
        n_jobs = tuning.available_cores()
    n_jobs = V.check_positive_int("n_jobs", n_jobs)

    def train(i: int) -> MLP:
        return models[i].fit(X, Y, **parts[i][1])

    if n_jobs == 1:
        return [train(i) for i in range(len(models))]
    with ThreadPoolExecutor(min(n_jobs, len(models))) as pool:
        futures = [pool.submit(train, i) for i in range(len(models))]
        return [future.result() for future in futures]
