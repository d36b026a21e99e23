"""ONNX export (fastmlp/export.py) against onnxruntime, and the scikit-learn round trip
(fastmlp/sklearn/_convert.py).

Tolerance of onnxruntime against ``net.predict`` (both in the graph's dtype): every element
within ``4 * n_layers`` ulps (``eps`` of the dtype) of its magnitude, ``magnitude = (|net
output| + 1) * target_scale + |target_mean|`` (``target_scale = 1``, ``target_mean = 0`` without
target scaling). The two sides compute the same formulas in different orders and with
different elementary functions: onnxruntime's MLAS Gemm (blocked, FMA) against the kernels'
reassociated dot products, MLAS's tanh/sigmoid/exp against the kernels', and the input
scaling rounded in the graph's dtype (Sub, Div) against float64 on the test's side, then
rounded once. Each layer adds a few ulps of the magnitude of its terms (its pre-activations are
O(1) sums on the grid's nets, hence the ``+ 1``), and the errors add up over the layers: "a few
ulps times the depth", 16 ulps on the grid's deepest (4-layer) nets. Measured max over the grid
(``python tests/test_export.py`` prints it): 3.7 ulps (float64: 2.7e-15 absolute unscaled,
1.8e-14 with target scaling to |y| ~ 100), 3.3 ulps (float32: 1.9e-6 absolute unscaled, 9.5e-6
scaled); at most 41% of the tolerance.
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
import warnings

import numpy as np
import pytest
from conftest import GRID, SEED, TOL, case_id, make_case

import fastmlp
from fastmlp import MLP, __version__

ULPS_PER_LAYER = 4


def allowed_ulps(net):
    """The tolerance of a net, in ulps of the magnitude: a few per weight layer."""
    return ULPS_PER_LAYER * net.layout.n_layers


def _onnx():
    return pytest.importorskip("onnx")


def _ort():
    return pytest.importorskip("onnxruntime")


def _export():
    _onnx()
    from fastmlp import export

    return export


def run(model, X, input_name="input"):
    """onnxruntime's outputs ``{name: array}`` for ``X``, on one thread."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {input_name: X}), strict=True))


def scaling(net, dtype, rng):
    """Input (and, for identity outputs, target) standardisation of a raw-input model, its
    values rounded to ``dtype`` (as the graph holds them)."""
    n_in, n_out = net.layout.n_in, net.layout.n_out
    kw = {
        "input_mean": rng.uniform(-50, 50, n_in).astype(dtype),
        "input_scale": rng.uniform(0.5, 20, n_in).astype(dtype),
    }
    if net.output == "identity":
        kw["target_mean"] = rng.uniform(-100, 100, n_out).astype(dtype)
        kw["target_scale"] = rng.uniform(0.5, 10, n_out).astype(dtype)
    return kw


def compare(net, X, scaled, dtype=None, rng=None):
    """``(got, expected, ulps)``: onnxruntime's ``output`` for the raw ``X`` and
    ``net.predict`` of the standardised ``X`` (then unscaled), and the largest difference in
    ulps of the magnitude (see the module docstring)."""
    export = _export()
    dt = np.dtype(net.dtype if dtype is None else dtype)
    kw = scaling(net, dt, rng or np.random.default_rng(SEED)) if scaled else {}
    mean, scale = kw.get("input_mean", 0.0), kw.get("input_scale", 1.0)
    t_mean, t_scale = kw.get("target_mean", 0.0), kw.get("target_scale", 1.0)
    X_raw = (X.astype(np.float64) * scale + mean).astype(dt)  # what a user feeds the graph
    model = export.to_onnx(net, dtype=dt, **kw)
    got = run(model, X_raw)["output"]
    assert got.dtype == dt and got.shape == (X.shape[0], net.layout.n_out)
    p = net.predict((X_raw.astype(np.float64) - mean) / scale).astype(np.float64)
    expected = p * t_scale + t_mean
    magnitude = (np.abs(p) + 1) * t_scale + np.abs(t_mean)
    ulps = float(np.max(np.abs(got - expected) / magnitude) / np.finfo(dt).eps)
    return got, expected, ulps


