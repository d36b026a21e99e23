"""Shape-specialised training kernels for tiny networks (input and layers under 8 units).

On a net like xor (2, 3, 2, 1) the general ``train_epoch`` spends much of its time on
bookkeeping, not arithmetic: loops of 1-3 iterations, the ``meta`` table, every z, activation
and delta stored to and reloaded from the work buffers on each sample's dependency chain.
For such a net this module writes the epoch out as straight-line Python, one local variable per
parameter, unit, activation and delta, and compiles it with Numba: the parameters are loaded
from the flat buffer once per call, live in registers for the whole loop over samples, and are
stored back at the end. Same math, operation for operation, as ``train_epoch``'s narrow-layer
path (libm exp/tanh, the same sums in the same order, old weights for backprop).

The source is written to a file named by its own hash (so any change to this generator, to the
Numba options or to the network gives a new file, and Numba's ``cache=True`` can never pick up a
stale build) and imported from there: Numba caches only functions that live in a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import stat
import sys
import tempfile
import threading
from collections.abc import Sequence

from . import _kernels as K
from . import tuning
from .layout import Layout

# Widest layer (input included) the specialised kernel takes: at SIMD_MIN_UNITS and above the
# general kernels switch to their vectorised exp, and their vectorised dot products beat
# straight-line code.
MAX_UNITS = K.SIMD_MIN_UNITS - 1

# FASTMLP_TINY=0 turns the specialised kernels off (the general ``train_epoch`` runs instead).
ENABLED = os.environ.get("FASTMLP_TINY", "1").strip().lower() not in ("0", "false", "no")

_LOADED: dict[tuple, object] = {}  # (sizes, codes, loss_code) -> dispatcher or None, this process
_LOCK = threading.Lock()
_KERNELS_DIGEST: str | None = None


def applies(sizes: Sequence[int]) -> bool:
    """Whether the specialised kernel is used for a net of these layer sizes."""
    return ENABLED and max(sizes) <= MAX_UNITS and Layout(sizes).n_params <= tuning.TINY_MAX_PARAMS


def _activation(code: int, z: str, a: str) -> str:
    """The line computing activation ``a`` of ``z`` (an elementwise code, never SOFTMAX)."""
    if code == K.IDENTITY:
        return f"{a} = {z}"
    if code == K.SIGMOID:
        return f"{a} = one / (one + np.exp(-{z}))"
    if code == K.TANH:
        return f"{a} = np.tanh({z})"
    if code == K.RELU:
        return f"{a} = {z} if {z} > zero else zero"
    return f"{a} = {z} if {z} > zero else slope * {z}"  # LEAKY_RELU


def _scaled_by_derivative(code: int, d: str, z: str, a: str) -> str:
    """Delta ``d`` times ``f'(z)`` (activation ``a``), as ``_scale_by_derivative``."""
    if code == K.SIGMOID:
        return f"{d} * ({a} * (one - {a}))"
    if code == K.TANH:
        return f"{d} * (one - {a} * {a})"
    if code == K.RELU:
        return f"{d} if {z} > zero else zero"
    if code == K.LEAKY_RELU:
        return f"{d} if {z} > zero else slope * {d}"
    return d  # IDENTITY


