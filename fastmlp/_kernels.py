"""Numba kernels: forward pass, output delta, delta recurrence, SGD update, fused epoch.

Every jitted function of fastmlp lives in this one file, decorated with the one ``jit`` below, so
that (a) all kernels carry the same Numba options and (b) ``cache=True`` stays correct: Numba's
cache invalidation does not notice edits to callees defined in *other* files.

Conventions shared by all kernels
---------------------------------
``params``  1-D, the flat parameter buffer (see ``fastmlp.layout``): per layer W (row-major
            ``(n_out, n_in)``) then b.
``meta``    int64 ``(n_layers, 6)``: one row per weight layer with the columns
            ``N_IN, N_OUT, W_OFF, B_OFF, U_OFF, ACT`` (widths, offsets of W and b in ``params``,
            offset of the layer's units in the unit buffers, activation code).
``zs, acts, deltas``  1-D unit buffers of ``n_units = sum(sizes[1:])`` entries, same dtype as
            ``params``: pre-activations, activations and dLoss/dz of the current sample.
``x, y``    one sample's input ``(n_in,)`` and target ``(n_out,)``; ``X, Y`` are 2-D stacks.

Preconditions (the Python layer guarantees them; kernels never validate, never raise and run
without bounds checks): every array is C-contiguous and of ``params``' dtype (integer arrays
int64), shapes agree with ``meta``, activation/loss codes are a valid combination, data is
finite, ``order`` holds valid row indices.

Inside the kernels, layers are accessed as per-layer *views* (``W = params[lo:hi].reshape(...)``)
rather than computed flat offsets: measured on this machine, that is what lets LLVM vectorise
the inner loops. Floating-point constants are built with ``dtype.type(...)`` so that float32
kernels never silently compute in float64.
"""

import os

import numba
import numpy as np

# --- The one block of Numba options -------------------------------------------------------------
# fastmath without nnan/ninf: reductions may be reassociated (needed to vectorise the dot products
# of the forward pass) but NaN/inf still propagate, so divergence stays visible.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}  # a set: Numba refuses a frozenset
# cache=True keeps compiled kernels across processes; FASTMLP_NUMBA_CACHE=0 turns it off.
CACHE = os.environ.get("FASTMLP_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no")
# error_model="numpy": a division by zero gives inf/NaN instead of raising inside a kernel.
# nogil=True: kernels release the GIL, so independent models can train in parallel threads.
JIT_OPTIONS = {"cache": CACHE, "fastmath": FASTMATH, "error_model": "numpy", "nogil": True}


def jit(fn):
    """Compile ``fn`` with fastmlp's one set of Numba options (lazily, on first call)."""
    return numba.njit(**JIT_OPTIONS)(fn)


# --- Codes (integers, never functions: a function argument would defeat cache=True) ------------
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX = 0, 1, 2, 3, 4, 5
MSE, BINARY_CROSS_ENTROPY, CROSS_ENTROPY = 0, 1, 2
N_IN, N_OUT, W_OFF, B_OFF, U_OFF, ACT = 0, 1, 2, 3, 4, 5
LEAKY_SLOPE = 0.01  # negative slope of leaky_relu (PyTorch's default)


# --- Per-layer building blocks -------------------------------------------------------------------
@jit
def _layer_weights(params, meta, layer):
    """Views ``W (n_out, n_in)`` and ``b (n_out,)`` of ``layer`` inside ``params``."""
    n_in = meta[layer, N_IN]
    n_out = meta[layer, N_OUT]
    w_off = meta[layer, W_OFF]
    b_off = meta[layer, B_OFF]
    W = params[w_off : w_off + n_out * n_in].reshape((n_out, n_in))
    b = params[b_off : b_off + n_out]
    return W, b


@jit
def _units(buf, meta, layer):
    """View of ``layer``'s units inside a unit buffer (``zs``, ``acts`` or ``deltas``)."""
    u_off = meta[layer, U_OFF]
    return buf[u_off : u_off + meta[layer, N_OUT]]