@pytest.mark.parametrize("scaled", [False, True], ids=["plain", "scaled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GRID, ids=[case_id(c) for c in GRID])
def test_onnxruntime_equals_predict_on_the_grid(case, dtype, scaled):
    net, X, _ = make_case(case, dtype, n_samples=16)
    _, _, ulps = compare(net, X * 2, scaled)
    assert ulps <= allowed_ulps(net), (
        f"{case_id(case)} {np.dtype(dtype)} {scaled=}: {ulps:.1f} ulps"
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_deep_net_with_a_different_activation_per_layer(dtype):
    rng = np.random.default_rng(SEED)
    hidden = ["relu", "leaky_relu", "tanh", "sigmoid", "identity", "leaky_relu"]
    net = MLP((6, 16, 12, 9, 8, 10, 11, 4), hidden=hidden, output="softmax", dtype=dtype)
    for b in net.biases:
        b[...] = rng.normal(scale=0.5, size=b.shape)
    model = _export().to_onnx(net)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gemm") == 7 and ops[-2:] == ["Softmax", "ArgMax"]
    # leaky relu: the LeakyRelu op in float32 (its alpha attribute is a float32), composed in
    # float64, where float32(0.01) would not be the kernels' slope
    assert ("LeakyRelu" in ops) == (np.dtype(dtype) == np.float32)
    assert ("Where" in ops) == (np.dtype(dtype) == np.float64)
    _, _, ulps = compare(net, rng.normal(size=(64, 6)) * 3, scaled=True)
    assert ulps <= allowed_ulps(net)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_trained_digits_model_on_raw_pixels(dtype):
    """A realistic model: trained on standardised digits, exported with the scaling, fed raw
    pixels (0..16): outputs within the tolerance, the same classes."""
    from fastmlp.datasets import digits_train_test

    X_train, y_train, X_test, _ = digits_train_test()
    mean, scale = X_train.mean(axis=0), X_train.std(axis=0) + 1.0
    net = MLP((64, 32, 16, 10), hidden=["relu", "tanh"], seed=0, dtype=dtype)
    net.fit((X_train - mean) / scale, y_train, epochs=2, lr=0.02)
    out = run(_export().to_onnx(net, input_mean=mean, input_scale=scale), X_test.astype(dtype))
    m, s = mean.astype(dtype).astype(np.float64), scale.astype(dtype).astype(np.float64)
    p = net.predict((X_test.astype(dtype) - m) / s).astype(np.float64)
    ulps = np.max(np.abs(out["output"] - p) / (np.abs(p) + 1)) / np.finfo(dtype).eps
    assert ulps <= allowed_ulps(net)
    ok = _margin(p, True)
    assert ok.mean() > 0.99
    np.testing.assert_array_equal(out["label"][ok], p.argmax(axis=1)[ok])


@pytest.mark.parametrize(
    ("net_dtype", "graph_dtype"), [("float64", "float32"), ("float32", "float64")]
)
def test_graph_in_the_other_dtype(net_dtype, graph_dtype):
    """A float64 net as a float32 graph (weights rounded), a float32 net as a float64 graph
    (exact weights): within float32's tolerance of the net."""
    net, X, _ = make_case(((5, 12, 9), "tanh", "softmax", "cross_entropy"), net_dtype)
    model = _export().to_onnx(net, dtype=graph_dtype)
    assert model.graph.initializer[0].data_type == (1 if graph_dtype == "float32" else 11)
    got = run(model, X.astype(graph_dtype))["output"]
    assert got.dtype == np.dtype(graph_dtype)
    np.testing.assert_allclose(got, net.predict(X), **TOL[np.dtype(np.float32)])


def test_scaling_nodes_come_first_and_last():
    net = MLP((3, 4, 2), output="identity", loss="mse")
    model = _export().to_onnx(
        net, input_mean=1.0, input_scale=[1.0, 2.0, 4.0], target_mean=[5, 6], target_scale=3
    )
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Sub", "Div", "Gemm", "Tanh", "Gemm", "Mul", "Add"]
    inits = {t.name: _onnx().numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(inits["input_mean"], [1.0, 1.0, 1.0])  # a scalar, repeated
    np.testing.assert_array_equal(inits["target_scale"], [3.0, 3.0])
    X = np.random.default_rng(SEED).normal(size=(5, 3))
    expected = net.predict((X - 1.0) / [1.0, 2.0, 4.0]) * 3 + [5, 6]
    np.testing.assert_allclose(run(model, X)["output"], expected, **TOL[np.dtype(np.float64)])
    # either half of a standardisation alone
    only = _export().to_onnx(net, input_scale=2.0, target_mean=1.0)
    assert [n.op_type for n in only.graph.node] == ["Div", "Gemm", "Tanh", "Gemm", "Add"]
    np.testing.assert_allclose(run(only, X)["output"], net.predict(X / 2) + 1, rtol=1e-12)


def test_missing_inputs_are_filled_before_the_scaling():
    net, X, _ = make_case(((3, 5, 2), "tanh", "identity", "mse"), np.float64)
    fill, mean, scale = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.0, -1.0]), 2.0
    model = _export().to_onnx(net, input_fill=fill, input_mean=mean, input_scale=scale)
    assert [n.op_type for n in model.graph.node][:4] == ["IsNaN", "Where", "Sub", "Div"]
    X_missing = X.copy()
    X_missing[0, 1] = X_missing[3, 0] = X_missing[5] = np.nan
    filled = np.where(np.isnan(X_missing), fill, X_missing)
    np.testing.assert_allclose(
        run(model, X_missing)["output"], net.predict((filled - mean) / scale), rtol=1e-12
    )
    assert _export().metadata(model)["input_fill"] is True
    # without fill values a NaN goes through
    assert np.isnan(run(_export().to_onnx(net), X_missing)["output"][5]).all()


def test_mlp_to_onnx_method(tmp_path):
    if not hasattr(MLP, "to_onnx"):
        pytest.skip("MLP.to_onnx is not added yet")
    export = _export()
    net, X, _ = make_case(((3, 5, 2), "relu", "softmax", "cross_entropy"), np.float32)
    model = net.to_onnx(tmp_path / "m.onnx", class_names=["a", "b"])
    assert (
        model.SerializeToString() == export.to_onnx(net, class_names=["a", "b"]).SerializeToString()
    )
    assert export.metadata(tmp_path / "m.onnx")["class_names"] == ["a", "b"]


def test_preprocessor_onnx_kwargs_make_a_raw_input_model():
    """The CLI's saved preprocessing (fastmlp.preprocessing) exports through its onnx_kwargs."""
    preprocessing = pytest.importorskip("fastmlp.preprocessing")
    Pre = getattr(preprocessing, "Preprocessor", None)
    if Pre is None or not hasattr(Pre, "onnx_kwargs"):
        pytest.skip("no Preprocessor.onnx_kwargs")
    export = _export()
    rng = np.random.default_rng(SEED)
    X = rng.normal(loc=[10.0, -5.0, 200.0], scale=[1.0, 3.0, 50.0], size=(40, 3))
    y = X @ [1.0, 2.0, 0.1] + 30
    pre = Pre.for_regressor(X, y, feature_names=["a", "b", "c"])
    net = MLP((3, 6, 1), output="identity", loss="mse")
    got = run(export.to_onnx(net, **pre.onnx_kwargs()), X)["output"]
    expected = pre.unscale_target(net.predict(pre.transform(X)))
    np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-12, atol=1e-12)
    labels = np.array(["no", "yes"])[(y > 60).astype(int)]
    pre = Pre.for_classifier(X, labels)
    net = MLP((3, 6, 1), output="sigmoid", loss="binary_cross_entropy")
    out = run(export.to_onnx(net, **pre.onnx_kwargs()), X)
    p = net.predict(pre.transform(X))
    np.testing.assert_allclose(out["output"], p, rtol=1e-12, atol=1e-15)
    ok = _margin(p, False)
    names = np.array(pre.class_names)[(p[:, 0] >= 0.5).astype(int)]
    np.testing.assert_array_equal(out["label"][ok], names[ok])


def _margin(p, softmax):
    """Rows whose label does not hinge on rounding (no output within 1e-6 of a tie)."""
    if not softmax:
        return np.all(np.abs(p - 0.5) > 1e-6, axis=1)
    top = np.sort(p, axis=1)
    return top[:, -1] - top[:, -2] > 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("sizes", "output", "loss"),
    [
        ((4, 6, 3), "softmax", "cross_entropy"),
        ((4, 6, 2), "softmax", "mse"),
        ((4, 6, 1), "sigmoid", "binary_cross_entropy"),
        ((4, 6, 3), "sigmoid", "binary_cross_entropy"),
    ],
)
def test_label_is_predict_classes(sizes, output, loss, dtype):
    rng = np.random.default_rng(SEED)
    net = MLP(sizes, hidden="tanh", output=output, loss=loss, dtype=dtype)
    for b in net.biases:
        b[...] = rng.normal(size=b.shape)
    X = rng.normal(size=(200, sizes[0])).astype(dtype) * 3
    out = run(_export().to_onnx(net), X)
    label = out["label"]
    assert label.dtype == np.int64
    assert label.shape == ((200,) if output == "softmax" or sizes[-1] == 1 else (200, sizes[-1]))
    ok = _margin(net.predict(X), output == "softmax")
    assert ok.mean() > 0.9
    np.testing.assert_array_equal(label[ok], net.predict_classes(X)[ok])


