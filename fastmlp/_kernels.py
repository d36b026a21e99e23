"""Numba kernels: forward pass, output delta, delta recurrence, SGD update, fused epoch.

Every jitted function of fastmlp lives in this one file, decorated with the one ``jit`` below, so
that (a) all kernels carry the same Numba options and (b) ``cache=True`` stays correct: Numba's
cache invalidation does not notice edits to callees defined in *other* files.

Contents, in file order
-----------------------
1. Options: ``JIT_OPTIONS`` and the decorators ``jit``, ``jit_inline``, ``jit_exact``.
2. Codes and constants: activations (``IDENTITY`` ... ``SOFTMAX``), losses (``MSE`` ...),
   the ``meta`` columns (``N_IN`` ... ``ACT``), ``SIMD_MIN_UNITS``, ``PREDICT_BLOCK``.
3. Scalar math: ``_exp_nonpos``, ``_expm1_nonpos`` (exact-order exp for the losses).
4. Layer building blocks (inlined): ``_affine*``, ``_activate*``, ``_scale_by_derivative``,
   ``_forward_layers``, ``_output_delta``, ``_backprop_layer``, ``_update_*``.
5. One sample: ``forward``, ``output_delta``, ``backward``, ``gradient``, ``sgd_update``,
   ``sgd_step``, ``sample_gradient`` (the pieces the tests compare with the reference).
6. The fused online-SGD epoch: ``train_epoch`` (layer 0's inputs staged by ``_stage_input``),
   and ``train_epoch_blocked``, the same SGD with layer 0 summed over blocks of samples.
7. Many rows, no update: ``predict_batch``, ``loss_batch`` (``PREDICT_BLOCK`` rows a pass).
8. The benchmarks' yardsticks: ``one_pass_bound``, ``multiply_add_peak``.
9. The streaming step with rollback: ``sgd_step_if_finite``, and the one-call-per-event
   ``stream_step`` and ``predict_rows_if_finite`` of ``MLP.step`` / ``MLP.predict``, and
   ``row_step`` / ``row_predict`` for a caller that owns its buffers (``fastmlp.river``).
10. The general epoch: ``train_epoch_opt`` (mini-batches, momentum/Nesterov, Adam, weight
    decay, sample weights, dropout from a SplitMix64 stream).
11. The row-parallel epochs: ``train_epoch_rows``, ``train_epoch_blocked_rows`` and
    ``train_epoch_blocked_solo`` (layer 0 in blocks) and their spin barrier (``_barrier``,
    acquire/release intrinsics).
12. Utilities: ``count_nonfinite``, ``sum_sq_weights``, ``one_hot``.

Buffers (all 1-D, C-contiguous, of the model's float dtype unless said otherwise)
---------------------------------------------------------------------------------
``params``  the flat parameter buffer (see ``fastmlp.layout``): per layer W (row-major
            ``(n_out, n_in)``), then b.
``meta``    uint64 ``(n_layers, 7)``: per weight layer the columns ``N_IN, N_OUT, W_OFF, B_OFF,
            IN_OFF, OUT_OFF, ACT``: widths, offsets of W and b in ``params``, offsets of the
            layer's input and output levels in the unit buffers, activation code.
``zs, acts, deltas``  unit buffers of ``n_units = sum(sizes)`` entries, one *level* after the
            other: level 0 is the input (``acts`` holds x there), level l+1 is layer l's output.
            ``zs`` pre-activations, ``acts`` activations, ``deltas`` dLoss/dz.
``X, Y``    2-D data ``(n_samples, n_in)`` and targets ``(n_samples, n_out)``; a kernel working on
            one sample takes the row index ``r``.

Preconditions (the Python layer guarantees them; kernels never validate, never raise and run
without bounds checks): arrays are C-contiguous, of ``params``' dtype (``order`` int64, ``meta``
uint64), shapes agree with ``meta``, activation/loss codes form a valid combination, data is
finite, row indices are in range.

Why flat indexing with *unsigned* offsets: an inner loop over ``params[base + i]`` vectorises
as well as one over a per-layer 2-D view as long as the index is uint64 (a signed index gets a
negative-index wraparound check that blocks SIMD), and it costs no view construction (slice,
reshape, reference counting) per layer per sample -- which dominated the small networks. So
every index expression below is uint64 throughout. Beware: Numba types ``uint64 op int64`` as
float64, so integer literals never appear in index arithmetic (tested on the generated code: no
int-to-float conversions).
Floating-point constants are built with ``dtype.type(...)`` so float32 kernels never compute in
float64 (tested too).
"""

import os
import platform

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# --- The one block of Numba options -------------------------------------------------------------
# fastmath without nnan/ninf: reductions may be reassociated (needed to vectorise the dot products
# of the forward pass) but NaN/inf still propagate, so divergence stays visible.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}  # a set: Numba refuses a frozenset
# cache=True keeps compiled kernels across processes; FASTMLP_NUMBA_CACHE=0 turns it off.
CACHE = os.environ.get("FASTMLP_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no")
# error_model="numpy": a division by zero gives inf/NaN instead of raising inside a kernel.
# nogil=True: kernels release the GIL, so independent models can train in parallel threads.
# _nrt=False: no Numba runtime, hence no reference counting of arrays. Kernels only index
# buffers they are given, so they need none; with it on, the atomic incref/decref around every
# inlined helper took most of the time on small nets. It also turns any allocation inside a
# kernel into a compile error: "no allocation in the training loop" is enforced, not just intended.
JIT_OPTIONS = {
    "cache": CACHE,
    "fastmath": FASTMATH,
    "error_model": "numpy",
    "nogil": True,
    "_nrt": False,
}


# Private building blocks are inlined into each kernel at Numba-IR level: a real call passes
# every array as ~7 scalars plus reference counting, which dominated the small networks.
INLINE_OPTIONS = {**JIT_OPTIONS, "inline": "always"}
# The scalar exp/expm1 below rely on exact operation order (Cody-Waite range reduction,
# ``scale * q + (scale - 1)``), which reassociation would break; they take only scalars, so LLVM
# inlines them into the callers' vectorised loops with their own (exact) flags kept.
# The blocked update's tile (``_subtract_4x4``) uses them too, to keep its chain of multiply-adds.
EXACT_OPTIONS = {**JIT_OPTIONS, "fastmath": FASTMATH - {"reassoc"}}


def jit(fn):
    """Compile ``fn`` with fastmlp's one set of Numba options (lazily, on first call)."""
    return numba.njit(**JIT_OPTIONS)(fn)


def jit_inline(fn):
    """Like ``jit``, and always inlined into its callers (for the ``_private`` building blocks)."""
    return numba.njit(**INLINE_OPTIONS)(fn)


def jit_exact(fn):
    """Like ``jit`` without reassociation (the scalar exp/expm1, the blocked update's tile)."""
    return numba.njit(**EXACT_OPTIONS)(fn)


# --- Codes (integers, never functions: a function argument would defeat cache=True) ------------
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX = 0, 1, 2, 3, 4, 5
MSE, BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MAE = 0, 1, 2, 3
N_IN, N_OUT, W_OFF, B_OFF, IN_OFF, OUT_OFF, ACT = 0, 1, 2, 3, 4, 5, 6
N_META = 7
LEAKY_SLOPE = 0.01  # negative slope of leaky_relu (PyTorch's default)


