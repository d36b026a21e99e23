"""``_BaseMLP``: the parameters, their validation, the epoch loop and the stopping rule that
``MLPClassifier`` and ``MLPRegressor`` share."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import _kernels as K
from .. import _validation as V
from ..model import MLP
from ..optim import ADAPTIVE_DIVISOR, ADAPTIVE_MIN_LR, OPTIMIZERS
from . import _online
from ._deps import (
    BaseEstimator,
    ClassifierMixin,
    ConvergenceWarning,
    check_is_fitted,
    check_random_state,
    column_or_1d,
    train_test_split,
    validate_data,
)

# scikit-learn's activation names -> fastmlp's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# scikit-learn's learning-rate schedules. The estimator applies them itself, epoch by epoch
# (scikit-learn's rule), rather than through MLP.fit's ``schedule``.
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


class _BaseMLP(BaseEstimator):
    """The parameters, the epoch loop and the stopping rule shared by both estimators.

    Subclasses provide ``_output_and_loss``, ``_validation_score`` and ``_fit``; see
    ``MLPClassifier`` for the parameters.
    """

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
        """``(output, loss)`` of the network: fastmlp's names of its output activation and loss."""
        raise NotImplementedError

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> float:
        """Score (higher is better) of the current network on the held-out ``X``
        ``(n_val, n_features)``, ``y`` (the user's targets) and weights ``sw`` ``(n_val,)``."""
        raise NotImplementedError

    # --- parameters ------------------------------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        """``hidden_layer_sizes`` as a list of ints (an int is one hidden layer)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = [sizes]
        else:
            try:
                sizes = list(sizes)
            except TypeError:
                raise TypeError(
                    f"hidden_layer_sizes must be an int or a sequence of ints > 0, got {sizes!r}."
                ) from None
        if any(isinstance(s, bool) or not isinstance(s, Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        """Validate the parameters (in ``fit``, as scikit-learn does; never in ``__init__``).

        Raises
        ------
        ValueError
            A value outside the accepted ones.
        TypeError
            A value of the wrong type (a string for a number, a float for an int, ...).
        """
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not supported: fastmlp trains by stochastic gradient descent "
                "only (solver='sgd' or 'adam'); use sklearn.neural_network for L-BFGS."
            )
        self._hidden_sizes()
        V.check_choice("activation", self.activation, tuple(_ACTIVATIONS))
        V.check_choice("solver", self.solver, OPTIMIZERS)
        V.check_choice("learning_rate", self.learning_rate, _LEARNING_RATES)
        V.check_non_negative("alpha", self.alpha)
        V.check_positive("learning_rate_init", self.learning_rate_init)
        V.check_non_negative("power_t", self.power_t)
        V.check_non_negative("tol", self.tol)
        V.check_real("momentum", self.momentum, 0.0, 1.0, False, False)
        V.check_real("validation_fraction", self.validation_fraction, 0.0, 1.0, False, False)
        if self.early_stopping and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "validation_fraction must be in (0, 1) with early_stopping=True, got "
                f"{self.validation_fraction!r}."
            )
        V.check_real("beta_1", self.beta_1, 0.0, 1.0, False, False)
        V.check_real("beta_2", self.beta_2, 0.0, 1.0, False, False)
        V.check_positive("epsilon", self.epsilon)
        V.check_positive_int("max_iter", self.max_iter)
        V.check_positive_int("n_iter_no_change", self.n_iter_no_change)
        if not isinstance(self.batch_size, str):
            V.check_positive_int("batch_size", self.batch_size)
        elif self.batch_size != "auto":
            raise ValueError(f"batch_size must be an int >= 1 or 'auto', got {self.batch_size!r}.")
        V.check_dtype(self.dtype)

    def _batch_size(self, n_samples: int) -> int:
        """Samples per update for ``n_samples`` training samples (``batch_size`` resolved)."""
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

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated training samples, in the model's dtype.
        Y : ndarray of shape (n_samples, n_outputs)
            The network's targets, in the model's dtype.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The user's targets (labels for the classifier), for the validation score.
        sample_weight : ndarray of shape (n_samples,) or None
        incremental : bool
            ``partial_fit``: one epoch, continuing the learning rate of the previous call.
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
                validation = (X_val, y_val, sw_val) if self.early_stopping else None
                loss = float(self.net_.history_["loss"][-1])
                if self._end_epoch(loss, n_samples, n_batches, adaptive, validation):
                    break
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

    def _end_epoch(
        self, loss: float, n_samples: int, n_batches: int, adaptive: bool, validation=None
    ) -> bool:
        """scikit-learn's bookkeeping after an epoch of mean loss ``loss`` over ``n_samples``
        in ``n_batches``: counters, ``loss_curve_``, the best score, the schedule. Returns
        True when training is to stop. (Shared with the one-row path, ``_online``.)"""
        self.n_iter_ += 1
        self.t_ += n_samples
        if self.alpha:  # scikit-learn's loss adds 0.5 * alpha * ||W||^2 / batch_size per batch
            penalty = K.sum_sq_weights(self.net_._params, self.net_._args.meta)
            loss += 0.5 * self.alpha * penalty * (n_batches / n_samples)
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if validation is not None:
            self._update_best_validation(*validation)
        else:
            self._update_best_loss(loss)
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
        return self._stop_or_adapt_lr(adaptive)

    def _stop_or_adapt_lr(self, adaptive: bool) -> bool:
        """scikit-learn's rule at the end of an epoch; returns True when training is to stop.

        After more than ``n_iter_no_change`` epochs without improvement: with the ``"adaptive"``
        schedule (``adaptive``) and a learning rate above ``ADAPTIVE_MIN_LR``, divide the rate
        by ``ADAPTIVE_DIVISOR`` and start counting again; otherwise stop.
        """
        if self._no_improvement_count > self.n_iter_no_change:
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = (
                f"{what} did not improve more than tol={self.tol:f} for "
                f"{self.n_iter_no_change} consecutive epochs."
            )
            if not adaptive or self._lr <= ADAPTIVE_MIN_LR:
                if self.verbose:
                    print(msg + " Stopping.")
                return True
            self._lr /= ADAPTIVE_DIVISOR
            self._no_improvement_count = 0
            if self.verbose:
                print(msg + f" Setting learning rate to {self._lr:f}")
        return False

    def _update_best_validation(self, X_val: np.ndarray, y_val: np.ndarray, sw_val) -> None:
        """Record the validation score of the epoch; keep the best epoch's parameters."""
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
        """Count the epoch as an improvement of the training loss or not."""
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if loss < self.best_loss_:
            self.best_loss_ = loss

    def _sync_attributes(self) -> None:
        """After a fit: the one-row path for the next calls (``_online.RowPath``)."""
        self._row_path = _online.RowPath.of(self)

    def _output_scaling(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, scale)`` mapping the network's outputs to predictions, or None."""
        return None

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices ``(n_in, n_out)`` per layer, scikit-learn's layout (new copies)."""
        check_is_fitted(self)
        coefs = [w.T.copy() for w in self.net_.weights]
        scaling = self._output_scaling()
        if scaling is not None:
            coefs[-1] *= scaling[1].astype(coefs[-1].dtype)
        return coefs

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors ``(n_out,)`` per layer (new copies)."""
        check_is_fitted(self)
        intercepts = [b.copy() for b in self.net_.biases]
        scaling = self._output_scaling()
        if scaling is not None:
            mean, scale = (a.astype(intercepts[-1].dtype) for a in scaling)
            intercepts[-1] = intercepts[-1] * scale + mean
        return intercepts

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: BaseEstimator may return __dict__ itself
        state.pop("_row_path", None)  # rebuilt on unpickling
        if "_target_scaler" in state:  # as a dict: no private class path in the pickle
            state["_target_scaler"] = state["_target_scaler"].__getstate__()
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("_target_scaler"), dict):
            from ._target import TargetScaler

            scaler = TargetScaler.__new__(TargetScaler)
            scaler.__setstate__(state["_target_scaler"])
            state = {**state, "_target_scaler": scaler}
        super().__setstate__(state)
        if "net_" in state:
            self._sync_attributes()

    def _forward(self, X: ArrayLike) -> np.ndarray:
        """Network outputs ``(n_samples, n_outputs_)`` of ``X`` ``(n_samples, n_features_in_)``,
        validated against the fitted estimator."""
        out = _online.forward_row(self, X)  # one row as it is: no general validation
        if out is not None:
            return out
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.dtype(self.dtype), order="C")
        return self.net_.predict(X)

    def _validate_fit_data(self, X, y, reset: bool, **kw) -> tuple[np.ndarray, np.ndarray]:
        """``X`` ``(n_samples, n_features)`` C-contiguous in the model's dtype, and ``y``
        ``(n_samples,)`` or ``(n_samples, n_outputs)`` (a one-column ``y`` made 1-D, with
        scikit-learn's ``DataConversionWarning``)."""
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

    # --- conversion (fastmlp/sklearn/_convert.py) ------------------------------------------------
    def to_sklearn(self):
        """A fitted ``sklearn.neural_network`` MLP of the same class, with these weights.

        Returns
        -------
        sklearn.neural_network.MLPClassifier or MLPRegressor
            Predicts as this estimator does (to rounding); hyperparameters, ``classes_`` and
            the training curve are copied, the optimiser's state is not.
        """
        from ._convert import to_sklearn

        return to_sklearn(self)

    @classmethod
    def from_sklearn(cls, sk_model, dtype=None):
        """Build a fitted estimator from a fitted ``sklearn.neural_network`` MLP.

        Parameters
        ----------
        sk_model : sklearn.neural_network.MLPClassifier or MLPRegressor
            Fitted, of the same kind as ``cls`` (a ``loss="poisson"`` regressor is refused).
        dtype : float32 or float64 or None, default None
            The estimator's dtype; ``None``: that of ``sk_model.coefs_``.

        Returns
        -------
        MLPClassifier or MLPRegressor
            Predicts as ``sk_model`` does (to rounding); ``partial_fit`` continues from it.
        """
        from ._convert import from_sklearn

        return from_sklearn(cls, sk_model, dtype)
