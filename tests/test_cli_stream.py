"""``fastmlp stream`` (test-then-train over a file or standard input) and ``fastmlp train`` on a
CSV larger than its chunk: memory bounded by the chunk, not the file (measured)."""

import json
import subprocess
import sys

import numpy as np

from fastmlp import MLP
from fastmlp.persistence import load_with_preprocessing


def run(*args, stdin=None):
    proc = subprocess.run(
        [sys.executable, "-m", "fastmlp", *map(str, args)],
        capture_output=True, text=True, timeout=300, input=stdin,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def generated_csv(path, n_rows, seed=0):
    """8 features, a text label that is a nonlinear function of them (~6% label noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 8))
    score = X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] + 0.3 * rng.normal(size=n_rows)
    y = np.where(score > 0, "yes", "no")
    with open(path, "w") as fh:
        fh.write(",".join(f"x{i}" for i in range(8)) + ",label\n")
        for row, label in zip(X, y, strict=True):
            fh.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")
    return path


def test_stream_from_standard_input_then_continue_from_the_saved_model(tmp_path):
    data = generated_csv(tmp_path / "s.csv", 3000)
    text = data.read_text()
    model = tmp_path / "online.npz"
    code, out, err = run("stream", "-", "--every", 500, "--model", model, stdin=text)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("task: classification (text labels, 2 classes), decided on the "
                               "first 1,000 rows")  # fmt: skip
    assert lines[1].split()[:3] == ["rows", "log", "loss"]
    progress = [ln.split() for ln in lines if ln.strip()[:1].isdigit()]
    assert [p[0] for p in progress] == ["500", "1,000", "1,500", "2,000", "2,500", "3,000"]
    accuracy = [float(p[2]) for p in progress]
    assert accuracy[-1] > accuracy[0] and accuracy[-1] > 0.75  # it learns as it goes
    assert f"saved {model}" in out
    net, pre = load_with_preprocessing(MLP, model)
    assert net.n_samples_seen_ == net.n_updates_ == 3000
    assert pre.class_names == ("no", "yes") and pre.feature_names[0] == "x0"
    # a second pass starts from the saved model (and its scaling); by file name this time
    code, out, err = run("stream", data, "--every", 3000, "--model", model)
    assert code == 0, err
    assert "3,000 samples seen so far" in out
    again = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert float(again[-1][2]) > accuracy[-1]  # better than the first pass's running figure
    assert MLP.load(model).n_samples_seen_ == 6000
    # the streamed model is a model like any other
    code, out, err = run("evaluate", model, data, "--json")
    assert code == 0 and json.loads(out)["accuracy"] > 0.85, err


def test_stream_skips_bad_rows_and_keeps_what_it_learned(tmp_path):
    """As Vowpal Wabbit does with a malformed example: a bad row is named on stderr, skipped
    and counted; the rest of the stream is learned and the model saved (exit 0). An error that
    ends the stream (bytes that are not text) saves the model learned so far, then exit 2."""
    lines = generated_csv(tmp_path / "s.csv", 1200).read_text().splitlines()
    lines[30] = "0,0,0,0,0,0,0,0,maybe"  # a class the first rows did not have (line 31)
    lines[1100] = "x" + lines[1100][lines[1100].index(",") :]  # not a number (line 1101)
    lines[1150] = "1,2,3"  # a ragged row
    model = tmp_path / "m.npz"
    code, out, err = run("stream", "-", "--model", model, "--warmup", 20,
                         stdin="\n".join(lines) + "\n")  # fmt: skip
    assert code == 0, err
    warnings = err.splitlines()
    assert len(warnings) == 3 and all(w.startswith("fastmlp: warning: ") for w in warnings)
    assert "standard input, line 31: label 'maybe' is not one of the model's classes (no, " \
        "yes); row skipped" in warnings[0]  # fmt: skip
    assert "line 1101, column 1 ('x0'): 'x' is not a number; row skipped" in warnings[1]
    assert "line 1151: 3 cells, expected 9; row skipped" in warnings[2]
    assert "streamed 1,197 rows" in out and "3 bad row(s) skipped" in out
    assert MLP.load(model).n_samples_seen_ == 1197
    # an unreadable stream: the one error line says what was kept
    data = tmp_path / "broken.csv"
    data.write_bytes(
        ("\n".join(lines[:1]) + "\n").encode()
        + b"\n".join(ln.encode() for ln in lines[1:30] + lines[31:1000])
        + b"\n\xff\xfe,1\n"
        + b"x" * 10_000
    )
    code, out, err = run("stream", data, "--model", model, "--every", 100)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "not a text file" in err and f"was saved to {model}" in err
    n = int(err.split("the first ")[1].split()[0].replace(",", ""))
    assert 500 < n <= 999 and MLP.load(model).n_samples_seen_ == 1197 + n


def test_stream_a_regression_target(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1500, 3))
    y = 500 + 100 * X[:, 0] - 50 * X[:, 1] + rng.normal(size=1500)
    rows = zip(X, y, strict=True)
    lines = ["a,b,c,price"] + [f"{a:.5f},{b:.5f},{c:.5f},{t:.3f}" for (a, b, c), t in rows]
    code, out, err = run("stream", "-", "--every", 500, stdin="\n".join(lines) + "\n")
    assert code == 0, err
    assert out.startswith("task: regression (the label column has non-integer numbers)")
    rmse = [float(ln.split()[1]) for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert len(rmse) == 3 and rmse[-1] < rmse[0] and rmse[-1] < 30  # the target's own units
    assert "saved" not in out  # no --model: nothing written


PEAK = """
import gc, sys, tracemalloc
from fastmlp import cli
tiny, half, full, model = sys.argv[1:5]
common = ["--epochs", "2", "--val-fraction", "0.1", "--no-progress"]
for chunk_rows in ("50", "1000000"):  # kernels, imports, both paths: not part of the measure
    assert cli.main(["train", tiny, "--chunk-rows", chunk_rows, *common]) == 0
tracemalloc.start()
peaks = []
for data, chunk_rows in ((half, "500"), (full, "500"), (full, "1000000")):
    gc.collect()  # the previous run's garbage is not part of the base
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    args = ["train", data, "--chunk-rows", chunk_rows, *common]
    assert cli.main(args + (["--save", model] if data == full else [])) == 0
    peaks.append(tracemalloc.get_traced_memory()[1] - base)
print("PEAKS", *peaks)
"""


def test_a_csv_larger_than_its_chunk_trains_in_bounded_memory(tmp_path):
    """Files of 10,000 and 20,000 rows (1.6 MB) in chunks of 500: the peak memory of the run
    (tracemalloc: Python objects and NumPy arrays) does not grow with the file, where reading
    it whole costs several times the file (measured: chunked 0.47 and 0.53 MB, whole 5.9 MB)."""
    half = generated_csv(tmp_path / "half.csv", 10_000, seed=2)
    full = generated_csv(tmp_path / "full.csv", 20_000)
    tiny = generated_csv(tmp_path / "tiny.csv", 200, seed=1)
    model = tmp_path / "chunked.npz"
    proc = subprocess.run([sys.executable, "-c", PEAK, tiny, half, full, model],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "20,000 rows in 40 chunks of up to 500, trained one by one" in out
    assert "alpha 0.000278 (default: 0.01 x 500 / 18,000 updates per epoch)" in out
    half_peak, chunked, whole = (int(v) for v in out.split("PEAKS")[1].split())
    assert chunked < 1.5 * half_peak, (half_peak, chunked)  # twice the rows, not twice the memory
    assert whole > 3 * chunked and whole > 2 * full.stat().st_size, (whole, chunked)
    net, pre = load_with_preprocessing(MLP, model)
    assert len(net.history_["loss"]) == len(net.history_["val_loss"]) == 2  # one per epoch
    assert net.history_["val_accuracy"][-1] > 0.85
    # the scaling statistics of the streaming pass are the whole file's
    X = np.loadtxt(full, delimiter=",", skiprows=1, usecols=range(8))
    np.testing.assert_allclose(pre.features.mean_, X.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(pre.features.scale_, X.std(axis=0), rtol=1e-9)


def test_chunked_training_mixes_a_file_sorted_by_its_label(tmp_path):
    """Each chunk is put together from segments all over the file, in a new order each epoch:
    a file sorted by label trains as well as a shuffled one (in file order: 0.50 held out)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 4))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] > 0, "yes", "no")
    order = np.argsort(y, kind="stable")
    data = tmp_path / "sorted.csv"
    data.write_text("a,b,c,d,label\n" + "".join(
        ",".join(f"{v:.5f}" for v in X[i]) + f",{y[i]}\n" for i in order))  # fmt: skip
    code, out, err = run("train", data, "--chunk-rows", 400, "--epochs", 3, "--val-fraction",
                         0.2, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "4,000 rows in 10 chunks of up to 400" in out
    assert float(out.split("validation accuracy: ")[1].split()[0]) > 0.9  # measured: 0.955


def test_chunked_early_stopping_restores_the_best_epoch_and_a_chunked_regressor(tmp_path):
    data = generated_csv(tmp_path / "c.csv", 3000)
    model = tmp_path / "c.npz"
    code, out, err = run("train", data, "--chunk-rows", 500, "--epochs", 6, "--patience", 2,
                         "--val-fraction", 0.2, "--tol", 0.5, "--no-progress", "--save",
                         model)  # fmt: skip
    assert code == 0, err
    rows = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert len(rows) == 3  # tol 0.5: epochs 2 and 3 do not count as improvements
    assert "stopped early: no improvement for 2 epochs" in out
    assert f"restored epoch 1 (the best validation loss), its training loss {rows[0][1]}" in out
    assert f"validation accuracy: {rows[0][3]}" in out  # epoch 1's figure, not the last one's
    net = MLP.load(model)
    assert len(net.history_["loss"]) == 3
    # a regressor, chunk by chunk: the target standardised, RMSE on its own scale
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 3))
    t = 500 + 100 * X[:, 0] - 50 * X[:, 1] + rng.normal(size=2000)
    reg = tmp_path / "r.csv"
    rows = (f"{a:.5f},{b:.5f},{c:.5f},{v:.3f}\n" for (a, b, c), v in zip(X, t, strict=True))
    reg.write_text("a,b,c,price\n" + "".join(rows))
    code, out, err = run("train", reg, "--chunk-rows", 500, "--epochs", 4, "--val-fraction",
                         0.2, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert out.startswith("task: regression (the label column has non-integer numbers)")
    assert "2,000 rows in 4 chunks of up to 500" in out and "val rmse" in out
    assert float(out.split("validation rmse: ")[1].split()[0]) < 15  # the target's std: ~110
