"""The command line, driven as a user would: subprocesses, files on disk, exit codes.

Full runs (train, save, predict, evaluate, stream) go through ``python -m fastmlp`` in
subprocesses; the many bad-input cases that fail before any training call ``cli.main`` in this
process (the same code path, without ~1 s of start-up each).
"""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from fastmlp import cli

pytest.importorskip("matplotlib")  # in the test extra; --plot needs it


def run(*args, cwd=None, stdin=None):
    proc = subprocess.run(
        [sys.executable, "-m", "fastmlp", *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=cwd, input=stdin,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def run_here(capsys, *args):
    """``cli.main`` in this process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("fastmlp: error: ") and "Traceback" not in err
    return err


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def table_rows(out):
    return [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]


def write_csv(path, names, X, y, target):
    lines = [",".join([*names, target])]
    for row, t in zip(X, y, strict=True):
        lines.append(",".join([*(repr(float(v)) for v in row), str(t)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def split(n, seed, test_fraction):
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """scikit-learn's bundled sets as raw CSVs: text labels, unscaled features, a fixed split."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    d = tmp_path_factory.mktemp("tables")
    files = {}
    bc = sklearn_datasets.load_breast_cancer()
    labels = np.where(bc.target == 0, "malignant", "benign")
    tr, te = split(len(labels), 0, 0.2)
    names = [n.replace(" ", "_") for n in bc.feature_names]
    files["bc_train"] = write_csv(d / "bc_train.csv", names, bc.data[tr], labels[tr], "diagnosis")
    files["bc_test"] = write_csv(d / "bc_test.csv", names, bc.data[te], labels[te], "diagnosis")
    db = sklearn_datasets.load_diabetes(scaled=False)
    tr, te = split(len(db.target), 0, 0.2)
    files["db_train"] = write_csv(d / "db_train.csv", db.feature_names, db.data[tr],
                                  db.target[tr], "progression")  # fmt: skip
    files["db_test"] = write_csv(d / "db_test.csv", db.feature_names, db.data[te],
                                 db.target[te], "progression")  # fmt: skip
    files["db_arrays"] = (db.data[tr], db.target[tr], db.data[te], db.target[te])
    wine = sklearn_datasets.load_wine()
    cultivar = np.array(["barolo", "grignolino", "barbera"])[wine.target]
    tr, te = split(len(cultivar), 1, 0.25)
    files["wine_train"] = write_csv(d / "wine_train.csv", wine.feature_names, wine.data[tr],
                                    cultivar[tr], "cultivar")  # fmt: skip
    files["wine_test"] = write_csv(d / "wine_test.csv", wine.feature_names, wine.data[te],
                                   cultivar[te], "cultivar")  # fmt: skip
    return files


# --- real files, default flags -----------------------------------------------------------------
def test_breast_cancer_raw_with_text_labels_and_default_flags(tmp_path, tables):
    model = tmp_path / "bc.npz"
    code, out, err = run("train", tables["bc_train"], "--save", model)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "task: classification (text labels, 2 classes); label: diagnosis; 455 rows"
    assert lines[1] == "classes: benign, malignant"
    assert "features standardised" in lines[2]
    assert lines[3].startswith("training: sgd, alpha 0.01 (default), lr 0.02")  # 455 updates
    header = next(ln for ln in lines if ln.strip().startswith("epoch")).split()
    assert header == ["epoch", "loss", "train", "acc", "samples/s"]  # no validation columns
    assert len(table_rows(out)) == 20 and " nan" not in out
    assert "train accuracy:" in out and f"saved {model}" in out
    code, out, err = run("evaluate", model, tables["bc_test"], "--json")
    assert code == 0, err
    metrics = json.loads(out)  # one JSON object, nothing else
    assert metrics["accuracy"] >= 0.95, metrics  # measured: 0.974
    assert metrics["classes"] == ["benign", "malignant"]
    assert set(metrics["per_class"]["malignant"]) == {"precision", "recall", "f1", "support"}
    assert np.sum(metrics["confusion_matrix"]) == metrics["n_samples"] == 114
    # predict: class names back; the label column present in the file is fine
    code, out, err = run("predict", model, tables["bc_test"], "-o", tmp_path / "p.csv")
    assert code == 0, err
    preds = (tmp_path / "p.csv").read_text().split()
    truth = [ln.rsplit(",", 1)[1] for ln in tables["bc_test"].read_text().split()[1:]]
    assert len(preds) == 114 and set(preds) <= {"benign", "malignant"}
    assert np.mean(np.array(preds) == np.array(truth)) == metrics["accuracy"]
    # columns are picked by name: reordered, without the label, with an extra column
    rows = [ln.split(",") for ln in tables["bc_test"].read_text().split()]
    shuffled = tmp_path / "shuffled.csv"
    order = list(range(29, -1, -1))
    shuffled.write_text("\n".join(",".join([r[j] for j in order] + ["x"]) for r in rows) + "\n")
    code, out, err = run("predict", model, shuffled, "--proba")
    assert code == 0, err
    proba = out.splitlines()
    assert proba[0] == "benign,malignant"
    P = np.array([[float(v) for v in ln.split(",")] for ln in proba[1:]])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-5)
    assert [("benign", "malignant")[i] for i in P.argmax(axis=1)] == preds
    # a file without one of the model's columns: one clear line
    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join(",".join(r[1:]) for r in rows) + "\n")
    code, _, err = run("evaluate", model, missing)
    assert "no column 'mean_radius' (the model's features: mean_radius, mean_texture" \
        in one_line_error(code, err)  # fmt: skip


