"""The scikit-learn estimators one row at a time (``fastmlp.sklearn._online``) and the
regressor's target standardisation (``normalize_y``, ``fastmlp.sklearn._target``).

A row the estimator can take as it is skips scikit-learn's validation; everything else goes
the general way. Each test runs the same stream both ways (rows as ndarrays: the one-row
path; the same rows as lists: the general path) and asserts the same model bit for bit, and
that the one-row path did run.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastmlp.sklearn import MLPClassifier, MLPRegressor, _online  # noqa: E402
from fastmlp.sklearn._target import TargetScaler  # noqa: E402


@pytest.fixture
def row_path_calls(monkeypatch):
    """Count the rows the one-row path took."""
    taken = []
    original = _online.partial_fit_row

    def counting(est, X, y, classes):
        done = original(est, X, y, classes)
        taken.append(done)
        return done

    monkeypatch.setattr(_online, "partial_fit_row", counting)
    return taken


def _state(est):
    keys = ("n_iter_", "t_", "_lr", "best_loss_", "_no_improvement_count")
    return (
        est.net_.params.copy(), list(est.loss_curve_), {k: getattr(est, k) for k in keys},
        est.net_.n_updates_,
    )  # fmt: skip


def _assert_same(a, b):
    pa, la, ka, na = _state(a)
    pb, lb, kb, nb = _state(b)
    np.testing.assert_array_equal(pa, pb)
    assert la == lb and ka == kb and na == nb
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(x, y)


def _stream(n=120, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    return X, rng


CLASSIFIER_SETTINGS = [
    {},  # the defaults: SGD with Nesterov momentum, alpha 1e-4
    {"momentum": 0.0, "alpha": 0.0},  # plain SGD: the fused kernel
    {"solver": "adam", "learning_rate_init": 0.01},
    {"learning_rate": "invscaling", "learning_rate_init": 0.05},
    {"learning_rate": "adaptive", "n_iter_no_change": 1, "tol": 10.0},
    {"dtype": np.float32},
]


@pytest.mark.parametrize("settings", CLASSIFIER_SETTINGS, ids=str)
@pytest.mark.parametrize("labels", ["binary-int", "binary-str", "multiclass-str"])
def test_classifier_rows_equal_the_general_path(settings, labels, row_path_calls):
    X, rng = _stream()
    names = {"binary-int": [0, 1], "binary-str": ["no", "yes"],
             "multiclass-str": ["a", "b", "c"]}[labels]  # fmt: skip
    y = np.array(names, dtype=object if "str" in labels else None)[
        (X[:, 0] > 0).astype(int) + (len(names) == 3) * (X[:, 1] > 0.5)
    ]
    dtype = settings.get("dtype", np.float64)
    fast = MLPClassifier((6,), random_state=0, **settings)
    slow = MLPClassifier((6,), random_state=0, **settings)
    classes = np.array(names, dtype=y.dtype)
    fast.partial_fit(X[:3].astype(dtype), y[:3], classes=classes)
    slow.partial_fit(X[:3].astype(dtype), y[:3], classes=classes)
    row_path_calls.clear()
    for i in range(3, X.shape[0]):
        row = X[i : i + 1].astype(dtype)
        fast.partial_fit(row, y[i : i + 1], classes=classes if i % 2 else None)
        slow.partial_fit(row.tolist(), list(y[i : i + 1]))
    # fast: every row took the one-row path (classes= is the accepted object); slow: none
    assert row_path_calls == [True, False] * (X.shape[0] - 3)
    _assert_same(fast, slow)
    for i in range(5):
        row = X[i : i + 1].astype(dtype)
        np.testing.assert_array_equal(fast.predict_proba(row), slow.predict_proba(row.tolist()))
        assert fast.predict(row).tolist() == slow.predict(row.tolist()).tolist()
        assert fast.predict(row).dtype == slow.predict(row.tolist()).dtype
    np.testing.assert_array_equal(fast.predict_proba(X[:5].astype(dtype)),
                                  np.vstack([fast.predict_proba(X[i : i + 1].astype(dtype))
                                             for i in range(5)]))  # fmt: skip


REGRESSOR_SETTINGS = [
    {},
    {"normalize_y": False, "learning_rate_init": 1e-3},
    {"solver": "adam", "learning_rate_init": 0.01},
    {"momentum": 0.0, "alpha": 0.0, "dtype": np.float32},
]


@pytest.mark.parametrize("settings", REGRESSOR_SETTINGS, ids=str)
def test_regressor_rows_equal_the_general_path(settings, row_path_calls):
    """Targets around 300 whose spread grows along the stream: the scaling is renewed a few
    times (by the general path, in both runs) and the rows in between take the one-row
    path."""
    X, rng = _stream(200)
    y = X[:, 0] + 0.5 * X[:, 1] ** 2  # raw targets (normalize_y=False) of unit scale
    if settings.get("normalize_y", True):
        y = 300.0 + np.linspace(0.2, 30.0, X.shape[0]) * y
    dtype = settings.get("dtype", np.float64)
    fast = MLPRegressor((6,), random_state=0, **settings)
    slow = MLPRegressor((6,), random_state=0, **settings)
    row_path_calls.clear()
    for i in range(X.shape[0]):
        row = X[i : i + 1].astype(dtype)
        fast.partial_fit(row, y[i : i + 1])
        slow.partial_fit(row.tolist(), list(y[i : i + 1]))
    taken = row_path_calls[0::2]
    assert row_path_calls[1::2] == [False] * X.shape[0]
    assert taken[0] is False and sum(taken) > 0.9 * X.shape[0], "the one-row path ran"
    _assert_same(fast, slow)
    np.testing.assert_array_equal(fast.predict(X[:7].astype(dtype)),
                                  slow.predict(X[:7].astype(dtype).tolist()))  # fmt: skip
    for i in range(3):
        np.testing.assert_array_equal(fast.predict(X[i : i + 1].astype(dtype)),
                                      fast.predict(X[:3].astype(dtype))[i : i + 1])  # fmt: skip


def test_rows_the_one_row_path_leaves_to_the_general_one():
    """Each gets scikit-learn's own error or warning, and the model is unchanged by errors."""
    X, _ = _stream(20)
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier((4,), random_state=0).partial_fit(X, y, classes=[0, 1])
    before = clf.net_.params.copy()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.partial_fit(np.full((1, 5), np.nan), [0])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="X has 4 features, but MLPClassifier is expecting 5"):
        clf.partial_fit(np.zeros((1, 4)), [0])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        clf.partial_fit(X[:1], [7])
    with pytest.raises(ValueError, match=r"is not the same as on the first call"):
        clf.partial_fit(X[:1], [0], classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.net_.params, before)
    # changed parameters: the general path, which validates them
    clf.set_params(alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        clf.partial_fit(X[:1], y[:1])
    np.testing.assert_array_equal(clf.net_.params, before)


def test_feature_names_keep_their_checks():
    pd = pytest.importorskip("pandas")
    X, _ = _stream(20)
    frame = pd.DataFrame(X, columns=list("abcde"))
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier((4,), random_state=0).partial_fit(frame, y, classes=[0, 1])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.partial_fit(X[:1], y[:1])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.predict(X[:1])


def test_pickle_after_rows():
    X, _ = _stream(30)
    y = 100.0 * X[:, 0]
    reg = MLPRegressor((4,), random_state=0)
    for i in range(30):
        reg.partial_fit(X[i : i + 1], y[i : i + 1])
    copy = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(copy.predict(X), reg.predict(X))
    reg.partial_fit(X[:1], y[:1])
    copy.partial_fit(X[:1], y[:1])
    np.testing.assert_array_equal(copy.net_.params, reg.net_.params)


# --- normalize_y ---------------------------------------------------------------------------------
def _sklearn_forward(coefs, intercepts, X):
    """scikit-learn's forward pass from coefs_/intercepts_ (relu hidden, identity output)."""
    a = X
    for l, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        a = a @ W + b
        if l < len(coefs) - 1:
            a = np.maximum(a, 0.0)
    return a


def test_coefs_include_the_target_scaling():
    X, _ = _stream(100)
    Y = np.column_stack([500.0 + 80.0 * X[:, 0], -3.0 * X[:, 1]])
    reg = MLPRegressor((8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, Y)
    np.testing.assert_allclose(_sklearn_forward(reg.coefs_, reg.intercepts_, X), reg.predict(X),
                               rtol=1e-13, atol=1e-10)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_renewed_scaling_keeps_the_predictions(dtype):
    """The output layer (and the optimizer state) is rescaled exactly: up to rounding, a few
    ulps of the outputs (float32: 1e-5 relative on outputs around 500)."""
    X, _ = _stream(50)
    y = 500.0 + 50.0 * X[:, 0]
    reg = MLPRegressor((8,), max_iter=3, random_state=0, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    before = reg.predict(X)
    scaler = reg._target_scaler
    old = (scaler.mean_.copy(), scaler.scale_.copy())
    scaler.update(np.full((200, 1), 5000.0), reg.net_, [reg._best_params], True)  # drifts
    assert not np.array_equal(scaler.mean_, old[0]) and not np.array_equal(scaler.scale_, old[1])
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(reg.predict(X), before, rtol=rtol)


def test_target_statistics_merge_like_a_single_pass():
    rng = np.random.default_rng(3)
    Y = rng.normal(loc=40.0, scale=7.0, size=(301, 2))
    scaler = TargetScaler(2, np.float64)
    for chunk in np.array_split(Y, [1, 2, 50, 51, 200]):
        scaler._merge(chunk)
    np.testing.assert_allclose(scaler.run_mean, Y.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(scaler.run_m2 / len(Y), Y.var(axis=0), rtol=1e-12)


def test_default_regressor_learns_targets_in_the_hundreds():
    """The issue's case: make_regression-like targets; the defaults neither diverge nor need
    tuning, by fit and one row at a time."""
    X, rng = _stream(400, 4, seed=5)
    y = X @ np.array([60.0, -120.0, 30.0, 90.0]) + 200.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(random_state=0).fit(X[:300], y[:300])
    assert reg.score(X[300:], y[300:]) > 0.99
    online = MLPRegressor(random_state=0)
    for _ in range(3):
        for i in range(300):
            online.partial_fit(X[i : i + 1], y[i : i + 1])
    assert online.score(X[300:], y[300:]) > 0.95
    raw = MLPRegressor(random_state=0, normalize_y=False)
    from fastmlp.errors import DivergenceError

    with pytest.raises(DivergenceError):
        raw.fit(X[:300], y[:300])


def test_normalize_y_is_validated():
    with pytest.raises(TypeError, match="normalize_y must be a bool, got 'yes'"):
        MLPRegressor(normalize_y="yes").fit(np.zeros((3, 2)), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_on_a_blocked_net_equal_the_general_path(dtype, row_path_calls):
    """A layer 0 wide enough for fit's blocks (fastmlp.tuning.block_size): the one-row path
    runs the same blocked kernel call as the general path, so the same bits."""
    from fastmlp import tuning

    X, _ = _stream(n=40, n_features=96)
    y = (X[:, 0] > 0).astype(int)
    settings = dict(random_state=0, momentum=0.0, alpha=0.0, dtype=dtype)
    fast, slow = MLPClassifier((128,), **settings), MLPClassifier((128,), **settings)
    fast.partial_fit(X[:3].astype(dtype), y[:3], classes=[0, 1])
    slow.partial_fit(X[:3].astype(dtype), y[:3], classes=[0, 1])
    assert tuning.block_size(fast.net_.layout, fast.net_.dtype) > 1
    row_path_calls.clear()
    for i in range(3, X.shape[0]):
        fast.partial_fit(X[i : i + 1].astype(dtype), y[i : i + 1])
        slow.partial_fit(X[i : i + 1].astype(dtype).tolist(), list(y[i : i + 1]))
    assert all(row_path_calls[::2]) and not any(row_path_calls[1::2])
    _assert_same(fast, slow)
