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
    assert int(arrays["format_version"]) == FORMAT_VERSION
    assert arrays["layer_sizes"].tolist() == [2, 3, 2]
    assert arrays["activations"].tolist() == ["tanh", "softmax"]
    np.testing.assert_array_equal(arrays["params"], net.params)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], "temporary file left"


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
         r"format version 3, written by a newer fastmlp; this version reads format 2"),
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