def test_diabetes_regression_with_default_flags_is_no_worse_than_a_linear_model(tmp_path, tables):
    linear_model = pytest.importorskip("sklearn.linear_model")
    model, scatter = tmp_path / "db.npz", tmp_path / "scatter.png"
    code, out, err = run("train", tables["db_train"], "--save", model)
    assert code == 0, err
    assert out.startswith("task: regression (integer labels with 196 distinct values in 354 rows")
    assert "target standardised (predictions on its own scale)" in out
    assert "train rmse" in out and " nan" not in out
    code, out, err = run("evaluate", model, tables["db_test"], "--json", "--plot", scatter)
    assert code == 0, err
    metrics = json.loads(out)
    assert set(metrics) == {"task", "n_samples", "mae", "rmse", "r2"}
    X, y, X_test, y_test = tables["db_arrays"]
    linear = linear_model.LinearRegression().fit(X, y).score(X_test, y_test)
    assert metrics["r2"] >= linear - 0.1, (metrics, linear)  # measured: 0.508 vs 0.523
    assert png_size(scatter) == (500, 500)
    code, out, err = run("predict", model, tables["db_test"])
    assert code == 0, err
    preds = np.array(out.split(), dtype=float)  # on the target's own scale, not standardised
    assert abs(preds.mean() - y_test.mean()) < 20 and 20 < preds.std() < 80
    code, out, _ = run("info", model)
    assert "target:      progression" in out and "target standardised" in out


def test_wine_with_training_controls_validation_and_early_stopping(tmp_path, tables):
    model, curve, cm = tmp_path / "w.npz", tmp_path / "curve.png", tmp_path / "cm.png"
    code, out, err = run("train", tables["wine_train"], "--optimizer", "adam", "--lr", 0.01,
                         "--alpha", 0, "--batch-size", 4, "--dropout", 0.1, "--schedule", "step",
                         "--step-size", 5, "--gamma", 0.5, "--val-fraction", 0.2,
                         "--patience", 3, "--tol", 0.5, "--epochs", 30, "--dtype", "float32",
                         "--hidden-sizes", "16,8", "--seed", 3, "--save", model,
                         "--plot", curve)  # fmt: skip
    assert code == 0, err
    assert "training: adam, alpha 0, lr 0.01 (step), batch size 4" in out
    header = next(ln for ln in out.splitlines() if ln.strip().startswith("epoch")).split()
    assert header == ["epoch", "loss", "val", "loss", "train", "acc", "val", "acc", "lr",
                      "samples/s"]  # fmt: skip
    rows = table_rows(out)
    assert len(rows) == 4  # tol 0.5: no epoch after the first counts as an improvement
    assert "stopped early: no improvement for 3 epochs" in out
    # the weights kept are epoch 1's: the summary gives its loss, not the last epoch's
    assert f"restored epoch 1 (the best validation loss), its training loss {rows[0][1]}" in out
    assert "final training loss" not in out
    assert png_size(curve) == (640, 400)
    code, out, err = run("evaluate", model, tables["wine_test"], "--plot", cm)
    assert code == 0, err
    assert "accuracy:" in out and "grignolino" in out and "confusion matrix" in out
    assert png_size(cm) == (500, 500)
    code, out, _ = run("info", model)
    assert "16 -> 8" in out and "float32" in out and "classes:     barbera, barolo, grignolino" \
        in out  # fmt: skip
    # momentum, Nesterov, threads (plain online SGD: --alpha 0 by default with --n-jobs 2)
    code, out, err = run("train", tables["wine_train"], "--epochs", 2, "--momentum", 0.9,
                         "--nesterov", "--schedule", "invscaling")  # fmt: skip
    assert code == 0 and "sgd, momentum 0.9, nesterov, alpha 0.01 (default)" in out, err
    code, out, err = run("train", tables["wine_train"], "--epochs", 2, "--n-jobs", 2)
    assert code == 0, err
    assert "sgd, alpha 0 (default with --n-jobs 2, which needs plain online SGD)" in out


