"""The command line, driven as a user would: subprocesses, files on disk, exit codes."""

import struct
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")  # in the test extra; --plot needs it


def run(*args, cwd=None):
    proc = subprocess.run(
        [sys.executable, "-m", "fastmlp", *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    path = tmp_path / "data.csv"
    lines = ["label,f1,f2,f3"] + [
        f"{c},{a:.6f},{b:.6f},{d:.6f}" for c, (a, b, d) in zip(y, X, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_save_info_predict_evaluate(tmp_path, csv_file):
    model, curve, confusion = tmp_path / "m.npz", tmp_path / "curve.png", tmp_path / "cm.png"
    code, out, err = run("train", csv_file, "--target", "label", "--layers", "3,8,3",
                         "--epochs", 5, "--lr", 0.1, "--save", model, "--plot", curve)  # fmt: skip
    assert code == 0, err
    assert len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 5  # one per epoch
    assert "samples/s" in out and "saved" in out
    assert png_size(curve) == (640, 400)
    code, out, err = run("info", model)
    assert code == 0 and "3 -> 8 -> 3" in out and "5 epoch(s), 600 updates" in out
    code, out, err = run("predict", model, csv_file, "--target", "label", "-o", tmp_path / "p.csv")
    assert code == 0, err
    preds = np.loadtxt(tmp_path / "p.csv")
    assert preds.shape == (120,) and set(np.unique(preds)) <= {0, 1, 2}
    code, out, err = run("evaluate", model, csv_file, "--target", 0, "--plot", confusion)
    assert code == 0, err
    assert "accuracy:" in out and "confusion matrix" in out
    assert png_size(confusion) == (500, 500)


def test_npz_data_and_regression(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    np.savez(tmp_path / "d.npz", X=X, y=X[:, 0] - 2 * X[:, 1])
    code, out, err = run("train", tmp_path / "d.npz", "--output", "identity", "--hidden", "relu",
                         "--epochs", 3, "--save", tmp_path / "r.npz")  # fmt: skip
    assert code == 0, err
    code, out, err = run("evaluate", tmp_path / "r.npz", tmp_path / "d.npz")
    assert code == 0 and out.startswith("loss:")


def test_main_job_defaults_to_the_shipped_digits():
    code, out, err = run("--epochs", 2, "--min-accuracy", 0.5)
    assert code == 0, err
    assert out.startswith("digits: 1438 training / 359 test samples")
    assert out.strip().splitlines()[-1].startswith("test accuracy:")


BAD = {
    "missing": None,
    "empty.csv": "",
    "ragged.csv": "1,2,3\n4,5\n",
    "text.csv": "a,b\n1,x\n",
    "nolabels.npz": "npz-without-y",
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_data_files_give_one_line_and_exit_2(tmp_path, name):
    path = tmp_path / name
    if BAD[name] == "npz-without-y":
        np.savez(path, X=np.zeros((3, 2)))
    elif BAD[name] is not None:
        path.write_text(BAD[name])
    code, out, err = run("train", path, "--epochs", 1)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fastmlp: error: ") and "Traceback" not in err
    assert str(path) in err


def test_bad_label_column_and_bad_model_file(tmp_path, csv_file):
    code, _, err = run("train", csv_file, "--target", "nope")
    assert code == 2 and "no label column 'nope' (columns: label, f1, f2, f3)" in err
    code, _, err = run("info", csv_file)
    assert code == 2 and "is not a valid fastmlp model file" in err and "Traceback" not in err
    code, _, err = run("evaluate", tmp_path / "none.npz", csv_file)
    assert code == 2 and "no such file" in err


def test_train_with_batches_momentum_and_validation(tmp_path, csv_file):
    model, curve = tmp_path / "m.npz", tmp_path / "curve.png"
    code, out, err = run("train", csv_file, "--target", "label", "--layers", "3,8,3",
                         "--epochs", 4, "--lr", 0.05, "--batch-size", 8, "--momentum", 0.9,
                         "--val-fraction", 0.25, "--save", model, "--plot", curve)  # fmt: skip
    assert code == 0, err
    assert "validation: 30 of the training samples held out" in out
    rows = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert len(rows) == 4 and all(len(r) == 7 for r in rows)
    val_loss, val_acc = float(rows[-1][2]), float(rows[-1][4])
    assert np.isfinite(val_loss) and 0 <= val_acc <= 1
    assert png_size(curve) == (640, 400)
    code, out, _ = run("info", model)  # 90 training rows in batches of 8: 12 updates per epoch
    assert code == 0 and "4 epoch(s), 48 updates" in out
    code, _, err = run("train", csv_file, "--target", "label", "--batch-size", 0)
    assert code == 2 and "batch_size must be >= 1, got 0" in err and "Traceback" not in err
    code, _, err = run("train", csv_file, "--target", "label", "--val-fraction", 1.5)
    assert code == 2 and "--val-fraction must be in (0, 1), got 1.5" in err


def test_bench_subcommand_passes_its_options_to_the_bench(capsys):
    """``fastmlp bench --nets xor ...``: argparse's REMAINDER alone dropped leading options."""
    from fastmlp import cli

    argv = ["bench", "--nets", "xor", "--dtypes", "float64", "--repeats", "1",
            "--ref-samples", "20", "--parallel", ""]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "| xor      | float64 |" in out and "digits" not in out
