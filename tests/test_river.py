"""fastmlp.river: River's own estimator checks, accuracy on River's bundled streams, features
and classes that come and go, target scale, pickling, and bad input."""

from __future__ import annotations

import copy
import math
import pickle
import statistics
from pathlib import Path

import numpy as np
import pytest

river = pytest.importorskip("river")

import pandas as pd  # noqa: E402  (River depends on pandas)
from river import checks, datasets, dummy, evaluate, metrics, preprocessing, stats  # noqa: E402

from fastmlp.river import MLPClassifier, MLPRegressor  # noqa: E402

ESTIMATORS = [
    pytest.param(cls, params, id=f"{cls.__name__}-{i}")
    for cls in (MLPClassifier, MLPRegressor)
    for i, params in enumerate([*cls._unit_test_params(), {}])  # {}: seedless
]


@pytest.mark.parametrize(("cls", "params"), ESTIMATORS)
def test_river_check_estimator_with_no_skipped_check(cls, params):
    model = cls(**params)
    assert model._unit_test_skips() == set()
    names = [check.__name__ for check in checks.yield_checks(model)]
    assert "check_learn_many_matches_learn_one" in names
    assert "check_shuffle_features_no_impact" in names
    if model.seed is None:  # River runs it on the models with an unset seed
        assert "check_seeding_is_idempotent" in names
    checks.check_estimator(model)


# ---- defaults that work: progressive validation on River's bundled streams -----------------
# A seeded run is bit-reproducible on one machine only: the kernels' fastmath sums (reassociated,
# in the host's SIMD width) round differently on another CPU, and one pass of SGD is chaotic, so
# there the same seed is in effect another draw from the spread over seeds. Measured here over
# seeds 0-29 (min / mean / sd; seed 0): Bananas 0.8066 / 0.8193 / 0.0046 (0.8135), Phishing
# 0.8719 / 0.8885 / 0.0063 (0.8943), ImageSegments 0.8662 / 0.8759 / 0.0043 (0.8826). The
# thresholds are the issue's (0.78, 0.87, 0.86); one seed's margin over them is as small as 0.2
# points (Phishing's worst seed, 2.9 sd under the mean). So the test takes the mean of seeds
# 0-2, deterministic per machine like one seed and with sd / sqrt(3): here 0.8183, 0.8874,
# 0.8760, and the lowest mean of three consecutive seeds (0-2, 3-5, ...) was 0.8163, 0.8807,
# 0.8712, each over 1 point (and over 4 of its sd) above its threshold.
SEEDS = (0, 1, 2)


def _bundled(name):
    ds = getattr(datasets, name)()
    assert isinstance(ds, datasets.base.FileDataset)  # a file shipped with River: no download
    assert Path(ds.path).is_file() and Path(river.__file__).parent in Path(ds.path).parents
    return ds


def _progressive(ds, model, metric):
    return evaluate.progressive_val_score(ds, model, metric).get()


@pytest.mark.parametrize(
    ("name", "threshold"), [("Bananas", 0.78), ("Phishing", 0.87), ("ImageSegments", 0.86)]
)
def test_default_classifier_reaches_the_issue_accuracy(name, threshold):
    events = list(_bundled(name))
    scores = [
        _progressive(
            events, preprocessing.StandardScaler() | MLPClassifier(seed=s), metrics.Accuracy()
        )
        for s in SEEDS
    ]
    assert statistics.mean(scores) >= threshold, scores


def test_default_regressor_beats_the_running_mean_on_trump_approval():
    mean_mae = _progressive(
        _bundled("TrumpApproval"), dummy.StatisticRegressor(stats.Mean()), metrics.MAE()
    )
    assert mean_mae == pytest.approx(1.5676, abs=1e-4)
    model = preprocessing.StandardScaler() | MLPRegressor(seed=0)
    mae = _progressive(_bundled("TrumpApproval"), model, metrics.MAE())
    assert mae < mean_mae  # the issue's bar
    assert mae < 0.4  # measured 0.2879 (seeds 0-4: 0.2707-0.3023)


