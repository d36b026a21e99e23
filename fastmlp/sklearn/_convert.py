"""Conversion between ``fastmlp.sklearn`` estimators and scikit-learn's fitted MLPs, with the
same weights: ``to_sklearn(est)`` and ``from_sklearn(cls, sk_model)``, behind the estimators'
``to_sklearn()`` and ``from_sklearn()``.

What converts: every fitted ``fastmlp.sklearn`` estimator (its activations, outputs and losses
are scikit-learn's own), and every fitted scikit-learn MLP except a ``loss="poisson"`` regressor
(an ``exp`` output fastmlp does not have). Copied: the weights (``coefs_`` are the transposes of
fastmlp's ``(n_out, n_in)`` weights; an ``MLPRegressor``'s target standardisation is folded
into the output layer, to rounding), the shared hyperparameters (``get_params``; ``max_fun``,
``loss`` and ``dtype`` exist on one side only), ``classes_`` and the label binarizer,
``n_features_in_``/``feature_names_in_``, ``n_iter_``, ``t_``, ``loss_curve_``, ``best_loss_``,
the validation scores. Not copied: the optimiser's state (momentum velocities, Adam moments),
so training continued on the other side starts its optimiser afresh. scikit-learn's
``MLPRegressor`` reports the squared error averaged over outputs, fastmlp's summed over them:
``loss_curve_`` and ``best_loss_`` are converted by the factor ``n_outputs_`` (they stay on
the standardised targets a fastmlp regressor trained on). A scikit-learn regressor becomes a
fastmlp one whose target scaling starts as the identity.

scikit-learn's MLP classes are imported here rather than in ``_deps``: this module is imported
only by ``to_sklearn``/``from_sklearn``, after ``_deps`` has checked that scikit-learn is there.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from ._deps import ClassifierMixin, check_is_fitted

# fastmlp's activation names -> scikit-learn's (the estimators use scikit-learn's names already)
_SK_ACTIVATION = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
_SK_OUTPUT = {"identity": "identity", "sigmoid": "logistic", "softmax": "softmax"}
# copied from the one side's fitted state to the other's, where present
_STATE = ("n_iter_", "t_", "validation_scores_", "best_validation_score_", "_no_improvement_count")


def _shared_params(source: Any, target_cls: type) -> dict[str, Any]:
    """``source``'s hyperparameters that ``target_cls`` also takes (deep copies)."""
    names = target_cls._get_param_names()
    return {k: copy.deepcopy(v) for k, v in source.get_params(deep=False).items() if k in names}


def _copy_state(source: Any, target: Any, loss_factor: float) -> None:
    """Copy the training state attributes present on ``source``; losses times ``loss_factor``."""
    for name in _STATE:
        if hasattr(source, name):
            value = getattr(source, name)
            setattr(target, name, list(value) if isinstance(value, list) else value)
    if hasattr(source, "loss_curve_"):
        target.loss_curve_ = [float(v) * loss_factor for v in source.loss_curve_]
    best = getattr(source, "best_loss_", None)
    if best is not None:
        target.best_loss_ = float(best) * loss_factor
    for name in ("n_features_in_", "feature_names_in_"):
        if hasattr(source, name):
            setattr(target, name, copy.copy(getattr(source, name)))