@jit
def _affine(W, b, a_prev, z):
    """``z = W @ a_prev + b``.  W (n_out, n_in), a_prev (n_in,), b and z (n_out,)."""
    n_out, n_in = W.shape
    for j in range(n_out):
        s = b[j]
        for i in range(n_in):  # a reduction: vectorises only because fastmath allows reassoc
            s += W[j, i] * a_prev[i]
        z[j] = s


@jit
def _activate(code, z, a):
    """``a = f(z)`` elementwise, or ``a = softmax(z)`` (max-shifted) for ``SOFTMAX``."""
    n = z.shape[0]
    zero = z.dtype.type(0.0)
    one = z.dtype.type(1.0)
    if code == IDENTITY:
        for k in range(n):
            a[k] = z[k]
    elif code == SIGMOID:
        # exp(-|z|) never overflows; sigma(z) = 1/(1+e) for z >= 0 and e/(1+e) for z < 0.
        for k in range(n):
            e = np.exp(-np.abs(z[k]))
            r = one / (one + e)
            a[k] = r if z[k] >= zero else e * r
    elif code == TANH:
        for k in range(n):
            a[k] = np.tanh(z[k])
    elif code == RELU:
        for k in range(n):
            a[k] = z[k] if z[k] > zero else zero
    elif code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_SLOPE)
        for k in range(n):
            a[k] = z[k] if z[k] > zero else slope * z[k]
    else:  # SOFTMAX: s_k = exp(z_k - max z) / sum_j exp(z_j - max z)
        m = z[0]
        for k in range(1, n):
            m = max(m, z[k])
        total = zero
        for k in range(n):
            e = np.exp(z[k] - m)
            a[k] = e
            total += e
        inv = one / total
        for k in range(n):
            a[k] *= inv


@jit
def _scale_by_derivative(code, z, a, d):
    """``d *= f'(z)`` for an elementwise activation code (never SOFTMAX)."""
    n = d.shape[0]
    zero = d.dtype.type(0.0)
    one = d.dtype.type(1.0)
    if code == SIGMOID:  # sigma' = a (1 - a)
        for k in range(n):
            d[k] *= a[k] * (one - a[k])
    elif code == TANH:  # tanh' = 1 - a^2
        for k in range(n):
            d[k] *= one - a[k] * a[k]
    elif code == RELU:
        for k in range(n):
            d[k] = d[k] if z[k] > zero else zero
    elif code == LEAKY_RELU:
        slope = d.dtype.type(LEAKY_SLOPE)
        for k in range(n):
            d[k] = d[k] if z[k] > zero else slope * d[k]
    # IDENTITY: f' = 1, nothing to do


# --- One sample --------------------------------------------------------------------------------
@jit
def forward(params, meta, x, zs, acts):
    """Forward pass of one sample: ``z_l = W_l a_{l-1} + b_l``, ``a_l = f_l(z_l)``, ``a_0 = x``.

    Writes every layer's ``z`` and ``a`` into ``zs`` and ``acts`` (n_units,). The output is the
    last layer's slice of ``acts``.
    """
    n_layers = meta.shape[0]
    for l in range(n_layers):
        W, b = _layer_weights(params, meta, l)
        z = _units(zs, meta, l)
        if l == 0:
            _affine(W, b, x, z)
        else:
            _affine(W, b, _units(acts, meta, l - 1), z)
        _activate(meta[l, ACT], z, _units(acts, meta, l))


