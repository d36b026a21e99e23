"""One event at a time: the per-event paths of ``MLP.step``, ``MLP.test_then_train`` and the
one-row ``MLP.predict``, each one kernel call.

A stream calls these once per sample, so the Python around the kernel is the cost: on a small
net the kernel takes under a microsecond, and one NumPy reduction on a one-row array takes
about as long. Inputs that already have the model's dtype and shape (and Python or NumPy
scalars as targets) skip the general conversion; their finiteness, a class label's one-hot
row and the [0, 1] range of a cross-entropy target are checked inside the kernel, which then
updates nothing and returns NaN. Only then does the general validation run, to raise the same
error, naming the same argument, as the general path would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _epochs, optim
from . import _kernels as K
from . import _validation as V
from .errors import DivergenceError
from .layout import work_buffer

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["EventBuffers", "RowCalls", "fit_row", "is_row", "predict_row", "update"]

# Scalar types taken as they are: integers as class labels (softmax) or as the one target, and
# reals as the one target. NumPy's scalars are what iterating over an array gives.
_INTEGERS = frozenset({int, np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16,
                       np.uint32, np.uint64, np.intp})  # fmt: skip
_REALS = frozenset({float, np.float64, np.float32})
_EXACT_INT = 2**53  # integers a float64 target holds exactly; larger ones take the general path


class EventBuffers:
    """One model's preallocated state of the per-event paths: the shapes and strides an input
    needs to skip conversion, the target row a label or scalar is written to, and the cached
    learning rate in the model's dtype."""

    __slots__ = (
        "dtype", "n_in", "n_out", "x_shape", "y_shape", "row_shape", "out_shape", "item",
        "unit_strides", "softmax", "target", "no_out", "work_size", "lr_max", "lr_is_float",
        "lr_key", "lr_value",
    )  # fmt: skip

    def __init__(self, net: MLP) -> None:
        lay, dtype = net.layout, net.dtype
        self.dtype, self.n_in, self.n_out = dtype, lay.n_in, lay.n_out
        self.x_shape, self.y_shape = (lay.n_in,), (lay.n_out,)
        self.row_shape, self.out_shape = (1, lay.n_in), (1, lay.n_out)
        self.item = dtype.itemsize
        self.unit_strides = (dtype.itemsize,)
        self.softmax = net.output == "softmax"
        self.target = work_buffer(lay.n_out, dtype).reshape(1, lay.n_out)
        self.no_out = np.empty(0, dtype)
        self.work_size = 2 * K.PREDICT_BLOCK * lay.n_units
        self.lr_max = float(np.finfo(dtype).max)
        self.lr_is_float = dtype == np.float64  # a Python float is typed float64 by Numba
        self.lr_key, self.lr_value = float("nan"), dtype.type("nan")

    def typed_lr(self, lr: float) -> float | np.floating:
        """``lr`` in the model's dtype; the last conversion is cached (a stream repeats one)."""
        if self.lr_is_float:
            return lr
        if lr != self.lr_key:
            self.lr_key, self.lr_value = lr, self.dtype.type(lr)
        return self.lr_value


