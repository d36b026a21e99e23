"""The public ``MLP`` class: owns the flat parameter buffer and its layout, validates input,
runs the epoch loop (shuffling, chunking, loss history) and hands the per-sample work to the
Numba kernels in ``fastmlp._kernels``."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _kernels as K
from . import _tiny, optim, persistence
from . import _validation as V
from .errors import DivergenceError
from .layout import Layout, work_buffer
from .progress import Progress

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
# Row-parallel epochs use chunks this many times longer. Their per-call overhead is far larger:
# the calling thread copies the parameters to the backup and scans them for NaN/inf, which pulls
# every other thread's rows out of its core's cache, and the pool hands the call to the other
# threads. mnist128 float32 on 2 threads, best of 11 epochs: 1.24x serial with 1x chunks, 1.38x
# with 2x, 1.43x with 4x and 8x. A 4x chunk still stops within ~5 ms (mnist128) to ~15 ms (wide).
_ROWS_CHUNK_FACTOR = 4


def _available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# predict() goes parallel above this many multiply-adds (a thread pool costs ~0.1-0.2 ms).
_PARALLEL_PREDICT_WORK = 1 << 22


def new_history() -> dict[str, list[float]]:
    """An empty ``history_``."""
    return {"loss": [], "val_loss": [], "val_accuracy": [], "lr": []}


def _epoch_loss(losses: np.ndarray, weights: np.ndarray | None, order: np.ndarray) -> float:
    """Mean of an epoch's per-sample losses, weighted by ``weights[order]`` when given."""
    if weights is None:  # np.mean's sum and division, without its ~1.6 us of Python
        return float(np.add.reduce(losses, dtype=np.float64)) / losses.shape[0]
    w = weights[order].astype(np.float64)
    total = w.sum()
    return float(np.dot(w, losses) / total) if total > 0 else float(np.mean(losses))


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
    history_ : dict of str to list of float
        Per epoch of ``fit`` (Keras' ``History.history`` names): ``loss``, the mean training
        loss (each sample's loss taken in its forward pass, just before its update, as
        scikit-learn's ``loss_curve_``; without the weight-decay term); ``lr``, the learning
        rate used; ``val_loss`` and ``val_accuracy`` (sigmoid/softmax outputs) when there is
        validation data.
    n_updates_ : int
        Number of parameter updates applied so far (one per sample in online SGD, one per
        batch with ``batch_size > 1``).
    n_samples_seen_ : int
        Number of training samples processed so far (scikit-learn's ``t_``).

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
        self._tiny_key = _tiny.key(lay.sizes, self._meta[:, K.ACT], self._loss_code)
        self._params = work_buffer(lay.n_params, self.dtype)
        self.weights = lay.weights(self._params)
        self.biases = lay.biases(self._params)
        units = [work_buffer(lay.n_units, self.dtype) for _ in range(5)]
        self._zs, self._acts, self._deltas, self._xin, self._mask = units
        self._rng = np.random.default_rng(seed)
        self._initialise(self._rng)
        self.history_: dict[str, list[float]] = new_history()
        self.n_updates_ = 0
        self.n_samples_seen_ = 0
        # for step()'s fast path
        self._x_shape, self._y_shape = (lay.n_in,), (lay.n_out,)
        self._unit_strides = (self.dtype.itemsize,)
        self._y_unchecked = loss in ("mse", "mae")  # the others need a range check of y
        self._lr_is_float = self.dtype == np.float64  # a Python float is typed float64
        self._lr_max = float(np.finfo(self.dtype).max)
        self._lr_key, self._lr_value = math.nan, self.dtype.type(math.nan)
        self._backup = np.empty_like(self._params)  # fit/step roll back a diverging update
        self._optimizer_state = optim.OptimizerState(lay.n_params, self.dtype, seed)
        self._workspace = np.empty(0, self.dtype)  # the general kernel's gradient buffer

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
        V.check_finite("params", arr)
        self._params[...] = arr  # copy into the buffer: weights/biases views stay valid

    def _initialise(self, rng: np.random.Generator) -> None:
        for l, act in enumerate(self.activations):
            n_out, n_in = self.layout.weight_shape(l)
            use_he = self.init == "he" or (self.init == "auto" and act in ("relu", "leaky_relu"))
            limit = np.sqrt(6.0 / n_in) if use_he else np.sqrt(6.0 / (n_in + n_out))
            self.weights[l][...] = rng.uniform(-limit, limit, size=(n_out, n_in))
            self.biases[l][...] = 0

    # --- pickling (joblib, multiprocessing, GridSearchCV(n_jobs=...)) -----------------------------
    def __getstate__(self) -> dict:
        """The constructor's arguments and the trained state; buffers and views are rebuilt on
        unpickling (pickling the views would cut them loose from ``params``)."""
        opt = self._optimizer_state
        return {
            "args": (self.layer_sizes, list(self.hidden), self.output, self.loss_name,
                     self.init, self.seed, self.dtype.name),
            "params": self.params.copy(),
            "history": {key: list(values) for key, values in self.history_.items()},
            "counts": (self.n_updates_, self.n_samples_seen_),
            "rng": self._rng.bit_generator.state,
            "optimizer": (opt.optimizer, opt.velocity.copy(), opt.moment2.copy(),
                          opt.powers.copy(), opt.rng.copy()),
        }  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        sizes, hidden, output, loss, init, seed, dtype = state["args"]
        self.__init__(sizes, hidden, output, loss, init, seed, dtype)
        self.params = state["params"]
        self.history_ = state["history"]
        self.n_updates_, self.n_samples_seen_ = state["counts"]
        self._rng.bit_generator.state = state["rng"]
        self._optimizer_state.set(*state["optimizer"])

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
        *,
        batch_size: int = 1,
        optimizer: str = "sgd",
        momentum: float = 0.0,
        nesterov: bool = False,
        alpha: float = 0.0,
        schedule: str = "constant",
        power_t: float = 0.5,
        step_size: int = 10,
        gamma: float = 0.1,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        dropout: float = 0.0,
        sample_weight: ArrayLike | None = None,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        validation_fraction: float = 0.0,
        patience: int | None = None,
        tol: float = 1e-4,
        restore_best: bool = True,
        callback: Callable[[int, dict[str, float]], object] | None = None,
        progress: bool = False,
        n_jobs: int | None = None,
        parallel: str = "rows",
    ) -> MLP:
        """Train for ``epochs`` passes over the data: online SGD by default (one update per
        sample); mini-batches, momentum, Adam, weight decay and dropout on request.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
            Inputs; converted once to a C-contiguous array of the model's dtype.
        Y : array_like (n_samples, n_out) or (n_samples,)
            Targets; for a softmax output also integer class labels in ``[0, n_out)``.
        epochs : int, default 1
            Maximum number of epochs (early stopping may end sooner).
        lr : float, default 0.01
            Learning rate, > 0 (the start value of a schedule).
        shuffle : bool, default True
            Visit the samples in a new random order each epoch (else in the given order).
        seed : int or None
            Seed of the shuffling (and of the ``validation_fraction`` split) for this call;
            None continues the model's own random stream (seeded by the constructor's ``seed``).
        batch_size : int, default 1
            Samples per update. Each update uses ``(1/B) sum_r w_r grad_r`` over the B samples
            of the batch (the last batch of an epoch may be shorter).
        optimizer : {"sgd", "adam"}, default "sgd"
        momentum : float in [0, 1), default 0
            SGD momentum, scikit-learn's form: ``v = momentum v - lr g``, ``p += v``.
        nesterov : bool, default False
            Nesterov momentum: ``p += momentum v - lr g`` after the velocity update.
        alpha : float >= 0, default 0
            L2 weight decay on the weights (never the biases): ``g += alpha W`` per update
            (PyTorch's ``weight_decay``; scikit-learn's ``alpha`` is this times ``batch_size``).
        schedule : {"constant", "invscaling", "step", "adaptive"}, default "constant"
            Learning rate per epoch: ``invscaling`` is ``lr / (t + 1)^power_t`` with t the
            samples seen so far (scikit-learn's); ``step`` is ``lr * gamma^(epoch // step_size)``
            (PyTorch's StepLR, epochs of this model counted from 0); ``adaptive`` divides lr by 5
            whenever the monitored loss has not improved by ``tol`` for ``patience`` epochs
            (10 if ``patience`` is None) and stops when lr would drop below 1e-6
            (scikit-learn's).
        power_t, step_size, gamma : schedule parameters, defaults 0.5, 10, 0.1.
        beta1, beta2, epsilon : Adam's parameters, defaults 0.9, 0.999, 1e-8 (scikit-learn's
            and PyTorch's). Update ``p -= lr m_hat / (sqrt(v_hat) + epsilon)``.
        dropout : float in [0, 1), default 0
            Inverted dropout on every hidden layer during training: each hidden activation is
            zeroed with this probability and the others scaled by ``1 / (1 - dropout)``.
            The masks are drawn inside the kernel from the model's own stream (seeded by the
            constructor's ``seed``), so a run is reproducible. ``predict`` uses no dropout.
        sample_weight : array_like (n_samples,), optional
            Non-negative weight per sample, multiplying its gradient (a weight of 2 counts the
            sample twice in its batch's sum; 0 ignores it). The epoch loss in ``history_`` is
            then the weighted mean.
        validation_data : (X_val, Y_val), optional
            Evaluated after each epoch: ``history_["val_loss"]`` and, for sigmoid/softmax
            outputs, ``history_["val_accuracy"]``.
        validation_fraction : float in [0, 1), default 0
            Instead of ``validation_data``: hold out this fraction of the rows (at random,
            from the shuffling stream) for validation.
        patience : int or None, default None
            Early stopping: stop when the monitored loss (validation loss if there is
            validation data, else the training loss) has not improved by more than ``tol``
            for ``patience`` consecutive epochs (Keras' EarlyStopping). None: no early stopping.
        tol : float >= 0, default 1e-4
        restore_best : bool, default True
            With ``patience``: end with the parameters of the best epoch (the optimizer state
            stays as it was at the end).
        callback : callable(epoch, logs), optional
            Called after each epoch with its 0-based index and a dict of ``loss``, ``lr``,
            ``samples_per_s`` and (with validation data) ``val_loss``, ``val_accuracy``.
            Returning a true value stops training.
        progress : bool, default False
            Show a progress bar per epoch (tqdm when installed, else a line per epoch on
            stderr).
        n_jobs : int or None, default None (= 1)
            Threads for plain online SGD (``batch_size=1``, no momentum/Adam/decay/dropout/
            sample weights); how they share the work is ``parallel``'s choice.
        parallel : {"rows", "hogwild"}, default "rows"
            ``"rows"``: exact online SGD, every sample in turn, with each hidden layer's rows
            (units) split between the threads, which meet at a spin barrier between layers.
            At most one thread per available core; a network without a hidden layer, or a
            tiny one (``fastmlp._tiny.applies``) on its shape-specialised kernel, trains
            serially. Deterministic; with one hidden layer the result is bit-identical to
            ``n_jobs=1``, deeper networks differ by rounding (``W^T delta`` is summed in
            per-thread parts). Pays off when the per-sample work (``~n_params``) is large
            against a barrier (~1 us): tens of thousands of weights and up.
            ``"hogwild"``: Hogwild! (Niu et al. 2011): the threads each take a share of every
            epoch's samples and update the one shared buffer without locks. Not
            bit-reproducible (the interleaving varies from run to run); slow for dense layers,
            whose updates make the cores fight over every cache line. On a divergence the whole
            epoch is rolled back.

        Returns
        -------
        self
            ``history_`` gains one entry per epoch in each of its lists.

        Raises
        ------
        ValueError, TypeError
            On bad shapes, dtypes, non-finite values, labels out of range or bad settings; the
            model is unchanged then.
        DivergenceError
            If a loss or parameter becomes NaN/inf; the model keeps its last finite
            parameters (from just before the offending update) and ``n_updates_`` counts the
            updates it holds; ``history_`` has the finished epochs.
        KeyboardInterrupt
            Re-raised within a few ms of Ctrl-C; the model holds the parameters of a finished
            update and ``n_updates_`` counts them.
        """
        epochs = V.check_positive_int("epochs", epochs)
        lr = V.check_lr(lr, self.dtype)
        settings = optim.settings(
            lr=lr, batch_size=batch_size, optimizer=optimizer, momentum=momentum,
            nesterov=nesterov, alpha=alpha, beta1=beta1, beta2=beta2, epsilon=epsilon,
            dropout=dropout, schedule=schedule, power_t=power_t, step_size=step_size, gamma=gamma,
        )  # fmt: skip
        X = V.check_X(X, self.layout.n_in, self.dtype)
        Y = V.check_Y(Y, X.shape[0], self.layout.n_out, self.output, self.loss_name, self.dtype)
        weights = None
        if sample_weight is not None:
            weights = V.check_sample_weight(sample_weight, X.shape[0], self.dtype)
        if patience is not None:
            patience = V.check_positive_int("patience", patience)
        tol = V.check_non_negative("tol", tol)
        n_jobs = 1 if n_jobs is None else V.check_positive_int("n_jobs", n_jobs)
        if parallel not in ("rows", "hogwild"):
            raise ValueError(f"parallel must be 'rows' or 'hogwild', got {parallel!r}.")
        if n_jobs > 1 and not (settings.is_plain_sgd and weights is None):
            raise ValueError(
                f"n_jobs={n_jobs} runs plain online SGD only: batch_size=1, "
                "optimizer='sgd', no momentum, alpha, dropout or sample_weight."
            )
        if n_jobs > 1 and parallel == "rows":
            # one thread per core at most: a spin barrier needs them all
            serial = self.layout.n_layers == 1 or self._tiny_kernel() is not None
            n_jobs = 1 if serial else min(n_jobs, _available_cores())
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable(epoch, logs), got {callback!r}.")
        rng = self._rng if seed is None else np.random.default_rng(seed)
        X, Y, weights, X_val, Y_val = self._split_validation(
            X, Y, weights, validation_data, validation_fraction, rng
        )
        has_val = X_val is not None
        monitor_patience = patience or (10 if schedule == "adaptive" else None)
        best, wait, best_params = math.inf, 0, None
        current_lr = lr
        bar = Progress(epochs, X.shape[0]) if progress else None
        try:
            for epoch in range(epochs):
                if schedule != "adaptive":
                    current_lr = optim.scheduled_lr(
                        settings, len(self.history_["loss"]), self.n_samples_seen_
                    )
                order = rng.permutation(X.shape[0]) if shuffle else np.arange(X.shape[0])
                started = time.perf_counter()
                if n_jobs > 1 and parallel == "rows":
                    losses = self._train_epoch_rows(X, Y, order, current_lr, epoch, n_jobs)
                elif n_jobs > 1:
                    losses = self._train_epoch_hogwild(X, Y, order, current_lr, epoch, n_jobs)
                else:
                    losses = self._train_epoch(X, Y, weights, order, current_lr, settings, epoch)
                seconds = time.perf_counter() - started
                logs = {
                    "loss": _epoch_loss(losses, weights, order),
                    "lr": current_lr,
                    "samples_per_s": X.shape[0] / seconds if seconds > 0 else math.inf,
                }
                if has_val:
                    logs["val_loss"], accuracy = self._evaluate(X_val, Y_val)
                    if accuracy is not None:
                        logs["val_accuracy"] = accuracy
                for key in ("loss", "lr", "val_loss", "val_accuracy"):
                    if key in logs:
                        self.history_[key].append(logs[key])
                if bar is not None:
                    bar.update(epoch, logs)
                stop = bool(callback(epoch, dict(logs))) if callback is not None else False
                if monitor_patience is not None:
                    monitored = logs["val_loss"] if has_val else logs["loss"]
                    if monitored < best - tol:
                        best, wait = monitored, 0
                        if patience is not None and restore_best:
                            best_params = self._params.copy()
                    else:
                        wait += 1
                    if wait >= monitor_patience:
                        if schedule == "adaptive":
                            wait = 0
                            current_lr /= optim.ADAPTIVE_DIVISOR
                            stop |= current_lr < optim.ADAPTIVE_MIN_LR
                        else:
                            stop = True
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
        if best_params is not None:
            self._params[...] = best_params
        return self

    def _split_validation(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        weights: np.ndarray | None,
        validation_data: tuple[ArrayLike, ArrayLike] | None,
        validation_fraction: float,
        rng: np.random.Generator,
    ) -> tuple:
        """``(X, Y, weights, X_val, Y_val)``: validation data checked, or split off X."""
        fraction = V.check_fraction("validation_fraction", validation_fraction)
        if validation_data is not None:
            if fraction:
                raise ValueError("give validation_data or validation_fraction, not both.")
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise TypeError(
                    "validation_data must be a pair (X_val, Y_val), got "
                    f"{type(validation_data).__name__}."
                )
            X_val = V.check_X(validation_data[0], self.layout.n_in, self.dtype, "X_val")
            Y_val = V.check_Y(
                validation_data[1], X_val.shape[0], self.layout.n_out, self.output,
                self.loss_name, self.dtype, name="Y_val",
            )  # fmt: skip
            return X, Y, weights, X_val, Y_val
        if not fraction:
            return X, Y, weights, None, None
        n_samples = X.shape[0]
        n_val = math.ceil(n_samples * fraction)
        if n_val >= n_samples:
            raise ValueError(
                f"validation_fraction={validation_fraction} of {n_samples} samples leaves no "
                "training data."
            )
        perm = rng.permutation(n_samples)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        weights = None if weights is None else weights[train]
        return X[train], Y[train], weights, X[val], Y[val]

    def _evaluate(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, float | None]:
        """Mean loss on validated ``(X, Y)``, and accuracy for sigmoid/softmax outputs."""
        loss = self._mean_loss(X, Y)
        if self.output == "identity":
            return loss, None
        out = np.empty_like(Y)
        self._predict_rows(X, out)
        if self.output == "softmax":
            return loss, float(np.mean(out.argmax(axis=1) == Y.argmax(axis=1)))
        return loss, float(np.mean((out >= 0.5) == (Y >= 0.5)))

    def _train_epoch(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        weights: np.ndarray | None,
        order: np.ndarray,
        lr: float,
        settings: optim.Settings,
        epoch: int,
    ) -> np.ndarray:
        """One epoch over ``X[order]`` in chunks of kernel calls; returns per-sample losses.

        Each epoch runs in chunks: Ctrl-C, which Python only sees between kernel calls, then
        stops within a few ms with the model at a finished update. Splitting an epoch into
        calls does not change the result (tested bit for bit). Plain online SGD runs the fused
        ``train_epoch`` kernel; anything else the general ``train_epoch_opt``.
        """
        n_samples = order.shape[0]
        plain = settings.is_plain_sgd and weights is None
        batch = settings.batch_size
        losses = np.empty(n_samples, dtype=self.dtype)
        chunk = self._chunk_samples()
        state = self._optimizer_state
        if plain:
            args = (self.dtype.type(lr),)
        else:
            chunk = max(batch, chunk // batch * batch)  # chunks end on batch boundaries
            state.prepare(settings.optimizer)
            opts, hyper = settings.kernel_arrays(self.dtype, lr)
            if weights is None:
                weights = np.ones(X.shape[0], dtype=self.dtype)
            if self._workspace.shape[0] != self.n_params:
                self._workspace = work_buffer(self.n_params, self.dtype)
            args = (weights, opts, hyper, state.powers, state.velocity, state.moment2,
                    self._workspace, state.rng, self._xin, self._mask)  # fmt: skip
        backup = self._backup  # shared with step(): parameters before the kernel call in flight
        pending = 0  # updates of the kernel call in flight, not yet counted in n_updates_
        try:
            for start in range(0, n_samples, chunk):
                stop = min(n_samples, start + chunk)
                backup[...] = self._params
                snapshot = None if plain else state.snapshot()
                losses[stop - 1] = -1.0  # sentinel: a finished call writes a loss >= 0
                pending = -(-(stop - start) // batch)
                self._run_kernel(plain, X, Y, order[start:stop], args, losses[start:stop])
                self.n_updates_ += pending
                self.n_samples_seen_ += stop - start
                pending = 0
                if K.count_nonfinite(losses[start:stop]) or K.count_nonfinite(self._params):
                    self._rewind_and_raise(
                        plain, snapshot, X, Y, order, start, stop, args, losses, epoch, lr, batch
                    )
        except KeyboardInterrupt:
            # The interrupt can surface just after a kernel call returned (CPython checks for
            # signals after C calls), before it was counted: the sentinel tells if it ran.
            if pending and losses[stop - 1] != -1.0:
                self.n_updates_ += pending
                self.n_samples_seen_ += stop - start
            raise
        return losses

    def _train_epoch_rows(
        self, X: np.ndarray, Y: np.ndarray, order: np.ndarray, lr: float, epoch: int, n_jobs: int
    ) -> np.ndarray:
        """One epoch of row-parallel online SGD (``K.train_epoch_rows``) on ``n_jobs`` threads:
        this thread is rank 0, a pool runs the others. In chunks of kernel calls, like
        ``_train_epoch``; returns the per-sample losses."""
        n_samples = order.shape[0]
        losses = np.empty(n_samples, dtype=self.dtype)
        args = (self._params, self._meta, self._loss_code, X, Y)
        lr_t = self.dtype.type(lr)
        units = (self._zs, self._acts, self._deltas)
        partial = work_buffer(n_jobs * self.layout.n_units, self.dtype)
        ranks = np.arange(n_jobs + 1, dtype=np.uint64)
        rows = self._meta[:, K.N_OUT, None] * ranks // np.uint64(n_jobs)  # (n_layers, n_jobs+1)
        sync = np.zeros((n_jobs + 1) * K.SYNC_STRIDE, dtype=np.int64)
        chunk = self._chunk_samples() * _ROWS_CHUNK_FACTOR
        backup = self._backup

        inputs = [work_buffer(self.layout.n_in, self.dtype) for _ in range(n_jobs)]

        def run(rank: int, part: np.ndarray, part_losses: np.ndarray) -> int:
            return K.train_epoch_rows(
                *args, part, lr_t, *units, inputs[rank], partial, part_losses, rows, ranks[rank],
                sync,
            )  # fmt: skip

        with ThreadPoolExecutor(n_jobs - 1) as pool:
            for start in range(0, n_samples, chunk):
                stop = min(n_samples, start + chunk)
                part, part_losses = order[start:stop], losses[start:stop]
                backup[...] = self._params
                part_losses[-1] = -1.0  # sentinel: rank 0 writes a loss >= 0 when it finishes
                others = []
                try:
                    others = [pool.submit(run, rank, part, part_losses)
                              for rank in range(1, n_jobs)]  # fmt: skip
                    run(0, part, part_losses)
                    for future in others:
                        future.result()
                except BaseException:
                    # Ctrl-C (or an error). If rank 0 finished the chunk, so do the others
                    # (they are at most one barrier behind): count it. Else make them return.
                    finished = part_losses[-1] != -1.0
                    if not finished:
                        sync[K.SYNC_ABORT] = 1
                    for future in others:
                        future.exception()
                    if finished:
                        self.n_updates_ += stop - start
                        self.n_samples_seen_ += stop - start
                    else:
                        self._params[...] = backup  # an aborted chunk stops mid-sample
                    raise
                self.n_updates_ += stop - start
                self.n_samples_seen_ += stop - start
                if K.count_nonfinite(part_losses) or K.count_nonfinite(self._params):
                    self._rewind_and_raise(
                        True, None, X, Y, order, start, stop, (lr_t,), losses, epoch, lr, 1
                    )
        return losses

    def _train_epoch_hogwild(
        self, X: np.ndarray, Y: np.ndarray, order: np.ndarray, lr: float, epoch: int, n_jobs: int
    ) -> np.ndarray:
        """One Hogwild epoch: ``n_jobs`` threads, each running the plain SGD kernel over its
        share of ``order`` (in chunks, so Ctrl-C stops them within a chunk), all writing the
        shared ``params`` without locks. Returns the per-sample losses."""
        n_samples = order.shape[0]
        losses = np.empty(n_samples, dtype=self.dtype)
        lr_t = self.dtype.type(lr)
        chunk = self._chunk_samples()
        bounds = np.linspace(0, n_samples, n_jobs + 1).astype(np.int64)
        done = [0] * n_jobs  # updates finished per thread
        stop = threading.Event()

        def work(i: int) -> None:
            units = [work_buffer(self.layout.n_units, self.dtype) for _ in range(3)]
            for start in range(int(bounds[i]), int(bounds[i + 1]), chunk):
                if stop.is_set():
                    return
                end = min(int(bounds[i + 1]), start + chunk)
                K.train_epoch(
                    self._params, self._meta, self._loss_code, X, Y, order[start:end], lr_t,
                    *units, losses[start:end],
                )  # fmt: skip
                done[i] += end - start

        self._backup[...] = self._params
        with ThreadPoolExecutor(n_jobs) as pool:
            futures = [pool.submit(work, i) for i in range(n_jobs)]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()  # Ctrl-C (or an error): the threads stop after their current chunk
                for future in futures:
                    future.exception()
                self.n_updates_ += sum(done)
                self.n_samples_seen_ += sum(done)
                raise
        if K.count_nonfinite(losses) or K.count_nonfinite(self._params):
            self._params[...] = self._backup
            t = int(np.argmax(~np.isfinite(losses))) if not np.isfinite(losses).all() else 0
            raise DivergenceError(epoch + 1, t, int(order[t]), float(lr), n_samples)
        self.n_updates_ += n_samples
        self.n_samples_seen_ += n_samples
        return losses

    def _chunk_samples(self) -> int:
        """Samples per kernel call within an epoch: ~``_UPDATES_PER_CHUNK`` parameter updates."""
        return max(1, _UPDATES_PER_CHUNK // (self.n_params + self.layout.n_units))

    def _tiny_kernel(self):
        """This net's shape-specialised SGD kernel (``fastmlp._tiny``), or None."""
        return _tiny.kernel_for(self._tiny_key)

    def _run_kernel(self, plain: bool, X, Y, order, args, losses) -> None:
        """One call of the training kernel over ``X[order]`` (``args``: see ``_train_epoch``)."""
        zs, acts, deltas = self._zs, self._acts, self._deltas
        if plain:
            tiny = self._tiny_kernel()
            if tiny is not None:  # a net of a few units: its shape-specialised kernel
                tiny(self._params, X, Y, order, args[0], losses)
                return
            K.train_epoch(
                self._params, self._meta, self._loss_code, X, Y, order, args[0], zs, acts,
                deltas, losses,
            )  # fmt: skip
        else:
            K.train_epoch_opt(
                self._params, self._meta, self._loss_code, X, Y, order, *args, zs, acts,
                deltas, losses,
            )  # fmt: skip

    def _rewind_and_raise(
        self, plain, snapshot, X, Y, order, start, stop, args, losses, epoch, lr, batch
    ) -> None:
        """A chunk produced NaN/inf: replay it from the backup one update at a time (the same
        kernel, so bit-identical) up to the first update with a non-finite loss or leaving a
        non-finite parameter, keep the state from before it, and raise."""
        state = self._optimizer_state
        self._params[...] = self._backup
        if not plain:
            state.restore(snapshot)
        before = np.empty_like(self._params)
        t = start
        while t < stop:
            before[...] = self._params
            saved = None if plain else state.snapshot()
            end = min(t + batch, stop)
            self._run_kernel(plain, X, Y, order[t:end], args, losses[t:end])
            if K.count_nonfinite(losses[t:end]) or K.count_nonfinite(self._params):
                self._params[...] = before
                if not plain:
                    state.restore(saved)
                break
            t = end
        t = min(t, stop - 1)
        self.n_updates_ -= -(-(stop - t) // batch)
        self.n_samples_seen_ -= stop - t
        raise DivergenceError(epoch + 1, t, int(order[t]), float(lr), len(order))

    def step(
        self, x: ArrayLike, y: ArrayLike, lr: float = 0.01, sample_weight: float | None = None
    ) -> float:
        """One online SGD update on one sample; returns its loss (taken before the update).

        ``x`` has shape ``(n_in,)``; ``y`` shape ``(n_out,)``, a scalar for one output, or an
        integer class label for a softmax output. Validated like ``fit`` (a fast path handles
        arrays that already have the model's dtype), so a bad sample leaves the model unchanged.
        If the loss is not finite or the update would make a parameter NaN/inf, the update is
        rolled back and ``DivergenceError`` raised. ``sample_weight`` (>= 0) scales the
        sample's gradient (the step is taken with ``lr * sample_weight``). Always plain SGD:
        ``fit``'s optimizer settings do not apply here. Runs the general kernel: on a tiny net,
        whose ``fit`` runs a shape-specialised one (``fastmlp._tiny``), a ``step`` and a
        one-sample ``fit`` agree to a few ulps, not always bit for bit.
        """
        # Fast path (this is the streaming API, called once per sample): arrays that already
        # have the model's dtype and shape skip the general conversion; finiteness of x and y
        # is checked inside the kernel, which then updates nothing and returns NaN.
        if type(lr) is not float or not 0.0 < lr < self._lr_max:
            lr = V.check_lr(lr, self.dtype)
        if sample_weight is not None:
            lr *= V.check_non_negative("sample_weight", sample_weight)
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
            V.check_finite("x", x2[0])
            V.check_finite("y", y2[0])
            raise DivergenceError(0, 0, 0, lr, 1, streaming=True)
        self.n_updates_ += 1
        self.n_samples_seen_ += 1
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
        identical to one thread's). ``None`` uses every core this process may run on (its
        affinity mask) when the input is large (more than ~4 million multiply-adds) and one
        thread otherwise.
        """
        X = V.check_X(X, self.layout.n_in, self.dtype, finite=False)  # scanned below
        n_samples = X.shape[0]
        out = np.empty((n_samples, self.layout.n_out), dtype=self.dtype)
        work = n_samples * self.n_params
        if n_jobs is None:
            big = work > _PARALLEL_PREDICT_WORK and n_samples >= 64
            n_jobs = _available_cores() if big else 1
        n_jobs = min(V.check_positive_int("n_jobs", n_jobs), n_samples)
        if n_jobs == 1:
            V.check_finite("X", X)
            self._predict_rows(X, out)
            return out
        # More blocks than threads, taken in turn by whichever thread is free: a thread slowed by
        # the machine then does fewer blocks instead of holding up the rest at the end.
        n_blocks = min(n_samples, max(n_jobs, min(8 * n_jobs, work // _PARALLEL_PREDICT_WORK)))
        bounds = np.linspace(0, n_samples, n_blocks + 1).astype(int)
        with ThreadPoolExecutor(n_jobs) as pool:
            jobs = [pool.submit(self._predict_finite_rows, X[lo:hi], out[lo:hi])
                    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]  # fmt: skip
            n_bad = sum(job.result() for job in jobs)
        if n_bad:
            V.check_finite("X", X)  # raises, naming the first non-finite entry
        return out

    def _block_buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """New ``zs, acts`` for ``predict_batch`` / ``loss_batch``: ``PREDICT_BLOCK`` rows'
        unit buffers each (the kernels run unchecked, so the size is decided here only). New
        per call, so several threads may predict with one model at once."""
        n = K.PREDICT_BLOCK * self.layout.n_units
        return work_buffer(n, self.dtype), work_buffer(n, self.dtype)

    def _predict_rows(self, X: np.ndarray, out: np.ndarray) -> None:
        K.predict_batch(self._params, self._meta, X, out, *self._block_buffers())

    def _predict_finite_rows(self, X: np.ndarray, out: np.ndarray) -> int:
        """``_predict_rows`` after scanning this block of X for NaN/inf (in the calling thread,
        so the scan runs in parallel too); returns the non-finite count, predicting nothing if
        it is not 0."""
        n_bad = K.count_nonfinite(X.reshape(-1))  # a C-contiguous block: a view
        if n_bad == 0:
            self._predict_rows(X, out)
        return n_bad

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
        return self._mean_loss(X, Y)

    def _mean_loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Mean per-sample loss over validated ``(X, Y)``, parameters unchanged."""
        zs, acts = self._block_buffers()
        deltas = work_buffer(self.layout.n_units, self.dtype)
        losses = np.empty(X.shape[0], dtype=self.dtype)
        K.loss_batch(self._params, self._meta, self._loss_code, X, Y, zs, acts, deltas, losses)
        return float(np.mean(losses, dtype=np.float64))

    def gradient(self, x: ArrayLike, y: ArrayLike) -> np.ndarray:
        """dLoss/dparams of one sample, a new ``(n_params,)`` array in the layout of ``params``."""
        x2 = V.check_x(x, self.layout.n_in, self.dtype)[None]
        y2 = self._sample_target(y)  # check_Y has checked it is finite
        n_units = self.layout.n_units
        zs, acts, deltas = (work_buffer(n_units, self.dtype) for _ in range(3))
        grad = work_buffer(self.n_params, self.dtype)
        K.sample_gradient(
            self._params, self._meta, self._loss_code, x2, y2, 0, zs, acts, deltas, grad
        )
        return grad