def test_seeded_runs_are_bit_identical_and_seeds_differ():
    stream = list(datasets.Phishing().take(300))

    def run(seed):
        model = MLPClassifier(seed=seed)
        probas = []
        for x, y in stream:
            probas.append(model.predict_proba_one(x))
            model.learn_one(x, y)
        return probas, model.net.params.copy()

    (p0, w0), (p1, w1), (p2, _) = run(3), run(3), run(4)
    assert p0 == p1
    np.testing.assert_array_equal(w0, w1)
    assert p0 != p2


def test_key_order_does_not_matter_bit_for_bit():
    rng = np.random.default_rng(0)
    a, b = MLPClassifier(seed=0), MLPClassifier(seed=0)
    for x, y in datasets.ImageSegments().take(300):
        keys = list(x)
        rng.shuffle(keys)
        a.learn_one(x, y)
        b.learn_one({k: x[k] for k in keys}, y)
    assert a.features == b.features
    np.testing.assert_array_equal(a.net.params, b.net.params)


# ---- River's conventions -------------------------------------------------------------------


def test_predict_before_any_learning():
    clf, reg = MLPClassifier(seed=0), MLPRegressor(seed=0)
    assert clf.predict_proba_one({"a": 1.0}) == {}
    assert clf.predict_one({"a": 1.0}) is None
    assert reg.predict_one({"a": 1.0}) == 0.0
    X = pd.DataFrame({"a": [1.0, 2.0]})
    assert clf.predict_many(X).tolist() == [None, None]
    assert clf.predict_proba_many(X).shape == (2, 0)
    assert reg.predict_many(X).tolist() == [0.0, 0.0]


def test_bool_labels_give_false_and_true_from_the_first_event():
    model = MLPClassifier(seed=0)
    model.learn_one({"a": 1.0}, np.bool_(True))
    proba = model.predict_proba_one({"a": 1.0})
    assert list(proba) == [False, True]
    assert math.isclose(sum(proba.values()), 1.0)
    assert model.classes == (False, True)


def test_one_class_seen_has_probability_one():
    model = MLPClassifier(seed=0)
    model.learn_one({"a": 1.0}, "cat")
    model.learn_one({"a": 2.0}, "cat")
    assert model.predict_proba_one({"a": 3.0}) == {"cat": 1.0}
    assert model.predict_one({"a": 3.0}) == "cat"


def test_defaults_are_immutable_and_clone_keeps_them():
    model = MLPClassifier(hidden_sizes=[16, 8], seed=1)
    assert model.hidden_sizes == (16, 8)
    clone = model.clone()
    assert repr(clone) == repr(model)
    assert clone.hidden_sizes == (16, 8) and clone.seed == 1


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_pickling_mid_stream_resumes_bit_for_bit(cls):
    source = datasets.Phishing() if cls is MLPClassifier else datasets.TrumpApproval()
    stream = list(source.take(200))
    model = cls(seed=0)
    for x, y in stream[:100]:
        model.learn_one(x, y)
    restored = pickle.loads(pickle.dumps(model))
    deep = copy.deepcopy(model)
    for x, y in stream[100:]:
        for m in (model, restored, deep):
            m.learn_one(x, y)
    x = stream[-1][0]
    assert model.predict_one(x) == restored.predict_one(x) == deep.predict_one(x)
    np.testing.assert_array_equal(model.net.params, restored.net.params)
    np.testing.assert_array_equal(model.net.params, deep.net.params)


# ---- features that emerge and disappear ----------------------------------------------------


def test_missing_and_none_features_count_as_zero():
    model = MLPClassifier(seed=0)
    for x, y in datasets.Phishing().take(50):
        model.learn_one(x, y)
    x = dict(next(iter(datasets.Phishing()))[0])
    with_zero = {**x, "https": 0.0}
    without = {k: v for k, v in x.items() if k != "https"}
    with_none = {**x, "https": None}
    expected = model.predict_proba_one(with_zero)
    assert model.predict_proba_one(without) == expected
    assert model.predict_proba_one(with_none) == expected
    assert model.predict_proba_one({**with_zero, "never seen": 5.0}) == expected