class RowCalls:
    """The per-event kernel calls for a caller that owns its buffers and checks its own
    input (``fastmlp.river``): one dispatch each, no conversion, no allocation, one thread.

    Write an input row into ``x`` (and, for a target that is not a class label, the target row
    into ``target``), then call ``predict`` (outputs into ``out``) or ``step``. ``x``,
    ``target`` and ``out`` are rows of one ``io`` buffer, and the kernels' work buffers are one
    ``work`` buffer: ``row_predict`` and ``row_step`` take four arrays where ``stream_step``
    takes eight. Bound to one network: build a new one when the network is rebuilt.
    """

    __slots__ = ("net", "params", "meta", "loss_code", "io", "x", "target", "out", "work",
                 "convert_lr")  # fmt: skip

    def __init__(self, net: MLP) -> None:
        lay, dtype = net.layout, net.dtype
        self.net = net
        self.params, self.meta, self.loss_code = net._params, net._args.meta, net._args.loss_code
        width = max(lay.n_in, lay.n_out)
        self.io = work_buffer(3 * width, dtype).reshape(3, width)
        self.x = self.io[0:1, : lay.n_in]  # (1, n_in) views: contiguous
        self.target = self.io[1:2, : lay.n_out]
        self.out = self.io[2:3, : lay.n_out]
        self.work = work_buffer(3 * lay.n_units + lay.n_params, dtype)
        self.convert_lr = dtype != np.float64  # a Python float is typed float64 by Numba

    def predict(self) -> bool:
        """The outputs of ``x`` into ``out`` (one sample's forward pass: ``MLP.predict``'s to
        rounding); False, ``out`` untouched, if ``x`` holds NaN/inf."""
        return not K.row_predict(self.params, self.meta, self.io, self.work)

    def step(self, label: int, lr: float) -> float:
        """``MLP.step`` (to rounding) on ``x`` and the class ``label`` (in ``[0, n_out)`` of a
        softmax output: the caller's check) or, for ``label=-1``, the target row in
        ``target``; ``lr`` a finite float > 0. Returns the loss, or NaN with nothing changed:
        ``x`` or the target not finite, a cross-entropy target outside [0, 1], or a diverging
        update."""
        if self.convert_lr:
            lr = self.net._events.typed_lr(lr)
        loss = K.row_step(self.params, self.meta, self.loss_code, label, lr, self.io, self.work)
        if loss == loss:
            net = self.net
            net.n_updates_ += 1
            net.n_samples_seen_ += 1
        return loss


def _target(net: MLP, ev: EventBuffers, y: object) -> tuple[np.ndarray, int]:
    """``(Y, label)`` for ``stream_step``: ``Y`` a ``(1, n_out)`` row, or ``ev.target`` with
    ``label >= 0`` for the kernel to fill with a class's one-hot row."""
    ty = type(y)
    if ty is np.ndarray:
        if y.dtype is ev.dtype and y.shape == ev.y_shape and y.strides == ev.unit_strides:
            return y[None], -1
    elif ty in _INTEGERS:
        if ev.softmax:
            if 0 <= y < ev.n_out:
                return ev.target, int(y)
        elif ev.n_out == 1 and -_EXACT_INT <= y <= _EXACT_INT:
            ev.target[0, 0] = y
            return ev.target, -1
    elif ty in _REALS and ev.n_out == 1:
        ev.target[0, 0] = y  # NaN/inf are caught in the kernel
        return ev.target, -1
    return V.check_target(y, ev.n_out, net.output, net.loss_name, ev.dtype), -1


def update(
    net: MLP, x: object, y: object, lr: object, sample_weight: object, out: np.ndarray | None
) -> float:
    """One SGD update on ``(x, y)`` (``MLP.step``); the output before it goes to ``out``."""
    ev = net._events
    if type(lr) is not float or not 0.0 < lr < ev.lr_max:
        lr = V.check_lr(lr, ev.dtype)
    if sample_weight is not None:
        lr *= V.check_non_negative("sample_weight", sample_weight)
    if (
        type(x) is np.ndarray and x.dtype is ev.dtype and x.shape == ev.x_shape
        and x.strides == ev.unit_strides
    ):  # fmt: skip
        x2 = x[None]
    else:
        x2 = V.check_x(x, ev.n_in, ev.dtype)[None]
    if type(y) is int and ev.softmax and 0 <= y < ev.n_out:  # the common cases, inlined
        y2, label = ev.target, y
    elif type(y) is float and ev.n_out == 1:
        ev.target[0, 0] = y  # NaN/inf are caught in the kernel
        y2, label = ev.target, -1
    else:
        y2, label = _target(net, ev, y)
    args = net._args
    loss = K.stream_step(
        net._params, args.backup, args.meta, args.loss_code, x2, y2, label,
        lr if ev.lr_is_float else ev.typed_lr(lr), args.zs, args.acts, args.deltas,
        ev.no_out if out is None else out,
    )  # fmt: skip
    if loss != loss:  # NaN: nothing was updated; a bad sample raises here, naming it
        V.check_finite("x", x2[0])
        V.check_target(y, ev.n_out, net.output, net.loss_name, ev.dtype)
        raise DivergenceError(0, 0, 0, lr, 1, streaming=True)
    net.n_updates_ += 1
    net.n_samples_seen_ += 1
    return float(loss)


