"""fastmlp.sklearn: scikit-learn's estimator checks, pipelines/model selection on the digits,
every target type, partial_fit/warm_start, pickling, coefs_, the stopping rule, the parameter
checks, and bit-identity with training ``fastmlp.MLP`` directly."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning, DataConversionWarning  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastmlp import MLP  # noqa: E402
from fastmlp.datasets import digits_train_test, load_digits  # noqa: E402
from fastmlp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Settings that learn the digits well with per-sample SGD in 20 epochs.
DIGITS = dict(
    hidden_layer_sizes=(32,), activation="tanh", learning_rate_init=0.01, momentum=0.0,
    max_iter=20, random_state=0,
)  # fmt: skip

# Only checks that per-sample SGD cannot pass by its nature; each with its reason.
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "per-sample SGD: a weight of 2 doubles one update, while a repeated row makes two "
        "updates at two different points of the shuffled epoch, so the trajectories differ. "
        "(scikit-learn's MLPs pass this check only in the deterministic full-batch settings it "
        "runs it with: lbfgs, or sgd with batch_size='auto' = one batch of < 200 rows.)"
    ),
}


def _expected_failed(estimator):
    return EXPECTED_FAILED


@no_convergence_warning
@parametrize_with_checks(
    [
        # the defaults a user gets (scikit-learn's checks set random_state themselves); the
        # regressor passes the checks on make_regression's targets in the hundreds because
        # it standardises them (normalize_y=True)
        MLPClassifier(),
        MLPRegressor(),
        MLPRegressor(normalize_y=False, solver="adam", learning_rate_init=0.01, max_iter=50),
    ],
    expected_failed_checks=_expected_failed,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- optional dependency --------------------------------------------------------------------------
def test_import_fastmlp_does_not_import_sklearn():
    code = "import sys, fastmlp; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clear_import_error_without_sklearn():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n    import fastmlp.sklearn\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert 'pip install "fastmlp[sklearn]"' in out.stdout


# --- the digits, in scikit-learn's model-selection tools ----------------------------------------
def test_digits_pipeline_accuracy():
    X_train, y_train, X_test, y_test = digits_train_test()
    clf = make_pipeline(StandardScaler(), MLPClassifier(**DIGITS))
    with pytest.warns(ConvergenceWarning):
        clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.95


@no_convergence_warning
def test_digits_cross_val_score():
    X, y = load_digits()
    scores = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(**DIGITS)), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


@no_convergence_warning
def test_digits_grid_search_parallel():
    X, y = load_digits()
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), MLPClassifier(**DIGITS)),
        {"mlpclassifier__learning_rate_init": [1e-4, 0.01]},
        cv=3,
        n_jobs=2,
    )
    grid.fit(X, y)
    assert grid.best_params_ == {"mlpclassifier__learning_rate_init": 0.01}
    assert grid.best_score_ > 0.9


# --- target types ---------------------------------------------------------------------------------
@no_convergence_warning
def test_string_labels_multiclass():
    X, y = load_digits()
    names = np.array(["zero", "one", "two", "three", "four", "5", "six", "7", "8", "nine"])
    clf = MLPClassifier(**DIGITS).fit(X, names[y])
    assert list(clf.classes_) == sorted(names)
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 10
    pred = clf.predict(X)
    assert pred.dtype == names.dtype and np.mean(pred == names[y]) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


@no_convergence_warning
def test_binary_string_labels():
    X, y = load_digits()
    keep = y < 2
    labels = np.where(y[keep] == 0, "no", "yes")
    clf = MLPClassifier(**DIGITS).fit(X[keep], labels)
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert clf.net_.output == "sigmoid" and clf.net_.loss_name == "binary_cross_entropy"
    proba = clf.predict_proba(X[keep])
    assert proba.shape == (keep.sum(), 2)
    np.testing.assert_allclose(proba[:, 1], clf.net_.predict(X[keep])[:, 0])
    assert clf.score(X[keep], labels) > 0.99


@no_convergence_warning
def test_multilabel():
    X, y = load_digits()
    Y = np.column_stack([y % 2 == 0, y >= 5, np.isin(y, (0, 6, 8, 9))]).astype(int)
    clf = MLPClassifier(**DIGITS).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.net_.loss_name == "binary_cross_entropy"
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    pred = clf.predict(X)
    assert pred.shape == Y.shape and np.mean(pred == Y) > 0.95
    assert clf.predict_proba(X).shape == Y.shape


@no_convergence_warning
def test_regression_multi_output_and_1d():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 3))
    Y = np.column_stack([X[:, 0] * X[:, 1], np.sin(2 * X[:, 2])])
    kw = dict(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=0.01, max_iter=60)
    reg = MLPRegressor(**kw, random_state=0).fit(X, Y)
    assert reg.out_activation_ == "identity" and reg.net_.loss_name == "mse"
    assert reg.predict(X).shape == (300, 2) and reg.score(X, Y) > 0.8
    reg1 = MLPRegressor(**kw, random_state=0).fit(X, Y[:, 1])
    assert reg1.predict(X).shape == (300,) and reg1.n_outputs_ == 1
    with pytest.warns(DataConversionWarning):
        reg2 = MLPRegressor(**kw, random_state=0).fit(X, Y[:, 1:])
    np.testing.assert_array_equal(reg2.predict(X), reg1.predict(X))


@no_convergence_warning
def test_float32():
    X, y = load_digits()
    clf = MLPClassifier(**{**DIGITS, "max_iter": 2}, dtype=np.float32, n_iter_no_change=1)
    clf.fit(X, y)
    assert clf.net_.dtype == np.float32 and clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32


# --- incremental training -------------------------------------------------------------------------
def test_partial_fit_needs_classes_and_equals_fit():
    X, y = load_digits()
    settings = {**DIGITS, "max_iter": 3, "n_iter_no_change": 3, "tol": 0.0}
    clf = MLPClassifier(**settings)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
        assert clf.n_iter_ == 1
    assert clf.t_ == 3 * len(X) and len(clf.loss_curve_) == 3
    with pytest.warns(ConvergenceWarning):
        full = MLPClassifier(**settings).fit(X, y)
    # three one-epoch calls continue the same random stream: the same run as one fit
    np.testing.assert_array_equal(clf.net_.params, full.net_.params)
    assert clf.loss_curve_ == full.loss_curve_
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X[:5], np.array([0, 1, 2, 3, 10]))


def test_partial_fit_classes_absent_from_first_batch():
    X, y = load_digits()
    clf = MLPClassifier(**DIGITS)
    clf.partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    assert clf.n_outputs_ == 10
    assert set(np.unique(clf.predict(X))) <= set(range(5))
    clf.partial_fit(X[y >= 5], y[y >= 5])  # the other classes, unseen so far, are learned
    assert np.mean(clf.predict(X[y >= 5]) == y[y >= 5]) > 0.8
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=np.arange(11))


def test_partial_fit_regressor_and_no_early_stopping():
    X = np.linspace(-1, 1, 50)[:, None]
    reg = MLPRegressor((4,), random_state=0)
    reg.partial_fit(X, X[:, 0]).partial_fit(X, X[:, 0])
    assert reg.n_iter_ == 1 and reg.t_ == 100
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor((4,), early_stopping=True).partial_fit(X, X[:, 0])


def test_warm_start_continues_and_cold_start_restarts():
    X, y = load_digits()
    settings = {**DIGITS, "momentum": 0.9, "n_iter_no_change": 5, "tol": 0.0}
    warm = MLPClassifier(**{**settings, "max_iter": 3}, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        warm.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        warm.set_params(max_iter=2).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        full = MLPClassifier(**{**settings, "max_iter": 5}).fit(X, y)
    # net_ keeps its momentum and random stream: 3 + 2 epochs = 5 epochs, bit for bit
    np.testing.assert_array_equal(warm.net_.params, full.net_.params)
    assert warm.loss_curve_ == full.loss_curve_ and warm.t_ == full.t_
    with pytest.raises(ValueError, match="same classes"):
        warm.fit(X[y < 9], y[y < 9])
    cold = MLPClassifier(**{**settings, "max_iter": 5})
    with pytest.warns(ConvergenceWarning):
        cold.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        cold.fit(X, y)
    np.testing.assert_array_equal(cold.net_.params, full.net_.params)


# --- pickling -------------------------------------------------------------------------------------
@no_convergence_warning
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_pickle_keeps_the_class_path_and_the_training_state(cls):
    X, y = load_digits()
    est = cls((8,), max_iter=2, random_state=0).fit(X, y)
    assert type(est).__module__ == "fastmlp.sklearn"
    data = pickle.dumps(est)
    assert b"fastmlp.sklearn._" not in data  # no private module in the class paths
    copy = pickle.loads(data)
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    # the copy's net continues the same run (momentum, random stream, the regressor's target
    # scaling), and coefs_ follow it
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.net_.params, est.net_.params)
    for coef, w in zip(copy.coefs_[:-1], copy.net_.weights, strict=False):
        np.testing.assert_array_equal(coef, w.T)
    for a, b in zip(copy.coefs_ + copy.intercepts_, est.coefs_ + est.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))


# --- attributes -----------------------------------------------------------------------------------
@no_convergence_warning
def test_coefs_are_transposed_copies_of_the_net():
    X, y = load_digits()
    clf = MLPClassifier((20, 12), max_iter=2, n_iter_no_change=1, random_state=0).fit(X, y)
    assert clf.n_layers_ == 4 and clf.n_features_in_ == 64
    assert [c.shape for c in clf.coefs_] == [(64, 20), (20, 12), (12, 10)]
    assert [b.shape for b in clf.intercepts_] == [(20,), (12,), (10,)]
    for coef, intercept, w, b in zip(
        clf.coefs_, clf.intercepts_, clf.net_.weights, clf.net_.biases, strict=True
    ):
        np.testing.assert_array_equal(coef, w.T)
        np.testing.assert_array_equal(intercept, b)
        assert not np.shares_memory(coef, clf.net_.params)
        assert not np.shares_memory(intercept, clf.net_.params)


def test_lbfgs_refused():
    X, y = load_digits()
    for est in (MLPClassifier(solver="lbfgs"), MLPRegressor(solver="lbfgs")):
        with pytest.raises(ValueError, match="fastmlp trains by stochastic gradient descent only"):
            est.fit(X, y)
    with pytest.raises(ValueError, match="solver='lbfgs' is not supported"):
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=np.arange(10))


def test_early_stopping_restores_best():
    X, y = load_digits()
    clf = MLPClassifier(
        (32,), activation="tanh", learning_rate_init=0.2, momentum=0.0, max_iter=40,
        early_stopping=True, validation_fraction=0.2, n_iter_no_change=5, random_state=3,
    )  # fmt: skip
    clf.fit(X, y)
    scores = clf.validation_scores_
    assert clf.best_loss_ is None and len(scores) == clf.n_iter_ < 40
    assert clf.best_validation_score_ == max(scores)
    assert int(np.argmax(scores)) < len(scores) - 1  # the last epoch was not the best
    # the same stratified split as the estimator's: the restored net scores the best score
    _, X_val, _, y_val = train_test_split(
        X, y, test_size=0.2, random_state=np.random.RandomState(3), stratify=y
    )
    assert clf.score(X_val, y_val) == clf.best_validation_score_
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("early_stopping", [False, True])
def test_stopping_rule_matches_sklearn(early_stopping):
    """With a tol no epoch can meet, both stop after exactly n_iter_no_change + 2 epochs."""
    X, y = load_digits()
    kw = dict(
        hidden_layer_sizes=(8,), solver="sgd", batch_size=50, learning_rate_init=1e-3,
        max_iter=30, tol=10.0, n_iter_no_change=3, early_stopping=early_stopping, random_state=0,
    )  # fmt: skip
    ours, theirs = MLPClassifier(**kw).fit(X, y), SkMLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5


def test_adaptive_and_invscaling_learning_rates():
    X, y = load_digits()
    kw = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    adaptive = MLPClassifier(**kw, learning_rate="adaptive", tol=10.0, n_iter_no_change=1)
    with pytest.warns(ConvergenceWarning):
        adaptive.set_params(max_iter=6).fit(X, y)
    # stuck after epochs 3 and 5 (count > n_iter_no_change): lr / 5 each time
    assert adaptive.net_.history_["lr"] == pytest.approx([0.01] * 3 + [0.002] * 2 + [0.0004])
    inv = MLPClassifier(**kw, learning_rate="invscaling", power_t=0.5, max_iter=3, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        inv.fit(X, y)
    n = len(X)
    expected = [0.01, 0.01 / (n + 1) ** 0.5, 0.01 / (2 * n + 1) ** 0.5]
    assert inv.net_.history_["lr"] == pytest.approx(expected)


def test_adaptive_stops_when_lr_is_tiny():
    X, y = load_digits()
    clf = MLPClassifier(
        (4,), learning_rate="adaptive", learning_rate_init=1e-5, tol=10.0, n_iter_no_change=1,
        max_iter=100, batch_size=200, random_state=0,
    )  # fmt: skip
    clf.fit(X, y)  # 1e-5 -> 2e-6 -> 4e-7 <= 1e-6: stop, no ConvergenceWarning
    assert clf.n_iter_ == 3 + 2 + 2


# --- no hidden math -------------------------------------------------------------------------------
def test_bit_identical_to_mlp_fit():
    X_train, y_train, _, _ = digits_train_test()
    clf = MLPClassifier(
        (24,), activation="tanh", solver="sgd", alpha=1e-3, batch_size=8, learning_rate_init=0.05,
        momentum=0.9, nesterovs_momentum=True, max_iter=6, tol=0.0, n_iter_no_change=6,
        random_state=7,
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        clf.fit(X_train, y_train)
    net = MLP((64, 24, 10), hidden="tanh", output="softmax", loss="cross_entropy",
              init="glorot", seed=7)  # fmt: skip
    net.fit(X_train, y_train, epochs=6, lr=0.05, batch_size=8, momentum=0.9, nesterov=True,
            alpha=1e-3 / 8)  # fmt: skip
    np.testing.assert_array_equal(clf.net_.params, net.params)
    assert clf.net_.history_["loss"] == net.history_["loss"]
    np.testing.assert_array_equal(clf.predict_proba(X_train), net.predict(X_train))


def test_bit_identical_to_mlp_fit_adam_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    Y = np.column_stack([X.sum(axis=1), X[:, 0] * X[:, 1]])
    reg = MLPRegressor((10, 6), activation="relu", solver="adam", batch_size=16, alpha=0.0,
                       learning_rate_init=0.003, max_iter=4, tol=0.0, random_state=11,
                       normalize_y=False)  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, Y)
    net = MLP((5, 10, 6, 2), hidden="relu", output="identity", loss="mse", init="glorot", seed=11)
    net.fit(X, Y, epochs=4, lr=0.003, batch_size=16, optimizer="adam")
    np.testing.assert_array_equal(reg.net_.params, net.params)
    np.testing.assert_array_equal(reg.predict(X), net.predict(X))
    assert reg.loss_curve_ == net.history_["loss"]


@no_convergence_warning
def test_sample_weight_reaches_the_net():
    X, y = load_digits()
    kw = dict(hidden_layer_sizes=(8,), momentum=0.0, alpha=0.0, shuffle=False, max_iter=3)
    weights = (np.arange(len(y)) % 2 == 0).astype(float)  # odd rows weigh nothing
    weighted = MLPClassifier(**kw, random_state=0).fit(X, y, sample_weight=weights)
    even = MLPClassifier(**kw, random_state=0).fit(X[::2], y[::2])
    # plain SGD, visiting rows in order: a zero-weight row's update is zero (the weighted
    # kernel contracts its arithmetic differently: equal to rounding, not bit for bit)
    np.testing.assert_allclose(weighted.net_.params, even.net_.params, rtol=1e-12, atol=1e-14)
    stopped = MLPClassifier(**kw, early_stopping=True, random_state=0)
    stopped.fit(X, y, sample_weight=weights + 1.0)
    assert len(stopped.validation_scores_) == stopped.n_iter_


# --- input checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("param", "value", "error", "match"),
    [
        ("activation", "softmax", ValueError, r"activation must be one of \[.*\], got 'softmax'"),
        ("activation", 3, TypeError, "activation must be a string, one of"),
        ("solver", "newton", ValueError, r"solver must be one of \['sgd', 'adam'\], got 'newton'"),
        ("learning_rate", "cosine", ValueError, "learning_rate must be one of"),
        ("hidden_layer_sizes", (8, 0), ValueError, r"hidden_layer_sizes must be > 0, got \[8, 0\]"),
        ("hidden_layer_sizes", 1.5, TypeError, "hidden_layer_sizes must be an int or a sequence"),
        ("batch_size", 0, ValueError, "batch_size must be >= 1, got 0"),
        ("batch_size", 2.0, TypeError, "batch_size must be an int >= 1, got 2.0"),
        ("batch_size", "Auto", ValueError, "batch_size must be an int >= 1 or 'auto', got 'Auto'"),
        ("learning_rate_init", 0.0, ValueError, "learning_rate_init must be a finite number > 0"),
        ("learning_rate_init", "x", TypeError, "learning_rate_init must be a real number > 0"),
        ("alpha", -1.0, ValueError, r"alpha must be in \[0, inf\), got -1.0"),
        ("tol", np.inf, ValueError, r"tol must be in \[0, inf\), got inf"),
        ("momentum", 1.5, ValueError, r"momentum must be in \[0, 1\], got 1.5"),
        ("beta_2", -0.1, ValueError, r"beta_2 must be in \[0, 1\], got -0.1"),
        ("epsilon", 0.0, ValueError, "epsilon must be a finite number > 0, got 0.0"),
        ("max_iter", 0, ValueError, "max_iter must be >= 1, got 0"),
        ("n_iter_no_change", True, TypeError, "n_iter_no_change must be an int >= 1, got True"),
        ("dtype", np.int64, TypeError, "dtype must be float32 or float64, got int64"),
    ],
)
def test_bad_parameters(param, value, error, match):
    X, y = load_digits()
    with pytest.raises(error, match=match):
        MLPClassifier(**{param: value}).fit(X, y)


def test_validation_fraction_with_early_stopping():
    X, y = load_digits()
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\) with early"):
        MLPClassifier(early_stopping=True, validation_fraction=0.0).fit(X, y)
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\], got 1.5"):
        MLPRegressor(validation_fraction=1.5).fit(X, y)


def test_batch_size_larger_than_data_is_clipped():
    X = np.linspace(-1, 1, 20)[:, None]
    reg = MLPRegressor((4,), batch_size=100, max_iter=1, n_iter_no_change=1, random_state=0)
    with pytest.warns(UserWarning, match="clipped to 20"), pytest.warns(ConvergenceWarning):
        reg.fit(X, X[:, 0])


@no_convergence_warning
def test_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = load_digits()
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    clf = MLPClassifier((8,), max_iter=1, n_iter_no_change=1).fit(df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