@jit
def output_delta(meta, loss_code, y, zs, acts, deltas):
    """Output delta ``dLoss/dz_L`` into ``deltas`` (last layer's slice); returns the sample's loss.

    Losses are summed over output units: mse ``1/2 sum (a-y)^2``; binary cross-entropy
    ``sum softplus(z) - y z`` (sigmoid output, from z: no log(0)); cross-entropy
    ``sum y (logsumexp(z) - z)`` (softmax output, from z: no log(0)).
    Deltas: mse ``(a-y) f'(z)``, with softmax the full Jacobian ``(diag(s) - s s^T)(a-y)``,
    i.e. ``s * (g - s.g)``; bce + sigmoid and ce + softmax the simplified ``a - y``.
    """
    last = meta.shape[0] - 1
    code = meta[last, ACT]
    z = _units(zs, meta, last)
    a = _units(acts, meta, last)
    d = _units(deltas, meta, last)
    n = d.shape[0]
    loss = d.dtype.type(0.0)
    zero = d.dtype.type(0.0)
    if loss_code == MSE:
        for k in range(n):
            g = a[k] - y[k]
            d[k] = g
            loss += g * g
        loss *= d.dtype.type(0.5)
        if code == SOFTMAX:
            s_dot_g = zero
            for k in range(n):
                s_dot_g += a[k] * d[k]
            for k in range(n):
                d[k] = a[k] * (d[k] - s_dot_g)
        else:
            _scale_by_derivative(code, z, a, d)
    elif loss_code == BINARY_CROSS_ENTROPY:
        for k in range(n):
            d[k] = a[k] - y[k]
            softplus = max(z[k], zero) + np.log1p(np.exp(-np.abs(z[k])))
            loss += softplus - y[k] * z[k]
    else:  # CROSS_ENTROPY
        m = z[0]
        for k in range(1, n):
            m = max(m, z[k])
        total = zero
        for k in range(n):
            total += np.exp(z[k] - m)
        lse = m + np.log(total)
        for k in range(n):
            d[k] = a[k] - y[k]
            loss += y[k] * (lse - z[k])
    return loss


@jit
def backward(params, meta, zs, acts, deltas):
    """Delta recurrence ``delta_l = (W_{l+1}^T delta_{l+1}) * f_l'(z_l)`` for every hidden layer.

    Needs the output delta already in ``deltas``; fills the hidden layers' slices.
    """
    n_layers = meta.shape[0]
    for l in range(n_layers - 1, 0, -1):
        W, _ = _layer_weights(params, meta, l)
        d = _units(deltas, meta, l)
        g = _units(deltas, meta, l - 1)
        g[:] = 0
        n_out, n_in = W.shape
        for j in range(n_out):  # row-wise axpy: g += d_j * W[j, :] (no reduction needed)
            dj = d[j]
            for i in range(n_in):
                g[i] += W[j, i] * dj
        z_prev = _units(zs, meta, l - 1)
        _scale_by_derivative(meta[l - 1, ACT], z_prev, _units(acts, meta, l - 1), g)


@jit
def gradient(meta, x, acts, deltas, grad):
    """Per-sample gradient into ``grad`` (n_params,): ``dW_l = delta_l a_{l-1}^T``,
    ``db_l = delta_l`` (forward and backward already done)."""
    n_layers = meta.shape[0]
    for l in range(n_layers):
        gW, gb = _layer_weights(grad, meta, l)
        d = _units(deltas, meta, l)
        n_out, n_in = gW.shape
        for j in range(n_out):
            dj = d[j]
            gb[j] = dj
            if l == 0:
                for i in range(n_in):
                    gW[j, i] = dj * x[i]
            else:
                a_prev = _units(acts, meta, l - 1)
                for i in range(n_in):
                    gW[j, i] = dj * a_prev[i]


@jit
def sgd_update(params, meta, x, acts, deltas, lr):
    """Plain SGD update ``W_l -= lr delta_l a_{l-1}^T``, ``b_l -= lr delta_l`` (deltas given)."""
    n_layers = meta.shape[0]
    for l in range(n_layers):
        W, b = _layer_weights(params, meta, l)
        d = _units(deltas, meta, l)
        n_out, n_in = W.shape
        for j in range(n_out):
            step = lr * d[j]
            b[j] -= step
            if l == 0:
                for i in range(n_in):
                    W[j, i] -= step * x[i]
            else:
                a_prev = _units(acts, meta, l - 1)
                for i in range(n_in):
                    W[j, i] -= step * a_prev[i]


