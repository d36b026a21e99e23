"""fastmlp's own exceptions."""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Raised by ``MLP.fit``, which first puts the model back to its parameters from just before
    the offending update (the last finite ones). Attributes: ``epoch`` (1-based), ``step``
    (0-based position in that epoch's visiting order), ``sample`` (row of X), ``lr``.
    """

    def __init__(
        self, epoch: int, step: int, sample: int, lr: float, n_samples: int, streaming=False
    ) -> None:
        self.epoch, self.step, self.sample, self.lr = epoch, step, sample, lr
        where = (
            "in step()"
            if streaming
            else f"in epoch {epoch}, step {step} of {n_samples} (row {sample} of X)"
        )
        super().__init__(
            f"training diverged {where}: the loss or a parameter became NaN/inf. The model "
            f"keeps its parameters from just before that update. Try a smaller lr (got {lr})."
        )