def to_sklearn(est: Any) -> SkMLPClassifier | SkMLPRegressor:
    """A fitted scikit-learn ``MLPClassifier``/``MLPRegressor`` with ``est``'s weights."""
    check_is_fitted(est)
    net = est.net_
    classifier = isinstance(est, ClassifierMixin)
    hidden = set(net.hidden)
    if len(hidden) > 1:
        raise ValueError(
            "scikit-learn's MLPs have one activation for all hidden layers; this network has "
            f"{list(net.hidden)}."
        )
    if hidden - set(_SK_ACTIVATION):
        raise ValueError(
            f"scikit-learn's MLPs have no {hidden.pop()!r} activation; they have "
            f"{sorted(_SK_ACTIVATION.values())}."
        )
    expected = est._output_and_loss()[0]
    if net.output != expected:  # only if net_ was replaced by hand
        raise ValueError(
            f"this {type(est).__name__} needs a {expected!r} output to convert; its net_ has "
            f"{net.output!r}."
        )
    sk_cls = SkMLPClassifier if classifier else SkMLPRegressor
    sk = sk_cls(**_shared_params(est, sk_cls))
    if net.hidden:
        sk.activation = _SK_ACTIVATION[net.hidden[0]]
    # the estimator's coefs_/intercepts_: new copies, with a regressor's target scaling (if
    # any) folded into the output layer, W * scale and b * scale + mean
    sk.coefs_ = [np.array(c) for c in est.coefs_]
    sk.intercepts_ = [np.array(b) for b in est.intercepts_]
    sk.n_layers_ = net.layout.n_layers + 1
    sk.n_outputs_ = net.layout.n_out
    sk.out_activation_ = _SK_OUTPUT[net.output]
    if classifier:
        sk._label_binarizer = copy.deepcopy(est._label_binarizer)
        sk.classes_ = sk._label_binarizer.classes_
    _copy_state(est, sk, 1.0 if classifier else 1.0 / net.layout.n_out)
    if getattr(sk, "loss_curve_", None):
        sk.loss_ = sk.loss_curve_[-1]
    sk._best_coefs = [c.copy() for c in sk.coefs_]
    sk._best_intercepts = [c.copy() for c in sk.intercepts_]
    return sk


def from_sklearn(cls: type, sk_model: Any, dtype: Any = None) -> Any:
    """A fitted ``cls`` (a ``fastmlp.sklearn`` estimator class) with ``sk_model``'s weights."""
    classifier = issubclass(cls, ClassifierMixin)
    sk_cls = SkMLPClassifier if classifier else SkMLPRegressor
    if not isinstance(sk_model, sk_cls):
        raise TypeError(
            f"sk_model must be a fitted sklearn.neural_network.{sk_cls.__name__} to build a "
            f"fastmlp {cls.__name__}, got {type(sk_model).__name__}."
        )
    check_is_fitted(sk_model)
    if sk_model.activation not in _SK_ACTIVATION.values():
        raise ValueError(
            f"sk_model has activation={sk_model.activation!r}, which fastmlp's {cls.__name__} "
            f"does not have; it has {sorted(_SK_ACTIVATION.values())}."
        )
    coefs, intercepts = sk_model.coefs_, sk_model.intercepts_
    if dtype is None:
        dt = np.asarray(coefs[0]).dtype
        dtype = dt.type if dt in (np.float32, np.float64) else np.float64
    params = _shared_params(sk_model, cls)
    params["hidden_layer_sizes"] = tuple(int(np.shape(c)[1]) for c in coefs[:-1])
    # solver="lbfgs" is kept: the estimator predicts, and its fit names what to change
    est = cls(**params, dtype=dtype)
    if classifier:
        est._label_binarizer = copy.deepcopy(sk_model._label_binarizer)
        est.classes_ = est._label_binarizer.classes_
    expected = _SK_OUTPUT[est._output_and_loss()[0]]
    if sk_model.out_activation_ != expected:
        what = (
            "loss=" + repr(getattr(sk_model, "loss", None)) if not classifier else "these classes"
        )
        raise ValueError(
            f"sk_model has out_activation_={sk_model.out_activation_!r} ({what}); fastmlp's "
            f"{cls.__name__} has the {expected!r} output for it, so it cannot be converted."
        )
    n_outputs = int(np.shape(coefs[-1])[1])
    est._initialize(int(np.shape(coefs[0])[0]), n_outputs)
    flat = np.concatenate(
        [np.r_[np.asarray(c).T.ravel(), b] for c, b in zip(coefs, intercepts, strict=True)]
    )
    est.net_.params = flat  # checked: shape, finite, representable in dtype
    est._best_params = est.net_.params.copy()
    _copy_state(sk_model, est, 1.0 if classifier else float(n_outputs))
    est._sync_attributes()
    return est
