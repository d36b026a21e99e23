"""The NumPy reference MLP: the slow, readable, executable statement of the math.

Written for reading, not speed, and independently of the Numba kernels (it shares only the
``Layout`` of the flat parameter buffer). Tests compare every kernel result to it, and it is
itself checked against central finite differences. It works in the dtype it is given.

For one sample ``x`` with target ``y`` and weight layers ``l = 1..L`` (``a_0 = x``):

- forward:  ``z_l = W_l a_{l-1} + b_l``,  ``a_l = f_l(z_l)``
- loss (summed over output units):
    mse                    ``1/2 sum_k (a_k - y_k)^2``
    mae                    ``sum_k |a_k - y_k|``
    binary_cross_entropy   ``-sum_k [y_k log a_k + (1 - y_k) log(1 - a_k)]``  (sigmoid output)
    cross_entropy          ``-sum_k y_k log softmax(z)_k``                    (softmax output)
- output delta ``delta_L = dloss/dz_L``:
    mse                    ``J_f(z_L)^T (a_L - y)``, J the output activation's Jacobian
                           (``diag(f'(z))`` elementwise, ``diag(s) - s s^T`` for softmax)
    mae                    ``J_f(z_L)^T sign(a_L - y)`` (sign(0) = 0: a subgradient)
    bce + sigmoid, ce + softmax:  ``a_L - y``
- delta recurrence: ``delta_l = (W_{l+1}^T delta_{l+1}) * f_l'(z_l)``
- gradient: ``dloss/dW_l = delta_l a_{l-1}^T``,  ``dloss/db_l = delta_l``
- online SGD: ``params <- params - lr * gradient(params; x_t, y_t)``, one sample at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .layout import Layout

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "LOSSES",
    "activate",
    "activate_derivative",
    "forward",
    "losses",
    "output_delta",
    "backward",
    "gradient",
    "sgd_step",
    "train_epoch",
    "train_epoch_blocked",
    "mean_loss",
    "finite_difference_gradient",
    "splitmix64",
    "dropout_threshold",
    "new_optimizer_state",
    "train_epoch_opt",
]

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
OUTPUTS = ("identity", "sigmoid", "softmax")
LOSSES = ("mse", "mae", "binary_cross_entropy", "cross_entropy")
LEAKY_SLOPE = 0.01


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-z)) without overflow: exp(-|z|) <= 1.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """``f(z)`` for a named activation; softmax is taken along the last axis."""
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0 * z)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z).astype(z.dtype)
    if name == "softmax":
        return np.exp(_log_softmax(z))
    raise ValueError(f"unknown activation {name!r}")


def activate_derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``f'(z)`` elementwise (``a = f(z)`` is given to avoid recomputing it)."""
    one = np.ones_like(z)
    if name == "identity":
        return one
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return np.where(z > 0, one, 0 * one)
    if name == "leaky_relu":
        return np.where(z > 0, one, LEAKY_SLOPE * one).astype(z.dtype)
    raise ValueError(f"no elementwise derivative for {name!r}")