@jit
def _backward_update(params, meta, x, zs, acts, deltas, lr):
    """Fused delta recurrence and SGD update, one pass over each weight matrix.

    For layer l (from the output down), each ``W[j, i]`` is read once to accumulate
    ``W_l^T delta_l`` with the *old* weight and then updated in place: exactly backprop followed
    by the update, because layer l-1's delta never needs layer l's new weights.
    """
    n_layers = meta.shape[0]
    for l in range(n_layers - 1, -1, -1):
        W, b = _layer_weights(params, meta, l)
        d = _units(deltas, meta, l)
        n_out, n_in = W.shape
        if l == 0:
            for j in range(n_out):
                step = lr * d[j]
                b[j] -= step
                for i in range(n_in):
                    W[j, i] -= step * x[i]
        else:
            a_prev = _units(acts, meta, l - 1)
            g = _units(deltas, meta, l - 1)
            g[:] = 0
            for j in range(n_out):
                dj = d[j]
                step = lr * dj
                b[j] -= step
                for i in range(n_in):
                    g[i] += W[j, i] * dj
                    W[j, i] -= step * a_prev[i]
            _scale_by_derivative(meta[l - 1, ACT], _units(zs, meta, l - 1), a_prev, g)


@jit
def sgd_step(params, meta, loss_code, x, y, lr, zs, acts, deltas):
    """One online SGD step on one sample (forward, output delta, backprop + update in place).

    Returns the sample's loss, computed in the forward pass before the update.
    """
    forward(params, meta, x, zs, acts)
    loss = output_delta(meta, loss_code, y, zs, acts, deltas)
    _backward_update(params, meta, x, zs, acts, deltas, lr)
    return loss


@jit
def sample_gradient(params, meta, loss_code, x, y, zs, acts, deltas, grad):
    """dLoss/dparams of one sample into ``grad`` (n_params,); returns the sample's loss."""
    forward(params, meta, x, zs, acts)
    loss = output_delta(meta, loss_code, y, zs, acts, deltas)
    backward(params, meta, zs, acts, deltas)
    gradient(meta, x, acts, deltas, grad)
    return loss


# --- Loops over samples -------------------------------------------------------------------------
@jit
def train_epoch(params, meta, loss_code, X, Y, order, lr, zs, acts, deltas, losses):
    """Online SGD over the rows ``X[order[t]]``, ``t = 0 .. len(order)-1``, in that order.

    X (n_samples, n_in), Y (n_samples, n_out), order int64 (n_steps,), losses (n_steps,):
    ``losses[t]`` receives step t's loss (before its update). Updates ``params`` in place and
    allocates nothing.
    """
    for t in range(order.shape[0]):
        r = order[t]
        losses[t] = sgd_step(params, meta, loss_code, X[r], Y[r], lr, zs, acts, deltas)


@jit
def predict_batch(params, meta, X, out, zs, acts):
    """Forward pass of every row of X (n_samples, n_in) into ``out`` (n_samples, n_out)."""
    last = meta.shape[0] - 1
    u_off = meta[last, U_OFF]
    n_out = meta[last, N_OUT]
    for r in range(X.shape[0]):
        forward(params, meta, X[r], zs, acts)
        for k in range(n_out):
            out[r, k] = acts[u_off + k]


@jit
def loss_batch(params, meta, loss_code, X, Y, zs, acts, deltas, losses):
    """Per-sample losses of every row into ``losses`` (n_samples,); parameters unchanged."""
    for r in range(X.shape[0]):
        forward(params, meta, X[r], zs, acts)
        losses[r] = output_delta(meta, loss_code, Y[r], zs, acts, deltas)
