"""The exact rescaling of a regression net's output layer when its target standardisation
changes, shared by ``fastmlp.sklearn``'s ``MLPRegressor`` (``normalize_y``) and
``fastmlp.river``'s ``MLPRegressor``: both train on ``(y - mean) / scale`` and renew
``(mean, scale)`` as a stream's statistics move. The output is the identity, so
``W' = W s/s'`` and ``b' = (b s + m - m') / s'`` give ``m' + s' (W' h + b') = m + s (W h + b)``:
the same predictions of ``y``, up to rounding. (Outside ``fastmlp.sklearn``, so that River's
estimators do not import scikit-learn.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["rescale_output"]


def rescale_output(
    net: MLP,
    others: list[np.ndarray],
    old_mean: np.ndarray,
    old_scale: np.ndarray,
    new_mean: np.ndarray,
    new_scale: np.ndarray,
) -> None:
    """Change the output layer of ``net`` (and of the flat parameter arrays ``others``, in
    ``net``'s layout) from predicting ``(y - old_mean) / old_scale`` to predicting
    ``(y - new_mean) / new_scale``, with the same predictions of ``y``; the optimizer's
    velocity (or Adam's first moment) scales with the weights, Adam's second moment with
    their square."""
    ratio = old_scale / new_scale
    shift = (old_mean - new_mean) / new_scale
    lay = net.layout
    for flat in [net._params, *others]:
        W, b = lay.weights(flat)[-1], lay.biases(flat)[-1]
        W *= ratio[:, None].astype(W.dtype)
        b[...] = b * ratio + shift
    state = net._optimizer_state
    for buffer, power in ((state.velocity, 1), (state.moment2, 2)):
        if buffer.shape[0] == lay.n_params:
            factor = (ratio**power).astype(buffer.dtype)
            lay.weights(buffer)[-1][...] *= factor[:, None]
            lay.biases(buffer)[-1][...] *= factor
