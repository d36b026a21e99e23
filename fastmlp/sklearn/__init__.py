"""scikit-learn estimators backed by ``fastmlp.MLP``: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` (same
parameter names and meaning, same fitted attributes, same stopping rule), trained by fastmlp's
Numba kernels. scikit-learn is an optional dependency, needed only by this package::

    pip install "fastmlp[sklearn]"

    from fastmlp.sklearn import MLPClassifier
"""

# The estimators are defined here, not in a submodule, so that their __module__ (the class path
# a pickle records) is "fastmlp.sklearn"; the shared base class and docstring sections are in
# _base and _docs, and every scikit-learn import goes through _deps.

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _docs, _online
from ._base import _BaseMLP
from ._deps import (
    ClassifierMixin,
    LabelBinarizer,
    RegressorMixin,
    _check_sample_weight,
    accuracy_score,
    check_classification_targets,
    r2_score,
    type_of_target,
)
from ._target import TargetScaler

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastmlp (online SGD in Numba kernels).

    Multiclass: softmax output with cross-entropy; binary: one sigmoid unit with binary
    cross-entropy; multilabel (indicator ``y``): one sigmoid unit per label. Any labels work
    (``classes_``).
    """

    __doc__ = (
        (__doc__ or "")
        + _docs.PARAMETERS
        + _docs.ATTRIBUTES
        + """    classes_ : ndarray of shape (n_classes,)
        Class labels (multilabel: ``arange(n_labels)``).
"""
        + _docs.NOTES
        + """
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
        """Labels ``(n_samples,)`` (multilabel: ``(n_samples, n_labels)``) of the network's
        outputs ``out`` ``(n_samples, n_outputs_)``."""
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

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPClassifier:
        """Train on ``(X, y)``: a new network, or with ``warm_start`` the current one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Factor of each sample's gradient; None weighs every sample 1.

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multilabel indicator matrix; need not contain every class.
        classes : array-like of shape (n_classes,), default=None
            All the labels that can ever occur: required on the first call (except for a
            multilabel ``y``), and unchangeable afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Factor of each sample's gradient; None weighs every sample 1.

        Returns
        -------
        self : MLPClassifier
            The updated estimator.
        """
        if sample_weight is None and _online.partial_fit_row(self, X, y, classes):
            return self  # one row of a known label: no general validation (see _online)
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
        self._fit(X, y, sample_weight, incremental=True)
        if classes is not None and self._row_path is not None:
            self._row_path.classes_arg = classes  # checked: the same object passes next time
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels (multilabel: an indicator matrix).
        """
        out = self._forward(X)
        path = self.__dict__.get("_row_path")
        if out.shape[0] == 1 and path is not None:
            return path.label_of(out)  # one row: its label without LabelBinarizer's overhead
        return self._labels(out)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_`` (multilabel: each label's
            probability, ``(n_samples, n_labels)``), in the model's dtype.
        """
        out = self._forward(X)
        if self.n_outputs_ == 1:
            p = out[:, 0]
            return np.column_stack([1 - p, p])
        return out

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
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
    gives 1-D predictions. Targets are standardised for training (``normalize_y``).
    """

    __doc__ = (
        (__doc__ or "")
        + _docs.PARAMETERS
        + _docs.REGRESSOR_PARAMETERS
        + _docs.ATTRIBUTES
        + _docs.NOTES
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
        normalize_y: bool = True,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, dtype=dtype,
        )  # fmt: skip
        self.normalize_y = normalize_y

    def _output_and_loss(self) -> tuple[str, str]:
        return "identity", "mse"

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.normalize_y, bool | np.bool_):
            raise TypeError(f"normalize_y must be a bool, got {self.normalize_y!r}.")

    def _scaler(self) -> TargetScaler:
        """The target scaling (an identity one for a net built elsewhere: ``from_sklearn``)."""
        scaler = self.__dict__.get("_target_scaler")
        if scaler is None or len(scaler.mean_) != self.n_outputs_:
            scaler = self._target_scaler = TargetScaler(self.n_outputs_, self.net_.dtype)
        return scaler

    def _output_scaling(self) -> tuple[np.ndarray, np.ndarray] | None:
        scaler = self._scaler()
        return None if scaler.identity else (scaler.mean_, scaler.scale_)

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> float:
        out = self._scaler().inverse(self.net_.predict(X))
        return float(r2_score(y, self._shape_output(out), sample_weight=sw))

    def _shape_output(self, out: np.ndarray) -> np.ndarray:
        """The network's outputs ``(n_samples, n_outputs_)``, made 1-D for one output."""
        return out[:, 0] if out.shape[1] == 1 else out

    def _fit(self, X, y, sample_weight, incremental: bool) -> MLPRegressor:
        self._check_params()
        first = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        X, y = self._validate_fit_data(X, y, reset=first, y_numeric=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)  # scaled from y's own values
        if first:
            self._initialize(X.shape[1], Y.shape[1])
            self._target_scaler = TargetScaler(Y.shape[1], self.net_.dtype)
            self._target_scaler.reset(Y, self.normalize_y)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but the model has {self.n_outputs_}.")
        else:
            self._scaler().update(Y, self.net_, [self._best_params], self.normalize_y)
        Y = np.ascontiguousarray(self._scaler().transform(Y), dtype=X.dtype)
        self._run_epochs(X, Y, y, sample_weight, incremental)
        return self

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPRegressor:
        """Train on ``(X, y)``: a new network, or with ``warm_start`` the current one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Factor of each sample's gradient; None weighs every sample 1.

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPRegressor:
        """One epoch over ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, with as many outputs as on the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Factor of each sample's gradient; None weighs every sample 1.

        Returns
        -------
        self : MLPRegressor
            The updated estimator.
        """
        if sample_weight is None and _online.partial_fit_row(self, X, y, None):
            return self  # one finite row: no general validation (see _online)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions (1-D for a single output), in the model's dtype.
        """
        out = self._forward(X)  # checks that the estimator is fitted
        return self._shape_output(self._scaler().inverse(out))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
