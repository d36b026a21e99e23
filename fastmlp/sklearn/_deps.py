"""The scikit-learn names ``fastmlp.sklearn`` uses, imported in this one module: every module of
the package imports them from here, so without scikit-learn (>= 1.6) the first import of any of
them fails with the message that says how to install it."""

from __future__ import annotations

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

__all__ = [
    "BaseEstimator",
    "ClassifierMixin",
    "ConvergenceWarning",
    "LabelBinarizer",
    "RegressorMixin",
    "_check_sample_weight",
    "accuracy_score",
    "check_classification_targets",
    "check_is_fitted",
    "check_random_state",
    "column_or_1d",
    "r2_score",
    "train_test_split",
    "type_of_target",
    "validate_data",
]
