"""save/load: round trip, exact resume, refusal of bad files, atomic writes under SIGKILL."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastmlp import MLP, datasets
from fastmlp.persistence import FORMAT_VERSION


@pytest.fixture
def digits():
    X, y = datasets.load_digits()
    return X[:300], y[:300]


def model_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_resumes_exactly_after_save_and_load(tmp_path, digits, dtype):
    X, y = digits
    straight = MLP((64, 16, 10), hidden=["relu"], seed=3, dtype=dtype).fit(X, y, epochs=2, lr=0.05)
    first = MLP((64, 16, 10), hidden=["relu"], seed=3, dtype=dtype).fit(X, y, epochs=1, lr=0.05)
    first.save(tmp_path / "model.npz")
    resumed = MLP.load(tmp_path / "model.npz")
    assert resumed.dtype == np.dtype(dtype) and resumed.activations == ("relu", "softmax")
    resumed.fit(X, y, epochs=1, lr=0.05)
    np.testing.assert_array_equal(resumed.params, straight.params)  # bit-identical
    assert resumed.history_ == straight.history_
    assert resumed.n_updates_ == straight.n_updates_ == 600


def test_round_trip_keeps_everything(tmp_path):
    net = MLP((3, 4, 2, 1), hidden=["tanh", "leaky_relu"], output="sigmoid",
              loss="binary_cross_entropy", init="he", seed=None, dtype=np.float32)  # fmt: skip
    net.step(np.ones(3), 1.0, lr=0.1)
    net.save(tmp_path / "m.npz")
    back = MLP.load(str(tmp_path / "m.npz"))
    assert (back.layer_sizes, back.hidden, back.output, back.loss_name, back.init, back.seed) == (
        (3, 4, 2, 1), ("tanh", "leaky_relu"), "sigmoid", "binary_cross_entropy", "he", None
    )  # fmt: skip
    np.testing.assert_array_equal(back.params, net.params)
    assert back.n_updates_ == 1
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_the_format_is_plain_npz_without_pickle(tmp_path):
    net = MLP((2, 3, 2), seed=0)
    net.save(tmp_path / "m.npz")
    arrays = model_arrays(tmp_path / "m.npz")  # would raise if anything needed pickle
    assert str(arrays["format"]) == "fastmlp-mlp"
    assert int(arrays["format_version"]) == 2  # no preprocessing: what older fastmlp reads
    assert arrays["layer_sizes"].tolist() == [2, 3, 2]
    assert arrays["activations"].tolist() == ["tanh", "softmax"]
    np.testing.assert_array_equal(arrays["params"], net.params)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], "temporary file left"


def test_version_2_without_preprocessing_version_3_with_it(tmp_path):
    """A model without preprocessing is written as format 2, entry for entry what the previous
    fastmlp writes and reads; only preprocessing makes a version 3 file."""
    from fastmlp.persistence import _KEYS_V2, _KEYS_V3, load_preprocessing, save
    from fastmlp.preprocessing import Preprocessor

    net = MLP((2, 3, 2), seed=0)
    for pre in (None, Preprocessor()):
        save(net, tmp_path / "plain.npz", pre)
        arrays = model_arrays(tmp_path / "plain.npz")
        assert int(arrays["format_version"]) == 2 and set(arrays) == _KEYS_V2
        assert load_preprocessing(tmp_path / "plain.npz") is None
    model, _, _ = preprocessed_classifier()
    model.save(tmp_path / "pre.npz")
    arrays = model_arrays(tmp_path / "pre.npz")
    assert int(arrays["format_version"]) == FORMAT_VERSION == 3 and set(arrays) == _KEYS_V3
    assert load_preprocessing(tmp_path / "pre.npz").class_names == ("high", "low")


def test_saved_files_get_the_mode_of_a_plain_open_and_errors_name_the_target(tmp_path):
    net = MLP((2, 3, 2), seed=0)
    for umask, mode in ((0o022, 0o644), (0o077, 0o600)):
        old = os.umask(umask)
        try:
            net.save(tmp_path / f"m{umask}.npz")  # not the temporary file's 0600
        finally:
            os.umask(old)
        assert os.stat(tmp_path / f"m{umask}.npz").st_mode & 0o777 == mode
    target = tmp_path / "missing-dir" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        net.save(target)
    assert info.value.filename == str(target) and ".fastmlp-" not in str(info.value)
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        net.save(tmp_path / "d")
    assert info.value.filename == str(tmp_path / "d") and os.listdir(tmp_path / "d") == []


def rewrite(path, **changes):
    arrays = model_arrays(path)
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda p: rewrite(p, params=np.zeros(5)), r"params has shape \(5,\).*expected \(17,\)"),
        (lambda p: rewrite(p, layer_sizes=np.array([2, 9, 2])), r"params has shape \(17,\)"),
        (lambda p: rewrite(p, activations=np.array(["tanh", "sofmax"])),
         r"does not make a valid MLP .*Did you mean 'softmax'"),
        (lambda p: rewrite(p, params=np.full(17, np.nan)), r"params contains NaN/inf"),
        (lambda p: rewrite(p, format_version=np.array(FORMAT_VERSION + 1)),
         rf"format version {FORMAT_VERSION + 1}, written by a newer fastmlp; this version reads "
         rf"format {FORMAT_VERSION}"),
        (lambda p: rewrite(p, format=np.array("something-else")), r"no 'format' entry"),
        (lambda p: rewrite(p, rng_state=None), r"missing entries \['rng_state'\]"),
        (lambda p: rewrite(p, rng_state=np.array("{not json")), r"rng_state is malformed"),
    ],
)  # fmt: skip
def test_tampered_files_are_refused(tmp_path, tamper, message):
    path = tmp_path / "m.npz"
    MLP((2, 3, 2), seed=0).save(path)
    tamper(path)
    with pytest.raises(ValueError, match=r"m.npz is not a valid fastmlp model file: .*" + message):
        MLP.load(path)


def test_truncated_corrupted_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    MLP((20, 30, 2), seed=0).save(path)
    raw = path.read_bytes()
    cases = {
        "truncated.npz": raw[: len(raw) // 2],
        "corrupted.npz": raw[:400] + bytes(b ^ 0xFF for b in raw[400:420]) + raw[420:],
        "text.npz": b"hello, I am not a model\n",
        "empty.npz": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name} is not a valid fastmlp model file"):
            MLP.load(tmp_path / name)
    np.savez(tmp_path / "other.npz", X=np.zeros(3))
    with pytest.raises(ValueError, match=r"no 'format' entry"):
        MLP.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        MLP.load(tmp_path / "missing.npz")


SAVE_LOOP = """
import sys
import numpy as np
from fastmlp import MLP
net = MLP((200, 300, 10), seed=0)
print("ready", flush=True)
i = 0
while True:
    i += 1
    net.params = np.full(net.n_params, float(i))
    net.save(sys.argv[1])
