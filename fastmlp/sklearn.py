"""scikit-learn estimators backed by ``fastmlp.MLP``: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` (same
parameter names and meaning, same fitted attributes, same stopping rule), trained by fastmlp's
Numba kernels. scikit-learn is an optional dependency, needed only by this module::

    pip install "fastmlp[sklearn]"

    from fastmlp.sklearn import MLPClassifier
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastmlp.sklearn needs scikit-learn (>= 1.6), which is not installed: "
        'pip install "fastmlp[sklearn]"  (or: pip install scikit-learn)'
    ) from exc

from .model import MLP

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> fastmlp's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _last_epoch_loss(net: MLP) -> float:
    """Mean training loss of the net's last epoch."""
    return float(net.history_["loss"][-1])


class _BaseMLP(BaseEstimator):
    """The parameters, the epoch loop and the stopping rule shared by both estimators."""

    def __init__(
        self,
        hidden_layer_sizes: int | tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "sgd",
        alpha: float = 0.0001,
        batch_size: int | str = 1,
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        dtype: type = np.float64,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype

    # --- subclass hooks --------------------------------------------------------------------------
    def _output_and_loss(self) -> tuple[str, str]:
        raise NotImplementedError

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> float:
        raise NotImplementedError

    # --- parameters ------------------------------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        """Validate the hyperparameters (in fit, as scikit-learn does; never in __init__)."""
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not supported: fastmlp trains by stochastic gradient descent "
                "only (solver='sgd' or 'adam'); use sklearn.neural_network for L-BFGS."
            )
        self._hidden_sizes()

        def choice(name: str, options: tuple[str, ...]) -> None:
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}.")

        def number(name: str, lo: float, hi: float = np.inf, lo_open: bool = False) -> None:
            v = getattr(self, name)
            bad = isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v)
            if bad or not (lo < v if lo_open else lo <= v) or not v <= hi:
                interval = f"{'(' if lo_open else '['}{lo}, {hi}]"
                raise ValueError(f"{name} must be a real number in {interval}, got {v!r}.")

        def integer(name: str, lo: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Integral) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}.")

        choice("activation", tuple(_ACTIVATIONS))
        choice("solver", _SOLVERS)
        choice("learning_rate", _LEARNING_RATES)
        number("alpha", 0.0)
        number("learning_rate_init", 0.0, lo_open=True)
        number("power_t", 0.0)
        number("tol", 0.0)
        number("momentum", 0.0, 1.0)
        number("validation_fraction", 0.0, 1.0)
        if self.early_stopping and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "validation_fraction must be in (0, 1) with early_stopping=True, got "
                f"{self.validation_fraction!r}."
            )
        number("beta_1", 0.0, 1.0)
        number("beta_2", 0.0, 1.0)
        number("epsilon", 0.0, lo_open=True)
        integer("max_iter", 1)
        integer("n_iter_no_change", 1)
        if self.batch_size != "auto":
            integer("batch_size", 1)
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be np.float32 or np.float64, got {self.dtype!r}.")

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the number of training samples "
                f"({n_samples}); it is clipped to {n_samples}.",
                UserWarning,
                stacklevel=5,
            )
        return int(min(self.batch_size, n_samples))

    # --- fitting ---------------------------------------------------------------------------------
    def _initialize(self, n_features: int, n_outputs: int) -> None:
        """A new network and fresh fitted state (first fit, or fit without warm_start)."""
        output, loss = self._output_and_loss()
        rng = self.random_state
        # An int random_state is the net's seed as it is, so `MLP(..., seed=random_state)`
        # reproduces the estimator's net bit for bit; otherwise a seed is drawn from it.
        if isinstance(rng, Integral) and not isinstance(rng, bool):
            seed = int(rng)
        else:
            seed = int(check_random_state(rng).randint(np.iinfo(np.int32).max))
        hidden = self._hidden_sizes()
        self.net_ = MLP(
            (n_features, *hidden, n_outputs),
            hidden=_ACTIVATIONS[self.activation],
            output=output,
            loss=loss,
            init="glorot",
            seed=seed,
            dtype=self.dtype,
        )
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = {"sigmoid": "logistic"}.get(output, output)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self._best_params = self.net_.params.copy()
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _fit_kwargs(self, batch_size: int, sample_weight: np.ndarray | None) -> dict[str, Any]:
        """Keyword arguments of ``MLP.fit`` beyond plain per-sample SGD (only non-defaults).

        scikit-learn adds ``alpha * W / n`` to the mean gradient of a batch of ``n`` samples;
        ``MLP.fit``'s ``alpha`` is added per update, hence ``alpha / batch_size``.
        """
        kw: dict[str, Any] = {}
        if batch_size != 1:
            kw["batch_size"] = batch_size
        if self.alpha:
            kw["alpha"] = self.alpha / batch_size
        if self.solver == "adam":
            kw.update(optimizer="adam", beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)
        elif self.momentum:
            kw.update(momentum=self.momentum, nesterov=bool(self.nesterovs_momentum))
        if sample_weight is not None:
            kw["sample_weight"] = sample_weight
        return kw

    def _run_epochs(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        incremental: bool,
    ) -> None:
        """scikit-learn's ``_fit_stochastic``: one ``net_.fit(epochs=1)`` per iteration.

        ``Y`` is the network's target (model dtype, ``(n, n_out)``), ``y`` the user's target
        (labels for the classifier), used for the validation score.
        """
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping:
            # stratified by class, except for multilabel y (as scikit-learn)
            stratify = y if (isinstance(self, ClassifierMixin) and y.ndim == 1) else None
            arrays = (X, Y, y) if sample_weight is None else (X, Y, y, sample_weight)
            split = train_test_split(
                *arrays,
                random_state=check_random_state(self.random_state),
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X, X_val, Y, _, _, y_val = split[:6]
            sample_weight, sw_val = (None, None) if sample_weight is None else split[6:]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        n_batches = -(-n_samples // batch_size)
        fit_kw = self._fit_kwargs(batch_size, sample_weight)
        if not incremental or not hasattr(self, "_lr"):
            self._lr = float(self.learning_rate_init)  # scikit-learn's new optimizer
        adaptive = self.solver == "sgd" and self.learning_rate == "adaptive"
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                self.net_.fit(X, Y, epochs=1, lr=self._lr, shuffle=self.shuffle, **fit_kw)
                self.n_iter_ += 1
                self.t_ += n_samples
                # scikit-learn's loss includes 0.5 * alpha * ||W||^2 / batch_size per batch
                # (here with the weights at the end of the epoch)
                penalty = sum(float(np.dot(w.ravel(), w.ravel())) for w in self._weights())
                loss = _last_epoch_loss(self.net_) + 0.5 * self.alpha * penalty * (
                    n_batches / n_samples
                )
                self.loss_curve_.append(loss)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
                if self.early_stopping:
                    self._update_best_validation(X_val, y_val, sw_val)
                else:
                    self._update_best_loss(loss)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = (
                        f"{what} did not improve more than tol={self.tol:f} for "
                        f"{self.n_iter_no_change} consecutive epochs."
                    )
                    if not adaptive or self._lr <= 1e-6:
                        if self.verbose:
                            print(msg + " Stopping.")
                        break
                    self._lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(msg + f" Setting learning rate to {self._lr:f}")
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                        "and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=4,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if self.early_stopping:
            self.net_.params = self._best_params  # copied into the net's buffer
        self._sync_attributes()

    def _update_best_validation(self, X_val: np.ndarray, y_val: np.ndarray, sw_val) -> None:
        score = self._validation_score(X_val, y_val, sw_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_params = self.net_.params.copy()

    def _update_best_loss(self, loss: float) -> None:
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if loss < self.best_loss_:
            self.best_loss_ = loss

    def _weights(self) -> list[np.ndarray]:
        # Views built from net_.params rather than net_.weights: the latter stop being views
        # of params once the net has been through pickle (MLP defines no __setstate__).
        return self.net_.layout.weights(self.net_.params)

    def _sync_attributes(self) -> None:
        """``coefs_``/``intercepts_``: copies of the net's parameters, in scikit-learn's layout."""
        self.coefs_ = [w.T.copy() for w in self._weights()]
        self.intercepts_ = [b.copy() for b in self.net_.layout.biases(self.net_.params)]

    def _forward(self, X: ArrayLike) -> np.ndarray:
        """Validated network outputs ``(n_samples, n_out)``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.dtype(self.dtype), order="C")
        return self.net_.predict(X)

    def _validate_fit_data(self, X, y, reset: bool, **kw) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self, X, y, reset=reset, multi_output=True, dtype=np.dtype(self.dtype), order="C", **kw
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_DOC_COMMON = """
    The parameters have scikit-learn's names and meaning; two defaults differ, because fastmlp is
    about online SGD: ``solver="sgd"`` (scikit-learn: ``"adam"``) and ``batch_size=1``
    (scikit-learn: ``"auto"``). ``solver="lbfgs"`` is refused. ``dtype`` (float64 or float32) is
    the dtype of the parameters and of all arithmetic.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Widths of the hidden layers (``()``: no hidden layer).
    activation : {"relu", "tanh", "logistic", "identity"}, default "relu"
        Hidden activation (``logistic`` is fastmlp's ``sigmoid``).
    solver : {"sgd", "adam"}, default "sgd"
    alpha : float, default 1e-4
        L2 penalty (scikit-learn's: ``alpha * W / batch_size`` added to each update's gradient).
    batch_size : int or "auto", default 1
        Samples per update; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        Schedule of the SGD learning rate (ignored by Adam), updated after each epoch.
    learning_rate_init : float, default 0.001
    power_t : float, default 0.5
        Exponent of ``invscaling``: ``learning_rate_init / (t_ + 1) ** power_t``.
    max_iter : int, default 200
        Maximum number of epochs.
    shuffle : bool, default True
        Visit the samples in a new random order each epoch.
    random_state : int, RandomState or None, default None
        An int is the seed of ``net_`` (initial weights, shuffling) as is, and also seeds the
        ``early_stopping`` split; otherwise a seed is drawn from it.
    tol, n_iter_no_change : float, int, defaults 1e-4, 10
        Stop (or, ``adaptive``, divide the learning rate by 5) when the training loss, or the
        validation score, has not improved by ``tol`` for more than ``n_iter_no_change``
        epochs.
    verbose, warm_start : bool, default False
        Print the loss per epoch; continue from the current ``net_`` in ``fit``.
    momentum, nesterovs_momentum : float, bool, defaults 0.9, True
        SGD momentum (scikit-learn's form ``v = momentum v - lr g``), Nesterov's variant.
    early_stopping, validation_fraction : bool, float, defaults False, 0.1
        Hold out this fraction of the training data (stratified for classes) and stop on its
        score (accuracy or R^2); the best epoch's parameters are restored.
    beta_1, beta_2, epsilon : float, defaults 0.9, 0.999, 1e-8
        Adam's parameters.
    dtype : np.float64 or np.float32, default np.float64

    Training runs the epoch loop of scikit-learn (stopping when the training loss, or with
    ``early_stopping`` the validation score, has not improved by ``tol`` for
    ``n_iter_no_change`` epochs; ``learning_rate="adaptive"`` divides the rate by 5 instead,
    down to 1e-6; ``ConvergenceWarning`` when ``max_iter`` is reached), one ``net_.fit(...,
    epochs=1)`` per iteration. ``alpha`` is scikit-learn's L2 penalty: ``alpha * W / batch_size``
    is added to each update's gradient. Differences from scikit-learn: weights are
    Glorot-initialised and biases start at 0; the momentum/Adam state lives in ``net_`` and is
    kept across ``warm_start`` fits (scikit-learn restarts it); ``sample_weight`` multiplies
    each sample's gradient, and a batch's gradient is divided by its number of rows, as in
    ``MLP.fit`` (scikit-learn divides by the batch's weight sum, which with ``batch_size=1``
    cancels the weight); the L2 term of ``loss_curve_`` uses the weights at the end of each
    epoch.

    Attributes
    ----------
    net_ : fastmlp.MLP
        The underlying network.
    coefs_ : list of ndarray (n_in, n_out)
        Weights per layer in scikit-learn's layout: transposed COPIES of ``net_.weights[l]``
        (which are ``(n_out, n_in)``), refreshed after each ``fit``/``partial_fit``; writing
        to them does not change the model.
    intercepts_ : list of ndarray (n_out,)
        Copies of ``net_.biases``.
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    t_ : int
        Training samples seen so far (``n_iter_ * n_samples`` summed over calls).
    loss_curve_ : list of float
        Training loss per epoch (mean per-sample loss, taken before each update, plus the L2
        term).
    best_loss_ : float or None
        Lowest ``loss_curve_`` entry; None with ``early_stopping``.
    validation_scores_ : list of float or None
        Validation score per epoch with ``early_stopping`` (else None); the best epoch's
        parameters are restored at the end of ``fit``.
    best_validation_score_ : float or None
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation, in scikit-learn's names.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastmlp (online SGD in Numba kernels).

    Multiclass: softmax output with cross-entropy; binary: one sigmoid unit with binary
    cross-entropy; multilabel (indicator ``y``): one sigmoid unit per label. Any labels work
    (``classes_``).
    """

    __doc__ = (
        (__doc__ or "")
        + _DOC_COMMON
        + """    classes_ : ndarray
        Class labels (multilabel: ``arange(n_labels)``).

    Examples
    --------
    >>> from fastmlp.datasets import load_digits
    >>> from fastmlp.sklearn import MLPClassifier
    >>> X, y = load_digits()
    >>> clf = MLPClassifier((32,), activation="tanh", learning_rate_init=0.01, tol=1e-2,
    ...                     n_iter_no_change=2, random_state=0).fit(X, y)
    >>> clf.n_iter_ < clf.max_iter, clf.score(X, y) > 0.95
    (True, True)
    """
    )

    def _output_and_loss(self) -> tuple[str, str]:
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "cross_entropy"
        return "sigmoid", "binary_cross_entropy"

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> float:
        return float(accuracy_score(y, self._labels(self.net_.predict(X)), sample_weight=sw))

    def _labels(self, out: np.ndarray) -> np.ndarray:
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def _fit(self, X, y, sample_weight, incremental: bool) -> MLPClassifier:
        self._check_params()
        first = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        X, y = self._validate_fit_data(X, y, reset=first)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = np.unique(y) if y.ndim == 1 else np.arange(y.shape[1])
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        Y = np.ascontiguousarray(self._label_binarizer.transform(y), dtype=X.dtype)
        if first:
            self._initialize(X.shape[1], Y.shape[1])
        self._run_epochs(X, Y, y, sample_weight, incremental)
        return self

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """Fit to ``X`` (n_samples, n_features) and labels ``y`` (n_samples,), or a multilabel
        indicator matrix (n_samples, n_labels). Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ):
        """One epoch over ``(X, y)``, continuing from the current state.

        ``classes`` (all labels that can ever occur) is required on the first call, and must
        not change afterwards; ``y`` need not contain every class. Returns ``self``.
        """
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if not hasattr(self, "classes_"):
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer = LabelBinarizer().fit(y)
            elif classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            else:
                self._label_binarizer = LabelBinarizer().fit(np.unique(classes))
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, np.unique(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on the first call to partial_fit "
                f"(`classes_={self.classes_!r}`)."
            )
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted labels ``(n_samples,)`` (multilabel: indicator ``(n_samples, n_labels)``)."""
        return self._labels(self._forward(X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of
        ``classes_`` (multilabel: each label's probability)."""
        out = self._forward(X)
        if self.n_outputs_ == 1:
            p = out[:, 0]
            return np.column_stack([1 - p, p])
        return out

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastmlp (online SGD in Numba kernels).

    Identity output with the squared error (fastmlp's ``mse``: half the squared error summed
    over outputs, so gradients match scikit-learn's; ``loss_curve_`` is ``n_outputs`` times
    scikit-learn's, which averages over outputs). ``y`` may have several columns; a 1-D ``y``
    gives 1-D predictions.
    """

    __doc__ = (
        (__doc__ or "")
        + _DOC_COMMON
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> reg = MLPRegressor((16,), activation="tanh", learning_rate_init=0.01, max_iter=50,
    ...                    tol=1e-3, random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.score(X, X[:, 0] ** 2) > 0.9
    True
    """
    )

    def _output_and_loss(self) -> tuple[str, str]:
        return "identity", "mse"

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> float:
        return float(r2_score(y, self._shape_output(self.net_.predict(X)), sample_weight=sw))

    def _shape_output(self, out: np.ndarray) -> np.ndarray:
        return out[:, 0] if out.shape[1] == 1 else out

    def _fit(self, X, y, sample_weight, incremental: bool) -> MLPRegressor:
        self._check_params()
        first = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        X, y = self._validate_fit_data(X, y, reset=first, y_numeric=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        Y = np.ascontiguousarray(y.reshape(len(y), -1), dtype=X.dtype)
        if first:
            self._initialize(X.shape[1], Y.shape[1])
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but the model has {self.n_outputs_}.")
        self._run_epochs(X, Y, y, sample_weight, incremental)
        return self

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """Fit to ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples,
        n_outputs). Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """One epoch over ``(X, y)``, continuing from the current state. Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions ``(n_samples,)``, or ``(n_samples, n_outputs)`` for multi-output ``y``."""
        return self._shape_output(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
