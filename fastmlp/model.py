"""The public ``MLP`` class: owns the flat parameter buffer and its layout, validates input,
runs the epoch loop (shuffling, chunking, loss history) and hands the per-sample work to the
Numba kernels in ``fastmlp._kernels``."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _kernels as K
from . import _validation as V
from . import persistence
from .errors import DivergenceError
from .layout import Layout

__all__ = ["MLP"]

_ACT_CODES = {
    "identity": K.IDENTITY,
    "sigmoid": K.SIGMOID,
    "tanh": K.TANH,
    "relu": K.RELU,
    "leaky_relu": K.LEAKY_RELU,
    "softmax": K.SOFTMAX,
}
_LOSS_CODES = {
    "mse": K.MSE,
    "mae": K.MAE,
    "binary_cross_entropy": K.BINARY_CROSS_ENTROPY,
    "cross_entropy": K.CROSS_ENTROPY,
}
# Samples per kernel call inside an epoch are chosen so one call does about this many
# parameter updates (a few ms): Ctrl-C is only seen between calls, and the per-call overhead
# (~1 us) stays negligible.
_UPDATES_PER_CHUNK = 1 << 24
# predict() goes parallel above this many multiply-adds (a thread pool costs ~0.1-0.2 ms).
_PARALLEL_PREDICT_WORK = 1 << 22


class MLP:
    """Fully connected network trained by per-sample (online) SGD in Numba kernels.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths ``(n_in, h_1, ..., h_k, n_out)``; ``(n_in, n_out)`` has no hidden layer.
    hidden : str or sequence of str, default "tanh"
        Hidden activation(s): one name for all hidden layers or one per hidden layer, from
        ``identity, sigmoid, tanh, relu, leaky_relu`` (negative slope 0.01).
    output : {"softmax", "sigmoid", "identity"}, default "softmax"
        Output activation. ``softmax`` needs ``n_out >= 2``.
    loss : {"cross_entropy", "binary_cross_entropy", "mse", "mae"}, default "cross_entropy"
        Per-sample loss, summed over output units: ``cross_entropy`` needs a softmax output,
        ``binary_cross_entropy`` a sigmoid output; ``mse`` (1/2 squared error) and ``mae``
        (absolute error; subgradient sign(0) = 0) work with all.
    init : {"auto", "glorot", "he"}, default "auto"
        Weight initialisation: Glorot uniform ``U(+-sqrt(6/(n_in+n_out)))``, He uniform
        ``U(+-sqrt(6/n_in))``, or ``auto`` (He for relu/leaky_relu layers, Glorot otherwise).
        Biases start at 0.
    seed : int or None, default 0
        Seeds the initial weights and the default shuffling of ``fit``: the same seed gives a
        bit-identical model and training run.
    dtype : float32 or float64, default float64
        Dtype of the parameters and of all arithmetic.

    Attributes
    ----------
    params : ndarray (n_params,)
        The one flat parameter buffer: layer 0's W (row-major) then b, then layer 1, ...
    weights : list of ndarray
        ``weights[l]`` is a ``(n_out, n_in)`` view into ``params``; writing to it changes the model.
    biases : list of ndarray
        ``biases[l]`` is a ``(n_out,)`` view into ``params``.
    history_ : list of float
        Mean training loss of each epoch of ``fit`` (each sample's loss is taken in its forward
        pass, just before its update, as scikit-learn's ``loss_curve_``).
    n_updates_ : int
        Number of SGD updates applied so far.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLP
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    >>> y = np.array([0, 1, 1, 0])
    >>> net = MLP((2, 8, 2), hidden="tanh", output="softmax", seed=0)
    >>> net = net.fit(X, y, epochs=500, lr=0.1)
    >>> net.predict_classes(X).tolist()
    [0, 1, 1, 0]
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden: str | Sequence[str] = "tanh",
        output: str = "softmax",
        loss: str = "cross_entropy",
        init: str = "auto",
        seed: int | None = 0,
        dtype: DTypeLike = np.float64,
    ) -> None:
        sizes = V.check_layer_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        hidden_names = [hidden] * n_hidden if isinstance(hidden, str) else list(hidden)
        if len(hidden_names) != n_hidden:
            raise ValueError(
                f"hidden has {len(hidden_names)} activations but layer_sizes {sizes} has "
                f"{n_hidden} hidden layer(s); give one name or one per hidden layer."
            )
        for h in hidden_names:
            V.check_choice("hidden", h, V.HIDDEN_ACTIVATIONS)
        V.check_choice("output", output, V.OUTPUT_ACTIVATIONS)
        V.check_choice("loss", loss, V.LOSSES)
        V.check_choice("init", init, V.INITS)
        if output not in V.COMPATIBLE_OUTPUTS[loss]:
            pairs = ", ".join(f"{o}+{lo}" for lo, os_ in V.COMPATIBLE_OUTPUTS.items() for o in os_)
            raise ValueError(
                f"output={output!r} cannot be used with loss={loss!r}; loss={loss!r} needs "
                f"output in {list(V.COMPATIBLE_OUTPUTS[loss])}. Compatible output+loss pairs: "
                f"{pairs}."
            )
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError(
                f"a softmax output needs at least 2 units, got n_out={sizes[-1]}; use "
                "output='sigmoid' with loss='binary_cross_entropy' for one binary output."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise TypeError(f"seed must be an int or None, got {seed!r}.")

        self.layout = Layout(sizes)
        self.hidden = tuple(hidden_names)
        self.output = output
        self.loss_name = loss
        self.init = init
        self.seed = seed
        self.dtype = V.check_dtype(dtype)
        self.activations = (*self.hidden, output)
        self._loss_code = _LOSS_CODES[loss]
        lay = self.layout
        self._meta = np.array(
            [
                [
                    lay.sizes[l],
                    lay.sizes[l + 1],
                    lay.w_offsets[l],
                    lay.b_offsets[l],
                    lay.unit_offsets[l],
                    lay.unit_offsets[l + 1],
                    _ACT_CODES[self.activations[l]],
                ]
                for l in range(lay.n_layers)
            ],
            dtype=np.uint64,
        )
        self._params = np.zeros(lay.n_params, dtype=self.dtype)
        self.weights = lay.weights(self._params)
        self.biases = lay.biases(self._params)
        self._zs, self._acts, self._deltas = (np.zeros(lay.n_units, self.dtype) for _ in range(3))
        self._rng = np.random.default_rng(seed)
        self._initialise(self._rng)
        self.history_: list[float] = []
        self.n_updates_ = 0
        # for step()'s fast path
        self._x_shape, self._y_shape = (lay.n_in,), (lay.n_out,)
        self._unit_strides = (self.dtype.itemsize,)
        self._y_unchecked = loss in ("mse", "mae")  # the others need a range check of y
        self._lr_is_float = self.dtype == np.float64  # a Python float is typed float64
        self._lr_max = float(np.finfo(self.dtype).max)
        self._lr_key, self._lr_value = math.nan, self.dtype.type(math.nan)
        self._backup = np.empty_like(self._params)  # fit/step roll back a diverging update

    # --- layout ----------------------------------------------------------------------------------
    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Layer widths ``(n_in, ..., n_out)``."""
        return self.layout.sizes

    @property
    def n_params(self) -> int:
        """Number of parameters (weights and biases)."""
        return self.layout.n_params

    @property
    def params(self) -> np.ndarray:
        """The flat parameter buffer ``(n_params,)`` (the model's own memory, not a copy)."""
        return self._params

    @params.setter
    def params(self, value: ArrayLike) -> None:
        arr = np.asarray(value)
        if arr.shape != (self.n_params,):
            raise ValueError(
                f"params must have shape ({self.n_params},) for layer_sizes "
                f"{self.layer_sizes}, got {arr.shape}."
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"params has dtype {arr.dtype}; expected a real numeric array.")
        V._check_finite("params", arr)
        self._params[...] = arr  # copy into the buffer: weights/biases views stay valid

    def _initialise(self, rng: np.random.Generator) -> None:
        for l, act in enumerate(self.activations):
            n_out, n_in = self.layout.weight_shape(l)
            use_he = self.init == "he" or (self.init == "auto" and act in ("relu", "leaky_relu"))
            limit = np.sqrt(6.0 / n_in) if use_he else np.sqrt(6.0 / (n_in + n_out))
            self.weights[l][...] = rng.uniform(-limit, limit, size=(n_out, n_in))
            self.biases[l][...] = 0

    def __repr__(self) -> str:
        return (
            f"MLP({self.layer_sizes}, hidden={list(self.hidden)}, output={self.output!r}, "
            f"loss={self.loss_name!r}, dtype={self.dtype.name})"
        )

    # --- training --------------------------------------------------------------------------------
    def fit(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        epochs: int = 1,
        lr: float = 0.01,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> MLP:
        """Train by online SGD: one update per sample, ``epochs`` passes over the data.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
            Inputs; converted once to a C-contiguous array of the model's dtype.
        Y : array_like (n_samples, n_out) or (n_samples,)
            Targets; for a softmax output also integer class labels in ``[0, n_out)``.
        epochs : int, default 1
        lr : float, default 0.01
            Learning rate, > 0.
        shuffle : bool, default True
            Visit the samples in a new random order each epoch (else in the given order).
        seed : int or None
            Seed of the shuffling for this call; None continues the model's own random
            stream (seeded by the constructor's ``seed``).

        Returns
        -------
        self
            ``history_`` gains one mean training loss per epoch.

        Raises
        ------
        ValueError, TypeError
            On bad shapes, dtypes, non-finite values, labels out of range, ``lr <= 0`` or
            ``epochs < 1``; the model is unchanged then.
        DivergenceError
            If a loss or parameter becomes NaN/inf; the model keeps its last finite
            parameters (from just before the offending update) and ``n_updates_`` counts the
            updates it holds; ``history_`` has the finished epochs.
        KeyboardInterrupt
            Re-raised within a few ms of Ctrl-C; the model holds the parameters of a finished
            sample and ``n_updates_`` counts them.
        """
        epochs = V.check_positive_int("epochs", epochs)
        lr = V.check_lr(lr, self.dtype)
        X = V.check_X(X, self.layout.n_in, self.dtype)
        Y = V.check_Y(Y, X.shape[0], self.layout.n_out, self.output, self.loss_name, self.dtype)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        n_samples = X.shape[0]
        lr_t = self.dtype.type(lr)
        losses = np.empty(n_samples, dtype=self.dtype)
        backup = self._backup  # shared with step(): parameters before the kernel call in flight
        chunk = max(1, _UPDATES_PER_CHUNK // (self.n_params + self.layout.n_units))
        # Each epoch runs in chunks of kernel calls: Ctrl-C, which Python only sees between
        # calls, then stops fit within a few ms with the model at a finished sample. Splitting
        # an epoch into calls does not change the result (tested bit for bit).
        pending = 0  # steps of the kernel call in flight, not yet counted in n_updates_
        try:
            for epoch in range(epochs):
                order = rng.permutation(n_samples) if shuffle else np.arange(n_samples)
                for start in range(0, n_samples, chunk):
                    stop = min(n_samples, start + chunk)
                    backup[...] = self._params
                    losses[stop - 1] = -1.0  # sentinel: a finished call writes a loss >= 0
                    pending = stop - start
                    K.train_epoch(
                        self._params, self._meta, self._loss_code, X, Y, order[start:stop],
                        lr_t, self._zs, self._acts, self._deltas, losses[start:stop],
                    )  # fmt: skip
                    self.n_updates_ += pending
                    pending = 0
                    if K.count_nonfinite(losses[None, start:stop]) or K.count_nonfinite(
                        self._params[None]
                    ):
                        self._rewind_and_raise(
                            backup, X, Y, order, start, stop, lr_t, losses, epoch
                        )
                self.history_.append(float(np.mean(losses, dtype=np.float64)))
        except KeyboardInterrupt:
            # The interrupt can surface just after a kernel call returned (CPython checks for
            # signals after C calls), before it was counted: the sentinel tells if it ran.
            if pending and losses[stop - 1] != -1.0:
                self.n_updates_ += pending
            raise
        return self

    def _rewind_and_raise(
        self,
        backup: np.ndarray,
        X: np.ndarray,
        Y: np.ndarray,
        order: np.ndarray,
        start: int,
        stop: int,
        lr_t: np.floating,
        losses: np.ndarray,
        epoch: int,
    ) -> None:
        """A chunk produced NaN/inf: replay it from ``backup`` one step at a time (the same
        kernel, so bit-identical) up to the first step with a non-finite loss or leaving a
        non-finite parameter, keep the parameters from before it, and raise."""
        self._params[...] = backup
        before = np.empty_like(backup)
        t = start
        while t < stop:
            before[...] = self._params
            K.train_epoch(
                self._params, self._meta, self._loss_code, X, Y, order[t : t + 1], lr_t,
                self._zs, self._acts, self._deltas, losses[t : t + 1],
            )  # fmt: skip
            if not np.isfinite(losses[t]) or K.count_nonfinite(self._params[None]):
                self._params[...] = before
                break
            t += 1
        t = min(t, stop - 1)
        self.n_updates_ -= stop - t
        raise DivergenceError(epoch + 1, t, int(order[t]), float(lr_t), len(order))

    def step(self, x: ArrayLike, y: ArrayLike, lr: float = 0.01) -> float:
        """One online SGD update on one sample; returns its loss (taken before the update).

        ``x`` has shape ``(n_in,)``; ``y`` shape ``(n_out,)``, a scalar for one output, or an
        integer class label for a softmax output. Validated like ``fit`` (a fast path handles
        arrays that already have the model's dtype), so a bad sample leaves the model unchanged.
        If the loss is not finite or the update would make a parameter NaN/inf, the update is
        rolled back and ``DivergenceError`` raised.
        """
        # Fast path (this is the streaming API, called once per sample): arrays that already
        # have the model's dtype and shape skip the general conversion; finiteness of x and y
        # is checked inside the kernel, which then updates nothing and returns NaN.
        if type(lr) is not float or not 0.0 < lr < self._lr_max:
            lr = V.check_lr(lr, self.dtype)
        dtype = self.dtype
        if type(x) is np.ndarray and x.dtype is dtype and x.shape == self._x_shape:
            x2 = x[None] if x.strides == self._unit_strides else self._sample_input(x)
        else:
            x2 = self._sample_input(x)
        if (
            type(y) is np.ndarray and y.dtype is dtype and y.shape == self._y_shape
            and self._y_unchecked and y.strides == self._unit_strides
        ):  # fmt: skip
            y2 = y[None]
        else:
            y2 = self._sample_target(y)
        loss = K.sgd_step_if_finite(
            self._params, self._backup, self._meta, self._loss_code, x2, y2, 0,
            self._typed_lr(lr), self._zs, self._acts, self._deltas,
        )  # fmt: skip
        if loss != loss:  # NaN: nothing was updated
            V._check_finite("x", x2[0])
            V._check_finite("y", y2[0])
            raise DivergenceError(0, 0, 0, lr, 1, streaming=True)
        self.n_updates_ += 1
        return float(loss)

    def _typed_lr(self, lr: float) -> float | np.floating:
        """``lr`` in the model's dtype (a Python float is typed float64 by Numba); the last
        conversion is cached, since a stream of ``step`` calls usually repeats one lr."""
        if self._lr_is_float:
            return lr
        if lr != self._lr_key:
            self._lr_key, self._lr_value = lr, self.dtype.type(lr)
        return self._lr_value

    def _sample_input(self, x: ArrayLike) -> np.ndarray:
        """One sample's input as a ``(1, n_in)`` C-contiguous array of the model's dtype."""
        return V.check_x(x, self.layout.n_in, self.dtype)[None]

    def _sample_target(self, y: ArrayLike) -> np.ndarray:
        """One sample's target as a validated ``(1, n_out)`` array of the model's dtype."""
        n_out = self.layout.n_out
        arr = np.asarray(y)
        if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] != n_out and arr.shape[0] == 1):
            arr = arr.reshape(1)  # a label (softmax) or the single target (n_out == 1)
        elif arr.ndim == 1 and arr.shape[0] == n_out:
            arr = arr.reshape(1, n_out)
        else:
            raise ValueError(
                f"y must be one sample's target of shape ({n_out},)"
                + (" or an integer class label" if self.output == "softmax" else "")
                + f", got shape {arr.shape}."
            )
        return V.check_Y(arr, 1, n_out, self.output, self.loss_name, self.dtype, name="y")

    # --- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to ``path`` as ``.npz`` (no pickle), atomically: a crash mid-save leaves the old
        file intact. Stores the layout, activations, loss, dtype, parameters, update count,
        loss history and the shuffling stream, so a loaded model resumes ``fit`` exactly.
        The format is documented in ``fastmlp.persistence``."""
        persistence.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MLP:
        """Load a model saved by ``save``; ``ValueError`` for truncated, corrupted, tampered or
        future-version files."""
        return persistence.load(cls, path)

    # --- inference -------------------------------------------------------------------------------
    def predict(self, X: ArrayLike, n_jobs: int | None = None) -> np.ndarray:
        """Network outputs ``(n_samples, n_out)`` in the model's dtype.

        ``n_jobs``: threads over blocks of rows (the kernel releases the GIL; results are
        identical to one thread's). ``None`` uses every core when the input is large (more
        than ~4 million multiply-adds) and one thread otherwise.
        """
        X = V.check_X(X, self.layout.n_in, self.dtype)
        n_samples = X.shape[0]
        out = np.empty((n_samples, self.layout.n_out), dtype=self.dtype)
        if n_jobs is None:
            big = n_samples * self.n_params > _PARALLEL_PREDICT_WORK and n_samples >= 64
            n_jobs = (os.cpu_count() or 1) if big else 1
        n_jobs = min(V.check_positive_int("n_jobs", n_jobs), n_samples)
        if n_jobs == 1:
            self._predict_rows(X, out)
            return out
        bounds = np.linspace(0, n_samples, n_jobs + 1).astype(int)
        with ThreadPoolExecutor(n_jobs) as pool:
            jobs = [pool.submit(self._predict_rows, X[lo:hi], out[lo:hi])
                    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]  # fmt: skip
            for job in jobs:
                job.result()
        return out

    def _predict_rows(self, X: np.ndarray, out: np.ndarray) -> None:
        # Workspace per call, so several threads may predict with one model at once.
        zs, acts = (np.empty(self.layout.n_units, self.dtype) for _ in range(2))
        K.predict_batch(self._params, self._meta, X, out, zs, acts)

    def predict_classes(self, X: ArrayLike) -> np.ndarray:
        """Class predictions: argmax for softmax ``(n_samples,)``; ``output >= 0.5`` for sigmoid
        (``(n_samples,)`` for one output, ``(n_samples, n_out)`` 0/1 for several)."""
        if self.output == "identity":
            raise ValueError(
                "predict_classes needs a sigmoid or softmax output; this network's output is "
                "'identity' (regression): use predict."
            )
        out = self.predict(X)
        if self.output == "softmax":
            return np.argmax(out, axis=1)
        classes = (out >= 0.5).astype(np.int64)
        return classes[:, 0] if self.layout.n_out == 1 else classes

    def loss(self, X: ArrayLike, Y: ArrayLike) -> float:
        """Mean per-sample loss over ``(X, Y)`` (same target formats as ``fit``)."""
        X = V.check_X(X, self.layout.n_in, self.dtype)
        Y = V.check_Y(Y, X.shape[0], self.layout.n_out, self.output, self.loss_name, self.dtype)
        n_units = self.layout.n_units
        zs, acts, deltas = (np.empty(n_units, self.dtype) for _ in range(3))
        losses = np.empty(X.shape[0], dtype=self.dtype)
        K.loss_batch(self._params, self._meta, self._loss_code, X, Y, zs, acts, deltas, losses)
        return float(np.mean(losses, dtype=np.float64))

    def gradient(self, x: ArrayLike, y: ArrayLike) -> np.ndarray:
        """dLoss/dparams of one sample, a new ``(n_params,)`` array in the layout of ``params``."""
        x2 = V.check_x(x, self.layout.n_in, self.dtype)[None]
        y2 = self._sample_target(y)  # check_Y has checked it is finite
        n_units = self.layout.n_units
        zs, acts, deltas = (np.empty(n_units, self.dtype) for _ in range(3))
        grad = np.empty(self.n_params, dtype=self.dtype)
        K.sample_gradient(
            self._params, self._meta, self._loss_code, x2, y2, 0, zs, acts, deltas, grad
        )
        return grad