# --- exp and expm1 of non-positive arguments, vectorisable ----------------------------------
# libm's tanh/exp are scalar calls (no SVML in PyPI's llvmlite), and tanh alone took a large
# share of a tanh network's epoch. Every exponential the kernels need has an argument <= 0
# (sigmoid: exp(-|z|), tanh: expm1(-2|z|), softmax: exp(z - max z)), so a short polynomial
# suffices and vectorises: x = k ln2 + r with |r| <= ln2/2, expm1(r) by its Taylor series
# (to r^13/13! in float64, r^7/7! in float32: truncation < 1 ulp), 2^k from its bits.
# Measured against libm over [-800, 0]: <= 1.0 ulp (float64), <= 2.7 ulp (float32).
# The polynomial is a long dependency chain: it wins in vectorised loops, many times faster per
# element than libm's scalar tanh, but loses to libm on a few scalars (the 1- to 3-unit layers of
# a net like xor). Layers narrower than this use libm.
SIMD_MIN_UNITS = 8
PREDICT_BLOCK = 4  # samples per pass over the weights in predict_batch (_affine_block: exactly 4)
LN2_HI = 6.93147180369123816490e-01  # ln 2 split (fdlibm): k * LN2_HI is exact for |k| < 2^11
LN2_LO = 1.90821492927058770002e-10


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float whose IEEE-754 bits are ``bits``: uint64 -> float64, uint32 -> float32."""
    if bits == types.uint64:
        sig = types.float64(bits)
    elif bits == types.uint32:
        sig = types.float32(bits)
    else:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(sig.return_type))

    return sig, codegen


@jit_exact
def _exp_parts(x):
    """For x <= 0: ``(scale, q)`` with ``exp(x) = scale (1 + q)``, ``scale = 2^k``,
    ``q = expm1(r)``. Below the smallest normal result (x < -708.39, or -87.33 in float32) the
    argument is clamped there: the result is then off by less than that tiny number."""
    f = type(x)
    is_f32 = f(1.0) + f(1e-8) == f(1.0)  # a compile-time constant: float32 can't hold 1 + 1e-8
    x = max(x, f(-87.33) if is_f32 else f(-708.39))
    kf = np.floor(x * f(1.4426950408889634) + f(0.5))  # k = round(x / ln 2)
    r = (x - kf * f(LN2_HI)) - kf * f(LN2_LO)
    if is_f32:
        q = f(1 / 5040)
        q = q * r + f(1 / 720)
        q = q * r + f(1 / 120)
        q = q * r + f(1 / 24)
        q = q * r + f(1 / 6)
        q = q * r + f(0.5)
        # 2^k from its bits, exponent field k + 127 (>= 1: normal): a table lookup here was
        # a gather instruction per vector, slow on this CPU. f(): both branches must type alike.
        scale = f(_float_from_bits(np.uint32(np.uint64(kf + f(127.0)) << np.uint64(23))))
    else:
        q = f(1 / 6227020800)
        q = q * r + f(1 / 479001600)
        q = q * r + f(1 / 39916800)
        q = q * r + f(1 / 3628800)
        q = q * r + f(1 / 362880)
        q = q * r + f(1 / 40320)
        q = q * r + f(1 / 5040)
        q = q * r + f(1 / 720)
        q = q * r + f(1 / 120)
        q = q * r + f(1 / 24)
        q = q * r + f(1 / 6)
        q = q * r + f(0.5)
        scale = f(_float_from_bits(np.uint64(kf + f(1023.0)) << np.uint64(52)))
    q = (q * r) * r + r  # expm1(r) = r + r^2 (1/2 + r/6 + ...)
    return scale, q


@jit_exact
def _exp_nonpos(x):
    """``exp(x)`` for ``x <= 0``."""
    scale, q = _exp_parts(x)
    return scale + scale * q


@jit_exact
def _expm1_nonpos(x):
    """``expm1(x) = exp(x) - 1`` for ``x <= 0``, accurate near 0 too (for tanh of small z)."""
    scale, q = _exp_parts(x)
    return scale * q + (scale - type(x)(1.0))


# --- Per-layer building blocks (flat buffers, uint64 offsets) ----------------------------------
@jit_inline
def _affine(params, meta, l, zs, acts):
    """``z = W a_prev + b`` for layer ``l``: reads its input level of ``acts``, writes ``zs``."""
    _affine_rows(params, meta, l, zs, acts, np.uint64(0), meta[l, N_OUT])


@jit_inline
def _affine_rows(params, meta, l, zs, acts, lo, hi):
    """Rows ``lo .. hi-1`` of ``z = W a_prev + b`` for layer ``l`` (see ``_affine``)."""
    n_in = meta[l, N_IN]
    w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    for j in range(lo, hi):
        s = params[b + j]
        row = w + j * n_in
        for i in range(n_in):  # a reduction: vectorises only because fastmath allows reassoc
            s += params[row + i] * acts[src + i]
        zs[dst + j] = s


@jit_inline
def _activate_units(code, zs, acts, start, end, simd):
    """``acts[k] = f(zs[k])`` for ``k in start .. end-1``, an elementwise code (never SOFTMAX).

    ``simd`` picks the vectorisable exp (see ``SIMD_MIN_UNITS``); it depends on the width of the
    whole level, so a thread doing part of a level computes exactly what one thread would.
    """
    code = np.int64(code)  # meta is uint64; compare codes as int64 (mixed compares go via float)
    zero = zs.dtype.type(0.0)
    one = zs.dtype.type(1.0)
    two = zs.dtype.type(2.0)
    if code == IDENTITY:
        for k in range(start, end):
            acts[k] = zs[k]
    elif code == SIGMOID:
        # e = exp(-|z|) <= 1 never overflows; sigma(z) = 1/(1+e) for z >= 0, e/(1+e) for z < 0.
        if simd:
            for k in range(start, end):
                e = _exp_nonpos(-np.abs(zs[k]))
                q = one / (one + e)
                acts[k] = q if zs[k] >= zero else e * q
        else:
            # libm's exp on the few units of a narrow layer, where latency counts: the plain
            # 1/(1 + exp(-z)) is the shortest chain. For z < -709 (float32: -88) exp(-z)
            # overflows to inf and the result is 0, while the true value is below the smallest
            # normal number anyway.
            for k in range(start, end):
                acts[k] = one / (one + np.exp(-zs[k]))
    elif code == TANH:
        # tanh|z| = -m / (2 + m) with m = expm1(-2|z|): no cancellation near 0, no overflow.
        if simd:
            for k in range(start, end):
                m = _expm1_nonpos(-two * np.abs(zs[k]))
                t = -m / (two + m)
                acts[k] = t if zs[k] >= zero else -t
        else:
            for k in range(start, end):
                acts[k] = np.tanh(zs[k])
    elif code == RELU:
        for k in range(start, end):
            acts[k] = zs[k] if zs[k] > zero else zero
    else:  # LEAKY_RELU
        slope = zs.dtype.type(LEAKY_SLOPE)
        for k in range(start, end):
            acts[k] = zs[k] if zs[k] > zero else slope * zs[k]


@jit_inline
def _activate(code, zs, acts, u, n):
    """``acts[u:u+n] = f(zs[u:u+n])`` elementwise, or softmax (max-shifted) for ``SOFTMAX``.

    Returns ``log(sum(exp(z)))`` for a softmax (the cross-entropy needs it), else 0.
    """
    zero = zs.dtype.type(0.0)
    end = u + n
    if np.int64(code) != SOFTMAX:
        _activate_units(code, zs, acts, u, end, n >= SIMD_MIN_UNITS)
        return zero
    # SOFTMAX: s_k = exp(z_k - max z) / sum_j exp(z_j - max z)
    one = zs.dtype.type(1.0)
    m = zs[u]
    for k in range(u, end):
        m = max(m, zs[k])
    total = zero
    if n >= SIMD_MIN_UNITS:
        for k in range(u, end):
            e = _exp_nonpos(zs[k] - m)
            acts[k] = e
            total += e
    else:
        for k in range(u, end):
            e = np.exp(zs[k] - m)
            acts[k] = e
            total += e
    inv = one / total
    for k in range(u, end):
        acts[k] *= inv
    return m + np.log(total)


@jit_inline
def _scale_by_derivative(code, zs, acts, deltas, u, n):
    """``deltas[u:u+n] *= f'(z)`` for an elementwise activation code (never SOFTMAX)."""
    code = np.int64(code)
    zero = zs.dtype.type(0.0)
    one = zs.dtype.type(1.0)
    end = u + n
    if code == SIGMOID:  # sigma' = a (1 - a)
        for k in range(u, end):
            deltas[k] *= acts[k] * (one - acts[k])
    elif code == TANH:  # tanh' = 1 - a^2
        for k in range(u, end):
            deltas[k] *= one - acts[k] * acts[k]
    elif code == RELU:
        for k in range(u, end):
            deltas[k] = deltas[k] if zs[k] > zero else zero
    elif code == LEAKY_RELU:
        slope = zs.dtype.type(LEAKY_SLOPE)
        for k in range(u, end):
            deltas[k] = deltas[k] if zs[k] > zero else slope * deltas[k]
    # IDENTITY: f' = 1, nothing to do


@jit_inline
def _load_input(meta, X, r, acts):
    """Copy row ``r`` of X into level 0 of ``acts`` (n_in values; cheap next to the weights)."""
    for i in range(meta[0, N_IN]):
        acts[i] = X[r, i]


@jit_inline
def _forward_layers(params, meta, first, zs, acts):
    """Layers ``first .. L-1``: affine (except for ``first``, whose z is ready) and activation.

    Returns the output's ``logsumexp(z)`` if it is a softmax (else 0).
    """
    lse = zs.dtype.type(0.0)
    for l in range(first, meta.shape[0]):
        if l != first:
            _affine(params, meta, l, zs, acts)
        lse = _activate(meta[l, ACT], zs, acts, meta[l, OUT_OFF], meta[l, N_OUT])
    return lse


@jit_inline
def _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse):
    """Output delta ``dLoss/dz_L`` into the last level of ``deltas``; returns the sample's loss.

    Losses are summed over output units: mse ``1/2 sum (a-y)^2``; mae ``sum |a-y|``; binary
    cross-entropy
    ``sum softplus(z) - y z`` (sigmoid output, from z: no log(0)); cross-entropy
    ``sum y (logsumexp(z) - z)`` (softmax output, from z: no log(0)).
    Deltas: mse ``(a-y) f'(z)`` (mae ``sign(a-y) f'(z)``), with softmax the full Jacobian
    ``(diag(s) - s s^T) g``, i.e. ``s * (g - s.g)``; bce + sigmoid and ce + softmax the
    simplified ``a - y``.
    ``lse`` is the softmax output's ``logsumexp(z)`` from the forward pass.
    """
    last = meta.shape[0] - 1
    code = np.int64(meta[last, ACT])
    u, n = meta[last, OUT_OFF], meta[last, N_OUT]
    zero = zs.dtype.type(0.0)
    loss = zero
    if loss_code == MSE or loss_code == MAE:
        if loss_code == MSE:  # dloss/da = a - y
            for k in range(n):
                g = acts[u + k] - Y[r, k]
                deltas[u + k] = g
                loss += g * g
            loss *= zs.dtype.type(0.5)
        else:  # MAE: dloss/da = sign(a - y), with sign(0) = 0 (PyTorch's L1 subgradient)
            one = zs.dtype.type(1.0)
            for k in range(n):
                g = acts[u + k] - Y[r, k]
                deltas[u + k] = one if g > zero else (-one if g < zero else zero)
                loss += np.abs(g)
        if code == SOFTMAX:
            s_dot_g = zero
            for k in range(u, u + n):
                s_dot_g += acts[k] * deltas[k]
            for k in range(u, u + n):
                deltas[k] = acts[k] * (deltas[k] - s_dot_g)
        else:
            _scale_by_derivative(code, zs, acts, deltas, u, n)
    elif loss_code == BINARY_CROSS_ENTROPY:
        for k in range(n):
            z = zs[u + k]
            y = Y[r, k]
            deltas[u + k] = acts[u + k] - y
            softplus = max(z, zero) + np.log1p(_exp_nonpos(-np.abs(z)))
            loss += softplus - y * z
    else:  # CROSS_ENTROPY
        for k in range(n):
            y = Y[r, k]
            deltas[u + k] = acts[u + k] - y
            loss += y * (lse - zs[u + k])
    return loss