@pytest.mark.parametrize(
    ("sizes", "output", "names"),
    [((4, 6, 3), "softmax", ["cat", "dog", "eel"]), ((4, 6, 1), "sigmoid", ["no", "yes"])],
)
def test_label_is_the_class_name(sizes, output, names):
    rng = np.random.default_rng(SEED)
    loss = "cross_entropy" if output == "softmax" else "binary_cross_entropy"
    net = MLP(sizes, output=output, loss=loss)
    X = rng.normal(size=(100, 4)) * 3
    out = run(_export().to_onnx(net, class_names=names), X)
    ok = _margin(net.predict(X), output == "softmax")
    assert out["label"].shape == (100,)
    np.testing.assert_array_equal(out["label"][ok], np.array(names)[net.predict_classes(X)][ok])


def test_multilabel_class_names_stay_in_the_metadata():
    export = _export()
    net = MLP((4, 3), output="sigmoid", loss="binary_cross_entropy")
    model = export.to_onnx(net, class_names=["red", "green", "blue"])
    assert export.metadata(model)["class_names"] == ["red", "green", "blue"]
    out = run(model, np.eye(4)[:, :4] * 5)
    assert out["label"].dtype == np.int64 and out["label"].shape == (4, 3)


def test_regression_has_only_output():
    model = _export().to_onnx(MLP((3, 2), output="identity", loss="mse"), input_name="x")
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert run(model, np.ones((2, 3)), input_name="x")["output"].shape == (2, 2)