"""


def test_killing_the_process_mid_save_never_breaks_the_file(tmp_path):
    """SIGKILL a process that saves in a loop, at random moments: the file always loads, and
    holds one complete model (all parameters equal to the same i)."""
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(0)
    for _ in range(8):
        with subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(path)], stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.05 + 0.3 * rng.random())
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        if not path.exists():
            continue  # killed before its first save completed
        net = MLP.load(path)
        assert np.all(net.params == net.params[0]) and net.params[0] >= 1
    assert path.exists(), "no save completed in 8 runs"


def test_pickle_round_trip_keeps_views_and_training_state():
    import pickle

    X = np.random.default_rng(0).normal(size=(30, 3))
    y = np.arange(30) % 2
    net = MLP((3, 6, 2), seed=4, dtype=np.float32)
    net.fit(X, y, epochs=2, lr=0.05, optimizer="adam", dropout=0.2)
    back = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(back.params, net.params)
    back.weights[0][0, 0] = 7.0  # still views of params
    assert back.params[0] == 7.0
    back.params = net.params
    assert back.history_ == net.history_ and back.n_updates_ == net.n_updates_
    net.fit(X, y, epochs=1, lr=0.05, optimizer="adam", dropout=0.2)
    back.fit(X, y, epochs=1, lr=0.05, optimizer="adam", dropout=0.2)
    np.testing.assert_array_equal(back.params, net.params)  # same shuffles, masks, moments


# --- preprocessing (format version 3) ------------------------------------------------------------
def preprocessed_classifier():
    from fastmlp.preprocessing import PreprocessedMLP, Preprocessor

    rng = np.random.default_rng(0)
    X = rng.normal(loc=100.0, scale=20.0, size=(60, 3))
    labels = np.where(X[:, 0] > 100, "high", "low")
    pre = Preprocessor.for_classifier(X, labels, feature_names=["a", "b", "c"], target_name="t")
    model = PreprocessedMLP(MLP((3, 4, 2), seed=0), pre).fit(X, labels, epochs=30, lr=0.1)
    return model, X, labels


def test_preprocessing_round_trip_predicts_on_raw_inputs(tmp_path):
    from fastmlp.persistence import load_preprocessing
    from fastmlp.preprocessing import PreprocessedMLP

    model, X, labels = preprocessed_classifier()
    assert np.mean(model.predict_classes(X) == labels) > 0.9  # learned on raw, unscaled X
    model.save(tmp_path / "m.npz")
    back = PreprocessedMLP.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict_classes(X), model.predict_classes(X))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    pre = load_preprocessing(tmp_path / "m.npz")
    kwargs = pre.onnx_kwargs()
    assert kwargs["feature_names"] == ["a", "b", "c"] and kwargs["class_names"] == ["high", "low"]
    np.testing.assert_array_equal(kwargs["input_mean"], X.mean(axis=0))
    np.testing.assert_allclose(kwargs["input_scale"], X.std(axis=0), rtol=1e-12)
    assert kwargs["target_mean"] is None and kwargs["target_scale"] is None
    assert pre.target_name == "t" and pre.fill is None
    arrays = model_arrays(tmp_path / "m.npz")  # plain arrays, no pickle
    assert arrays["class_names"].tolist() == ["high", "low"]
    assert MLP.load(tmp_path / "m.npz").layer_sizes == (3, 4, 2)  # MLP.load still reads it


def test_regressor_target_scaling_round_trip(tmp_path):
    from fastmlp.persistence import load_preprocessing
    from fastmlp.preprocessing import PreprocessedMLP, Preprocessor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    y = 1000.0 + 50.0 * (X[:, 0] - X[:, 1])
    pre = Preprocessor.for_regressor(X, y)
    model = PreprocessedMLP(MLP((2, 8, 1), output="identity", loss="mse", seed=0), pre)
    model.fit(X, y, epochs=50, lr=0.05)
    assert np.sqrt(np.mean((model.predict(X)[:, 0] - y) ** 2)) < 10  # on the target's scale
    model.save(tmp_path / "r.npz")
    kwargs = load_preprocessing(tmp_path / "r.npz").onnx_kwargs()
    assert kwargs["target_mean"].tolist() == [y.mean()] and kwargs["class_names"] is None
    np.testing.assert_array_equal(PreprocessedMLP.load(tmp_path / "r.npz").predict(X),
                                  model.predict(X))  # fmt: skip


def test_files_without_preprocessing_and_older_versions_still_load(tmp_path):
    from fastmlp.persistence import load_preprocessing

    path = tmp_path / "m.npz"
    net = MLP((2, 3, 2), seed=0)
    net.save(path)
    assert load_preprocessing(path) is None
    new_keys = ["feature_names", "target_name", "class_names", "input_mean", "input_scale",
                "target_mean", "target_scale", "input_fill"]  # fmt: skip
    rewrite(path, format_version=np.array(2), **dict.fromkeys(new_keys))  # a version 2 file
    assert "class_names" not in model_arrays(path)
    np.testing.assert_array_equal(MLP.load(path).params, net.params)
    assert load_preprocessing(path) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"class_names": np.array(["a", "b", "c"])},
         r"class_names has shape \(3,\) and dtype <U1, expected \(0,\) or \(2,\)"),
        ({"class_names": np.array(["a", "a"])}, r"class_names has repeated names"),
        ({"input_mean": np.zeros(0)}, r"input_mean and input_scale differ in shape"),
        ({"input_scale": np.array([1.0, 0.0, 1.0])}, r"input_scale has a value <= 0"),
        ({"input_mean": np.array([np.nan, 0.0, 0.0])}, r"input_mean contains NaN/inf"),
        ({"feature_names": np.array([1.0, 2.0, 3.0])}, r"feature_names has shape \(3,\)"),
        ({"target_mean": np.zeros(2), "target_scale": np.ones(2)},
         r"target scaling needs an identity output"),
        ({"target_name": np.array(["x", "y"])}, r"target_name is not a string"),
        ({"input_fill": None}, r"missing entries \['input_fill'\]"),
    ],
)  # fmt: skip
def test_tampered_preprocessing_is_refused(tmp_path, change, message):
    from fastmlp.persistence import load_preprocessing

    model, _, _ = preprocessed_classifier()
    path = tmp_path / "m.npz"
    model.save(path)
    rewrite(path, **change)
    pattern = r"m.npz is not a valid fastmlp model file: " + message
    with pytest.raises(ValueError, match=pattern):
        MLP.load(path)
    with pytest.raises(ValueError, match=pattern):
        load_preprocessing(path)


def test_saving_preprocessing_that_does_not_fit_the_model_is_refused(tmp_path):
    from fastmlp.persistence import save
    from fastmlp.preprocessing import Preprocessor

    with pytest.raises(ValueError, match=r"class_names has shape \(3,\)"):
        save(MLP((2, 3, 2)), tmp_path / "m.npz", Preprocessor(class_names=("a", "b", "c")))
    assert not (tmp_path / "m.npz").exists()


def test_standardizer_from_moments_matches_fit():
    from fastmlp.preprocessing import Standardizer

    X = np.random.default_rng(2).normal(loc=1e6, scale=3.0, size=(1000, 3))
    X[:, 2] = 5.0  # constant: scale 1
    shift = X[0]
    d = X - shift
    s = Standardizer.from_moments([1000] * 3, d.sum(axis=0), (d * d).sum(axis=0), shift)
    f = Standardizer().fit(X)
    np.testing.assert_allclose(s.mean_, f.mean_, rtol=1e-14)
    np.testing.assert_allclose(s.scale_[:2], X[:, :2].std(axis=0), rtol=1e-9)
    assert s.scale_[2] == f.scale_[2] == 1.0
    # one rule for a constant column: scale 1 here, no R^2 for a constant target in evaluate
    from fastmlp._report import RegressionFigures

    figures = RegressionFigures(keep=False)
    figures.add(X[:, 2], X[:, 2] + 1.0)
    assert np.isnan(figures.metrics()["r2"]) and figures.metrics()["rmse"] == 1.0
    np.testing.assert_allclose(f.inverse_transform(f.transform(X)), X, rtol=1e-14)


def test_preprocessing_feeds_the_onnx_exporter(tmp_path):
    """``to_onnx(net, path, **load_preprocessing(path).onnx_kwargs())``: the graph predicts on
    raw inputs (NaN filled, scaled, classes named) as ``PreprocessedMLP`` does."""
    ort = pytest.importorskip("onnxruntime")
    from fastmlp.export import to_onnx
    from fastmlp.persistence import load_with_preprocessing

    model, X, _ = preprocessed_classifier()
    model.preprocessor.fill = X.mean(axis=0)
    model.save(tmp_path / "m.npz")
    net, pre = load_with_preprocessing(MLP, tmp_path / "m.npz")
    to_onnx(net, tmp_path / "m.onnx", **pre.onnx_kwargs())
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    X = X.copy()
    X[0, 1] = np.nan
    output, label = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(output, model.predict(X), rtol=1e-12, atol=1e-14)
    assert label.tolist() == model.predict_classes(X).tolist()