@jit_inline
def _backprop_layer(params, meta, l, zs, acts, deltas):
    """``delta_{l-1} = (W_l^T delta_l) * f'(z_{l-1})`` into layer l's input level of ``deltas``."""
    n_in, n_out = meta[l, N_IN], meta[l, N_OUT]
    w, src, dst = meta[l, W_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    zero = zs.dtype.type(0.0)
    for i in range(src, src + n_in):
        deltas[i] = zero
    for j in range(n_out):  # row-wise axpy: g += d_j W[j, :] (no reduction needed)
        dj = deltas[dst + j]
        row = w + j * n_in
        for i in range(n_in):
            deltas[src + i] += params[row + i] * dj
    _scale_by_derivative(meta[l - 1, ACT], zs, acts, deltas, src, n_in)


@jit_inline
def _update_layer(params, meta, l, acts, deltas, lr):
    """SGD on layer l: ``W -= lr delta a_prev^T``, ``b -= lr delta``."""
    _update_rows(params, meta, l, acts, deltas, lr, np.uint64(0), meta[l, N_OUT])


@jit_inline
def _update_rows(params, meta, l, acts, deltas, lr, lo, hi):
    """SGD on rows ``lo .. hi-1`` of layer l (see ``_update_layer``)."""
    n_in = meta[l, N_IN]
    w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    for j in range(lo, hi):
        step = lr * deltas[dst + j]
        params[b + j] -= step
        row = w + j * n_in
        for i in range(n_in):
            params[row + i] -= step * acts[src + i]


@jit_inline
def _backprop_and_update_rows(params, meta, l, acts, deltas, partial, p_off, lr, lo, hi):
    """Rows ``lo .. hi-1`` of layer l (l >= 1): their share of ``W_l^T delta_l`` into
    ``partial[p_off + IN_OFF + i]`` (old weights), then their SGD update, in one pass (see
    ``_backprop_and_update_layer``, which passes ``deltas`` itself as ``partial``).

    Rows go two at a time: each ``partial[i]`` is loaded and stored once per pair, and
    ``acts[i]`` loaded once, which is faster than one row at a time; row j's term is still
    added before row j+1's, as one row at a time would. Tested: an epoch equals unfused
    one-row steps up to rounding (bit for bit on AVX-512 hosts; a few ulps on AVX2 ones, where
    LLVM vectorises the two copies differently under fastmath).
    """
    n_in = meta[l, N_IN]
    w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    base = p_off + src
    zero = params.dtype.type(0.0)
    for i in range(n_in):
        partial[base + i] = zero
    one = np.uint64(1)
    j = lo
    while j + one < hi:  # rows j and k = j + 1
        k = j + one
        d_j, d_k = deltas[dst + j], deltas[dst + k]
        step_j, step_k = lr * d_j, lr * d_k
        params[b + j] -= step_j
        params[b + k] -= step_k
        row_j = w + j * n_in
        row_k = row_j + n_in
        for i in range(n_in):
            a = acts[src + i]
            w_j, w_k = params[row_j + i], params[row_k + i]
            g = partial[base + i] + w_j * d_j
            partial[base + i] = g + w_k * d_k
            params[row_j + i] = w_j - step_j * a
            params[row_k + i] = w_k - step_k * a
        j = k + one
    if j < hi:  # the last row of an odd count
        dj = deltas[dst + j]
        step = lr * dj
        params[b + j] -= step
        row = w + j * n_in
        for i in range(n_in):
            partial[base + i] += params[row + i] * dj
            params[row + i] -= step * acts[src + i]


@jit_inline
def _backprop_and_update_layer(params, meta, l, zs, acts, deltas, lr):
    """Fused ``_backprop_layer`` then ``_update_layer``, in one pass over W_l.

    Each ``W[j, i]`` is read once: its *old* value feeds ``W^T delta`` and then it is updated in
    place. That is exactly backprop followed by the update, because layer l-1's delta never
    needs layer l's new weights.
    """
    zero = np.uint64(0)
    _backprop_and_update_rows(params, meta, l, acts, deltas, deltas, zero, lr, zero, meta[l, N_OUT])
    _scale_by_derivative(meta[l - 1, ACT], zs, acts, deltas, meta[l, IN_OFF], meta[l, N_IN])


@jit_inline
def _update_first_layer_and_forward(params, meta, inputs, cur, nxt, deltas, lr, zs, lo, hi):
    """Fused SGD update of layer 0's rows ``lo .. hi-1`` for the current sample (input at
    ``inputs[cur:cur+n_in]``) and the same rows' affine part for the next sample (input at
    ``inputs[nxt:nxt+n_in]``), in one pass over them.

    ``W_0[j, i]`` is updated and the *new* value multiplied into the next sample's ``z`` -- the
    same math as updating first and running the next forward pass after, with one pass over the
    largest matrix instead of two. ``inputs`` is ``_input_pair`` (see there) or X's flat view.
    Rows go two at a time, so each load of an input serves two rows; a row gets the same
    operations, so the same bits, in a pair as alone (tested: the row-parallel kernel cuts the
    pairs differently).
    """
    n_in = meta[0, N_IN]
    w, b, dst = meta[0, W_OFF], meta[0, B_OFF], meta[0, OUT_OFF]
    one = np.uint64(1)
    j = lo
    while j + one < hi:  # rows j and k = j + 1
        k = j + one
        step_j, step_k = lr * deltas[dst + j], lr * deltas[dst + k]
        s_j, s_k = params[b + j] - step_j, params[b + k] - step_k
        params[b + j], params[b + k] = s_j, s_k
        row_j = w + j * n_in
        row_k = row_j + n_in
        for i in range(n_in):
            a, x = inputs[cur + i], inputs[nxt + i]
            new_j = params[row_j + i] - step_j * a
            new_k = params[row_k + i] - step_k * a
            params[row_j + i], params[row_k + i] = new_j, new_k
            s_j += new_j * x
            s_k += new_k * x
        zs[dst + j], zs[dst + k] = s_j, s_k
        j = k + one
    if j < hi:  # the last row of an odd count: updated, then summed as _affine_rows sums it
        step = lr * deltas[dst + j]
        s = params[b + j] - step
        params[b + j] = s
        row = w + j * n_in
        for i in range(n_in):
            params[row + i] -= step * inputs[cur + i]
        for i in range(n_in):
            s += params[row + i] * inputs[nxt + i]
        zs[dst + j] = s


# --- One sample ----------------------------------------------------------------------------
@jit
def forward(params, meta, X, r, zs, acts):
    """Forward pass of sample ``X[r]``: ``z_l = W_l a_{l-1} + b_l``, ``a_l = f_l(z_l)``.

    Writes every level of ``zs`` and ``acts`` (level 0 of ``acts`` receives the input).
    Returns the output's ``logsumexp(z)`` for a softmax output (else 0).
    """
    _load_input(meta, X, r, acts)
    _affine(params, meta, 0, zs, acts)
    return _forward_layers(params, meta, 0, zs, acts)


@jit
def output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse):
    """Output delta of sample r into ``deltas``; returns its loss (``lse`` from ``forward``)."""
    return _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)


@jit
def backward(params, meta, zs, acts, deltas):
    """Delta recurrence ``delta_l = (W_{l+1}^T delta_{l+1}) * f_l'(z_l)`` for every hidden layer
    (needs the output delta in ``deltas``)."""
    n_layers = meta.shape[0]
    for k in range(n_layers - 1):
        _backprop_layer(params, meta, n_layers - 1 - k, zs, acts, deltas)


@jit
def gradient(meta, acts, deltas, grad):
    """Per-sample gradient into ``grad`` (n_params,): ``dW_l = delta_l a_{l-1}^T``,
    ``db_l = delta_l`` (forward and backward done)."""
    for l in range(meta.shape[0]):
        n_in, n_out = meta[l, N_IN], meta[l, N_OUT]
        w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
        for j in range(n_out):
            dj = deltas[dst + j]
            grad[b + j] = dj
            row = w + j * n_in
            for i in range(n_in):
                grad[row + i] = dj * acts[src + i]


@jit
def sgd_update(params, meta, acts, deltas, lr):
    """Plain SGD update of every layer from ``deltas`` (forward and backward done)."""
    for l in range(meta.shape[0]):
        _update_layer(params, meta, l, acts, deltas, lr)


@jit
def sgd_step(params, meta, loss_code, X, Y, r, lr, zs, acts, deltas):
    """One online SGD step on sample r (forward, output delta, fused backprop + update).

    Returns the sample's loss, computed in the forward pass before the update.
    """
    lse = forward(params, meta, X, r, zs, acts)
    loss = _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)
    n_layers = meta.shape[0]
    for k in range(n_layers - 1):
        _backprop_and_update_layer(params, meta, n_layers - 1 - k, zs, acts, deltas, lr)
    _update_layer(params, meta, 0, acts, deltas, lr)
    return loss


@jit
def sample_gradient(params, meta, loss_code, X, Y, r, zs, acts, deltas, grad):
    """dLoss/dparams of sample r into ``grad`` (n_params,); returns the sample's loss."""
    lse = forward(params, meta, X, r, zs, acts)
    loss = _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)
    backward(params, meta, zs, acts, deltas)
    gradient(meta, acts, deltas, grad)
    return loss


# --- Loops over samples ---------------------------------------------------------------------
# Layer 0's fused pass writes the weights while it reads two inputs. Numba gives array arguments
# no ``noalias``, so LLVM cannot rule out that the inputs overlap the weights, and before each
# pair of rows it checks at run time that they don't (~20 instructions, and registers spilled
# around them). Memory in the kernel's own stack frame cannot overlap anything it was given:
# with both inputs copied there, the checks are gone (same bits, faster on narrow inputs). Wider
# inputs are read from X in place: for one as wide as mnist128's 784 the copy costs as much as
# the checks it removes.
STACK_INPUTS = 256  # the widest input copied to the stack (two of them: 4 KB in float64)


@intrinsic
def _input_pair(typingctx, like):
    """A 1-D buffer of ``2 * STACK_INPUTS`` floats of ``like``'s dtype in the calling kernel's
    stack frame (allocated once, at its entry), for two inputs: the current one and the next."""
    from numba.np.arrayobj import make_array, populate_array

    array_t = types.Array(like.dtype, 1, "C")

    def codegen(context, builder, sig, args):
        item = context.get_data_type(like.dtype)
        n = context.get_constant(types.intp, 2 * STACK_INPUTS)
        data = cgutils.alloca_once(builder, item, size=n)  # in the entry block: once per call
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(item))
        array = make_array(array_t)(context, builder)
        populate_array(
            array, data=data, shape=[n], strides=[itemsize], itemsize=itemsize, meminfo=None
        )
        return array._getvalue()

    return array_t(like), codegen


@jit_inline
def _stage_input(meta, X, r, inputs, slot, copy):
    """Where layer 0's pass finds the input ``X[r]``: copied to ``slot`` (0 or 1) of ``inputs``
    (``_input_pair``'s buffer) when ``copy``, else in place in X's flat view. Returns its
    offset."""
    n_in = meta[0, N_IN]
    if copy:
        at = slot * np.uint64(STACK_INPUTS)
        for i in range(n_in):
            inputs[at + i] = X[r, i]
        return at
    return np.uint64(r) * n_in


@jit
def train_epoch(params, meta, loss_code, X, Y, order, lr, zs, acts, deltas, losses):
    """Online SGD over the rows ``X[order[t]]``, ``t = 0 .. len(order)-1``, in that order.

    ``losses[t]`` receives step t's loss (before its update). Updates ``params`` in place and
    allocates nothing on the heap. Same math as ``sgd_step`` per sample, but layer 0's update is
    fused with the next sample's layer-0 forward pass (one pass over W_0 per sample instead of
    two), which reads the inputs from copies on the stack up to ``STACK_INPUTS`` wide, else
    from X in place.
    """
    n_steps = order.shape[0]
    if n_steps == 0:
        return
    n_layers = meta.shape[0]
    n_first = meta[0, N_OUT]
    copy = meta[0, N_IN] <= np.uint64(STACK_INPUTS)
    stack = _input_pair(params)
    flat = X.reshape(-1)
    one = np.uint64(1)
    _load_input(meta, X, order[0], acts)
    _affine(params, meta, 0, zs, acts)
    slot = np.uint64(0)
    cur = _stage_input(meta, X, order[0], stack, slot, copy)
    for t in range(n_steps):
        r = order[t]
        lse = _forward_layers(params, meta, 0, zs, acts)  # layer 0's z is ready
        losses[t] = _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)
        for k in range(n_layers - 1):
            _backprop_and_update_layer(params, meta, n_layers - 1 - k, zs, acts, deltas, lr)
        if t + 1 < n_steps:
            slot = one - slot
            nxt = _stage_input(meta, X, order[t + 1], stack, slot, copy)
            # Two calls, one per buffer: each is compiled knowing which buffer it reads (one
            # call on a buffer picked at run time would bring the overlap checks back).
            if copy:
                _update_first_layer_and_forward(
                    params, meta, stack, cur, nxt, deltas, lr, zs, np.uint64(0), n_first
                )
            else:
                _update_first_layer_and_forward(
                    params, meta, flat, cur, nxt, deltas, lr, zs, np.uint64(0), n_first
                )
            cur = nxt
        else:
            _load_input(meta, X, r, acts)
            _update_layer(params, meta, 0, acts, deltas, lr)


# --- The blocked online-SGD epoch: layer 0 reassociated over blocks of samples (issue 21) -------
# Per-sample SGD reads and writes every weight for every sample, so ``train_epoch`` runs at
# about the one-pass memory bound. For layer 0 the same trajectory can be summed in another
# order. Within a block of samples that starts from ``W0, b0``, with ``c_s = lr delta_s`` (sample
# s's layer-0 delta), sample t's pre-activation is exactly
#     z_t = W0 x_t + b0 - sum_{s<t} (x_s . x_t + 1) c_s
# (``W_t = W0 - sum_{s<t} c_s x_s^T``, ``b_t = b0 - sum_{s<t} c_s``). So per block: one product
# ``W0 [x_1 .. x_k]`` (W0 read once per k samples), the block's Gram matrix ``x_s . x_t``, a
# correction of ``t`` axpys of ``n_out`` per sample, the layers above per sample as in
# ``train_epoch``, and at the block's end one rank-k update ``W0 -= sum_t c_t x_t^T`` (W0 read
# and written once per 4 samples, from L1). Every gradient is still taken at the parameters
# left by all the samples before it (``reference.train_epoch_blocked`` states it in NumPy).
# Both products run on register tiles of 4 rows of W0 x 4 samples: per input index 8 loads
# feed 16 multiply-adds, which makes them arithmetic bound instead of memory bound. Blocks are
# padded to whole tiles with zero inputs and zero deltas, which add exact zeros.
BLOCK_TILE = 4  # rows and samples per register tile (the helpers below are written for 4)