def is_row(ev: EventBuffers, X: object) -> bool:
    """Whether ``X`` is one C-contiguous ``(1, n_in)`` row of the model's dtype."""
    return (
        type(X) is np.ndarray and X.dtype is ev.dtype and X.shape == ev.row_shape
        and X.strides[1] == ev.item
    )  # fmt: skip


def predict_row(net: MLP, X: np.ndarray) -> np.ndarray:
    """The outputs ``(1, n_out)`` of one row ``X`` that passed ``is_row``: by ``predict_batch``,
    as for any number of rows (so a row's output does not depend on the rows beside it)."""
    ev = net._events
    out = np.empty(ev.out_shape, ev.dtype)
    work = np.empty(ev.work_size, ev.dtype)  # per call: threads may predict with one model
    if K.predict_rows_if_finite(net._params, net._args.meta, X, out, work):
        V.check_finite("X", X)
    return out


_FIRST_ROW = np.zeros(1, np.int64)  # the visiting order of a one-row epoch


def fit_row(
    net: MLP,
    X: np.ndarray,
    Y: np.ndarray,
    settings: optim.Settings,
    lr: float,
    arrays: tuple[np.ndarray, np.ndarray],
) -> float:
    """``net.fit(X, Y, epochs=1, lr=lr, ...)`` with ``settings`` on one validated row (X and
    Y finite, Y in the loss's range), without ``fit``'s epoch loop; returns the row's loss.

    The same kernel call as ``fit``'s (shuffling one row draws no random number), the same
    counters, the same state; no ``history_`` entry. ``arrays`` are
    ``settings.kernel_arrays(net.dtype, lr)``, which the caller keeps. A non-finite result is
    undone and the row replayed by ``fit``'s own epoch runner, which raises its
    ``DivergenceError``. (The scikit-learn estimators' one-row ``partial_fit``.)
    """
    kargs, state = net._args, net._optimizer_state
    plain = settings.is_plain_sgd
    kargs.backup[...] = net._params
    if plain:
        args: tuple = (net.dtype.type(lr),)
        snapshot = None
    else:
        state.prepare(settings.optimizer)
        snapshot = state.snapshot()
        args = (_one_weight(net.dtype), *arrays, state.powers, state.velocity, state.moment2,
                kargs.gradient_workspace(), state.rng, kargs.xin, kargs.mask)  # fmt: skip
    block = _epochs.default_block(net, settings, None)  # fit's, so fit's bits
    losses = np.empty(1, net.dtype)
    losses[0] = -1.0  # sentinel: a finished kernel call writes a loss >= 0
    try:
        _epochs.run_kernel(net, plain, X, Y, _FIRST_ROW, args, losses, block)
    finally:  # Ctrl-C may surface just after the call returned: count what ran
        if losses[0] != -1.0:
            net.n_updates_ += 1
            net.n_samples_seen_ += 1
    if K.count_nonfinite(losses) or K.count_nonfinite(net._params):
        net._params[...] = kargs.backup
        net.n_updates_ -= 1
        net.n_samples_seen_ -= 1
        if snapshot is not None:
            state.restore(snapshot)
        # raises DivergenceError (or, should its replay stay finite, trains the row)
        losses = _epochs.serial(net, None, settings, X, Y, _FIRST_ROW, lr, 0, block=block)
    return float(losses[0])


_ONES = {np.dtype(np.float64): np.ones(1), np.dtype(np.float32): np.ones(1, np.float32)}


def _one_weight(dtype: np.dtype) -> np.ndarray:
    """The sample weights ``(1,)`` of an unweighted row (read only by the kernel)."""
    return _ONES[dtype]