def test_a_new_feature_starts_with_zero_weights_and_disturbs_nothing():
    stream = list(datasets.Phishing().take(100))
    a, b = MLPClassifier(seed=0), MLPClassifier(seed=0)
    for x, y in stream[:50]:
        a.learn_one(x, y)
        b.learn_one(x, y)
    x, y = stream[50]
    before = b.predict_proba_one(x)
    assert b.predict_proba_one({**x, "new": 3.0}) == before  # unknown: ignored
    a.learn_one(x, y)
    b.learn_one({**x, "new": 3.0}, y)  # the new feature's column is zero during this step
    assert b.features[-1] == "new"
    column = b.net.weights[0][:, b.features.index("new")]
    assert np.any(column != 0.0)  # ... and learned by it
    for name in a.features:  # every other weight took the same update
        np.testing.assert_allclose(
            a.net.weights[0][:, a.features.index(name)],
            b.net.weights[0][:, b.features.index(name)],
            rtol=1e-12, atol=1e-15,
        )  # fmt: skip
    np.testing.assert_allclose(a.net.weights[1], b.net.weights[1], rtol=1e-12, atol=1e-15)
    for x2, _ in stream[51:]:  # inputs without the new feature: the same predictions
        pa, pb = a.predict_proba_one(x2), b.predict_proba_one(x2)
        assert pa.keys() == pb.keys()
        for k in pa:
            assert pa[k] == pytest.approx(pb[k], rel=1e-12)


def test_many_emerging_features_grow_capacity_by_doubling():
    model = MLPClassifier(seed=0)
    capacities = set()
    for i in range(200):
        model.learn_one({f"word{i}": 1.0, f"word{i + 1}": 1.0}, i % 2 == 0)
        capacities.add(model.net.layer_sizes[0])
    assert len(model.features) == 201
    assert sorted(capacities) == [2, 4, 8, 16, 32, 64, 128, 256]


# ---- classes that emerge -------------------------------------------------------------------


def test_a_new_class_keeps_the_old_probability_ratios():
    model = MLPClassifier(seed=0)
    stream = list(datasets.ImageSegments().take(400))
    old = [(x, y) for x, y in stream if y in ("path", "window", "foliage")][:60]
    for x, y in old:
        model.learn_one(x, y)
    assert model.classes == tuple(dict.fromkeys(y for _, y in old))
    probes = [x for x, _ in stream[300:320]]
    before = [model.predict_proba_one(x) for x in probes]
    x_new = stream[0][0]
    n = 60
    model.learn_one(x_new, "sky", w=0.0)  # grow without a step
    assert model.classes[-1] == "sky"
    assert model.predict_proba_one(x_new)["sky"] == pytest.approx(1 / (n + 1), rel=1e-9)
    for x, p_old in zip(probes, before, strict=True):
        p = model.predict_proba_one(x)
        scale = 1.0 - p["sky"]
        for k in p_old:
            assert p[k] == pytest.approx(p_old[k] * scale, rel=1e-9)
    model.learn_one(x_new, "sky")
    assert model.predict_proba_one(x_new)["sky"] > 1 / (n + 1)


# ---- target scale --------------------------------------------------------------------------


def test_regressor_is_invariant_to_target_scale():
    stream = list(datasets.TrumpApproval().take(400))
    a, b = MLPRegressor(seed=0), MLPRegressor(seed=0)
    scale, shift = 1e4, -3e6  # targets around -2.6e6, std ~ 1e4: plain SGD would diverge
    for i, (x, y) in enumerate(stream):
        pa, pb = a.predict_one(x), b.predict_one(x)
        if i > 0:  # before any learning both predict 0.0
            assert pb == pytest.approx(scale * pa + shift, rel=1e-6, abs=1e-6 * scale)
        a.learn_one(x, y)
        b.learn_one(x, scale * y + shift)
    assert b.y_std == pytest.approx(scale * a.y_std, rel=1e-9)


