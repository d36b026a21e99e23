"""``check_gradients``: finite-difference check of a network's backprop, layer by layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validation as V
from .model import MLP

__all__ = ["GradientCheck", "check_gradients"]


@dataclass(frozen=True)
class GradientCheck:
    """Worst relative error ``|g - fd| / max(|g|, |fd|, floor)`` per weight layer.

    ``weights[l]`` and ``biases[l]`` are layer l's worst errors over the checked samples and
    parameters; ``max_error`` the worst overall. Backprop is right when these are ~1e-7 or less
    (central differences in float64); a wrong formula gives 1e-2 or more.
    """

    weights: tuple[float, ...]
    biases: tuple[float, ...]
    n_samples: int
    n_checked: int

    @property
    def max_error(self) -> float:
        """The worst relative error over all layers, weights and biases."""
        return max(self.weights + self.biases)

    def __str__(self) -> str:
        """Format the errors as a table, one row per layer, and a summary line."""
        lines = [f"{'layer':>5}  {'weights':>10}  {'biases':>10}"]
        for l, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            lines.append(f"{l:5d}  {w:10.2e}  {b:10.2e}")
        lines.append(
            f"worst relative error {self.max_error:.2e} over {self.n_samples} sample(s), "
            f"{self.n_checked} parameter(s) each"
        )
        return "\n".join(lines)


def check_gradients(
    net: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    n_samples: int = 3,
    max_params: int = 500,
    eps: float = 1e-5,
    floor: float = 1e-6,
    seed: int = 0,
) -> GradientCheck:
    """Compare ``net.gradient`` with central finite differences of ``net``'s loss.

    The differences are taken in float64 on a copy of the network (so a float32 model is
    checked at float64 precision); ``net`` is not modified. For each of the first
    ``n_samples`` rows, up to ``max_params`` parameters (all of them if the net is small, else a
    seeded random subset that includes every bias) are perturbed by ``+-eps``.

    Parameters
    ----------
    net : MLP
    X : array_like (n_samples, n_in)
    Y : array_like, targets as accepted by ``fit``
    n_samples, max_params : int
        How much to check (the cost is ``2 * n_samples * max_params`` forward passes).
    eps : float
        Finite-difference step (1e-5 balances truncation, ~eps^2, against rounding, ~1e-15/eps).
    floor : float
        Lower bound of the denominator, so that two tiny gradients do not give a huge ratio.

    Returns
    -------
    GradientCheck
        Worst relative error per layer (``print`` it for a table).

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLP, check_gradients
    >>> net = MLP((3, 5, 2), hidden="tanh", seed=0)
    >>> X = np.random.default_rng(0).normal(size=(4, 3))
    >>> check_gradients(net, X, [0, 1, 1, 0]).max_error < 1e-6
    True
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a fastmlp.MLP, got {type(net).__name__}.")
    n_samples = V.check_positive_int("n_samples", n_samples)
    max_params = V.check_positive_int("max_params", max_params)
    eps = V.check_positive("eps", eps)
    twin = MLP(net.layer_sizes, hidden=net.hidden, output=net.output, loss=net.loss_name,
               dtype=np.float64)  # fmt: skip
    twin.params = net.params.astype(np.float64)
    X = V.check_X(X, net.layout.n_in, twin.dtype)
    Y = V.check_Y(Y, X.shape[0], net.layout.n_out, net.output, net.loss_name, twin.dtype)
    lay = net.layout
    every = np.arange(lay.n_params)
    bias_idx = np.concatenate([every[lay.bias_slice(l)] for l in range(lay.n_layers)])
    if lay.n_params <= max_params:
        idx = every
    else:  # every bias, and an equal share of each layer's weights
        rng = np.random.default_rng(seed)
        share = max(1, (max_params - bias_idx.size) // lay.n_layers)
        picks = [bias_idx]
        for l in range(lay.n_layers):
            w = every[lay.weight_slice(l)]
            picks.append(rng.choice(w, min(share, w.size), replace=False))
        idx = np.sort(np.concatenate(picks))
    layer_of = np.searchsorted(np.array(lay.w_offsets[1:]), idx, side="right")
    is_bias = np.isin(idx, bias_idx)
    worst_w, worst_b = np.zeros(lay.n_layers), np.zeros(lay.n_layers)
    base = twin.params.copy()
    rows = min(n_samples, X.shape[0])
    for r in range(rows):
        x, y = X[r : r + 1], Y[r : r + 1]
        grad = twin.gradient(X[r], Y[r])
        for k, p in enumerate(idx):
            twin.params[p] = base[p] + eps
            up = twin.loss(x, y)
            twin.params[p] = base[p] - eps
            down = twin.loss(x, y)
            twin.params[p] = base[p]
            fd = (up - down) / (2 * eps)
            err = abs(grad[p] - fd) / max(abs(grad[p]), abs(fd), floor)
            worst = worst_b if is_bias[k] else worst_w
            worst[layer_of[k]] = max(worst[layer_of[k]], err)
    return GradientCheck(tuple(map(float, worst_w)), tuple(map(float, worst_b)), rows, idx.size)