def forward(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    X: np.ndarray,
    masks: Sequence[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Forward pass of a batch X (n_samples, n_in).

    Returns ``zs`` and ``acts``: one ``(n_samples, n_out_l)`` array per weight layer;
    ``acts[-1]`` is the network's output. With dropout ``masks`` (one ``(n_l,)`` per hidden
    layer) the next layer reads ``acts[l] * masks[l]``; ``acts`` stay unmasked.
    """
    zs, acts = [], []
    a = X
    for l, (W, b, name) in enumerate(
        zip(layout.weights(params), layout.biases(params), activations, strict=True)
    ):
        z = a @ W.T + b
        a = activate(name, z)
        zs.append(z)
        acts.append(a)
        if masks is not None and l < len(masks):
            a = a * masks[l]
    return zs, acts


def losses(
    loss: str, output: str, z_out: np.ndarray, a_out: np.ndarray, Y: np.ndarray
) -> np.ndarray:
    """Per-sample losses ``(n_samples,)``, summed over output units."""
    if loss == "mse":
        return 0.5 * ((a_out - Y) ** 2).sum(axis=1)
    if loss == "mae":
        return np.abs(a_out - Y).sum(axis=1)
    if loss == "binary_cross_entropy":
        # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z, with no log(0)
        return (np.logaddexp(0, z_out) - Y * z_out).sum(axis=1)
    if loss == "cross_entropy":
        return -(Y * _log_softmax(z_out)).sum(axis=1)
    raise ValueError(f"unknown loss {loss!r}")


def output_delta(
    loss: str, output: str, z_out: np.ndarray, a_out: np.ndarray, Y: np.ndarray
) -> np.ndarray:
    """``dloss/dz_L`` per sample, ``(n_samples, n_out)``."""
    if loss in ("binary_cross_entropy", "cross_entropy"):
        return a_out - Y  # the sigmoid/softmax Jacobian cancels against the log
    g = a_out - Y if loss == "mse" else np.sign(a_out - Y)  # dloss/da (mse, mae)
    if output != "softmax":
        return g * activate_derivative(output, z_out, a_out)
    delta = np.empty_like(g)
    for r in range(g.shape[0]):  # the full softmax Jacobian, sample by sample
        s = a_out[r]
        J = np.diag(s) - np.outer(s, s)  # ds_i/dz_j
        delta[r] = J.T @ g[r]
    return delta


def backward(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    zs: list[np.ndarray],
    acts: list[np.ndarray],
    delta_out: np.ndarray,
    masks: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Run the delta recurrence; return one ``(n_samples, n_l)`` delta per layer.

    The last one is ``delta_out``. With dropout ``masks``, a hidden layer's delta is also
    multiplied by its mask.
    """
    weights = layout.weights(params)
    deltas = [delta_out]
    for l in range(layout.n_layers - 2, -1, -1):
        back = deltas[0] @ weights[l + 1]  # rows of W_{l+1}^T delta_{l+1}
        delta = back * activate_derivative(activations[l], zs[l], acts[l])
        deltas.insert(0, delta if masks is None else delta * masks[l])
    return deltas


def gradient(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """dloss/dparams for ONE sample x (n_in,), y (n_out,), flat in the layout of params."""
    return _loss_and_gradient(layout, params, activations, loss, x, y)[1]


def _loss_and_gradient(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    x: np.ndarray,
    y: np.ndarray,
    masks: Sequence[np.ndarray] | None = None,
) -> tuple[np.floating, np.ndarray]:
    """Return one sample's loss and its gradient, from a single forward pass.

    With dropout ``masks``, they apply to the hidden layers.
    """
    X, Y = x[None, :], y[None, :]
    zs, acts = forward(layout, params, activations, X, masks)
    loss_value = losses(loss, activations[-1], zs[-1], acts[-1], Y)[0]
    delta_out = output_delta(loss, activations[-1], zs[-1], acts[-1], Y)
    deltas = backward(layout, params, activations, zs, acts, delta_out, masks)
    hidden = acts[:-1] if masks is None else [a * m for a, m in zip(acts[:-1], masks, strict=True)]
    inputs = [X, *hidden]
    grad_W = [np.outer(d[0], a[0]) for d, a in zip(deltas, inputs, strict=True)]
    grad_b = [d[0] for d in deltas]
    return loss_value, layout.pack(grad_W, grad_b)


def sgd_step(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    x: np.ndarray,
    y: np.ndarray,
    lr: float,
) -> tuple[np.ndarray, float]:
    """One SGD step on one sample: new params (a copy) and the loss before the update.

    ``lr`` is cast to the dtype of ``params`` (a NumPy float64 scalar would otherwise upcast
    float32 params under NumPy 2's promotion rules; a Python float already behaves this way).
    """
    lr = params.dtype.type(lr)
    loss_value, grad = _loss_and_gradient(layout, params, activations, loss, x, y)
    return params - lr * grad, loss_value


def train_epoch(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    X: np.ndarray,
    Y: np.ndarray,
    order: Sequence[int],
    lr: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Online SGD over ``X[order[t]]``; new params and the per-step losses (before each update)."""
    step_losses = []
    for r in order:
        params, loss_value = sgd_step(layout, params, activations, loss, X[r], Y[r], lr)
        step_losses.append(loss_value)
    return params, np.array(step_losses, dtype=params.dtype)


def train_epoch_blocked(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    X: np.ndarray,
    Y: np.ndarray,
    order: Sequence[int],
    lr: float,
    block: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``train_epoch`` with layer 0 reassociated over blocks of ``block`` samples (issue 21).

    Within a block that starts from ``W0, b0``, per-sample SGD gives sample t the pre-activation
    ``W0 x_t + b0 - lr sum_{s<t} (x_s . x_t + 1) d_s`` (``d_s``: sample s's layer-0 delta), so
    layer 0's forward pass is one product ``X_block W0^T`` plus a correction from the block's
    Gram matrix, and its update one rank-``block`` product at the block's end:
    ``W0 <- W0 - lr sum_t d_t x_t^T``, ``b0 <- b0 - lr sum_t d_t``. The layers above are updated
    per sample as usual. It is the same trajectory as ``train_epoch`` (each gradient taken at
    the parameters left by every sample before it), summed in another order. Returns the new
    params and the per-step losses, as ``train_epoch``.
    """
    lr = params.dtype.type(lr)
    params = params.copy()
    weights, biases = layout.weights(params), layout.biases(params)
    W0, b0 = weights[0], biases[0]
    order = list(order)
    step_losses = []
    for start in range(0, len(order), block):
        rows = order[start : start + block]
        Xb = X[rows]
        Z0 = Xb @ W0.T + b0  # the block-start weights, one product
        gram = Xb @ Xb.T + params.dtype.type(1)
        D = np.zeros((len(rows), W0.shape[0]), dtype=params.dtype)
        for t, r in enumerate(rows):
            z = (Z0[t] - lr * (gram[:t, t] @ D[:t]))[None, :]
            zs, acts = [z], [activate(activations[0], z)]
            for l in range(1, layout.n_layers):
                zs.append(acts[-1] @ weights[l].T + biases[l])
                acts.append(activate(activations[l], zs[-1]))
            y = Y[r][None, :]
            step_losses.append(losses(loss, activations[-1], zs[-1], acts[-1], y)[0])
            delta_out = output_delta(loss, activations[-1], zs[-1], acts[-1], y)
            deltas = backward(layout, params, activations, zs, acts, delta_out)
            D[t] = deltas[0][0]
            for l in range(1, layout.n_layers):  # the layers above: per sample
                weights[l] -= lr * np.outer(deltas[l][0], acts[l - 1][0])
                biases[l] -= lr * deltas[l][0]
        W0 -= lr * (D.T @ Xb)
        b0 -= lr * D.sum(axis=0)
    return params, np.array(step_losses, dtype=params.dtype)


def mean_loss(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    X: np.ndarray,
    Y: np.ndarray,
) -> float:
    """Mean over samples of the per-sample loss."""
    zs, acts = forward(layout, params, activations, X)
    return float(losses(loss, activations[-1], zs[-1], acts[-1], Y).mean())


def finite_difference_gradient(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    x: np.ndarray,
    y: np.ndarray,
    eps: float = 1e-6,
) -> np.ndarray:
    """Central differences ``(L(p + eps e_k) - L(p - eps e_k)) / (2 eps)``; params float64."""
    if params.dtype != np.float64:
        raise TypeError(f"finite differences need float64 params, got {params.dtype}.")

    def sample_loss(p: np.ndarray) -> float:
        return mean_loss(layout, p, activations, loss, x[None, :], y[None, :])

    grad = np.empty_like(params)
    for k in range(params.size):
        up, down = params.copy(), params.copy()
        up[k] += eps
        down[k] -= eps
        grad[k] = (sample_loss(up) - sample_loss(down)) / (2 * eps)
    return grad


# --- Training with optimizer state ------------------------------------------------------------
# Mini-batches, sample weights, L2 weight decay, momentum (classical / Nesterov), Adam and
# inverted dropout, spelled out one sample and one batch at a time.
#
# - batch of B samples with weights w_r:  g = (1/B) sum_r w_r grad_r + alpha * W   (alpha: weights
#   only, never biases)
# - sgd:  v <- mu v - lr g;  p <- p + v  (Nesterov: p <- p + mu v - lr g), scikit-learn's form;
#   mu = 0 is plain p <- p - lr g
# - adam: m <- b1 m + (1-b1) g;  s <- b2 s + (1-b2) g^2;  t <- t + 1;
#   p <- p - lr (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)
# - dropout p on hidden layers: each hidden unit's activation is multiplied by a mask drawn per
#   sample, 0 with probability p, else 1/(1-p); the next layer reads a * mask, and the delta of a
#   hidden layer is (W^T delta_next) * f'(z) * mask. The masks come from splitmix64, drawn per
#   sample, hidden layer by hidden layer, unit by unit; a unit is dropped when the top 53 bits of
#   its draw are below floor(p * 2^53).


def splitmix64(state: int) -> tuple[int, int]:
    """One step of splitmix64: ``(new_state, 64 random bits)`` (Python ints mod 2^64)."""
    mask = (1 << 64) - 1
    state = (state + 0x9E3779B97F4A7C15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return state, z ^ (z >> 31)


def dropout_threshold(p: float) -> int:
    """Units are dropped when the top 53 bits of their draw are below this: ``floor(p 2^53)``."""
    return int(p * 2.0**53)


def new_optimizer_state(params: np.ndarray, rng_state: int = 0) -> dict:
    """Zero momentum / Adam moments, Adam's step count 0, and the dropout stream's state."""
    return {
        "velocity": np.zeros_like(params),
        "moment2": np.zeros_like(params),
        "t": 0,
        "rng": rng_state,
    }


def _dropout_masks(
    layout: Layout, dtype: np.dtype, p: float, rng: int
) -> tuple[list[np.ndarray], int]:
    """One mask per hidden layer for one sample (all ones when ``p == 0``); the new rng state."""
    threshold = dropout_threshold(p)
    scale = dtype.type(1.0 / (1.0 - p))
    masks = []
    for width in layout.sizes[1:-1]:
        mask = np.ones(width, dtype=dtype)
        if threshold:
            for k in range(width):
                rng, bits = splitmix64(rng)
                mask[k] = 0.0 if (bits >> 11) < threshold else scale
        masks.append(mask)
    return masks, rng


def train_epoch_opt(
    layout: Layout,
    params: np.ndarray,
    activations: Sequence[str],
    loss: str,
    X: np.ndarray,
    Y: np.ndarray,
    order: Sequence[int],
    lr: float,
    state: dict,
    *,
    batch_size: int = 1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    nesterov: bool = False,
    alpha: float = 0.0,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    dropout: float = 0.0,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Training over ``X[order[t]]`` in batches of ``batch_size`` (the last may be shorter).

    Returns new params, the per-sample losses (unweighted, before their batch's update) and
    the new optimizer state (see ``new_optimizer_state``); the inputs are not modified.
    """
    dtype = params.dtype
    f = dtype.type
    lr, alpha, mu = f(lr), f(alpha), f(momentum)
    b1, b2, eps = f(beta1), f(beta2), f(epsilon)
    params = params.copy()
    velocity, moment2 = state["velocity"].copy(), state["moment2"].copy()
    t, rng = state["t"], state["rng"]
    is_weight = layout.pack(
        [np.ones((n, m), dtype) for m, n in zip(layout.sizes[:-1], layout.sizes[1:], strict=True)],
        [np.zeros(n, dtype) for n in layout.sizes[1:]],
    )
    weights_of = np.ones(X.shape[0], dtype) if sample_weight is None else sample_weight
    step_losses = []
    order = list(order)
    for start in range(0, len(order), batch_size):
        grad = np.zeros_like(params)
        batch = order[start : start + batch_size]
        for r in batch:
            masks, rng = _dropout_masks(layout, dtype, dropout, rng)
            loss_value, g = _loss_and_gradient(layout, params, activations, loss, X[r], Y[r], masks)
            grad += weights_of[r] * g
            step_losses.append(loss_value)
        g = grad / f(len(batch)) + alpha * is_weight * params
        if optimizer == "adam":
            t += 1
            velocity = b1 * velocity + (1 - b1) * g
            moment2 = b2 * moment2 + (1 - b2) * g * g
            m_hat = velocity / (1 - b1**t)
            s_hat = moment2 / (1 - b2**t)
            params = params - lr * m_hat / (np.sqrt(s_hat) + eps)
        elif mu == 0:  # plain SGD keeps no velocity
            params = params - lr * g
        elif nesterov:
            velocity = mu * velocity - lr * g
            params = params + mu * velocity - lr * g
        else:
            velocity = mu * velocity - lr * g
            params = params + velocity
    new_state = {"velocity": velocity, "moment2": moment2, "t": t, "rng": rng}
    return params, np.array(step_losses, dtype=dtype), new_state