def test_missing_cells_impute_and_unknown_labels(tmp_path, capsys, tables):
    rows = tables["wine_train"].read_text().splitlines()
    holes = tmp_path / "holes.csv"
    cells = rows[5].split(",")
    cells[2] = ""  # line 6, column 3 ("ash")
    rows_na = list(rows)
    rows_na[5] = ",".join(cells)
    rows_na[9] = rows_na[9].replace(rows_na[9].split(",")[0], "NA", 1)
    holes.write_text("\n".join(rows_na) + "\n")
    code, _, err = run_here(capsys, "train", holes)
    assert f"{holes}, line 6, column 3 ('ash'): missing value" in one_line_error(code, err)
    assert "--impute mean" in err
    model = tmp_path / "imputed.npz"
    code, out, err = run("train", holes, "--impute", "mean", "--epochs", 5, "--save", model)
    assert code == 0 and "missing cells filled with the training means" in out, err
    code, out, err = run("predict", model, holes)  # the model fills them the same way
    assert code == 0 and len(out.split()) == len(rows) - 1, err
    # a model trained without --impute refuses a hole at predict time
    clean = tmp_path / "clean.npz"
    code, _, err = run("train", tables["wine_train"], "--epochs", 2, "--save", clean)
    assert code == 0, err
    code, _, err = run_here(capsys, "predict", clean, holes)
    assert "line 6, column 3 ('ash'): missing value" in one_line_error(code, err)
    # a label that only the test file has
    test_rows = tables["wine_test"].read_text().splitlines()
    test_rows[3] = test_rows[3].rsplit(",", 1)[0] + ",nebbiolo"
    odd = tmp_path / "odd.csv"
    odd.write_text("\n".join(test_rows) + "\n")
    code, _, err = run_here(capsys, "evaluate", clean, odd)
    assert f"{odd}, line 4: label 'nebbiolo' is not one of the model's classes (barbera, " \
        "barolo, grignolino)" in one_line_error(code, err)  # fmt: skip
    code, _, err = run_here(capsys, "evaluate", clean, odd, "--target", "nope")
    assert "no label column 'nope'" in one_line_error(code, err)


def test_the_task_is_decided_from_the_label_column(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    ids = tmp_path / "ids.csv"  # a text column of 300 distinct values: an identifier
    write_csv(ids, ["a", "b"], X, [f"id{i}" for i in range(300)], "name")
    code, _, err = run_here(capsys, "train", ids)
    assert "300 distinct text values in 300 rows; pass --task classification" \
        in one_line_error(code, err)  # fmt: skip
    code, _, err = run_here(capsys, "train", ids, "--task", "regression")
    assert "--task regression needs a numeric label column" in one_line_error(code, err)
    one = tmp_path / "one.csv"
    write_csv(one, ["a", "b"], X, ["yes"] * 300, "label")
    code, _, err = run_here(capsys, "train", one)
    assert "the label column has one class ('yes')" in one_line_error(code, err)
    code, _, err = run_here(capsys, "train", one, "--task", "classification", "--layers", "2,3")
    assert "one class" in one_line_error(code, err)
    # integer labels: a few values are classes; --task regression overrides; booleans are classes
    counts = tmp_path / "counts.csv"
    write_csv(counts, ["a", "b"], X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0), "n")
    code, out, err = run("train", counts, "--epochs", 1)
    assert code == 0 and out.startswith("task: classification (integer labels, 3 classes)"), err
    code, out, err = run("train", counts, "--epochs", 1, "--task", "regression")
    assert code == 0 and out.startswith("task: regression (--task regression)"), err
    flags = tmp_path / "flags.csv"
    write_csv(flags, ["a", "b"], X, X[:, 0] > 0, "flag")
    code, out, err = run("train", flags, "--epochs", 1, "--output", "sigmoid", "--save",
                         tmp_path / "f.npz")  # fmt: skip
    assert code == 0 and "classes: False, True" in out and "sigmoid" in out, err
    code, out, err = run("predict", tmp_path / "f.npz", flags)
    assert code == 0 and set(out.split()) <= {"False", "True"}, err
    # --output softmax implies the task: it is named as the reason, not --task
    code, out, err = run("train", counts, "--epochs", 1, "--output", "softmax")
    assert code == 0 and out.startswith("task: classification (--output softmax: 3 classes)"), err


