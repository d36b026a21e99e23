"""fastmlp's own exceptions."""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Raised by ``MLP.fit``, which first puts the model back to its parameters from just before
    the offending update (the last finite ones). Attributes: ``epoch`` (1-based), ``step``
    (0-based position in that epoch's visiting order), ``sample`` (row of X), ``lr``.
    """

    def __init__(self, epoch: int, step: int, sample: int, lr: float, n_samples: int) -> None:
        self.epoch, self.step, self.sample, self.lr = epoch, step, sample, lr
        super().__init__(
            f"training diverged in epoch {epoch}, step {step} of {n_samples} (row {sample} of "
            f"X): the loss or a parameter became NaN/inf. The model keeps its parameters from "
            f"just before that update. Try a smaller lr (got {lr})."
        )