def source(sizes: Sequence[int], codes: Sequence[int], loss_code: int) -> str:
    """Python source of ``train_epoch_tiny(params, X, Y, order, lr, losses)``: the same contract
    as ``_kernels.train_epoch`` (no work buffers: everything lives in local variables).

    ``sizes``: layer sizes (n_0 .. n_L); ``codes``: activation code of each weight layer;
    ``loss_code``: a ``_kernels`` loss code. Names: ``a{v}_{k}`` / ``z{v}_{k}`` / ``d{v}_{k}``
    are unit k of level v (level 0: the input), ``w{l}_{j}_{i}`` / ``b{l}_{j}`` layer l's
    parameters, at the offsets of ``Layout`` (each layer's W row-major, then its b).
    """
    layout = Layout(sizes)
    n_layers = layout.n_layers
    w_name, b_name = {}, {}
    for l in range(n_layers):
        n_in, n_out = sizes[l], sizes[l + 1]
        for j in range(n_out):
            for i in range(n_in):
                w_name[l, j, i] = (f"w{l}_{j}_{i}", layout.w_offsets[l] + j * n_in + i)
            b_name[l, j] = (f"b{l}_{j}", layout.b_offsets[l] + j)
    every = [*w_name.values(), *b_name.values()]

    body: list[str] = []  # the loop body, indented later
    body.append("r = order[t]")
    body += [f"a0_{i} = X[r, {i}]" for i in range(sizes[0])]
    for l in range(n_layers):  # forward: z = b + sum_i W[j, i] a[i], in order of i
        for j in range(sizes[l + 1]):
            terms = "".join(f" + {w_name[l, j, i][0]} * a{l}_{i}" for i in range(sizes[l]))
            body.append(f"z{l + 1}_{j} = {b_name[l, j][0]}{terms}")
        if l < n_layers - 1 or codes[l] != K.SOFTMAX:
            for j in range(sizes[l + 1]):
                body.append(_activation(codes[l], f"z{l + 1}_{j}", f"a{l + 1}_{j}"))
    last, n_out, out_code = n_layers, sizes[-1], codes[-1]
    units = range(n_out)
    if out_code == K.SOFTMAX:  # as _activate: max-shifted, lse = m + log(sum)
        body.append(f"m = z{last}_0")
        body += [f"m = max(m, z{last}_{k})" for k in range(1, n_out)]
        body.append("total = zero")
        for k in units:
            body += [f"a{last}_{k} = np.exp(z{last}_{k} - m)", f"total += a{last}_{k}"]
        body.append("inv = one / total")
        body += [f"a{last}_{k} *= inv" for k in units]
        body.append("lse = m + np.log(total)")
    body.append("loss = zero")  # output delta and loss, as _output_delta
    if loss_code in (K.MSE, K.MAE):
        for k in units:
            body.append(f"g = a{last}_{k} - Y[r, {k}]")
            if loss_code == K.MSE:
                body += [f"d{last}_{k} = g", "loss += g * g"]
            else:
                body += [
                    f"d{last}_{k} = one if g > zero else (-one if g < zero else zero)",
                    "loss += np.abs(g)",
                ]
        if loss_code == K.MSE:
            body.append("loss *= half")
        if out_code == K.SOFTMAX:
            body.append("s_dot_g = zero")
            body += [f"s_dot_g += a{last}_{k} * d{last}_{k}" for k in units]
            body += [f"d{last}_{k} = a{last}_{k} * (d{last}_{k} - s_dot_g)" for k in units]
        else:
            for k in units:
                scaled = _scaled_by_derivative(out_code, f"d{last}_{k}", f"z{last}_{k}",
                                               f"a{last}_{k}")  # fmt: skip
                body.append(f"d{last}_{k} = {scaled}")
    elif loss_code == K.BINARY_CROSS_ENTROPY:
        for k in units:
            z = f"z{last}_{k}"
            body += [
                f"d{last}_{k} = a{last}_{k} - Y[r, {k}]",
                f"loss += max({z}, zero) + np.log1p(_exp_nonpos(-np.abs({z}))) - Y[r, {k}] * {z}",
            ]
    else:  # CROSS_ENTROPY
        for k in units:
            body += [
                f"d{last}_{k} = a{last}_{k} - Y[r, {k}]",
                f"loss += Y[r, {k}] * (lse - z{last}_{k})",
            ]
    body.append("losses[t] = loss")
    for l in range(n_layers - 1, -1, -1):  # backprop with the old weights, then the update
        n_in, n_out = sizes[l], sizes[l + 1]
        if l > 0:
            for i in range(n_in):
                terms = " + ".join(f"{w_name[l, j, i][0]} * d{l + 1}_{j}" for j in range(n_out))
                body.append(f"g = zero + {terms}")
                scaled = _scaled_by_derivative(codes[l - 1], "g", f"z{l}_{i}", f"a{l}_{i}")
                body.append(f"d{l}_{i} = {scaled}")
        for j in range(n_out):
            body.append(f"step = lr * d{l + 1}_{j}")
            body.append(f"{b_name[l, j][0]} -= step")
            body += [f"{w_name[l, j, i][0]} -= step * a{l}_{i}" for i in range(n_in)]

    fastmath = "{" + ", ".join(map(repr, sorted(K.FASTMATH))) + "}"
    options = ", ".join(
        f"{key}={fastmath if key == 'fastmath' else repr(value)}"
        for key, value in K.JIT_OPTIONS.items()
    )
    lines = [
        f"# Generated by fastmlp._tiny for sizes {tuple(sizes)}, activation codes "
        f"{tuple(codes)}, loss code {loss_code}. Do not edit.",
        f"# fastmlp._kernels sha256 {_kernels_digest()} (its _exp_nonpos is called below)",
        "import numba",
        "import numpy as np",
        "from fastmlp._kernels import _exp_nonpos",
        "",
        "",
        f"@numba.njit({options})",
        "def train_epoch_tiny(params, X, Y, order, lr, losses):",
        "    f = params.dtype.type",
        "    zero, one, half = f(0.0), f(1.0), f(0.5)",
        f"    slope = f({K.LEAKY_SLOPE!r})",
        "    lse = zero",
        *(f"    {name} = params[{index}]" for name, index in every),
        "    for t in range(order.shape[0]):",
        *(f"        {line}" for line in body),
        *(f"    params[{index}] = {name}" for name, index in every),
        "",
    ]
    return "\n".join(lines)