def test_metadata_round_trips_through_a_file(tmp_path):
    onnx, export = _onnx(), _export()
    net = MLP((3, 5, 4, 2), hidden=["relu", "tanh"], output="softmax", dtype=np.float32)
    path = tmp_path / "model.onnx"
    model = export.to_onnx(
        net, path, feature_names=["a", "b", "c"], class_names=["no", "yes"], input_mean=0.5
    )
    loaded = onnx.load(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    assert loaded.SerializeToString() == model.SerializeToString()
    assert loaded.producer_name == "fastmlp" and loaded.producer_version == __version__
    assert {p.key: p.value for p in loaded.metadata_props}["layer_sizes"] == "[3, 5, 4, 2]"
    assert export.metadata(path) == {
        "fastmlp_version": __version__,
        "layer_sizes": [3, 5, 4, 2],
        "hidden": ["relu", "tanh"],
        "output": "softmax",
        "loss": "cross_entropy",
        "activations": ["relu", "tanh", "softmax"],
        "dtype": "float32",
        "input_fill": False,
        "input_scaling": True,
        "target_scaling": False,
        "feature_names": ["a", "b", "c"],
        "class_names": ["no", "yes"],
    }
    for prop in loaded.metadata_props:  # every value is JSON
        json.loads(prop.value)
    assert not list(tmp_path.glob(".fastmlp-onnx-*"))  # no temporary file left


@pytest.mark.parametrize("opset", [13, None, "latest"])
def test_opsets(opset):
    onnx, export = _onnx(), _export()
    if opset == "latest":
        opset = onnx.defs.onnx_opset_version()
        pytest.importorskip("onnxruntime")
    net = MLP((3, 4, 3), hidden="leaky_relu", output="softmax")
    model = export.to_onnx(net, opset=opset)
    assert model.opset_import[0].version == (opset or export.DEFAULT_OPSET)
    if opset != onnx.defs.onnx_opset_version():  # onnxruntime may lag the newest onnx
        X = np.random.default_rng(SEED).normal(size=(4, 3))
        np.testing.assert_allclose(run(model, X)["output"], net.predict(X), rtol=1e-12)


def test_export_file_loads_a_saved_model(tmp_path):
    export = _export()
    net, X, _ = make_case(((3, 5, 2), "relu", "sigmoid", "binary_cross_entropy"), np.float64)
    net.save(tmp_path / "model.npz")
    model = export.export_file(
        tmp_path / "model.npz", tmp_path / "model.onnx", dtype="float32", feature_names=list("xyz")
    )
    assert export.metadata(tmp_path / "model.onnx")["feature_names"] == ["x", "y", "z"]
    onnx = _onnx()
    assert onnx.load(str(tmp_path / "model.onnx")).SerializeToString() == (
        model.SerializeToString()
    )
    got = run(model, X.astype(np.float32))["output"]
    np.testing.assert_allclose(got, net.predict(X), **TOL[np.dtype(np.float32)])
    with pytest.raises(FileNotFoundError):
        export.export_file(tmp_path / "missing.npz", tmp_path / "m.onnx")


def test_cli_export_of_a_model_trained_on_raw_text_labels(tmp_path, capsys):
    """``fastmlp train`` on a raw CSV (unscaled features, text labels), then ``fastmlp
    export``: the graph takes the raw rows and gives ``fastmlp predict``'s class names."""
    export = _export()
    from fastmlp import cli

    rng = np.random.default_rng(SEED)
    X = rng.normal(loc=[100.0, -3.0, 0.0], scale=[20.0, 0.5, 1.0], size=(200, 3))
    labels = np.where((X[:, 0] - 100.0) / 20.0 + X[:, 2] > 0, "malignant", "benign")
    lines = ["size,ratio,texture,diagnosis"] + [
        ",".join([*(repr(float(v)) for v in row), name])
        for row, name in zip(X, labels, strict=True)
    ]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    model, graph = tmp_path / "model.npz", tmp_path / "model.onnx"
    data = str(tmp_path / "data.csv")
    assert cli.main(["train", data, "--epochs", "3", "--save", str(model)]) == 0
    assert cli.main(["export", str(model), "-o", str(graph)]) == 0
    assert cli.main(["predict", str(model), data]) == 0
    predicted = capsys.readouterr().out.split()[-200:]
    onnx_model = _onnx().load(str(graph))
    got = run(onnx_model, X)
    assert list(got["label"]) == predicted
    meta = export.metadata(graph)
    assert meta["feature_names"] == ["size", "ratio", "texture"]
    assert sorted(meta["class_names"]) == ["benign", "malignant"] and meta["input_scaling"]
    code = cli.main(["export", str(tmp_path / "missing.npz"), "-o", str(graph)])
    assert code == 2 and "missing.npz: no such file" in capsys.readouterr().err


def _bad_calls():
    soft = MLP((3, 4, 2), output="softmax")
    reg = MLP((3, 2), output="identity", loss="mse")
    return [
        ("not a net", {}, TypeError, "net must be a fastmlp.MLP, got str"),
        (soft, {"dtype": np.int32}, TypeError, "dtype must be float32 or float64, got int32"),
        (soft, {"input_name": ""}, TypeError, "input_name must be a non-empty string"),
        (soft, {"input_name": "output"}, ValueError, "input_name must not be an output's name"),
        (
            soft,
            {"feature_names": ["a", "b"]},
            ValueError,
            r"feature_names must have 3 entries \(n_in=3\), got 2",
        ),
        (soft, {"feature_names": "abc"}, TypeError, "feature_names must be a sequence of 3"),
        (soft, {"class_names": ["a"]}, ValueError, r"class_names must have 2 entries \(one per"),
        (reg, {"class_names": ["a", "b"]}, ValueError, "class_names need a sigmoid or softmax"),
        (soft, {"target_mean": 0.0}, ValueError, "target_mean/target_scale undo a"),
        (
            soft,
            {"input_mean": [1.0, 2.0]},
            ValueError,
            r"input_mean must be a scalar or have shape \(3,\) \(one per input, n_in=3\), "
            r"got \(2,\)",
        ),
        (soft, {"input_mean": [0.0, np.nan, 1.0]}, ValueError, "input_mean must be finite"),
        (soft, {"input_mean": ["a", "b", "c"]}, TypeError, "input_mean must be real numbers"),
        (soft, {"input_scale": [1.0, 0.0, 1.0]}, ValueError, "input_scale must be non-zero"),
        (soft, {"input_fill": np.inf}, ValueError, "input_fill must be finite"),
        (
            reg,
            {"target_scale": [1.0, 2.0, 3.0]},
            ValueError,
            r"target_scale must be a scalar or have shape \(2,\)",
        ),
        (soft, {"opset": 12}, ValueError, r"opset must be in \[13, "),
        (soft, {"input_name": "W0"}, ValueError, "input_name must not be the name of a tensor"),
        (soft, {"opset": "17"}, TypeError, r"opset must be an int in \[13, "),
    ]


def test_weights_beyond_float32_are_refused_in_a_float32_graph():
    net = MLP((3, 4, 2))
    net.weights[1][0, 0] = 1e39
    with pytest.raises(ValueError, match="W1 has values that are not finite in float32"):
        _export().to_onnx(net, dtype=np.float32)
    _export().to_onnx(net)  # float64: fine


@pytest.mark.parametrize("bad", range(len(_bad_calls())))
def test_bad_arguments(bad):
    net, kw, exc, match = _bad_calls()[bad]
    with pytest.raises(exc, match=match):
        _export().to_onnx(net, **kw)


def test_missing_onnx_names_the_extra(monkeypatch):
    _onnx()
    for name in [m for m in sys.modules if m == "onnx" or m.startswith("onnx.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    monkeypatch.delitem(sys.modules, "fastmlp.export")
    monkeypatch.delattr(fastmlp, "export")
    export = importlib.import_module("fastmlp.export")  # importable without onnx
    net = MLP((2, 1), output="sigmoid", loss="binary_cross_entropy")
    with pytest.raises(ImportError, match=r'needs the onnx .* pip install "fastmlp\[onnx\]"'):
        export.to_onnx(net)
    with pytest.raises(ImportError, match=r"fastmlp\[onnx\]"):
        export.export_file("model.npz", "model.onnx")


# --- scikit-learn ---------------------------------------------------------------------------------


def _sklearn():
    sk = pytest.importorskip("sklearn.neural_network")
    from sklearn.exceptions import ConvergenceWarning

    import fastmlp.sklearn as fs

    return sk, fs, ConvergenceWarning


def _quiet_fit(est, X, y):
    _, _, ConvergenceWarning = _sklearn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _targets(kind, rng, n):
    if kind == "binary":
        return rng.integers(0, 2, n)
    if kind == "multiclass":
        return np.array(["ant", "bee", "cat", "dog"])[rng.integers(0, 4, n)]
    if kind == "multilabel":
        return rng.integers(0, 2, (n, 3))
    if kind == "one output":
        return rng.normal(size=n)
    return rng.normal(size=(n, 3))


CLASSIFIER_KINDS = ("binary", "multiclass", "multilabel")
REGRESSOR_KINDS = ("one output", "three outputs")
KINDS = [(k, True) for k in CLASSIFIER_KINDS] + [(k, False) for k in REGRESSOR_KINDS]


def _assert_same_predictions(a, b, X, classifier, dtype):
    if classifier:
        pa, pb = a.predict_proba(X), b.predict_proba(X)
        np.testing.assert_allclose(pa, pb, **TOL[np.dtype(dtype)])
        ok = np.all(np.abs(pa - 0.5) > 1e-5, axis=1)
        np.testing.assert_array_equal(a.predict(X)[ok], b.predict(X)[ok])
    else:
        np.testing.assert_allclose(a.predict(X), b.predict(X), **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("kind", "classifier"), KINDS, ids=[k for k, _ in KINDS])
def test_fastmlp_to_sklearn_predicts_the_same(kind, classifier, dtype):
    sk, fs, _ = _sklearn()
    rng = np.random.default_rng(SEED)
    X, y = rng.normal(size=(80, 5)), _targets(kind, rng, 80)
    cls = fs.MLPClassifier if classifier else fs.MLPRegressor
    est = _quiet_fit(cls((7, 4), activation="tanh", max_iter=3, random_state=0, dtype=dtype), X, y)
    sk_model = est.to_sklearn()
    assert type(sk_model) is (sk.MLPClassifier if classifier else sk.MLPRegressor)
    _assert_same_predictions(est, sk_model, X, classifier, dtype)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "n_iter_", "t_"):
        assert getattr(sk_model, name) == getattr(est, name), name
    for a, b in zip(
        sk_model.coefs_ + sk_model.intercepts_, est.coefs_ + est.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    if classifier:
        np.testing.assert_array_equal(sk_model.classes_, est.classes_)
    sk_params = sk_model.get_params()
    shared = {k: v for k, v in est.get_params().items() if k in sk_params}
    assert set(est.get_params()) - set(shared) <= {"dtype", "normalize_y"}  # fastmlp's own
    assert {k: sk_params[k] for k in shared} == shared
    # scikit-learn can keep training it (with a fresh optimiser)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _sklearn()[2])
        sk_model.partial_fit(X, y)
    # and back: the same bits, or for a regressor whose target scaling was folded into the
    # output layer, the same predictions
    back = cls.from_sklearn(est.to_sklearn())
    assert back.net_.dtype == np.dtype(dtype)
    if classifier:
        np.testing.assert_array_equal(back.net_.params, est.net_.params)
    _assert_same_predictions(est, back, X, classifier, dtype)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize(("kind", "classifier"), KINDS, ids=[k for k, _ in KINDS])
def test_sklearn_to_fastmlp_predicts_the_same(kind, classifier, solver):
    sk, fs, _ = _sklearn()
    rng = np.random.default_rng(SEED)
    X, y = rng.normal(size=(80, 5)), _targets(kind, rng, 80)
    sk_cls = sk.MLPClassifier if classifier else sk.MLPRegressor
    sk_model = _quiet_fit(
        sk_cls(hidden_layer_sizes=(6, 5), solver=solver, max_iter=20, random_state=0), X, y
    )
    cls = fs.MLPClassifier if classifier else fs.MLPRegressor
    est = cls.from_sklearn(sk_model)
    assert type(est) is cls and est.dtype == np.float64
    _assert_same_predictions(sk_model, est, X, classifier, np.float64)
    for l, (W, b) in enumerate(zip(sk_model.coefs_, sk_model.intercepts_, strict=True)):
        np.testing.assert_array_equal(est.net_.weights[l], W.T)
        np.testing.assert_array_equal(est.net_.biases[l], b)
    assert est.hidden_layer_sizes == (6, 5) and est.activation == "relu"
    assert est.get_params()["solver"] == solver
    if solver == "lbfgs":  # kept: fastmlp refuses to continue such a training, saying why
        with pytest.raises(ValueError, match="solver='lbfgs' is not supported"):
            est.partial_fit(X, y)
    else:
        n_iter = sk_model.n_iter_
        factor = 1 if classifier else est.n_outputs_  # fastmlp sums the regressor's loss
        np.testing.assert_allclose(est.loss_curve_, np.multiply(sk_model.loss_curve_, factor))
        est.partial_fit(X, y)  # fastmlp continues from scikit-learn's weights
        assert est.n_iter_ == 1 and len(est.loss_curve_) == n_iter + 1
    f32 = cls.from_sklearn(sk_model, dtype=np.float32)
    assert f32.net_.dtype == np.float32
    _assert_same_predictions(sk_model, f32, X, classifier, np.float32)


def test_sklearn_conversion_errors():
    sk, fs, _ = _sklearn()
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(40, 3))
    with pytest.raises(NotFittedError):
        fs.MLPClassifier().to_sklearn()
    with pytest.raises(NotFittedError):
        fs.MLPRegressor.from_sklearn(sk.MLPRegressor())
    sk_clf = _quiet_fit(sk.MLPClassifier((3,), max_iter=2), X, rng.integers(0, 2, 40))
    with pytest.raises(TypeError, match="sk_model must be a fitted sklearn.neural_network.MLPRe"):
        fs.MLPRegressor.from_sklearn(sk_clf)
    with pytest.raises(TypeError, match="got MLPRegressor"):
        fs.MLPClassifier.from_sklearn(fs.MLPRegressor())
    poisson = _quiet_fit(sk.MLPRegressor(loss="poisson", max_iter=2), X, rng.uniform(1, 2, 40))
    with pytest.raises(ValueError, match="out_activation_='exp' \\(loss='poisson'\\)"):
        fs.MLPRegressor.from_sklearn(poisson)
    est = _quiet_fit(fs.MLPRegressor((4,), max_iter=2), X, rng.normal(size=40))
    est.net_ = MLP((3, 4, 1), hidden="leaky_relu", output="identity", loss="mse")
    with pytest.raises(ValueError, match="scikit-learn's MLPs have no 'leaky_relu' activation"):
        est.to_sklearn()
    est.net_ = MLP((3, 4, 4, 1), hidden=["relu", "tanh"], output="identity", loss="mse")
    with pytest.raises(ValueError, match="one activation for all hidden layers"):
        est.to_sklearn()


def _measure():
    """Print the largest difference between onnxruntime and net.predict over the grid (the
    cases of test_onnxruntime_equals_predict_on_the_grid), per dtype, plain and scaled."""
    for dtype, scaled in itertools.product((np.float64, np.float32), (False, True)):
        worst_abs, worst_rel, worst_ulps, worst_share = 0.0, 0.0, 0.0, 0.0
        for case in GRID:
            net, X, _ = make_case(case, dtype, n_samples=16)
            got, expected, ulps = compare(net, X * 2, scaled)
            diff = np.abs(got - expected)
            worst_abs = max(worst_abs, float(diff.max()))
            worst_rel = max(worst_rel, float(np.max(diff / np.maximum(np.abs(expected), 1))))
            worst_ulps = max(worst_ulps, ulps)
            worst_share = max(worst_share, ulps / allowed_ulps(net))
        print(
            f"{np.dtype(dtype)} {'scaled' if scaled else 'plain '}: max |onnxruntime - predict| "
            f"= {worst_abs:.3g} absolute, {worst_rel:.3g} relative to max(|predict|, 1), "
            f"{worst_ulps:.1f} ulps of the magnitude ({worst_share:.0%} of the tolerance at most)"
        )


if __name__ == "__main__":
    _measure()
