"""One row at a time: ``partial_fit``, ``predict`` and ``predict_proba`` of a single row in
microseconds, with scikit-learn's semantics.

scikit-learn's input validation (``validate_data``, ``type_of_target``, ``LabelBinarizer``)
costs about a millisecond per call whatever the batch size, a thousand times the update of one
row. A fitted estimator keeps a ``RowPath``: what it needs to recognise a row it can take as it
is (a C-contiguous ``(1, n_features_in_)`` ndarray of the model's dtype, finite; a label it
knows; estimator parameters unchanged since the last full validation) and the network targets
of its labels. Such a row skips the general validation and runs the same update through
``fastmlp._streaming.fit_row``; anything else (a DataFrame, a list, a new label, a NaN, changed
parameters, sample weights) takes the general path, which validates, raises scikit-learn's
errors and warnings, and rebuilds the ``RowPath``. Both paths give the same model, bit for bit
(tested).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _kernels as K
from .. import _streaming, optim

if TYPE_CHECKING:
    from ._base import _BaseMLP

__all__ = ["RowPath", "params_key"]


def params_key(est: _BaseMLP) -> tuple:
    """The estimator parameters a one-row ``partial_fit`` depends on, as they are now."""
    return (
        est.solver, est.learning_rate, est.learning_rate_init, est.alpha, est.momentum,
        est.nesterovs_momentum, est.beta_1, est.beta_2, est.epsilon, est.batch_size,
        est.power_t, est.shuffle, est.dtype, est.early_stopping, est.n_iter_no_change, est.tol,
        est.verbose, est.max_iter, getattr(est, "normalize_y", None),
    )  # fmt: skip


class RowPath:
    """What a fitted estimator needs to take one row without the general validation.

    Built by ``RowPath.of`` after each successful ``fit``/``partial_fit``; ``None`` where no
    fast path applies (fitted on a DataFrame, whose feature names every call must check; a
    multilabel or multi-output target; ``verbose``).
    """

    __slots__ = (
        "key", "dtype", "dtype_param", "x_shape", "item", "targets", "classes", "binary",
        "classes_arg", "target_row", "scaler", "settings", "settings_lr", "kw", "adaptive",
    )  # fmt: skip

    def __init__(self, est: _BaseMLP) -> None:
        net = est.net_
        self.key = params_key(est)
        self.dtype, self.dtype_param = net.dtype, est.dtype
        self.x_shape, self.item = (1, net.layout.n_in), net.dtype.itemsize
        self.classes = getattr(est, "classes_", None)
        self.binary = est.n_outputs_ == 1
        self.targets: dict = {}
        if self.classes is not None:  # the network's target row of each label
            rows = np.eye(2 if self.binary else est.n_outputs_, dtype=net.dtype)
            for k, label in enumerate(self.classes):
                row = rows[k, 1:] if self.binary else rows[k]
                self.targets[label] = np.ascontiguousarray(row.reshape(1, -1))
        self.classes_arg = None  # the last `classes` partial_fit accepted (by identity)
        self.target_row = np.zeros((1, 1), net.dtype)  # a one-output regressor's target
        self.scaler = getattr(est, "_target_scaler", None)
        self.kw = est._fit_kwargs(1, None)
        self.adaptive = est.solver == "sgd" and est.learning_rate == "adaptive"
        self.settings, self.settings_lr = None, math.nan

    @classmethod
    def of(cls, est: _BaseMLP) -> RowPath | None:
        """The estimator's one-row path, or None where none applies."""
        if est.verbose or hasattr(est, "feature_names_in_"):
            return None
        if hasattr(est, "classes_"):
            if est._label_binarizer.y_type_ not in ("binary", "multiclass"):
                return None
        elif est.n_outputs_ != 1:
            return None
        return cls(est)

    def takes(self, X: object) -> bool:
        """Whether ``X`` is one finite C-contiguous row of the model's dtype."""
        return (
            type(X) is np.ndarray and X.dtype is self.dtype and X.shape == self.x_shape
            and X.strides[1] == self.item and not K.count_nonfinite(X[0])
        )  # fmt: skip

    def label_target(self, y: object) -> np.ndarray | None:
        """The network's target row of a one-label ``y``, or None (not a known label)."""
        ty = type(y)
        if ty is np.ndarray:
            if y.shape != (1,):
                return None
            label = y[0]
        elif ty is list and len(y) == 1:
            label = y[0]
        else:
            return None
        try:
            return self.targets.get(label)
        except TypeError:  # unhashable
            return None

    def label_of(self, out: np.ndarray) -> np.ndarray:
        """The label ``(1,)`` of one row's network outputs ``out`` ``(1, n_outputs_)``, as
        ``LabelBinarizer.inverse_transform`` gives it (binary: ``> 0.5``; else the argmax)."""
        k = int(out[0, 0] > 0.5) if self.binary else int(out[0].argmax())
        return self.classes[k : k + 1].copy()

    def regression_target(self, y: object) -> np.ndarray | None:
        """The network's target row of a one-value ``y`` (standardised), or None. Merges the
        value into the target statistics, so call it last, just before the update."""
        if type(y) is np.ndarray and y.shape == (1,) and y.dtype.kind in "fiu":
            value = float(y[0])
        elif type(y) is list and len(y) == 1 and type(y[0]) in (float, int):
            value = float(y[0])
        else:
            return None
        if not math.isfinite(value):
            return None
        scaler = self.scaler
        if self.key[-1]:  # normalize_y (as the general path: merge, then standardise)
            if not scaler.update_one(value):  # the scaling would change: the general path
                return None
            value = (value - float(scaler.mean_[0])) / float(scaler.scale_[0])
        self.target_row[0, 0] = value
        return self.target_row

    def settings_for(self, lr: float) -> tuple[optim.Settings, tuple[np.ndarray, np.ndarray]]:
        """``MLP.fit``'s settings of one epoch at ``lr`` and their kernel arrays (cached: lr
        changes seldom)."""
        if lr != self.settings_lr:
            settings = optim.settings(lr=lr, **self.kw)
            self.settings = settings, settings.kernel_arrays(self.dtype, lr)
            self.settings_lr = lr
        return self.settings

    def fit(self, est: _BaseMLP, X: np.ndarray, Y: np.ndarray) -> None:
        """One epoch of ``partial_fit`` on the row ``X`` with network target ``Y``."""
        lr = est._lr
        settings, arrays = self.settings_for(lr)
        loss = _streaming.fit_row(est.net_, X, Y, settings, lr, arrays)
        est.n_iter_ = 0  # partial_fit: one epoch of its own
        est._end_epoch(loss, 1, 1, self.adaptive)


def partial_fit_row(est: _BaseMLP, X: object, y: object, classes: object) -> bool:
    """``partial_fit(X, y, classes)`` of one row by its ``RowPath``; False (nothing done) when
    the general path must take it."""
    path = est.__dict__.get("_row_path")
    if path is None or path.key != params_key(est) or not path.takes(X):
        return False
    if path.classes is not None:
        if classes is not None and classes is not path.classes_arg:
            return False
        Y = path.label_target(y)
    else:
        Y = path.regression_target(y)
    if Y is None:
        return False
    path.fit(est, X, Y)
    return True


def forward_row(est: _BaseMLP, X: object) -> np.ndarray | None:
    """The network's outputs ``(1, n_outputs_)`` of one row by the ``RowPath``, or None."""
    path = est.__dict__.get("_row_path")
    if path is None or est.dtype is not path.dtype_param or not path.takes(X):
        return None
    return _streaming.predict_row(est.net_, X)  # takes() checked what MLP.predict would
