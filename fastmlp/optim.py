"""Training settings beyond plain online SGD, and the optimizer state.

The settings: optimizer, mini-batches, weight decay, dropout, learning-rate schedules; the
optimizer state persists between ``fit`` calls.

``Settings`` validates the keyword arguments of ``MLP.fit`` once and packs them into the two small
arrays the general training kernel reads (``opts``, uint64 codes; ``hyper``, floats in the
model's dtype). ``OptimizerState`` holds the flat buffers of the parameter layout that survive
between calls (momentum velocity / Adam moments, Adam's bias-correction powers, the dropout
stream). ``scheduled_lr`` is the per-epoch learning rate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from . import _validation as V
from .layout import work_buffer

__all__ = ["OPTIMIZERS", "SCHEDULES", "Settings", "OptimizerState", "scheduled_lr", "settings"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "invscaling", "step", "adaptive")
ADAPTIVE_DIVISOR = 5.0  # scikit-learn's "adaptive": lr / 5 when the monitored loss stalls
ADAPTIVE_MIN_LR = 1e-6  # ... and training stops once lr would fall below this (as scikit-learn)


@dataclass(frozen=True)
class Settings:
    """Validated training settings of one ``fit`` call (see ``MLP.fit`` for their meaning)."""

    lr: float
    batch_size: int = 1
    optimizer: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    alpha: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    dropout: float = 0.0
    schedule: str = "constant"
    power_t: float = 0.5
    step_size: int = 10
    gamma: float = 0.1

    def __post_init__(self) -> None:
        """Validate every setting (``ValueError``/``TypeError`` naming the first bad one)."""
        V.check_positive("lr", self.lr)
        V.check_positive_int("batch_size", self.batch_size)
        V.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        V.check_real("momentum", self.momentum, 0.0, 1.0, False, True)
        if not isinstance(self.nesterov, bool | np.bool_):
            raise TypeError(f"nesterov must be a bool, got {self.nesterov!r}.")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0 (got momentum=0).")
        if self.optimizer == "adam" and self.momentum != 0.0:
            raise ValueError(
                f"momentum={self.momentum!r} applies to optimizer='sgd'; Adam's momentum is beta1."
            )
        V.check_real("alpha", self.alpha, 0.0, math.inf, False, True)
        V.check_real("beta1", self.beta1, 0.0, 1.0, False, True)
        V.check_real("beta2", self.beta2, 0.0, 1.0, False, True)
        V.check_real("epsilon", self.epsilon, 0.0, math.inf, True, True)
        V.check_real("dropout", self.dropout, 0.0, 1.0, False, True)
        V.check_choice("schedule", self.schedule, SCHEDULES)
        V.check_real("power_t", self.power_t, 0.0, math.inf, False, True)
        V.check_positive_int("step_size", self.step_size)
        V.check_real("gamma", self.gamma, 0.0, 1.0, True, False)

    @property
    def is_plain_sgd(self) -> bool:
        """True when the fast online-SGD kernel computes exactly this training."""
        return (
            self.optimizer == "sgd"
            and self.momentum == 0.0
            and self.alpha == 0.0
            and self.batch_size == 1
            and self.dropout == 0.0
        )

    def kernel_arrays(self, dtype: np.dtype, lr: float) -> tuple[np.ndarray, np.ndarray]:
        """``(opts, hyper)`` for ``train_epoch_opt`` with learning rate ``lr`` (this epoch's)."""
        opts = np.zeros(K.N_OPTS, dtype=np.uint64)
        opts[K.OPT_OPTIMIZER] = K.ADAM if self.optimizer == "adam" else K.SGD
        opts[K.OPT_NESTEROV] = self.nesterov
        opts[K.OPT_BATCH_SIZE] = self.batch_size
        opts[K.OPT_DROP_THRESHOLD] = dropout_threshold(self.dropout)
        hyper = np.zeros(K.N_HYPER, dtype=dtype)
        hyper[K.H_LR] = lr
        hyper[K.H_ALPHA] = self.alpha
        hyper[K.H_MOMENTUM] = self.momentum
        hyper[K.H_BETA1] = self.beta1
        hyper[K.H_BETA2] = self.beta2
        hyper[K.H_EPSILON] = self.epsilon
        hyper[K.H_DROP_SCALE] = 1.0 / (1.0 - self.dropout)
        return opts, hyper


@functools.lru_cache(maxsize=64, typed=True)
def _validated(**kwargs: object) -> Settings:
    return Settings(**kwargs)


def settings(**kwargs: object) -> Settings:
    """Return ``Settings(**kwargs)``, validated once per distinct set of arguments.

    ``fit`` called in a loop with the same arguments skips the checks. Cached by value and type
    (``typed``: ``1``, ``1.0`` and ``True`` are different arguments); Settings is frozen, so a
    cached one can be shared. Unhashable arguments are checked (and rejected) by ``Settings``
    itself.
    """
    try:
        hash(tuple(kwargs.values()))
    except TypeError:
        return Settings(**kwargs)
    return _validated(**kwargs)


def dropout_threshold(p: float) -> int:
    """Return ``floor(p 2^53)``: a unit is dropped when the top 53 bits of its draw are below it."""
    return int(p * 2.0**K.DROP_BITS)


def scheduled_lr(settings: Settings, epoch: int, samples_seen: int) -> float:
    """Learning rate of an epoch for the non-adaptive schedules.

    constant: ``lr``; invscaling (scikit-learn's): ``lr / (t + 1)^power_t`` with ``t`` the
    number of samples seen before the epoch; step (PyTorch's StepLR):
    ``lr * gamma^(epoch // step_size)``, ``epoch`` counting this model's epochs from 0.
    """
    lr = settings.lr
    if settings.schedule == "invscaling":
        return lr / (samples_seen + 1) ** settings.power_t
    if settings.schedule == "step":
        return lr * settings.gamma ** (epoch // settings.step_size)
    return lr


class OptimizerState:
    """Flat buffers (the parameter layout) that persist between ``fit`` calls.

    ``velocity``: SGD momentum's velocity, or Adam's first moment; ``moment2``: Adam's second
    moment; ``powers``: ``(beta1^t, beta2^t)`` of Adam's bias corrections after t steps;
    ``rng``: the dropout stream's one-word state (uint64). The buffers are allocated on the
    first fit that needs them, and zeroed when the optimizer changes between sgd and adam.
    """

    def __init__(self, n_params: int, dtype: np.dtype, seed: int | None) -> None:
        self.n_params, self.dtype = n_params, dtype
        self.optimizer = "sgd"
        self.velocity = np.zeros(0, dtype)
        self.moment2 = np.zeros(0, dtype)
        self.powers = np.ones(2, dtype)
        entropy = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)
        self.rng = np.array(entropy, dtype=np.uint64)

    def prepare(self, optimizer: str) -> None:
        """Make the buffers ready for ``optimizer`` (fresh state if it changed)."""
        if self.velocity.shape[0] != self.n_params or optimizer != self.optimizer:
            self.velocity = work_buffer(self.n_params, self.dtype)
            self.moment2 = work_buffer(self.n_params if optimizer == "adam" else 0, self.dtype)
            self.powers = np.ones(2, self.dtype)
            self.optimizer = optimizer
        if optimizer == "adam" and self.moment2.shape[0] != self.n_params:
            self.moment2 = work_buffer(self.n_params, self.dtype)

    def set(
        self,
        optimizer: str,
        velocity: np.ndarray,
        moment2: np.ndarray,
        powers: np.ndarray,
        rng: np.ndarray,
    ) -> None:
        """Take over saved state (``load``, unpickling): copies, the buffers padded."""
        self.optimizer = optimizer
        self.velocity = work_buffer(velocity.shape[0], self.dtype)
        self.velocity[...] = velocity
        self.moment2 = work_buffer(moment2.shape[0], self.dtype)
        self.moment2[...] = moment2
        self.powers = np.array(powers, dtype=self.dtype)
        self.rng = np.array(rng, dtype=np.uint64)

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """Return copies of every buffer (to roll a diverging chunk back)."""
        return tuple(a.copy() for a in (self.velocity, self.moment2, self.powers, self.rng))

    def restore(self, snapshot: tuple[np.ndarray, ...]) -> None:
        """Back to a ``snapshot`` (in place: the buffers keep their identity)."""
        for mine, saved in zip(
            (self.velocity, self.moment2, self.powers, self.rng), snapshot, strict=True
        ):
            mine[...] = saved