@jit_inline
def _dots_4x4(A, a, B, b, n):
    """The 16 dot products of rows ``a + r n`` of A with rows ``b + t n`` of B (r, t in 0..3),
    each ``n`` long, in one pass over the 8 rows; returned as ``(r0t0, r0t1, ..., r3t3)``."""
    zero = A.dtype.type(0.0)
    a1, a2, a3 = a + n, a + n + n, a + n * np.uint64(3)
    b1, b2, b3 = b + n, b + n + n, b + n * np.uint64(3)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for i in range(n):  # 16 reductions: vectorised because fastmath allows reassoc
        x0, x1, x2, x3 = B[b + i], B[b1 + i], B[b2 + i], B[b3 + i]
        w = A[a + i]
        s00 += w * x0
        s01 += w * x1
        s02 += w * x2
        s03 += w * x3
        w = A[a1 + i]
        s10 += w * x0
        s11 += w * x1
        s12 += w * x2
        s13 += w * x3
        w = A[a2 + i]
        s20 += w * x0
        s21 += w * x1
        s22 += w * x2
        s23 += w * x3
        w = A[a3 + i]
        s30 += w * x0
        s31 += w * x1
        s32 += w * x2
        s33 += w * x3
    return (s00, s01, s02, s03, s10, s11, s12, s13,
            s20, s21, s22, s23, s30, s31, s32, s33)  # fmt: skip


@jit_inline
def _dots_1x4(A, a, B, b, n):
    """The 4 dot products of row ``a`` of A with rows ``b + t n`` of B (t in 0..3)."""
    zero = A.dtype.type(0.0)
    b1, b2, b3 = b + n, b + n + n, b + n * np.uint64(3)
    s0 = s1 = s2 = s3 = zero
    for i in range(n):
        w = A[a + i]
        s0 += w * B[b + i]
        s1 += w * B[b1 + i]
        s2 += w * B[b2 + i]
        s3 += w * B[b3 + i]
    return s0, s1, s2, s3


@jit_inline
def _store_4(out, at, stride, s0, s1, s2, s3, add):
    """``out[at + q stride] = add + s_q`` for q in 0..3."""
    out[at] = add + s0
    out[at + stride] = add + s1
    out[at + stride + stride] = add + s2
    out[at + stride * np.uint64(3)] = add + s3


@jit_inline
def _block_gram(xs, x, n_in, n_pad, gram):
    """``gram[s n_pad + t] = x_s . x_t + 1`` for the block's ``n_pad`` inputs staged at
    ``xs[x]``, at least for every ``s < t`` (whole 4 x 4 tiles on and above the diagonal)."""
    four = np.uint64(BLOCK_TILE)
    one = xs.dtype.type(1.0)
    s = np.uint64(0)
    while s < n_pad:
        t = s
        while t < n_pad:
            g = _dots_4x4(xs, x + s * n_in, xs, x + t * n_in, n_in)
            at, unit = s * n_pad + t, np.uint64(1)
            _store_4(gram, at, unit, g[0], g[1], g[2], g[3], one)
            _store_4(gram, at + n_pad, unit, g[4], g[5], g[6], g[7], one)
            _store_4(gram, at + n_pad + n_pad, unit, g[8], g[9], g[10], g[11], one)
            _store_4(gram, at + n_pad * np.uint64(3), unit, g[12], g[13], g[14], g[15], one)
            t += four
        s += four


@jit_exact
def _subtract_4x4(params, row, n_in, xs, x, c0, c1, c2, c3):
    """``W[r, i] -= sum_q c_q[r] xs[x + q n_in + i]`` for the 4 rows ``row + r n_in`` of W
    and the 4 staged inputs at ``x`` (``c_q``: the 4 rows' coefficients of input q), as a
    chain of 4 multiply-adds from ``W[r, i]`` per row: without reassociation (an LLVM-level
    call, not inlined by Numba), which LLVM otherwise turned into a product, 3 multiply-adds
    and an add."""
    r1, r2, r3 = row + n_in, row + n_in + n_in, row + n_in * np.uint64(3)
    x1, x2, x3 = x + n_in, x + n_in + n_in, x + n_in * np.uint64(3)
    for i in range(n_in):
        a0, a1, a2, a3 = xs[x + i], xs[x1 + i], xs[x2 + i], xs[x3 + i]
        params[row + i] = params[row + i] - c0[0] * a0 - c1[0] * a1 - c2[0] * a2 - c3[0] * a3
        params[r1 + i] = params[r1 + i] - c0[1] * a0 - c1[1] * a1 - c2[1] * a2 - c3[1] * a3
        params[r2 + i] = params[r2 + i] - c0[2] * a0 - c1[2] * a1 - c2[2] * a2 - c3[2] * a3
        params[r3 + i] = params[r3 + i] - c0[3] * a0 - c1[3] * a1 - c2[3] * a2 - c3[3] * a3


@jit_inline
def _coefs_4(cb, at, one):
    """The 4 consecutive coefficients ``cb[at .. at + 3]``."""
    return cb[at], cb[at + one], cb[at + one + one], cb[at + one + one + one]


@jit_inline
def _subtract_1x4(params, row, n_in, xs, x, c0, c1, c2, c3):
    """``W[row + i] -= sum_q c_q xs[x + q n_in + i]``: one row, the 4 staged inputs at ``x``."""
    x1, x2, x3 = x + n_in, x + n_in + n_in, x + n_in * np.uint64(3)
    for i in range(n_in):
        params[row + i] -= c0 * xs[x + i] + c1 * xs[x1 + i] + c2 * xs[x2 + i] + c3 * xs[x3 + i]


@jit_inline
def _block_rows(params, meta, xs, cur, nxt, cb, n_cur, n_nxt, zb, j, n_rows):
    """Layer 0's rows ``j .. j + n_rows - 1`` (``n_rows`` 4, or 1 for the last rows of a width
    that is not a multiple of 4): first the update of the block just trained, whose ``n_cur``
    (padded) inputs are staged at ``xs[cur]``, ``W -= sum_t c_t x_t^T``, ``b -= sum_t c_t``
    (``c_t`` at ``cb[t n_out]``); then ``z = W x + b`` of the next block's ``n_nxt`` inputs at
    ``xs[nxt]`` into ``zb`` (sample t's at ``t n_out``). The rows stay in L1 between the two.
    ``n_cur = 0``: no update; ``n_nxt = 0``: no forward pass."""
    n_in, n_out = meta[0, N_IN], meta[0, N_OUT]
    w, b = meta[0, W_OFF], meta[0, B_OFF]
    four, one = np.uint64(BLOCK_TILE), np.uint64(1)
    row = w + j * n_in
    t = np.uint64(0)
    while t < n_cur:
        at = t * n_out + j
        if n_rows == four:
            c0 = _coefs_4(cb, at, one)
            c1 = _coefs_4(cb, at + n_out, one)
            c2 = _coefs_4(cb, at + n_out + n_out, one)
            c3 = _coefs_4(cb, at + n_out * np.uint64(3), one)
            _subtract_4x4(params, row, n_in, xs, cur + t * n_in, c0, c1, c2, c3)
        else:
            c0, c1 = cb[at], cb[at + n_out]
            c2, c3 = cb[at + n_out + n_out], cb[at + n_out * np.uint64(3)]
            _subtract_1x4(params, row, n_in, xs, cur + t * n_in, c0, c1, c2, c3)
        t += four
    for r in range(j, j + n_rows):
        for t in range(n_cur):  # padding adds zeros
            params[b + r] -= cb[t * n_out + r]
    t = np.uint64(0)
    while t < n_nxt:
        at = t * n_out + j
        x = nxt + t * n_in
        if n_rows == four:
            s = _dots_4x4(params, row, xs, x, n_in)
            _store_4(zb, at, n_out, s[0], s[1], s[2], s[3], params[b + j])
            _store_4(zb, at + one, n_out, s[4], s[5], s[6], s[7], params[b + j + one])
            _store_4(zb, at + one + one, n_out, s[8], s[9], s[10], s[11], params[b + j + one + one])
            _store_4(zb, at + np.uint64(3), n_out, s[12], s[13], s[14], s[15],
                     params[b + j + np.uint64(3)])  # fmt: skip
        else:
            s = _dots_1x4(params, row, xs, x, n_in)
            _store_4(zb, at, n_out, s[0], s[1], s[2], s[3], params[b + j])
        t += four


@jit_inline
def _block_pass(params, meta, xs, cur, nxt, cb, n_cur, n_nxt, zb, lo, hi):
    """``_block_rows`` over layer 0's rows ``lo .. hi-1`` (``lo`` a multiple of 4): one pass
    over them between two blocks, in tiles of 4 rows, then single rows (one inlined copy of
    ``_block_rows``, which keeps compile time down). A row gets the same operations whatever
    range it is part of, so threads splitting the rows on multiples of 4 do the same operations
    as one thread (in kernels compiled apart, so equal within rounding)."""
    four, one = np.uint64(BLOCK_TILE), np.uint64(1)
    j = lo
    while j < hi:
        n_rows = four if j + four <= hi else one
        _block_rows(params, meta, xs, cur, nxt, cb, n_cur, n_nxt, zb, j, n_rows)
        j += n_rows


@jit_inline
def _corrected_z(zs, dst, zb, cb, gram, t, n_tile, n_out, lo, hi):
    """Layer 0's z of the block's sample t, units ``lo .. hi-1``, into ``zs[dst + j]``: its
    block-start z minus ``(x_s . x_t + 1) c_s`` for each earlier sample s of the block."""
    zt = t * n_out
    for j in range(lo, hi):
        zs[dst + j] = zb[zt + j]
    for s in range(t):
        g = gram[s * n_tile + t]
        cs = s * n_out
        for j in range(lo, hi):
            zs[dst + j] -= g * cb[cs + j]


@jit_inline
def _stage_block(meta, X, order, start, n_steps, xs, at, n_pad):
    """Copy the inputs ``X[order[start + t]]``, ``t < n_steps``, to ``xs[at + t n_in]``, and
    zeros up to ``n_pad`` inputs (the padding of the last tile)."""
    n_in = meta[0, N_IN]
    zero = xs.dtype.type(0.0)
    for t in range(n_steps):
        r = order[start + np.int64(t)]
        base = at + t * n_in
        for i in range(n_in):
            xs[base + i] = X[r, i]
    for i in range(at + n_steps * n_in, at + n_pad * n_in):
        xs[i] = zero