def _kernels_digest() -> str:
    """sha256 of ``_kernels.py``: part of the generated text, so an edit there (which Numba's
    cache would not notice in a caller in another file) gives new generated files."""
    global _KERNELS_DIGEST
    if _KERNELS_DIGEST is None:
        with open(K.__file__, "rb") as file:
            _KERNELS_DIGEST = hashlib.sha256(file.read()).hexdigest()
    return _KERNELS_DIGEST


def _directory() -> str | None:
    """A private directory for the generated files (None if there is none): ours, not a
    symlink, writable by no one else. Numba's cache files beside them are unpickled when
    loaded, so a directory someone else can write to (a planted ``/tmp`` one) is never used."""
    base = os.environ.get("FASTMLP_TINY_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "fastmlp",
        "tiny",
    )
    user = getattr(os, "getuid", lambda: None)()  # no getuid on Windows
    for path in (base, os.path.join(tempfile.gettempdir(), f"fastmlp-tiny-{user}")):
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            info = os.lstat(path)
        except OSError:
            continue
        private = user is None or (
            info.st_uid == user and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        )
        if stat.S_ISDIR(info.st_mode) and private and os.access(path, os.W_OK):
            return path
    return None


def key(sizes: Sequence[int], codes: Sequence[int], loss_code: int) -> tuple:
    """A net's key for ``kernel_for``: ``(sizes, codes, loss_code)`` as tuples of ints."""
    return (tuple(map(int, sizes)), tuple(map(int, codes)), int(loss_code))


def kernel(sizes: Sequence[int], codes: Sequence[int], loss_code: int):
    """The ``train_epoch_tiny`` dispatcher for this net (compiled on its first call per dtype),
    or None when the net is not tiny (``applies``) or its kernel cannot be written or loaded:
    the caller then runs the general kernel."""
    return kernel_for(key(sizes, codes, loss_code))


def kernel_for(net_key: tuple):
    """``kernel(*net_key)`` for a key from ``key()`` (a model keeps its own). Looked up once per net
    and process (a dict lookup afterwards; the first lookup under a lock, so threads share one
    module)."""
    if net_key not in _LOADED:
        with _LOCK:
            if net_key not in _LOADED:
                _LOADED[net_key] = _load(*net_key) if applies(net_key[0]) else None
    return _LOADED[net_key]


def _load(sizes: tuple, codes: tuple, loss_code: int):
    """Write (if not there already) and import the kernel's file; None on any failure."""
    try:
        text = source(sizes, codes, loss_code).encode()
    except OSError:  # _kernels.py unreadable (a zipped install)
        return None
    digest = hashlib.sha256(text).hexdigest()[:20]
    directory = _directory()
    if directory is None:
        return None
    path = os.path.join(directory, f"tiny_{digest}.py")
    name = f"fastmlp._tiny_generated_{digest}"
    tmp = None
    try:
        if not _holds(path, text):  # write whole, then rename: no process ever sees half a file
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                file.write(text)
            os.replace(tmp, path)
            tmp = None
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Numba finds a cached function's module here
        spec.loader.exec_module(module)
        return module.train_epoch_tiny
    except Exception:  # the general kernel does the same job
        sys.modules.pop(name, None)
        return None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _holds(path: str, text: bytes) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read() == text
    except OSError:
        return False
