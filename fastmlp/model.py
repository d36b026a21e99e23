"""The public ``MLP`` class: parameters, layout and state; validation, then the kernels."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _epochs, _inference, _state, _streaming, _tiny, _training, optim, persistence
from . import _kernels as K
from . import _validation as V
from ._kernel_args import KernelArgs
from .layout import Layout, work_buffer

if TYPE_CHECKING:
    import onnx

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
        Glorot uniform ``U(+-sqrt(6/(n_in+n_out)))``, He uniform ``U(+-sqrt(6/n_in))``, or
        ``auto`` (He for relu/leaky_relu layers, else Glorot); biases start at 0.
    seed : int or None, default 0
        Seeds the weights and ``fit``'s shuffling: the same seed, a bit-identical run.
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
        Per epoch of ``fit`` (Keras' names): ``loss`` (mean of each sample's loss just before
        its update, as scikit-learn's ``loss_curve_``), ``lr``, ``val_loss``, ``val_accuracy``.
    n_updates_ : int
        Parameter updates applied so far (one per sample, or per batch).
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
        sizes, hidden_names = V.check_architecture(layer_sizes, hidden, output, loss, init, seed)
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
        self._events = _streaming.EventBuffers(self)  # step's and predict's per-event paths
        self._optimizer_state = optim.OptimizerState(lay.n_params, self.dtype, seed)

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
        arr = V.check_params(value, self.n_params, self.layer_sizes)
        self._params[...] = arr  # copy into the buffer: weights/biases views stay valid

    def _initialise(self, rng: np.random.Generator) -> None:
        for l, act in enumerate(self.activations):
            n_out, n_in = self.layout.weight_shape(l)
            use_he = self.init == "he" or (self.init == "auto" and act in ("relu", "leaky_relu"))
            limit = np.sqrt(6.0 / n_in) if use_he else np.sqrt(6.0 / (n_in + n_out))
            self.weights[l][...] = rng.uniform(-limit, limit, size=(n_out, n_in))
            self.biases[l][...] = 0

    def __getstate__(self) -> dict:
        """Return the constructor's arguments and trained state; buffers are rebuilt."""
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
        block_size: int | None = None,
    ) -> MLP:
        """Train for ``epochs`` passes: online SGD by default, one update per sample.

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
            Seed of this call's shuffling and ``validation_fraction`` split; None continues
            the model's own stream.
        batch_size : int, default 1
            Samples per update, ``(1/B) sum_r w_r grad_r`` (an epoch's last batch may be
            shorter).
        optimizer : {"sgd", "adam"}, default "sgd"
        momentum : float in [0, 1), default 0
            SGD momentum, scikit-learn's form: ``v = momentum v - lr g``, ``p += v``.
        nesterov : bool, default False
            Nesterov momentum: ``p += momentum v - lr g`` after the velocity update.
        alpha : float >= 0, default 0
            L2 weight decay on the weights (never the biases): ``g += alpha W`` per update
            (PyTorch's ``weight_decay``; scikit-learn's ``alpha`` is this times ``batch_size``).
        schedule : {"constant", "invscaling", "step", "adaptive"}, default "constant"
            Learning rate per epoch: ``invscaling`` ``lr / (t + 1)^power_t``, t the samples seen
            (scikit-learn's); ``step`` ``lr * gamma^(epoch // step_size)`` (PyTorch's StepLR);
            ``adaptive`` lr / 5 after ``patience`` (default 10) epochs without improvement by
            ``tol``, stopping below 1e-6 (scikit-learn's).
        power_t, step_size, gamma : schedule parameters, defaults 0.5, 10, 0.1.
        beta1, beta2, epsilon : Adam's parameters, defaults 0.9, 0.999, 1e-8 (scikit-learn's
            and PyTorch's). Update ``p -= lr m_hat / (sqrt(v_hat) + epsilon)``.
        dropout : float in [0, 1), default 0
            Inverted dropout on every hidden layer in training, masks drawn from the model's
            own seeded stream (reproducible); ``predict`` uses none.
        sample_weight : array_like (n_samples,), optional
            Weights >= 0 multiplying each sample's gradient; ``history_``'s loss is then the
            weighted mean.
        validation_data : (X_val, Y_val), optional
            Evaluated after each epoch: ``val_loss`` and, for sigmoid/softmax outputs,
            ``val_accuracy`` in ``history_``.
        validation_fraction : float in [0, 1), default 0
            Instead of ``validation_data``: hold out this fraction of the rows, at random.
        patience : int or None, default None
            Early stopping (Keras' EarlyStopping): stop when the validation loss (else the
            training loss) has not improved by ``tol`` for ``patience`` epochs.
        tol : float >= 0, default 1e-4
        restore_best : bool, default True
            With ``patience``: end on the best epoch's parameters (optimizer state as at the end).
        callback : callable(epoch, logs), optional
            Called after each epoch with a dict of ``loss``, ``lr``, ``samples_per_s`` (and
            ``val_loss``, ``val_accuracy``); a true return value stops training.
        progress : bool, default False
            A progress bar per epoch (tqdm when installed, else a line on stderr).
        n_jobs : int or None, default None (= 1)
            Threads, for plain online SGD only (``batch_size=1``, no momentum, Adam, decay,
            dropout or sample weights).
        parallel : {"rows", "hogwild"}, default "rows"
            ``"rows"``: exact online SGD with each hidden layer's rows split between the
            threads (at most one per core; nets without a hidden layer and tiny nets train
            serially). Deterministic (the same bits run after run); one sample at a time
            (``block_size=1``) equal to ``n_jobs=1`` within rounding (bit for bit with
            one hidden layer on AVX-512 hosts). Pays off from tens of thousands of weights.
            ``"hogwild"`` (Niu et al. 2011): each thread takes a share of the samples and
            updates the shared parameters without locks; not reproducible run to run; a
            diverging epoch is rolled back whole.
        block_size : int or None, default None
            Plain online SGD sums layer 0 in blocks of this many samples (at most 256): the
            same trajectory as one update per sample (every gradient taken at the parameters
            left by all samples before it), summed in another order, so equal within rounding
            and faster on a wide layer 0 (``docs/how-it-works.md``). None picks it by layer
            0's shape and the dtype (``fastmlp.tuning.block_size``: from 32 inputs and 4,096
            weights in float64, 64 and 8,192 in float32), on one thread or with
            ``parallel="rows"``; 1 sums one sample at a time, bit for bit as releases before
            blocks did. Values > 1 need plain SGD; with ``n_jobs`` > 1, ``parallel="rows"``
            (layer 0's rows split between the threads; equal to one thread within rounding).

        Returns
        -------
        self
            ``history_`` gains one entry per epoch in each of its lists.

        Raises
        ------
        ValueError, TypeError
            On bad data or settings; the model is unchanged then.
        DivergenceError
            If a loss or parameter becomes NaN/inf; the model keeps the parameters from just
            before that update, counted by ``n_updates_``.
        KeyboardInterrupt
            Within a few ms of Ctrl-C, the model at a finished update, counted.
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
        if block_size is not None:
            block_size = V.check_positive_int("block_size", block_size)
        run_epoch = _epochs.strategy(self, settings, weights, n_jobs, parallel, block_size)
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

        Validated like ``fit``. Always plain SGD (``fit``'s optimizer settings do not apply).
        On a tiny net, whose ``fit`` runs a shape-specialised kernel, and on a net whose ``fit``
        sums layer 0 in blocks (``fastmlp.tuning.block_size``), a ``step`` and a one-sample
        ``fit`` agree to a few ulps, not always bit for bit.

        Parameters
        ----------
        x : array_like (n_in,)
            The sample's input.
        y : array_like (n_out,), scalar or int
            Its target; a scalar for one output, an integer class label for softmax.
        lr : float, default 0.01
            Learning rate, > 0.
        sample_weight : float >= 0, optional
            Scales the sample's gradient (the step is taken with ``lr * sample_weight``).

        Returns
        -------
        float
            The sample's loss.

        Raises
        ------
        ValueError, TypeError
            On a bad sample or learning rate; the model is unchanged then.
        DivergenceError
            If the loss is not finite or the update would make a parameter NaN/inf; the update
            is rolled back.
        """
        return _streaming.update(self, x, y, lr, sample_weight, None)

    def test_then_train(
        self, x: ArrayLike, y: ArrayLike, lr: float = 0.01, sample_weight: float | None = None
    ) -> np.ndarray:
        """Predict one sample, then learn from it: prequential (test-then-train) learning.

        Returns what ``predict(x[None])[0]`` would have returned before the update, and applies
        ``step(x, y, lr, sample_weight)``, with one forward pass for both. Validated and rolled
        back like ``step``. The prediction is the forward pass of the update; it equals
        ``predict``'s to rounding (``predict`` sums in blocks of rows, in another order).

        Parameters
        ----------
        x : array_like (n_in,)
            The sample's input.
        y : array_like (n_out,), scalar or int
            Its target, as ``step`` takes it.
        lr : float, default 0.01
            Learning rate, > 0.
        sample_weight : float >= 0, optional
            Scales the sample's gradient.

        Returns
        -------
        ndarray (n_out,)
            The network's output for ``x`` before the update, in the model's dtype.

        Raises
        ------
        ValueError, TypeError
            On a bad sample or learning rate; the model is unchanged then.
        DivergenceError
            If the update diverges; it is rolled back.
        """
        out = np.empty(self._events.y_shape, self.dtype)
        _streaming.update(self, x, y, lr, sample_weight, out)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the model to ``path`` as ``.npz`` (no pickle), atomically.

        A crash mid-save leaves the old file intact. Everything ``fit`` needs to resume exactly
        is stored; the format is documented in ``fastmlp.persistence``.

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

    def to_onnx(
        self, path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> onnx.ModelProto:
        """Export the network as an ONNX model (needs the ``onnx`` extra).

        Parameters
        ----------
        path : str or os.PathLike or None, default None
            Where to write the ``.onnx`` file (atomically); ``None`` writes nothing.
        **kwargs
            ``fastmlp.export.to_onnx``'s keyword arguments: ``dtype``, ``input_name``,
            ``feature_names``, ``class_names``, ``input_mean``, ``input_scale``,
            ``input_fill``, ``target_mean``, ``target_scale``, ``opset``.

        Returns
        -------
        onnx.ModelProto
            The checked model: input ``input`` ``(N, n_in)``, outputs ``output`` (``predict``)
            and, for sigmoid/softmax outputs, ``label`` (``predict_classes`` or class names).
        """
        from . import export

        return export.to_onnx(self, path, **kwargs)

    def predict(self, X: ArrayLike, n_jobs: int | None = None) -> np.ndarray:
        """Compute the network's outputs ``(n_samples, n_out)`` in the model's dtype.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
            Inputs; converted once to a C-contiguous array of the model's dtype.
        n_jobs : int or None, default None
            Threads over blocks of rows (results identical to one thread's). ``None``: every
            available core for large inputs (``fastmlp.tuning.PARALLEL_PREDICT_WORK``).

        Returns
        -------
        ndarray (n_samples, n_out)
            The outputs, in the model's dtype.
        """
        if n_jobs is None and _streaming.is_row(self._events, X):
            return _streaming.predict_row(self, X)  # one event: one kernel call
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
        return _inference.classes(self, self.predict(X))

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
        return _inference.sample_gradient(self, x2, y2)