@jit
def train_epoch_blocked(
    params, meta, loss_code, X, Y, order, lr, zs, acts, deltas, losses, xs, zb, cb, gram, block
):  # fmt: skip
    """``train_epoch``'s online SGD over ``X[order[t]]``, with layer 0 summed in blocks of
    ``block`` samples (see the section's comment): the same trajectory, in another order of
    summation. ``losses[t]`` receives step t's loss. Blocks are padded to ``n_pad`` samples,
    ``block`` rounded up to a multiple of ``BLOCK_TILE``. Workspace (``n_out``: layer 0's):
    ``xs`` (2 n_pad n_in,) the inputs of the block and of the next, ``zb`` (n_pad n_out,) the
    block's block-start layer-0 z, ``cb`` (n_pad n_out,) its ``lr delta``, ``gram``
    (n_pad^2,). One pass over W0 between two blocks updates it for the first and computes z
    of the second. Every call ends on a finished block: a call on ``n`` samples makes
    exactly ``n`` updates. Allocates nothing.
    """
    n_steps = order.shape[0]
    if n_steps == 0:
        return
    n_layers = meta.shape[0]
    n_in, n_out = meta[0, N_IN], meta[0, N_OUT]
    dst = meta[0, OUT_OFF]
    four, one = np.uint64(BLOCK_TILE), np.uint64(1)
    zero = params.dtype.type(0.0)
    zero_u = np.uint64(0)
    half = (np.uint64(block) + four - one) // four * four * n_in  # where xs' 2nd block starts
    cur, prev = np.uint64(0), half
    n_prev_tile = np.uint64(0)  # the block before the first: none, nothing to update
    n_blocks = (n_steps + block - 1) // block
    for b in range(n_blocks + 1):  # the last pass only updates for the last block
        start = b * block
        n_real = np.uint64(min(block, max(0, n_steps - start)))
        n_tile = (n_real + four - one) // four * four
        _stage_block(meta, X, order, start, n_real, xs, cur, n_tile)
        # one pass over W0: the previous block's update, this block's z (one call site: each
        # inlined copy of the tiles costs seconds of compile time)
        _block_pass(params, meta, xs, prev, cur, cb, n_prev_tile, n_tile, zb, zero_u, n_out)
        if b == n_blocks:
            break
        # The per-sample part, written out here and in train_epoch_blocked_solo: as one more
        # inlined helper it cost 3 s of compile time (Numba's IR inlining of nested helpers).
        _block_gram(xs, cur, n_in, n_tile, gram)
        for t in range(n_real, n_tile):  # padding: zero coefficients
            for j in range(n_out):
                cb[t * n_out + j] = zero
        for t in range(n_real):
            r = order[start + np.int64(t)]
            zt = t * n_out
            for j in range(n_out):
                zs[dst + j] = zb[zt + j]
            for s in range(t):  # the updates of the block's earlier samples
                g = gram[s * n_tile + t]
                cs = s * n_out
                for j in range(n_out):
                    zs[dst + j] -= g * cb[cs + j]
            lse = _forward_layers(params, meta, 0, zs, acts)  # layer 0's z is ready
            losses[start + np.int64(t)] = _output_delta(
                meta, loss_code, Y, r, zs, acts, deltas, lse
            )
            for q in range(n_layers - 1):
                _backprop_and_update_layer(params, meta, n_layers - 1 - q, zs, acts, deltas, lr)
            for j in range(n_out):
                cb[zt + j] = lr * deltas[dst + j]
        prev, cur, n_prev_tile = cur, prev, n_tile


@jit_inline
def _affine_block(params, meta, l, zs, acts, n_units):
    """``z = W a_prev + b`` for layer ``l`` and ``PREDICT_BLOCK`` (4) samples at once, whose unit
    buffers lie ``n_units`` apart in ``zs`` and ``acts``: one pass over W for all four."""
    n_in = meta[l, N_IN]
    w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    src1, src2, src3 = src + n_units, src + n_units + n_units, src + n_units * np.uint64(3)
    dst1, dst2, dst3 = dst + n_units, dst + n_units + n_units, dst + n_units * np.uint64(3)
    for j in range(meta[l, N_OUT]):
        s0 = s1 = s2 = s3 = params[b + j]
        row = w + j * n_in
        for i in range(n_in):  # four reductions, each summed exactly like the others
            wi = params[row + i]
            s0 += wi * acts[src + i]
            s1 += wi * acts[src1 + i]
            s2 += wi * acts[src2 + i]
            s3 += wi * acts[src3 + i]
        zs[dst + j] = s0
        zs[dst1 + j] = s1
        zs[dst2 + j] = s2
        zs[dst3 + j] = s3


@jit_inline
def _forward_block(params, meta, X, start, zs, acts, n_units):
    """Rows ``start .. start + PREDICT_BLOCK - 1`` of X (the last row repeated past the end)
    through every layer, one pass over each W for all of them; row k's levels lie at
    ``k * n_units`` in ``zs`` and ``acts``. The output layer gets its z only (no activation)."""
    n_rows = X.shape[0]
    last = meta.shape[0] - 1
    for k in range(np.uint64(PREDICT_BLOCK)):
        r = min(start + np.int64(k), n_rows - 1)
        base = k * n_units
        for i in range(meta[0, N_IN]):
            acts[base + i] = X[r, i]
    for l in range(meta.shape[0]):
        _affine_block(params, meta, l, zs, acts, n_units)
        if l != last:
            for k in range(np.uint64(PREDICT_BLOCK)):
                _activate(meta[l, ACT], zs, acts, meta[l, OUT_OFF] + k * n_units, meta[l, N_OUT])


@jit
def predict_batch(params, meta, X, out, zs, acts):
    """Forward pass of every row of X (n_samples, n_in) into ``out`` (n_samples, n_out).

    ``zs`` and ``acts`` hold ``PREDICT_BLOCK * n_units`` entries: the rows go through the
    network ``PREDICT_BLOCK`` at a time, one pass over each W per block. The last block repeats
    the last row, so every row is computed by the same code, wherever it sits in X.
    """
    n_rows = X.shape[0]
    last = meta.shape[0] - 1
    code, u, n = meta[last, ACT], meta[last, OUT_OFF], meta[last, N_OUT]
    n_units = np.uint64(zs.shape[0]) // np.uint64(PREDICT_BLOCK)
    for start in range(0, n_rows, PREDICT_BLOCK):
        _forward_block(params, meta, X, start, zs, acts, n_units)
        for k in range(min(PREDICT_BLOCK, n_rows - start)):
            base = np.uint64(k) * n_units + u
            _activate(code, zs, acts, base, n)
            for c in range(n):
                out[start + k, c] = acts[base + c]


@jit
def loss_batch(params, meta, loss_code, X, Y, zs, acts, deltas, losses):
    """Per-sample losses of every row into ``losses`` (n_samples,); parameters unchanged.

    ``zs``, ``acts``: ``PREDICT_BLOCK * n_units`` entries, the forward pass as in
    ``predict_batch``; ``deltas``: ``n_units``. Each row's output z is moved to row 0's output
    level, where ``_output_delta`` reads it.
    """
    n_rows = X.shape[0]
    last = meta.shape[0] - 1
    code, u, n = meta[last, ACT], meta[last, OUT_OFF], meta[last, N_OUT]
    n_units = np.uint64(zs.shape[0]) // np.uint64(PREDICT_BLOCK)
    for start in range(0, n_rows, PREDICT_BLOCK):
        _forward_block(params, meta, X, start, zs, acts, n_units)
        for k in range(min(PREDICT_BLOCK, n_rows - start)):
            base = np.uint64(k) * n_units + u
            for c in range(n):
                zs[u + c] = zs[base + c]
            lse = _activate(code, zs, acts, u, n)
            losses[start + k] = _output_delta(meta, loss_code, Y, start + k, zs, acts, deltas, lse)


# --- Benchmark yardstick ------------------------------------------------------------------------
@jit
def one_pass_bound(P, X, order, lr):
    """The one-pass memory bound of exact per-sample SGD, for benchmarks.

    P (n_rows, n_in) is a buffer the size of the network's parameters. Per visited sample
    ``x = X[order[t]]`` it does one read-modify-write pass ``P[r, :] -= (lr * r) * x`` -- the
    least work any exact per-sample update must do (every weight read and written once), with
    nothing else: no forward pass, no deltas, no activations.
    """
    n_rows, n_in = P.shape
    for t in range(order.shape[0]):
        x = X[order[t]]
        for r in range(n_rows):
            g = lr * P.dtype.type(r)
            for i in range(n_in):
                P[r, i] -= g * x[i]


@jit
def multiply_add_peak(A, repeats):
    """The arithmetic yardstick of benchmarks: ``repeats`` passes of the blocked kernel's 4 x 4
    register tile (``_dots_4x4``) over the 8 rows of ``A`` (8, n), small enough to stay in L1.
    ``16 n repeats`` multiply-adds, at the rate the kernels' own code reaches (Numba's LLVM
    prefers 256-bit vectors on AVX-512 machines). Each pass writes the mean of its 16 sums over
    ``n`` (so values stay bounded) to ``A[0, 0]``, so none can be hoisted or dropped; returns
    it."""
    n = np.uint64(A.shape[1])
    flat = A.reshape(-1)
    scale = A.dtype.type(1.0) / A.dtype.type(16 * A.shape[1])
    for _ in range(repeats):
        s = _dots_4x4(flat, np.uint64(0), flat, n * np.uint64(4), n)
        total = s[0]
        for q in range(1, 16):  # every sum used: none of the 16 reductions is dead code
            total += s[q]
        flat[0] = total * scale
    return flat[0]


# --- Streaming ----------------------------------------------------------------------------
@jit_inline
def _guarded_backprop_and_update(params, backup, meta, l, zs, acts, deltas, lr):
    """``_backprop_and_update_layer`` (l >= 1) with the same arithmetic in the same order, also
    saving each parameter's old value to ``backup`` as it is read and returning
    ``sum(new * 0)``: 0 if every new value is finite, else NaN (FASTMATH has no ``nnan``, so
    the product is not folded to 0). The guard of a step in the same pass as the update."""
    n_in = meta[l, N_IN]
    w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    zero = params.dtype.type(0.0)
    check = zero
    for i in range(n_in):
        deltas[src + i] = zero
    one = np.uint64(1)
    hi = meta[l, N_OUT]
    j = np.uint64(0)
    while j + one < hi:  # rows j and k = j + 1, as _backprop_and_update_rows
        k = j + one
        d_j, d_k = deltas[dst + j], deltas[dst + k]
        step_j, step_k = lr * d_j, lr * d_k
        backup[b + j], backup[b + k] = params[b + j], params[b + k]
        params[b + j] -= step_j
        params[b + k] -= step_k
        check += params[b + j] * zero + params[b + k] * zero
        row_j = w + j * n_in
        row_k = row_j + n_in
        for i in range(n_in):
            a = acts[src + i]
            w_j, w_k = params[row_j + i], params[row_k + i]
            backup[row_j + i], backup[row_k + i] = w_j, w_k
            g = deltas[src + i] + w_j * d_j
            deltas[src + i] = g + w_k * d_k
            new_j, new_k = w_j - step_j * a, w_k - step_k * a
            params[row_j + i] = new_j
            params[row_k + i] = new_k
            check += new_j * zero + new_k * zero
        j = k + one
    if j < hi:  # the last row of an odd count
        dj = deltas[dst + j]
        step = lr * dj
        backup[b + j] = params[b + j]
        params[b + j] -= step
        check += params[b + j] * zero
        row = w + j * n_in
        for i in range(n_in):
            old = params[row + i]
            backup[row + i] = old
            deltas[src + i] += old * dj
            new = old - step * acts[src + i]
            params[row + i] = new
            check += new * zero
    _scale_by_derivative(meta[l - 1, ACT], zs, acts, deltas, src, n_in)
    return check