def test_regressor_rescaling_keeps_predictions_exactly():
    model = MLPRegressor(seed=0)
    for x, y in datasets.TrumpApproval().take(100):
        model.learn_one(x, y)
    x = next(iter(datasets.TrumpApproval()))[0]
    before = model.predict_one(x)
    model._rescale(model.y_mean + 3.0, model.y_std * 7.0)
    assert model.predict_one(x) == pytest.approx(before, rel=1e-13)


# ---- mini-batches --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_learn_many_equals_learn_one_rows_with_nan_as_missing(cls):
    stream = list(
        datasets.Phishing().take(80) if cls is MLPClassifier else datasets.TrumpApproval().take(80)
    )
    rows = [dict(x) for x, _ in stream]
    for i in range(0, 40, 7):  # rows 40-79: NaN-free batches, the matrix path
        rows[i].pop(next(iter(rows[i])))  # missing in the dict, NaN in the frame
    ys = [y for _, y in stream]
    one, many = cls(seed=0), cls(seed=0)
    for x, y in zip(rows, ys, strict=True):
        one.learn_one(x, y)
    slow_batches = []
    frame_rows = many._frame_rows
    many._frame_rows = lambda X: slow_batches.append(len(X)) or frame_rows(X)
    for start in range(0, 80, 20):
        many.learn_many(pd.DataFrame(rows[start : start + 20]), pd.Series(ys[start : start + 20]))
    assert slow_batches == [20, 20]  # the first two batches (NaN) row by row, the others not
    del many._frame_rows
    np.testing.assert_array_equal(one.net.params, many.net.params)
    assert one._n_learned == many._n_learned == 80
    if cls is MLPRegressor:
        assert (one.y_mean, one.y_std, one._m2) == (many.y_mean, many.y_std, many._m2)
    X = pd.DataFrame(rows[:10])
    expected = [one.predict_one({k: v for k, v in r.items()}) for r in rows[:10]]
    got = many.predict_many(X).tolist()
    if cls is MLPClassifier:
        assert got == expected
        proba = many.predict_proba_many(X)
        assert list(proba.columns) == list(many.classes)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---- bad input: a clear error, the model unchanged -----------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hidden_sizes": (0,)}, ValueError, r"hidden_sizes must be a tuple of ints >= 1.*\(0,\)"),
        ({"hidden_sizes": ()}, ValueError, r"hidden_sizes must be .*at least one\), got \(\)"),
        ({"hidden_sizes": 32}, TypeError, r"hidden_sizes must be a tuple .*got int 32"),
        ({"activation": "tanhh"}, ValueError, r"activation must be one of .*got 'tanhh'"),
        ({"lr": 0.0}, ValueError, r"lr must be a finite float > 0, got 0.0"),
        ({"lr": float("nan")}, ValueError, r"lr must be a finite float > 0, got nan"),
        ({"seed": -1}, ValueError, r"seed must be None or an int >= 0, got -1"),
    ],
)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_bad_parameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def _trained(cls):
    model = cls(seed=0)
    stream = datasets.Phishing() if cls is MLPClassifier else datasets.TrumpApproval()
    for x, y in stream.take(30):
        model.learn_one(x, y)
    return model, next(iter(stream))


