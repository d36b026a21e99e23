"""The public ``MLP`` class.

``MLP`` owns the flat parameter buffer, its layout and the model's state, validates input and
hands the work to the Numba kernels in ``fastmlp._kernels``.

Where the rest lives: the epoch loop (schedule, validation, early stopping, callbacks,
``history_``) in ``fastmlp._training``; one epoch, serial or on threads, in ``fastmlp._epochs``;
the input checks in ``fastmlp._validation``; the kernels' tables and buffers in
``fastmlp._kernel_args``; the state that pickling and ``save``/``load`` carry in
``fastmlp._state``; the Python-side tunables in ``fastmlp.tuning``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _epochs, _inference, _state, _tiny, _training, optim, persistence
from . import _kernels as K
from . import _validation as V
from ._kernel_args import KernelArgs
from .errors import DivergenceError
from .layout import Layout, work_buffer

__all__ = ["MLP"]


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
        lay = self.layout
        self._args = KernelArgs(lay, self.activations, loss, self.dtype)
        self._tiny_key = _tiny.key(lay.sizes, self._args.meta[:, K.ACT], self._args.loss_code)
        self._params = work_buffer(lay.n_params, self.dtype)
        self.weights = lay.weights(self._params)
        self.biases = lay.biases(self._params)
        self._rng = np.random.default_rng(seed)
        self._initialise(self._rng)
        self.history_: dict[str, list[float]] = _state.new_history()
        self.n_updates_ = 0
        self.n_samples_seen_ = 0
        # for step()'s fast path
        self._x_shape, self._y_shape = (lay.n_in,), (lay.n_out,)
        self._unit_strides = (self.dtype.itemsize,)
        self._y_unchecked = loss in ("mse", "mae")  # the others need a range check of y
        self._lr_is_float = self.dtype == np.float64  # a Python float is typed float64
        self._lr_max = float(np.finfo(self.dtype).max)
        self._lr_key, self._lr_value = math.nan, self.dtype.type(math.nan)
        self._optimizer_state = optim.OptimizerState(lay.n_params, self.dtype, seed)

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
        """Return the constructor's arguments and the trained state (``fastmlp._state``).

        Buffers and views are rebuilt on unpickling (pickling the views would cut them loose
        from ``params``).
        """
        return _state.to_pickle(self)

    def __setstate__(self, state: dict) -> None:
        """Rebuild the model from ``__getstate__``'s dict: construct it anew, then restore it."""
        self.__init__(*state["args"])
        _state.restore(self, _state.from_pickle(state))

    def __repr__(self) -> str:
        """Describe the network: layer sizes, activations, loss and dtype."""
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
        """Train for ``epochs`` passes over the data.

        Online SGD by default (one update per sample); mini-batches, momentum, Adam, weight
        decay and dropout on request.

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
            against the cost of a barrier: tens of thousands of weights and up.
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
        patience = None if patience is None else V.check_positive_int("patience", patience)
        tol = V.check_non_negative("tol", tol)
        n_jobs = 1 if n_jobs is None else V.check_positive_int("n_jobs", n_jobs)
        run_epoch = _epochs.strategy(self, settings, weights, n_jobs, parallel)
        V.check_callback(callback)
        stopping = _training.Stopping(patience, tol, restore_best, callback, progress)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        data = _training.split_validation(
            self, X, Y, weights, validation_data, validation_fraction, rng
        )
        _training.run(self, run_epoch, data, epochs, settings, stopping, rng, shuffle)
        return self

    def _tiny_kernel(self):
        """Return this net's shape-specialised SGD kernel (``fastmlp._tiny``), or None."""
        return _tiny.kernel_for(self._tiny_key)

    def step(
        self, x: ArrayLike, y: ArrayLike, lr: float = 0.01, sample_weight: float | None = None
    ) -> float:
        """Apply one online SGD update on one sample; return its loss (taken before the update).

        Validated like ``fit`` (a fast path handles arrays that already have the model's dtype),
        so a bad sample leaves the model unchanged. Always plain SGD: ``fit``'s optimizer
        settings do not apply here. Runs the general kernel: on a tiny net, whose ``fit`` runs a
        shape-specialised one (``fastmlp._tiny``), a ``step`` and a one-sample ``fit`` agree to
        a few ulps, not always bit for bit.

        Parameters
        ----------
        x : array_like (n_in,)
            The sample's input.
        y : array_like (n_out,), scalar or int
            Its target: shape ``(n_out,)``, a scalar for one output, or an integer class label
            for a softmax output.
        lr : float, default 0.01
            Learning rate, > 0.
        sample_weight : float >= 0, optional
            Scales the sample's gradient (the step is taken with ``lr * sample_weight``).

        Returns
        -------
        float
            The sample's loss, taken before the update.

        Raises
        ------
        ValueError, TypeError
            On a bad sample or learning rate; the model is unchanged then.
        DivergenceError
            If the loss is not finite or the update would make a parameter NaN/inf; the update
            is rolled back.
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
            y2 = V.check_target(y, self.layout.n_out, self.output, self.loss_name, self.dtype)
        args = self._args
        loss = K.sgd_step_if_finite(
            self._params, args.backup, args.meta, args.loss_code, x2, y2, 0,
            self._typed_lr(lr), args.zs, args.acts, args.deltas,
        )  # fmt: skip
        if loss != loss:  # NaN: nothing was updated
            V.check_finite("x", x2[0])
            V.check_finite("y", y2[0])
            raise DivergenceError(0, 0, 0, lr, 1, streaming=True)
        self.n_updates_ += 1
        self.n_samples_seen_ += 1
        return float(loss)

    def _typed_lr(self, lr: float) -> float | np.floating:
        """Return ``lr`` in the model's dtype (a Python float is typed float64 by Numba).

        The last conversion is cached, since a stream of ``step`` calls usually repeats one lr.
        """
        if self._lr_is_float:
            return lr
        if lr != self._lr_key:
            self._lr_key, self._lr_value = lr, self.dtype.type(lr)
        return self._lr_value

    def _sample_input(self, x: ArrayLike) -> np.ndarray:
        """One sample's input as a ``(1, n_in)`` C-contiguous array of the model's dtype."""
        return V.check_x(x, self.layout.n_in, self.dtype)[None]

    # --- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the model to ``path`` as ``.npz`` (no pickle), atomically.

        A crash mid-save leaves the old file intact. Stores the layout, activations, loss,
        dtype, parameters, update counts, ``history_``, the optimizer state and the shuffling
        stream, so a loaded model resumes ``fit`` exactly. The format is documented in
        ``fastmlp.persistence``.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write; an existing file is replaced.
        """
        persistence.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MLP:
        """Load a model saved by ``save``.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by ``save``.

        Returns
        -------
        MLP
            The model as it was saved, ready to predict or to resume ``fit``.

        Raises
        ------
        ValueError
            For truncated, corrupted, tampered or future-version files.
        FileNotFoundError
            If there is no file at ``path``.
        """
        return persistence.load(cls, path)

    # --- inference -------------------------------------------------------------------------------
    def predict(self, X: ArrayLike, n_jobs: int | None = None) -> np.ndarray:
        """Compute the network's outputs ``(n_samples, n_out)`` in the model's dtype.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
            Inputs; converted once to a C-contiguous array of the model's dtype.
        n_jobs : int or None, default None
            Threads over blocks of rows (the kernel releases the GIL; results are identical to
            one thread's). ``None`` uses every core this process may run on (its affinity mask)
            when the input is large (more than ~4 million multiply-adds,
            ``fastmlp.tuning.PARALLEL_PREDICT_WORK``) and one thread otherwise.

        Returns
        -------
        ndarray (n_samples, n_out)
            The outputs, in the model's dtype.
        """
        X = V.check_X(X, self.layout.n_in, self.dtype, finite=False)  # scanned in threads
        return _inference.predict(self, X, n_jobs)

    def predict_classes(self, X: ArrayLike) -> np.ndarray:
        """Predict classes: the argmax for softmax, ``output >= 0.5`` for sigmoid.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
            Inputs, as ``predict`` takes them.

        Returns
        -------
        ndarray of int, (n_samples,) or (n_samples, n_out)
            Softmax: the class index per sample ``(n_samples,)``. Sigmoid: 0/1, ``(n_samples,)``
            for one output, ``(n_samples, n_out)`` for several.

        Raises
        ------
        ValueError
            For an ``identity`` (regression) output: use ``predict``.
        """
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
        """Compute the mean per-sample loss over ``(X, Y)``.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
            Inputs.
        Y : array_like (n_samples, n_out) or (n_samples,)
            Targets, in the same formats as ``fit`` takes them.

        Returns
        -------
        float
            The mean loss (without a weight-decay term); the model is unchanged.
        """
        X = V.check_X(X, self.layout.n_in, self.dtype)
        Y = V.check_Y(Y, X.shape[0], self.layout.n_out, self.output, self.loss_name, self.dtype)
        return _inference.mean_loss(self, X, Y)

    def gradient(self, x: ArrayLike, y: ArrayLike) -> np.ndarray:
        """Compute dLoss/dparams of one sample.

        Parameters
        ----------
        x : array_like (n_in,)
            The sample's input.
        y : array_like (n_out,), scalar or int
            Its target, as ``step`` takes it.

        Returns
        -------
        ndarray (n_params,)
            A new array in the layout of ``params``, in the model's dtype.
        """
        x2 = V.check_x(x, self.layout.n_in, self.dtype)[None]
        # check_target has checked that y is finite
        y2 = V.check_target(y, self.layout.n_out, self.output, self.loss_name, self.dtype)
        n_units = self.layout.n_units
        zs, acts, deltas = (work_buffer(n_units, self.dtype) for _ in range(3))
        grad = work_buffer(self.n_params, self.dtype)
        K.sample_gradient(
            self._params, self._args.meta, self._args.loss_code, x2, y2, 0, zs, acts, deltas, grad
        )
        return grad