@jit_inline
def _guarded_update(params, backup, meta, l, acts, deltas, lr):
    """``_update_layer`` with ``_guarded_backprop_and_update``'s backup and check."""
    n_in = meta[l, N_IN]
    w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
    zero = params.dtype.type(0.0)
    check = zero
    for j in range(meta[l, N_OUT]):
        step = lr * deltas[dst + j]
        backup[b + j] = params[b + j]
        params[b + j] -= step
        check += params[b + j] * zero
        row = w + j * n_in
        for i in range(n_in):
            old = params[row + i]
            backup[row + i] = old
            new = old - step * acts[src + i]
            params[row + i] = new
            check += new * zero
    return check


@jit
def sgd_step_if_finite(params, backup, meta, loss_code, X, Y, r, lr, zs, acts, deltas):
    """``sgd_step`` on sample r for the streaming API, guarded so nothing is ever lost.

    Returns the loss, or NaN with ``params`` untouched if ``X[r]`` or ``Y[r]`` holds NaN/inf
    (the caller then raises a validation error), or if the loss is not finite or the update
    would leave a non-finite parameter (the caller raises DivergenceError). The guard costs
    no extra pass over the parameters: each layer's update saves the old values to ``backup``
    and sums ``new * 0`` as it goes (``_guarded_*``; every parameter is written exactly once
    per step), and only a failed check restores ``params`` from ``backup``. The arithmetic is
    ``sgd_step``'s, in its order: the same bits (tested).
    """
    return _guarded_step(params, backup, meta, loss_code, X, r, Y, r, lr, zs, acts, deltas)


@jit_inline
def _guarded_step(params, backup, meta, loss_code, X, rx, Y, ry, lr, zs, acts, deltas):
    """``sgd_step_if_finite`` on the input ``X[rx]`` and the target ``Y[ry]`` (n_in and n_out
    entries: the rows may be wider)."""
    ok = True
    for i in range(meta[0, N_IN]):
        ok &= np.isfinite(X[rx, i])
    for k in range(meta[meta.shape[0] - 1, N_OUT]):
        ok &= np.isfinite(Y[ry, k])
    if not ok:
        return zs.dtype.type(np.nan)
    lse = forward(params, meta, X, rx, zs, acts)
    loss = _output_delta(meta, loss_code, Y, ry, zs, acts, deltas, lse)
    check = loss * zs.dtype.type(0.0)
    n_layers = meta.shape[0]
    for k in range(n_layers - 1):
        check += _guarded_backprop_and_update(
            params, backup, meta, n_layers - 1 - k, zs, acts, deltas, lr
        )
    check += _guarded_update(params, backup, meta, 0, acts, deltas, lr)
    if check != zs.dtype.type(0.0):  # NaN: a non-finite loss or parameter
        for p in range(params.shape[0]):
            params[p] = backup[p]
        return zs.dtype.type(np.nan)
    return loss


@jit
def stream_step(params, backup, meta, loss_code, X, Y, label, lr, zs, acts, deltas, out):
    """The per-event update of ``MLP.step`` / ``test_then_train``: one kernel call per event.

    ``label >= 0`` (a softmax output's class, in range: the caller checked) first writes its
    one-hot row into ``Y[0]`` (a buffer of the model's), so no target is built in Python. Then
    ``sgd_step_if_finite`` on sample 0, returning NaN with ``params`` untouched also when a
    target of binary cross-entropy or cross-entropy lies outside [0, 1] (the range check of the
    general validation, done here on one row instead of by NumPy reductions). When ``out`` has
    ``n_out`` entries, the output of the forward pass (made before the update) is copied there.
    """
    if not _target_row(meta, loss_code, Y, 0, label):
        return zs.dtype.type(np.nan)
    loss = sgd_step_if_finite(params, backup, meta, loss_code, X, Y, 0, lr, zs, acts, deltas)
    if out.shape[0] != 0:
        last = meta.shape[0] - 1
        u = meta[last, OUT_OFF]
        for k in range(meta[last, N_OUT]):
            out[k] = acts[u + k]
    return loss


@jit_inline
def _target_row(meta, loss_code, Y, r, label):
    """``stream_step``'s target ``Y[r]`` (n_out entries): ``label >= 0`` writes that class's
    one-hot row; otherwise False if a cross-entropy target lies outside [0, 1]."""
    n_out = meta[meta.shape[0] - 1, N_OUT]
    if label >= 0:
        for k in range(n_out):
            Y[r, k] = Y.dtype.type(0.0)
        Y[r, label] = Y.dtype.type(1.0)
    elif loss_code == BINARY_CROSS_ENTROPY or loss_code == CROSS_ENTROPY:
        ok = True
        for k in range(n_out):
            ok &= Y[r, k] >= Y.dtype.type(0.0)
            ok &= Y[r, k] <= Y.dtype.type(1.0)
        return ok
    return True


@jit
def row_step(params, meta, loss_code, label, lr, io, work):
    """``stream_step`` for a caller that owns its buffers (``_streaming.RowCalls``), in four
    arrays instead of eight (Numba's dispatch costs ~40 ns per array argument).

    ``io`` (3, width >= n_in, n_out): row 0 the input, row 1 the target (or ``label >= 0``);
    ``work`` (3 * n_units + n_params): ``zs``, ``acts``, ``deltas``, then the backup of
    ``params``. The arithmetic is ``stream_step``'s, equal to rounding: compiled in another
    kernel, LLVM may vectorise a reduction over the outputs in another order.
    """
    zs, acts, deltas, backup = _row_work(meta, work)
    if not _target_row(meta, loss_code, io, 1, label):
        return zs.dtype.type(np.nan)
    return _guarded_step(params, backup, meta, loss_code, io, 0, io, 1, lr, zs, acts, deltas)


@jit
def row_predict(params, meta, io, work):
    """The outputs of the input ``io[0]`` into ``io[2]`` (n_out entries) for ``row_step``'s
    caller; returns the number of non-finite inputs (0: the outputs are written, else nothing).

    One sample's forward pass, the one ``row_step`` makes before its update (``predict``
    computes a row within a block of ``PREDICT_BLOCK``, four times this arithmetic): equal to
    the prediction ``test_then_train`` returns and to ``predict``'s, to rounding.
    """
    n_bad = count_nonfinite(io[0, : meta[0, N_IN]])
    if n_bad == 0:
        zs, acts, _, _ = _row_work(meta, work)
        forward(params, meta, io, 0, zs, acts)
        last = meta.shape[0] - 1
        u = meta[last, OUT_OFF]
        for k in range(meta[last, N_OUT]):
            io[2, k] = acts[u + k]
    return n_bad


@jit_inline
def _row_work(meta, work):
    """``row_step``'s ``zs, acts, deltas, backup``: views of ``work``."""
    last = meta.shape[0] - 1
    n = meta[last, OUT_OFF] + meta[last, N_OUT]  # n_units: the output level ends the levels
    return work[:n], work[n : 2 * n], work[2 * n : 3 * n], work[3 * n :]


@jit
def predict_rows_if_finite(params, meta, X, out, work):
    """``predict_batch`` of X into ``out`` if every entry of X is finite; returns the number of
    non-finite entries (0: ``out`` is filled). ``work`` holds ``zs`` then ``acts``
    (``2 * PREDICT_BLOCK * n_units``): one dispatch, one buffer, for the one-row ``predict``."""
    n_bad = count_nonfinite(X.reshape(-1))
    if n_bad == 0:
        half = np.uint64(work.shape[0]) // np.uint64(2)
        predict_batch(params, meta, X, out, work[:half], work[half:])
    return n_bad


# --- Training with optimizer state: momentum, Adam, weight decay, mini-batches, dropout --------
# ``opts`` (uint64) and ``hyper`` (the params' dtype) hold the settings, indexed by these codes.
SGD, ADAM = 0, 1
OPT_OPTIMIZER, OPT_NESTEROV, OPT_BATCH_SIZE, OPT_DROP_THRESHOLD = 0, 1, 2, 3
N_OPTS = 4
H_LR, H_ALPHA, H_MOMENTUM, H_BETA1, H_BETA2, H_EPSILON, H_DROP_SCALE = 0, 1, 2, 3, 4, 5, 6
N_HYPER = 7
# splitmix64 (Steele, Lea & Flood 2014): a 64-bit counter hashed to 64 random bits; one uint64
# of state, so dropout masks are drawn inside the kernel without allocating, reproducibly.
SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)
SPLITMIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
SPLITMIX_M2 = np.uint64(0x94D049BB133111EB)
DROP_BITS = 53  # a unit is dropped when the top 53 bits of a draw are < opts[OPT_DROP_THRESHOLD]


@jit_inline
def _splitmix64(rng):
    """Next 64 random bits from the one-word state ``rng[0]`` (advanced in place)."""
    s = rng[0] + SPLITMIX_GAMMA
    rng[0] = s
    z = (s ^ (s >> np.uint64(30))) * SPLITMIX_M1
    z = (z ^ (z >> np.uint64(27))) * SPLITMIX_M2
    return z ^ (z >> np.uint64(31))


@jit_inline
def _forward_dropout(params, meta, X, r, zs, acts, xin, mask, threshold, scale, rng):
    """Forward pass of ``X[r]`` with inverted dropout on the hidden levels.

    ``acts`` keeps ``f(z)`` (the derivatives need it); ``xin`` holds what the next layer reads:
    x at level 0, ``mask * f(z)`` at hidden levels, with ``mask`` 0 (probability ``threshold /
    2^53``) or ``scale = 1 / (1 - p)``. ``threshold == 0`` means no dropout (``mask`` = 1).
    Returns the softmax output's ``logsumexp(z)`` (else 0).
    """
    zero = zs.dtype.type(0.0)
    one = zs.dtype.type(1.0)
    shift = np.uint64(64 - DROP_BITS)
    _load_input(meta, X, r, xin)
    last = meta.shape[0] - 1
    lse = zero
    for l in range(meta.shape[0]):
        _affine(params, meta, l, zs, xin)
        u, n = meta[l, OUT_OFF], meta[l, N_OUT]
        lse = _activate(meta[l, ACT], zs, acts, u, n)
        if l != last:
            for k in range(u, u + n):
                m = one
                if threshold != 0:
                    m = zero if (_splitmix64(rng) >> shift) < threshold else scale
                mask[k] = m
                xin[k] = acts[k] * m
    return lse


@jit_inline
def _accumulate_gradient(params, meta, zs, acts, xin, mask, deltas, weight, grad):
    """Backward pass (output delta ready) with the dropout mask, adding ``weight`` times the
    sample's gradient to ``grad``: ``dW_l += w delta_l xin_{l-1}^T``, ``db_l += w delta_l``."""
    n_layers = meta.shape[0]
    for k in range(n_layers - 1):
        l = n_layers - 1 - k
        _backprop_layer(params, meta, l, zs, acts, deltas)
        src = meta[l, IN_OFF]
        for i in range(src, src + meta[l, N_IN]):
            deltas[i] *= mask[i]
    for l in range(n_layers):
        n_in, n_out = meta[l, N_IN], meta[l, N_OUT]
        w, b, src, dst = meta[l, W_OFF], meta[l, B_OFF], meta[l, IN_OFF], meta[l, OUT_OFF]
        for j in range(n_out):
            dj = weight * deltas[dst + j]
            grad[b + j] += dj
            row = w + j * n_in
            for i in range(n_in):
                grad[row + i] += dj * xin[src + i]