def _state(model):
    return model.net.params.copy(), model.features, getattr(model, "classes", None)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda x: {**x, "new": "abc"}, TypeError, r"x\['new'\] must be a real number, got str"),
        (lambda x: {**x, "new": float("nan")}, ValueError, r"x\['new'\] must be finite"),
        (lambda x: {**x, next(iter(x)): float("inf")}, ValueError, r"must be finite, got inf"),
        (lambda x: {**x, next(iter(x)): "1,5"}, TypeError, r"must be a real number, got str"),
        (lambda x: {**x, next(iter(x)): "1.5"}, TypeError, r"must be a real number, got str"),
        (lambda x: [1.0, 2.0], TypeError, r"x must be a dict"),
        (lambda x: {**x, next(iter(x)): 10**400}, ValueError, r"must be finite, got int beyond"),
        (lambda x: {**x, "new": -(10**400)}, ValueError, r"x\['new'\] must be finite, got int"),
    ],
)
def test_bad_features_are_refused_and_the_model_is_unchanged(cls, change, error, match):
    model, (x, y) = _trained(cls)
    before = _state(model)
    with pytest.raises(error, match=match):
        model.learn_one(change(x), y)
    after = _state(model)
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1:] == after[1:]
    if not isinstance(change(x), list):
        with pytest.raises(error, match=match):
            model.predict_one(change(x))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("w", [-1.0, float("nan"), "1", True, np.bool_(True), 1 + 0j])
def test_bad_weights_are_refused(cls, w):
    model, (x, y) = _trained(cls)
    before = model.net.params.copy()
    with pytest.raises(ValueError, match=r"w \(the sample weight\) must be a finite float >= 0"):
        model.learn_one(x, y, w=w)
    np.testing.assert_array_equal(model.net.params, before)


def test_weight_scales_the_step():
    (a, (x, y)), (b, _) = _trained(MLPClassifier), _trained(MLPClassifier)
    start = a.net.params.copy()
    a.learn_one(x, y, w=0.5)
    b.lr = b.lr * 0.5
    b.learn_one(x, y)
    np.testing.assert_array_equal(a.net.params, b.net.params)
    assert np.any(a.net.params != start)


@pytest.mark.parametrize(
    ("y", "error", "match"),
    [
        (None, ValueError, r"y must be a class label, got None"),
        ([1], TypeError, r"y must be a hashable class label, got list"),
    ],
)
def test_bad_labels(y, error, match):
    model, (x, _) = _trained(MLPClassifier)
    with pytest.raises(error, match=match):
        model.learn_one(x, y)
    assert model.classes == (False, True)


@pytest.mark.parametrize(
    ("y", "error", "match"),
    [
        ("40", TypeError, r"y must be a real number \(the target\), got str '40'"),
        (float("inf"), ValueError, r"y must be finite, got inf"),
        (True, TypeError, r"y must be a real number \(the target\), got bool"),
        (40 + 0j, TypeError, r"y must be a real number \(the target\), got complex"),
        (np.complex128(40), TypeError, r"y must be a real number \(the target\), got complex"),
        pytest.param(
            10**400, ValueError, r"y must be finite, got int beyond float64's range", id="1e400"
        ),
    ],
)
def test_bad_targets(y, error, match):
    model, (x, _) = _trained(MLPRegressor)
    before = (model.net.params.copy(), model.y_mean, model.y_std, model._w_sum)
    with pytest.raises(error, match=match):
        model.learn_one(x, y)
    np.testing.assert_array_equal(model.net.params, before[0])
    assert (model.y_mean, model.y_std, model._w_sum) == before[1:]


def test_regressor_divergence_raises_and_leaves_the_model_as_it_was():
    from fastmlp import DivergenceError

    model = MLPRegressor(seed=0, lr=1e6)
    with pytest.raises(DivergenceError):
        for x, y in datasets.TrumpApproval().take(100):
            state = (model.net.params.copy() if model.net else None, model.y_mean, model.y_std)
            model.learn_one(x, y)
    np.testing.assert_array_equal(model.net.params, state[0])
    assert (model.y_mean, model.y_std) == state[1:]


