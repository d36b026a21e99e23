"""The one list of a model's state: what pickling and ``save``/``load`` both carry.

A model is its constructor's arguments (``constructor_args``) plus its trained state
(``TrainedState``): everything else (buffers, views, kernel tables) is rebuilt from those.
``capture`` and ``restore`` are the only code that reads or writes the trained state, for
``MLP.__getstate__``/``__setstate__`` and for ``fastmlp.persistence`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import MLP

__all__ = [
    "HISTORY_KEYS",
    "TrainedState",
    "capture",
    "constructor_args",
    "from_pickle",
    "new_history",
    "restore",
    "to_pickle",
]

# The keys of ``history_``, in the order of Keras' ``History.history`` as fastmlp fills it.
HISTORY_KEYS = ("loss", "val_loss", "val_accuracy", "lr")


def new_history() -> dict[str, list[float]]:
    """An empty ``history_``."""
    return {key: [] for key in HISTORY_KEYS}


@dataclass
class TrainedState:
    """What training changes, beyond the constructor's arguments.

    Attributes
    ----------
    params : ndarray (n_params,)
    history : dict of str to list of float
    n_updates, n_samples_seen : int
    rng_state : dict
        The shuffling stream's NumPy bit-generator state.
    optimizer : str
        ``"sgd"`` or ``"adam"``: what the buffers below belong to.
    velocity, moment2 : ndarray (n_params,) or (0,)
    powers : ndarray (2,)
    dropout_rng : ndarray (1,) of uint64
    """

    params: np.ndarray
    history: dict[str, list[float]]
    n_updates: int
    n_samples_seen: int
    rng_state: dict
    optimizer: str
    velocity: np.ndarray
    moment2: np.ndarray
    powers: np.ndarray
    dropout_rng: np.ndarray


FIELDS = tuple(f.name for f in fields(TrainedState))


def constructor_args(model: MLP) -> tuple:
    """``(layer_sizes, hidden, output, loss, init, seed, dtype name)``: ``MLP(*args)`` rebuilds
    the untrained model."""
    return (model.layer_sizes, list(model.hidden), model.output, model.loss_name, model.init,
            model.seed, model.dtype.name)  # fmt: skip


def capture(model: MLP) -> TrainedState:
    """A copy of ``model``'s trained state (later training does not change it)."""
    opt = model._optimizer_state
    return TrainedState(
        params=model.params.copy(),
        history={key: list(values) for key, values in model.history_.items()},
        n_updates=model.n_updates_,
        n_samples_seen=model.n_samples_seen_,
        rng_state=model._rng.bit_generator.state,
        optimizer=opt.optimizer,
        velocity=opt.velocity.copy(),
        moment2=opt.moment2.copy(),
        powers=opt.powers.copy(),
        dropout_rng=opt.rng.copy(),
    )


def restore(model: MLP, state: TrainedState) -> None:
    """Put ``state`` into ``model`` (built from the same constructor arguments)."""
    model._rng.bit_generator.state = state.rng_state
    model._optimizer_state.set(
        state.optimizer, state.velocity, state.moment2, state.powers, state.dropout_rng
    )
    model.params = state.params
    model.history_ = state.history
    model.n_updates_, model.n_samples_seen_ = state.n_updates, state.n_samples_seen


def to_pickle(model: MLP) -> dict:
    """The pickled form of ``model`` (the layout pickles have always had)."""
    s = capture(model)
    return {
        "args": constructor_args(model),
        "params": s.params,
        "history": s.history,
        "counts": (s.n_updates, s.n_samples_seen),
        "rng": s.rng_state,
        "optimizer": (s.optimizer, s.velocity, s.moment2, s.powers, s.dropout_rng),
    }


def from_pickle(pickled: dict) -> TrainedState:
    """The trained state of a pickled model (see ``to_pickle``)."""
    optimizer, velocity, moment2, powers, dropout_rng = pickled["optimizer"]
    n_updates, n_samples_seen = pickled["counts"]
    return TrainedState(
        params=pickled["params"], history=pickled["history"], n_updates=n_updates,
        n_samples_seen=n_samples_seen, rng_state=pickled["rng"], optimizer=optimizer,
        velocity=velocity, moment2=moment2, powers=powers, dropout_rng=dropout_rng,
    )  # fmt: skip