@jit_inline
def _apply_update(params, grad, vel, mom2, lo, hi, scale, decay, opts, hyper, c1, c2):
    """Optimizer step on ``params[lo:hi]`` with gradient ``g = scale grad + decay params``.

    SGD (scikit-learn's form): ``v = mu v - lr g``; ``p += v``, or with Nesterov
    ``p += mu v - lr g``; momentum 0 is plain ``p -= lr g``. Adam (Kingma & Ba, Algorithm 1):
    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``, ``p -= lr m_hat / (sqrt(v_hat) + eps)``
    with ``c1 = lr / (1 - b1^t)``, ``c2 = 1 / (1 - b2^t)`` given.
    """
    one = params.dtype.type(1.0)
    if np.int64(opts[OPT_OPTIMIZER]) == ADAM:
        b1, b2, eps = hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPSILON]
        for p in range(lo, hi):
            g = scale * grad[p] + decay * params[p]
            m = b1 * vel[p] + (one - b1) * g
            v = b2 * mom2[p] + (one - b2) * (g * g)
            vel[p] = m
            mom2[p] = v
            params[p] -= c1 * m / (np.sqrt(v * c2) + eps)
    else:
        lr, mu = hyper[H_LR], hyper[H_MOMENTUM]
        if mu == params.dtype.type(0.0):
            for p in range(lo, hi):
                params[p] -= lr * (scale * grad[p] + decay * params[p])
        elif opts[OPT_NESTEROV] != 0:
            for p in range(lo, hi):
                g = scale * grad[p] + decay * params[p]
                v = mu * vel[p] - lr * g
                vel[p] = v
                params[p] += mu * v - lr * g
        else:
            for p in range(lo, hi):
                v = mu * vel[p] - lr * (scale * grad[p] + decay * params[p])
                vel[p] = v
                params[p] += v


@jit
def train_epoch_opt(
    params, meta, loss_code, X, Y, order, sample_weight, opts, hyper, powers, vel, mom2, grad,
    rng, xin, mask, zs, acts, deltas, losses,
):  # fmt: skip
    """Mini-batch training over the rows ``X[order[t]]`` with momentum / Adam, L2 weight decay,
    sample weights and dropout (the general path; ``train_epoch`` is plain online SGD).

    Batches are ``order[t : t + batch_size]`` (the last may be shorter). Per batch of B rows:
    ``grad = sum_r w_r grad_r`` (``w = sample_weight[r]``), then one optimizer step with the
    gradient ``grad / B + alpha W`` (alpha on weights only, not biases), so a sample weight of
    2 counts a sample twice in its batch's sum. ``losses[t]`` receives each sample's
    (unweighted) loss, taken before its batch's update. State that persists between calls:
    ``vel`` (momentum velocity, or Adam's first moment), ``mom2`` (Adam's second moment),
    ``powers`` = ``(b1^t, b2^t)`` of Adam's bias corrections, ``rng`` (dropout's random
    stream). ``grad`` (n_params), ``xin`` and ``mask`` (n_units) are workspace. Allocates
    nothing.
    """
    n_steps = order.shape[0]
    batch = np.int64(opts[OPT_BATCH_SIZE])
    threshold = opts[OPT_DROP_THRESHOLD]
    scale = hyper[H_DROP_SCALE]
    alpha = hyper[H_ALPHA]
    zero = params.dtype.type(0.0)
    one = params.dtype.type(1.0)
    adam = np.int64(opts[OPT_OPTIMIZER]) == ADAM
    start = 0
    while start < n_steps:
        stop = min(start + batch, n_steps)
        for p in range(params.shape[0]):
            grad[p] = zero
        count = zero
        for t in range(start, stop):
            r = order[t]
            lse = _forward_dropout(params, meta, X, r, zs, acts, xin, mask, threshold, scale, rng)
            losses[t] = _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)
            _accumulate_gradient(params, meta, zs, acts, xin, mask, deltas, sample_weight[r], grad)
            count += one
        inv = one / count
        c1, c2 = hyper[H_LR], one
        if adam:
            powers[0] *= hyper[H_BETA1]
            powers[1] *= hyper[H_BETA2]
            c1 = hyper[H_LR] / (one - powers[0])
            c2 = one / (one - powers[1])
        for segment in range(2 * meta.shape[0]):  # W_0, b_0, W_1, b_1, ...: one inlined copy
            l = segment >> 1
            w, b = meta[l, W_OFF], meta[l, B_OFF]
            is_bias = segment & 1
            lo = b if is_bias else w
            hi = b + meta[l, N_OUT] if is_bias else b
            decay = zero if is_bias else alpha  # weight decay on weights only
            _apply_update(params, grad, vel, mom2, lo, hi, inv, decay, opts, hyper, c1, c2)
        start = stop


# --- Row-parallel online SGD: several threads share every sample -----------------------------
# Hogwild (threads taking different samples) loses here: every dense update writes every weight,
# so two cores take turns owning every cache line of the parameters. Instead, each of the
# n_threads threads owns a contiguous block of every hidden layer's rows (output units), so it
# alone reads and writes those rows of W and b, which stay in its core's cache. The threads meet
# at a spin barrier whenever a layer needs a whole level another thread helped compute. Thread 0
# does the (small) output layer alone. Per sample: forward through the hidden layers by rows,
# barrier; thread 0: output layer forward, loss, output delta, its backprop + update; barrier;
# for each deeper hidden layer l >= 1: fused backprop + update of its own rows, writing its own
# partial sums of ``W_l^T delta_l``; barrier; then each thread adds up the partial sums of the
# rows it owns in layer l-1. Layer 0's update is fused with the next sample's layer-0 forward,
# as in ``train_epoch``. The same math and code as ``train_epoch``: networks with one hidden
# layer give the same bits; deeper ones sum ``W^T delta`` in another order (per-thread parts).
SYNC_ABORT = 0  # sync[SYNC_ABORT] != 0 makes every waiting thread return (set from Python)
SYNC_STRIDE = 16  # int64s between threads' barrier counters: never on one 64-byte cache line


def _item_pointer(context, builder, sig, args):
    arr_t = sig.args[0]
    ary = context.make_array(arr_t)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, arr_t, ary, [args[1]])


@intrinsic
def _load_acquire(typingctx, sync, index):
    """``sync[index]`` (int64) as an atomic acquire load: LLVM may not hoist it out of a spin
    loop, and later loads are not moved before it."""

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_item_pointer(context, builder, sig, args), "acquire", 8)

    return types.int64(sync, index), codegen


@intrinsic
def _store_release(typingctx, sync, index, value):
    """``sync[index] = value`` (int64) as an atomic release store: earlier writes (this thread's
    rows of the buffers) are visible to a thread that sees the new value."""

    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _item_pointer(context, builder, sig, args), "release", 8)
        return context.get_dummy_value()

    return types.void(sync, index, value), codegen


# x86's ``pause`` in a spin loop: it frees the core's resources for the other hyperthread, and on
# a virtual machine a run of pauses lets the hypervisor run the vCPU we are waiting for (KVM's
# pause-loop exiting) instead of us burning its time slice. (An LLVM intrinsic: Numba's JIT has
# no assembler for inline asm.) Elsewhere the loop just spins.
_PAUSE = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")


@intrinsic
def _cpu_relax(typingctx):
    """The CPU's spin-wait hint (nothing where there is none)."""

    def codegen(context, builder, sig, args):
        if _PAUSE:
            fnty = ir.FunctionType(ir.VoidType(), [])
            builder.call(
                cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause"), []
            )
        return context.get_dummy_value()

    return types.void(), codegen


@jit_inline
def _barrier(sync, rank, n_threads, count):
    """Mark this thread's ``count``-th barrier passed and wait until every thread has passed it.

    Returns False if ``sync[SYNC_ABORT]`` was set while waiting.
    """
    _store_release(sync, (rank + 1) * SYNC_STRIDE, count)
    for q in range(n_threads):
        while _load_acquire(sync, (q + 1) * SYNC_STRIDE) < count:
            if _load_acquire(sync, SYNC_ABORT) != 0:
                return False
            _cpu_relax()
    return True


@jit_inline
def _combine_rows(meta, l, zs, acts, deltas, partial, n_units, n_threads, lo, hi):
    """Delta of layer l-1's units ``lo .. hi-1``: the threads' partial sums of ``W_l^T delta_l``
    added in thread order, times ``f'(z)``."""
    src = meta[l, IN_OFF]
    for i in range(src + lo, src + hi):
        s = partial[i]
        for q in range(np.uint64(1), n_threads):
            s += partial[q * n_units + i]
        deltas[i] = s
    _scale_by_derivative(meta[l - 1, ACT], zs, acts, deltas, src + lo, hi - lo)


@jit
def train_epoch_rows(
    params, meta, loss_code, X, Y, order, lr, zs, acts, deltas, x, partial, losses, rows, rank, sync
):
    """Thread ``rank``'s share of row-parallel online SGD over ``X[order]`` (see above).

    Every thread calls this at once with the same arguments except ``rank`` and ``x``, its own
    buffer (n_in,) for the first sample's input and the last one's (layer 0's fused pass reads
    the inputs from X in place); ``zs, acts, deltas`` are shared.
    ``rows`` uint64 ``(n_layers, n_threads + 1)``: the thread owns the units
    ``rows[l, rank] .. rows[l, rank + 1] - 1`` of each hidden layer l.
    ``partial`` ``(n_threads * n_units,)``: per-thread partial sums.
    ``sync`` int64: ``SYNC_ABORT`` then one barrier counter per thread, ``SYNC_STRIDE`` apart,
    equal for all threads between calls.
    ``losses[t]`` (thread 0) receives step t's loss. Needs at least one hidden layer. Returns the
    number of samples done: ``len(order)``, or fewer if aborted (then mid-sample).
    """
    n_steps = order.shape[0]
    if n_steps == 0:
        return 0
    last = meta.shape[0] - 1
    n_threads = np.uint64(rows.shape[1]) - np.uint64(1)
    n_units = np.uint64(zs.shape[0])
    p_off = rank * n_units
    nxt = rank + np.uint64(1)
    me, n_sync = np.int64(rank), np.int64(n_threads)  # barrier indices in int64
    count = _load_acquire(sync, (me + 1) * SYNC_STRIDE)
    n_in = meta[0, N_IN]
    flat = X.reshape(-1)  # layer 0's fused pass reads the inputs in place
    _load_input(meta, X, order[0], x)
    _affine_rows(params, meta, 0, zs, x, rows[0, rank], rows[0, nxt])
    for t in range(n_steps):
        r = order[t]
        for l in range(last):  # hidden layers: this thread's rows (layer 0's z is ready)
            lo, hi = rows[l, rank], rows[l, nxt]
            if l > 0:
                count += 1
                if not _barrier(sync, me, n_sync, count):
                    return t
                _affine_rows(params, meta, l, zs, acts, lo, hi)
            u = meta[l, OUT_OFF]
            simd = meta[l, N_OUT] >= SIMD_MIN_UNITS
            _activate_units(meta[l, ACT], zs, acts, u + lo, u + hi, simd)
        count += 1
        if not _barrier(sync, me, n_sync, count):
            return t
        if me == 0:  # the output layer, whole
            _affine(params, meta, last, zs, acts)
            lse = _activate(meta[last, ACT], zs, acts, meta[last, OUT_OFF], meta[last, N_OUT])
            losses[t] = _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)
            _backprop_and_update_layer(params, meta, last, zs, acts, deltas, lr)
        count += 1
        if not _barrier(sync, me, n_sync, count):
            return t
        for k in range(1, last):  # hidden layers last-1 .. 1
            l = last - k
            lo, hi = rows[l, rank], rows[l, nxt]
            _backprop_and_update_rows(params, meta, l, acts, deltas, partial, p_off, lr, lo, hi)
            count += 1
            if not _barrier(sync, me, n_sync, count):
                return t
            _combine_rows(
                meta, l, zs, acts, deltas, partial, n_units, n_threads, rows[l - 1, rank],
                rows[l - 1, nxt],
            )  # fmt: skip
        lo, hi = rows[0, rank], rows[0, nxt]
        if t + 1 < n_steps:
            r_next = order[t + 1]
            at, at_next = np.uint64(r) * n_in, np.uint64(r_next) * n_in
            _update_first_layer_and_forward(params, meta, flat, at, at_next, deltas, lr, zs, lo, hi)
        else:
            _load_input(meta, X, r, x)
            _update_rows(params, meta, 0, x, deltas, lr, lo, hi)
    return n_steps