def test_text_labels_are_kept_as_written(tmp_path):
    """Zero-padded codes are text: "01" is not rewritten as 1 (nor "1e3" as 1000)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    codes = np.array(["01", "02", "1e3"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    data = write_csv(tmp_path / "codes.csv", ["a", "b"], X, codes, "code")
    model = tmp_path / "codes.npz"
    code, out, err = run("train", data, "--epochs", 3, "--save", model)
    assert code == 0, err
    assert out.startswith("task: classification (integer labels, 3 classes)")
    assert "classes: 01, 02, 1e3" in out
    code, out, err = run("predict", model, data)
    assert code == 0 and set(out.split()) <= {"01", "02", "1e3"} and "01" in out.split(), err
    from fastmlp.preprocessing import Preprocessor, class_names_of

    assert class_names_of(["10", "02", "01"]) == ("01", "02", "10")
    assert class_names_of([2.0, 10, 1]) == ("1", "2", "10")  # numbers as numbers: normalised
    pre = Preprocessor(class_names=("01", "02", "1e3"))
    assert pre.encode(["01", "1", 1.0, "1000", 2]).tolist() == [0, 0, 0, 2, 1]  # by value too


# --- the main job, the old contract --------------------------------------------------------------
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
    assert len(table_rows(out)) == 5  # one per epoch
    assert "samples/s" in out and "saved" in out
    assert png_size(curve) == (640, 400)
    code, out, err = run("info", model)
    assert code == 0 and "3 -> 8 -> 3" in out and "5 epoch(s), 600 updates" in out
    assert "features:    f1, f2, f3" in out and "classes:     0, 1, 2" in out
    code, out, err = run("predict", model, csv_file, "--target", "label", "-o", tmp_path / "p.csv")
    assert code == 0, err
    preds = np.loadtxt(tmp_path / "p.csv")
    assert preds.shape == (120,) and set(np.unique(preds)) <= {0, 1, 2}
    code, out, err = run("evaluate", model, csv_file, "--target", 0, "--plot", confusion)
    assert code == 0, err
    assert "accuracy:" in out and "confusion matrix" in out
    assert png_size(confusion) == (500, 500)


def test_models_saved_without_preprocessing_read_columns_by_position(tmp_path, capsys, csv_file):
    """``MLP.save`` files (and format 1/2 files) have no names: classes 0..n-1, raw inputs."""
    from fastmlp import MLP

    net = MLP((3, 4, 3), seed=0)
    net.save(tmp_path / "plain.npz")
    code, out, err = run_here(capsys, "evaluate", tmp_path / "plain.npz", csv_file, "--target", 0)
    assert code == 0 and "accuracy:" in out and "classes" not in err, err
    code, out, err = run_here(capsys, "predict", tmp_path / "plain.npz", csv_file,
                              "--target", "label")  # fmt: skip
    assert code == 0 and set(out.split()) <= {"0", "1", "2"} and len(out.split()) == 120, err
    code, out, _ = run_here(capsys, "info", tmp_path / "plain.npz")
    assert "classes:     0, 1, 2" in out and "inputs raw" in out


def test_npz_labels_are_checked_and_predict_needs_none(tmp_path, capsys):
    from fastmlp import MLP

    model = tmp_path / "plain.npz"
    MLP((2, 3, 2), seed=0).save(model)
    X = np.zeros((4, 2))
    for name, y, problem in [("empty", np.zeros(0), "y has shape (0,)"),
                             ("two-d", np.zeros((4, 2)), "y has shape (4, 2)"),
                             ("short", np.zeros(3), "y has shape (3,)")]:  # fmt: skip
        np.savez(tmp_path / f"{name}.npz", X=X, y=y)
        code, _, err = run_here(capsys, "evaluate", model, tmp_path / f"{name}.npz")
        assert f"{problem}; the labels need shape (4,), one per row of X" \
            in one_line_error(code, err)  # fmt: skip
        code, out, err = run_here(capsys, "predict", model, tmp_path / f"{name}.npz")
        assert code == 0 and len(out.split()) == 4, err  # predict does not read y
    np.savez(tmp_path / "x-only.npz", X=X)
    code, out, err = run_here(capsys, "predict", model, tmp_path / "x-only.npz")
    assert code == 0 and len(out.split()) == 4, err
    code, _, err = run_here(capsys, "evaluate", model, tmp_path / "x-only.npz")
    assert "needs arrays 'X' and 'y'" in one_line_error(code, err)


def test_written_files_get_the_umask_mode_and_errors_name_the_target(tmp_path, capsys, csv_file):
    """``predict -o`` and ``--save`` write through a temporary file (mode 0600): the result
    has the mode of a plain ``open`` (0666 less the umask), and an error names the target."""
    model, preds = tmp_path / "m.npz", tmp_path / "p.csv"
    old = os.umask(0o027)
    try:
        code, _, err = run_here(capsys, "train", csv_file, "--target", "label", "--epochs", 1,
                                "--save", model)  # fmt: skip
        assert code == 0, err
        code, _, err = run_here(capsys, "predict", model, csv_file, "--target", "label", "-o",
                                preds)  # fmt: skip
        assert code == 0, err
    finally:
        os.umask(old)
    assert os.stat(model).st_mode & 0o777 == os.stat(preds).st_mode & 0o777 == 0o640
    nowhere = tmp_path / "no-such-dir" / "p.csv"
    code, _, err = run_here(capsys, "predict", model, csv_file, "-o", nowhere)
    assert f"No such file or directory: '{nowhere}'" in one_line_error(code, err)
    assert ".fastmlp-" not in err
    (tmp_path / "a-dir").mkdir()
    code, _, err = run_here(capsys, "train", csv_file, "--target", "label", "--epochs", 1,
                            "--save", tmp_path / "a-dir")  # fmt: skip
    assert f"'{tmp_path / 'a-dir'}'" in one_line_error(code, err) and ".fastmlp-" not in err
    assert os.listdir(tmp_path / "a-dir") == []  # no temporary file left behind


def test_npz_data_and_regression(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    np.savez(tmp_path / "d.npz", X=X, y=X[:, 0] - 2 * X[:, 1])
    code, out, err = run("train", tmp_path / "d.npz", "--output", "identity", "--hidden", "relu",
                         "--epochs", 3, "--save", tmp_path / "r.npz")  # fmt: skip
    assert code == 0, err
    assert out.startswith("task: regression (--output identity)")  # --output identity implies it
    code, out, err = run("evaluate", tmp_path / "r.npz", tmp_path / "d.npz")
    assert code == 0 and out.startswith("samples: 50\nmae:") and "r2:" in out, err


def test_main_job_defaults_to_the_shipped_digits():
    code, out, err = run("--epochs", 2, "--min-accuracy", 0.5)
    assert code == 0, err
    assert out.startswith("digits: 1438 training / 359 test samples")
    header = next(ln for ln in out.splitlines() if ln.strip().startswith("epoch"))
    assert "test acc" in header  # the table has a test accuracy column
    assert out.strip().splitlines()[-1].startswith("test accuracy:")


BAD = {
    "missing": None,
    "empty.csv": "",
    "ragged.csv": "1,2,3\n4,5\n",
    "text.csv": "a,b\nx,1\n",
    "header-only.csv": "a,b,c\n",
    "nolabels.npz": "npz-without-y",
    "binary.csv": b"\xff\xfe\x00\x01",
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_data_files_give_one_line_and_exit_2(tmp_path, capsys, name):
    path = tmp_path / name
    if BAD[name] == "npz-without-y":
        np.savez(path, X=np.zeros((3, 2)))
    elif isinstance(BAD[name], bytes):
        path.write_bytes(BAD[name])
    elif BAD[name] is not None:
        path.write_text(BAD[name])
    code, out, err = run_here(capsys, "train", path, "--epochs", 1)
    assert str(path) in one_line_error(code, err)


def test_bad_label_column_and_bad_model_file(tmp_path, capsys, csv_file):
    code, _, err = run_here(capsys, "train", "-")
    assert "cannot take standard input" in one_line_error(code, err)
    code, _, err = run_here(capsys, "train", csv_file, "--target", "nope")
    assert "no label column 'nope' (columns: label, f1, f2, f3)" in one_line_error(code, err)
    code, _, err = run_here(capsys, "info", csv_file)
    assert "is not a valid fastmlp model file" in one_line_error(code, err)
    code, _, err = run_here(capsys, "evaluate", tmp_path / "none.npz", csv_file)
    assert "no such file" in one_line_error(code, err)
    text = tmp_path / "text.csv"
    text.write_text("label,f1,f2\n1,2.5,x\n0,1.0,2.0\n")
    code, _, err = run_here(capsys, "train", text, "--target", "label")
    assert f"{text}, line 2, column 3 ('f2'): 'x' is not a number" in one_line_error(code, err)
    code, _, err = run_here(capsys, "train", csv_file, "--target", "label", "--layers", "3,4,2")
    assert "--layers 3,4,2: the data has 3 features and needs 3 outputs" \
        in one_line_error(code, err)  # fmt: skip


def test_train_with_batches_momentum_and_validation(tmp_path, capsys, csv_file):
    model, curve = tmp_path / "m.npz", tmp_path / "curve.png"
    code, out, err = run("train", csv_file, "--target", "label", "--layers", "3,8,3",
                         "--epochs", 4, "--lr", 0.05, "--batch-size", 8, "--momentum", 0.9,
                         "--val-fraction", 0.25, "--save", model, "--plot", curve)  # fmt: skip
    assert code == 0, err
    assert "validation: 30 of the training samples held out" in out
    rows = table_rows(out)  # epoch, loss, val loss, train acc, val acc, samples/s
    assert len(rows) == 4 and all(len(r) == 6 for r in rows)
    val_loss, val_acc = float(rows[-1][2]), float(rows[-1][4])
    assert np.isfinite(val_loss) and 0 <= val_acc <= 1
    assert png_size(curve) == (640, 400)
    code, out, _ = run("info", model)  # 90 training rows in batches of 8: 12 updates per epoch
    assert code == 0 and "4 epoch(s), 48 updates" in out
    code, _, err = run_here(capsys, "train", csv_file, "--target", "label", "--batch-size", 0)
    assert "batch_size must be >= 1, got 0" in one_line_error(code, err)
    code, _, err = run_here(capsys, "train", csv_file, "--target", "label", "--val-fraction", 1.5)
    assert "--val-fraction must be in (0, 1), got 1.5" in one_line_error(code, err)


def test_the_summary_says_why_training_stopped(capsys, csv_file):
    """--schedule adaptive stops on the minimum learning rate, not on --patience."""
    code, out, err = run_here(capsys, "train", csv_file, "--target", "label", "--epochs", 20,
                              "--schedule", "adaptive", "--lr", 1e-5, "--patience", 1,
                              "--tol", 10, "--no-progress")  # fmt: skip
    assert code == 0, err
    rows = table_rows(out)
    assert len(rows) == 3  # lr 1e-5 -> 2e-6 -> 4e-7: below the minimum, 1e-6
    assert "(stopped early: --schedule adaptive would take the learning rate below 1e-06)" \
        in out and "no improvement for" not in out  # fmt: skip
    assert f"restored epoch 1 (the best training loss), its training loss {rows[0][1]}" in out


def test_bench_subcommand_passes_its_options_to_the_bench(capsys):
    """``fastmlp bench --nets xor ...``: argparse's REMAINDER alone dropped leading options."""
    argv = ["bench", "--nets", "xor", "--dtypes", "float64", "--repeats", "1",
            "--ref-samples", "20", "--parallel", ""]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "| xor      | float64 |" in out and "digits" not in out