def _full_state(model):
    """Everything a failed call must leave as it was."""
    state = {k: v for k, v in vars(model).items() if k != "lr"}  # the tests set lr
    return (
        model.net.params.copy() if model.net is not None else None,
        None if model.net is None else model.net.layer_sizes,
        None if model.net is None else (model.net.n_updates_, model.net.n_samples_seen_),
        model.features,
        getattr(model, "classes", None),
        {k: v for k, v in state.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
    )


def _assert_same_state(before, after):
    if before[0] is None:
        assert after[0] is None
    else:
        np.testing.assert_array_equal(before[0], after[0])
    assert before[1:] == after[1:]


# ---- reviewer's findings: one test each ----------------------------------------------------


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("first", [{}, {"a": None}])
def test_an_empty_first_event_leaves_no_random_input_column(cls, first):
    """B1: the first event has no feature, so the net is built with one spare column; the
    feature that later takes it must start with zero weights, as any new feature does."""
    model = cls(seed=0)
    y0, y1 = (True, False) if cls is MLPClassifier else (1.0, 3.0)
    model.learn_one(first, y0)
    model.learn_one({}, y1)
    assert model.features == ()
    np.testing.assert_array_equal(model.net.weights[0], 0.0)
    x = {"b": 2.5}
    predict = model.predict_proba_one if cls is MLPClassifier else model.predict_one
    before = predict(x)
    model.learn_one(x, y0, w=0.0)  # registers "b" without a step
    assert model.features == ("b",)
    assert predict(x) == before
    np.testing.assert_array_equal(model.net.weights[0], 0.0)


def test_regressor_a_failed_step_keeps_the_statistics_and_the_output_layer():
    """B2: a target far from the mean moves the statistics, so the output layer is rescaled
    before the step; when the step fails (diverges, or x holds NaN) both are put back."""
    from fastmlp import DivergenceError

    model, (x, _) = _trained(MLPRegressor)
    far = model.y_mean + 50 * model.y_std
    nan_x = {**x, next(iter(x)): float("nan")}  # a known feature: the fast gather takes it
    for lr, event, error in [(model.lr, nan_x, ValueError), (1e308, x, DivergenceError)]:
        before = _full_state(model)
        model.lr = lr
        with pytest.raises(error):
            model.learn_one(event, far)
        _assert_same_state(before, _full_state(model))
    model.lr = 0.03
    model.learn_one(x, far)  # and then it learns as if nothing had happened
    twin, _ = _trained(MLPRegressor)
    twin.learn_one(x, far)
    np.testing.assert_array_equal(model.net.params, twin.net.params)
    assert (model.y_mean, model.y_std) == (twin.y_mean, twin.y_std)


def test_regressor_learn_many_divergence_leaves_the_model_as_it_was():
    """B2, B4: learn_many's matrix path with lr=1e6 diverges after a few rows: all or
    nothing, the statistics and the rescaled output layer included."""
    from fastmlp import DivergenceError

    stream = list(datasets.TrumpApproval().take(101))
    model = MLPRegressor(seed=0, lr=1e6)
    model.learn_one(*stream[0])
    before = _full_state(model)
    X = pd.DataFrame([x for x, _ in stream[1:]])
    assert not X.isna().any().any()  # the matrix path
    with pytest.raises(DivergenceError):
        model.learn_many(X, pd.Series([y for _, y in stream[1:]]))
    _assert_same_state(before, _full_state(model))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_a_failed_event_registers_no_feature_class_or_capacity(cls):
    """B4: a step that fails on an event with new features (and a new class) rolls them back."""
    from fastmlp import DivergenceError

    model, (x, y) = _trained(cls)
    if cls is MLPClassifier:
        y = "a new class"
    else:
        y = model.y_mean + 50 * model.y_std
    x = {**x, **{f"new{i}": 1e3 for i in range(40)}}  # beyond the capacity: a rebuild
    before = _full_state(model)
    model.lr = 1e308  # the step overflows
    with pytest.raises(DivergenceError):
        model.learn_one(x, y)
    _assert_same_state(before, _full_state(model))
    model.lr = 0.03
    twin, _ = _trained(cls)
    for m in (model, twin):
        m.learn_one(x, y)
    np.testing.assert_array_equal(model.net.params, twin.net.params)
    assert model.features == twin.features


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (float("inf"), ValueError, r"X\['f'\] must be finite, got inf in row 13"),
        ("abc", TypeError, r"x\['f'\] must be a real number, got str"),
    ],
)
def test_learn_many_is_all_or_nothing(cls, bad, error, match):
    """B4: a bad value in a later row of a frame (here in a new column) is refused before
    anything is learned: no row, no feature."""
    model, _ = _trained(cls)
    stream = list(
        (datasets.Phishing() if cls is MLPClassifier else datasets.TrumpApproval()).take(20)
    )
    X = pd.DataFrame([x for x, _ in stream])
    X["f"] = 1.0
    X.index = X.index + 3
    X = X.astype(object) if isinstance(bad, str) else X
    X.loc[13, "f"] = bad
    before = _full_state(model)
    with pytest.raises(error, match=match):
        model.learn_many(X, pd.Series([y for _, y in stream], index=X.index))
    _assert_same_state(before, _full_state(model))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_predict_many_names_the_column_of_an_inf(cls):
    """B5: the error names the DataFrame's column (and row label), not the internal matrix."""
    model, _ = _trained(cls)
    X = pd.DataFrame(
        [
            x
            for x, _ in (
                datasets.Phishing() if cls is MLPClassifier else datasets.TrumpApproval()
            ).take(5)
        ]
    )
    name = X.columns[2]
    X.loc[3, name] = -np.inf
    methods = [model.predict_many] + ([model.predict_proba_many] if cls is MLPClassifier else [])
    for method in methods:
        with pytest.raises(ValueError, match=rf"X\[{name!r}\] must be finite, got -inf in row 3"):
            method(X)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_predict_many_ignores_unknown_columns(cls):
    model, _ = _trained(cls)
    X = pd.DataFrame(
        [
            x
            for x, _ in (
                datasets.Phishing() if cls is MLPClassifier else datasets.TrumpApproval()
            ).take(10)
        ]
    )
    wider = X.assign(never_seen=7.0, other=np.nan)
    pd.testing.assert_series_equal(model.predict_many(wider), model.predict_many(X))
    expected = [model.predict_one(x) for x in X.to_dict(orient="records")]
    assert (
        model.predict_many(wider).tolist() == pytest.approx(expected, rel=1e-12)
        if cls is MLPRegressor
        else model.predict_many(wider).tolist() == expected
    )
    if cls is MLPClassifier:
        pd.testing.assert_frame_equal(model.predict_proba_many(wider), model.predict_proba_many(X))