@jit
def train_epoch_blocked_rows(
    params, meta, loss_code, X, Y, order, lr, zs, acts, deltas, partial, losses, rows, rank, sync,
    xs, zb, cb, gram, block,
):  # fmt: skip
    """Thread ``rank``'s share of row-parallel online SGD with layer 0 summed in blocks
    (``train_epoch_blocked`` on the rows of ``train_epoch_rows``).

    Each thread owns layer 0's rows ``rows[0, rank] .. rows[0, rank + 1] - 1`` (bounds on
    multiples of 4, so each row gets the tiles it gets in ``train_epoch_blocked``: the same
    operations) and runs the block passes over them and its units' per-sample correction with its
    own workspace ``xs, zb, cb, gram`` (as ``train_epoch_blocked``'s; its own copy of the
    block's inputs and Gram matrix). The layers above are split and met per sample exactly as
    in ``train_epoch_rows``; layer 0 adds no meeting: a thread's units need only its own rows'
    updates. The other arguments as ``train_epoch_rows``'s. Returns the number of samples
    done: ``len(order)``, or fewer if aborted (then mid-block: the caller restores the
    parameters).
    """
    n_steps = order.shape[0]
    if n_steps == 0:
        return 0
    last = meta.shape[0] - 1
    n_threads = np.uint64(rows.shape[1]) - np.uint64(1)
    n_units = np.uint64(zs.shape[0])
    p_off = rank * n_units
    nxt = rank + np.uint64(1)
    me, n_sync = np.int64(rank), np.int64(n_threads)  # barrier indices in int64
    count = _load_acquire(sync, (me + 1) * SYNC_STRIDE)
    n_in, n_out = meta[0, N_IN], meta[0, N_OUT]
    dst = meta[0, OUT_OFF]
    lo0, hi0 = rows[0, rank], rows[0, nxt]
    four, one = np.uint64(BLOCK_TILE), np.uint64(1)
    zero = params.dtype.type(0.0)
    half = (np.uint64(block) + four - one) // four * four * n_in
    cur, prev = np.uint64(0), half
    n_prev_tile = np.uint64(0)
    n_blocks = (n_steps + block - 1) // block
    for b in range(n_blocks + 1):
        start = b * block
        n_real = np.uint64(min(block, max(0, n_steps - start)))
        n_tile = (n_real + four - one) // four * four
        _stage_block(meta, X, order, start, n_real, xs, cur, n_tile)
        _block_pass(params, meta, xs, prev, cur, cb, n_prev_tile, n_tile, zb, lo0, hi0)
        if b == n_blocks:
            break
        _block_gram(xs, cur, n_in, n_tile, gram)
        for t in range(n_real, n_tile):
            for j in range(lo0, hi0):
                cb[t * n_out + j] = zero
        for t in range(n_real):
            step = start + np.int64(t)
            r = order[step]
            _corrected_z(zs, dst, zb, cb, gram, t, n_tile, n_out, lo0, hi0)
            # From here to the end of the sample: train_epoch_rows' per-sample code, written
            # out again. As one inlined helper shared by both kernels it added ~4 s to each
            # one's compile (a first wide fit with n_jobs=2, empty cache: 9.1 -> 13.4 s).
            for l in range(last):  # hidden layers: this thread's rows (layer 0's z is ready)
                lo, hi = rows[l, rank], rows[l, nxt]
                if l > 0:
                    count += 1
                    if not _barrier(sync, me, n_sync, count):
                        return step
                    _affine_rows(params, meta, l, zs, acts, lo, hi)
                u = meta[l, OUT_OFF]
                simd = meta[l, N_OUT] >= SIMD_MIN_UNITS
                _activate_units(meta[l, ACT], zs, acts, u + lo, u + hi, simd)
            count += 1
            if not _barrier(sync, me, n_sync, count):
                return step
            if me == 0:  # the output layer, whole
                _affine(params, meta, last, zs, acts)
                lse = _activate(meta[last, ACT], zs, acts, meta[last, OUT_OFF], meta[last, N_OUT])
                losses[step] = _output_delta(meta, loss_code, Y, r, zs, acts, deltas, lse)
                _backprop_and_update_layer(params, meta, last, zs, acts, deltas, lr)
            count += 1
            if not _barrier(sync, me, n_sync, count):
                return step
            for k in range(1, last):  # hidden layers last-1 .. 1
                l = last - k
                lo, hi = rows[l, rank], rows[l, nxt]
                _backprop_and_update_rows(params, meta, l, acts, deltas, partial, p_off, lr, lo, hi)
                count += 1
                if not _barrier(sync, me, n_sync, count):
                    return step
                _combine_rows(
                    meta, l, zs, acts, deltas, partial, n_units, n_threads, rows[l - 1, rank],
                    rows[l - 1, nxt],
                )  # fmt: skip
            zt = np.uint64(t) * n_out
            for j in range(lo0, hi0):  # this thread's units' delta: complete, its own
                cb[zt + j] = lr * deltas[dst + j]
        prev, cur, n_prev_tile = cur, prev, n_tile
    return n_steps


@jit
def train_epoch_blocked_solo(
    params, meta, loss_code, X, Y, order, lr, zs, acts, deltas, losses, rows, rank, sync, xs, zb,
    cb, gram, block,
):  # fmt: skip
    """Thread ``rank``'s share of ``train_epoch_blocked`` for nets whose layers above layer 0
    are small: each thread runs the block passes over its rows of layer 0 (``rows[0]``, as in
    ``train_epoch_blocked_rows``, with its own ``xs``), and thread 0 alone every sample's part
    (as ``train_epoch_blocked``, with ``zb``, ``cb`` shared by all threads, its own ``gram``).
    Two meetings per block: after the pass (z whole) and after the samples (the coefficients
    whole, the layers above updated). The same operations as ``train_epoch_blocked``, compiled
    apart (equal within rounding; bit for bit in most nets tested). Returns the
    number of samples done: ``len(order)``, or fewer if aborted (then mid-block)."""
    n_steps = order.shape[0]
    if n_steps == 0:
        return 0
    n_threads = np.uint64(rows.shape[1]) - np.uint64(1)
    me, n_sync = np.int64(rank), np.int64(n_threads)
    count = _load_acquire(sync, (me + 1) * SYNC_STRIDE)
    n_layers = meta.shape[0]
    n_in, n_out = meta[0, N_IN], meta[0, N_OUT]
    dst = meta[0, OUT_OFF]
    zero = params.dtype.type(0.0)
    lo0, hi0 = rows[0, rank], rows[0, rank + np.uint64(1)]
    four, one = np.uint64(BLOCK_TILE), np.uint64(1)
    half = (np.uint64(block) + four - one) // four * four * n_in
    cur, prev = np.uint64(0), half
    n_prev_tile = np.uint64(0)
    n_blocks = (n_steps + block - 1) // block
    for b in range(n_blocks + 1):
        start = b * block
        n_real = np.uint64(min(block, max(0, n_steps - start)))
        n_tile = (n_real + four - one) // four * four
        _stage_block(meta, X, order, start, n_real, xs, cur, n_tile)
        _block_pass(params, meta, xs, prev, cur, cb, n_prev_tile, n_tile, zb, lo0, hi0)
        if b == n_blocks:
            break
        count += 1
        if not _barrier(sync, me, n_sync, count):  # z of the block whole
            return start
        if me == 0:  # train_epoch_blocked's per-sample part, written out again (see there)
            _block_gram(xs, cur, n_in, n_tile, gram)
            for t in range(n_real, n_tile):
                for j in range(n_out):
                    cb[t * n_out + j] = zero
            for t in range(n_real):
                r = order[start + np.int64(t)]
                zt = t * n_out
                for j in range(n_out):
                    zs[dst + j] = zb[zt + j]
                for s in range(t):
                    g = gram[s * n_tile + t]
                    cs = s * n_out
                    for j in range(n_out):
                        zs[dst + j] -= g * cb[cs + j]
                lse = _forward_layers(params, meta, 0, zs, acts)
                losses[start + np.int64(t)] = _output_delta(
                    meta, loss_code, Y, r, zs, acts, deltas, lse
                )
                for q in range(n_layers - 1):
                    _backprop_and_update_layer(params, meta, n_layers - 1 - q, zs, acts, deltas, lr)
                for j in range(n_out):
                    cb[zt + j] = lr * deltas[dst + j]
        count += 1
        if not _barrier(sync, me, n_sync, count):  # its coefficients whole
            return start
        prev, cur, n_prev_tile = cur, prev, n_tile
    return n_steps


# --- Validation helpers -----------------------------------------------------------------------
@jit
def count_nonfinite(a):
    """Number of NaN/inf entries of the 1-D float array ``a`` (pass ``A.reshape(-1)``, a view
    for a contiguous ``A``), without allocating (``np.isfinite(X)`` would build a boolean copy
    of X: 47 MB for 60,000 x 784).

    First a sum of ``a[i] * 0``: 0 when every entry is finite, NaN otherwise (inf * 0 is NaN;
    FASTMATH has no ``nnan``/``ninf``, so the product is not folded to 0), which vectorises
    and is faster; the entries are counted only when it is not 0."""
    zero = a.dtype.type(0.0)
    acc = zero
    for i in range(a.shape[0]):
        acc += a[i] * zero
    if acc == zero:
        return 0
    count = 0
    for i in range(a.shape[0]):
        count += not np.isfinite(a[i])
    return count


@jit
def sum_sq_weights(params, meta):
    """``sum_l ||W_l||^2`` over every layer's weights (not the biases), in float64: the L2
    penalty of scikit-learn's loss, in one call instead of one NumPy dot per layer."""
    total = 0.0
    for l in range(meta.shape[0]):
        w = meta[l, W_OFF]
        for i in range(meta[l, N_IN] * meta[l, N_OUT]):
            v = np.float64(params[w + i])
            total += v * v
    return total


@jit
def one_hot(labels, out):
    """``out[r] = e_{labels[r]}``: labels ``(n,)`` int64, out ``(n, n_classes)`` C-contiguous,
    written whole. Returns how many labels lie outside ``[0, n_classes)`` (their rows stay all
    zero). Zeroed in one flat pass, which vectorises (row by row, the 10-wide rows did not)."""
    n_rows, n_classes = out.shape
    zero, one = out.dtype.type(0.0), out.dtype.type(1.0)
    flat = out.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = zero
    n_bad = 0
    for r in range(n_rows):
        label = labels[r]
        if 0 <= label < n_classes:
            out[r, label] = one
        else:
            n_bad += 1
    return n_bad