def test_numpy_and_python_ints_are_one_class():
    model = MLPClassifier(seed=0)
    model.learn_one({"a": 1.0}, np.int64(1))
    model.learn_one({"a": -1.0}, 0)
    model.learn_one({"a": 1.0}, 1)
    model.learn_one({"a": -1.0}, np.int32(0))
    model.learn_many(pd.DataFrame({"a": [1.0, -1.0]}), pd.Series([1, 0], dtype=np.int64))
    assert model.classes == (1, 0)
    assert set(model.predict_proba_one({"a": 1.0})) == {0, 1}


def test_the_event_that_brings_a_class_is_learned_on_its_features():
    """The network is rebuilt with one more output for a new class: the step that follows
    must see the event's features (the gathered input carried over to the new buffer)."""
    stream = list(datasets.ImageSegments().take(400))
    old = [(x, y) for x, y in stream if y in ("path", "window", "foliage")][:60]
    a, b = MLPClassifier(seed=0), MLPClassifier(seed=0)
    for m in (a, b):
        for x, y in old:
            m.learn_one(x, y)
    x_new = stream[0][0]
    a.learn_one(x_new, "sky")
    b.learn_one(x_new, "sky", w=0.0)  # the class only
    b._n_learned -= 1
    b.learn_one(x_new, "sky")  # a known class: the fast path
    assert a.classes == b.classes
    np.testing.assert_array_equal(a.net.params, b.net.params)
