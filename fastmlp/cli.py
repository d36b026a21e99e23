"""The command line: ``fastmlp train|predict|evaluate|info|bench`` (also ``python -m fastmlp``).

With no subcommand it runs the main job: ``train`` on the shipped 8x8 digits with a fixed
train/test split. Bad input (a missing, empty or ragged file, a non-numeric cell, a label column
that does not exist, a file that is not a model) gives one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import datasets
from .errors import DivergenceError
from .model import MLP

__all__ = ["main", "load_table"]


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


# --- data files --------------------------------------------------------------------------------
def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_table(path: str, target: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``X, y`` from a ``.csv`` or a ``.npz`` file.

    Parameters
    ----------
    path : str
        A ``.csv`` (header auto-detected) or a ``.npz`` holding arrays ``X`` and ``y``.
    target : str, optional
        The label column of a CSV: a header name or a 0-based index; default the last.

    Returns
    -------
    X : ndarray (n_samples, n_features)
        The features (float64 from a CSV; as stored in a ``.npz``).
    y : ndarray (n_samples,)
        The label column.

    Raises
    ------
    CLIError
        For a missing, empty or ragged file, a non-numeric cell or an unknown label column.
    """
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if path.endswith(".npz"):
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
                if "X" not in data.files or "y" not in data.files:
                    raise CLIError(f"{path}: an .npz data file needs arrays 'X' and 'y'")
                return np.asarray(data["X"]), np.asarray(data["y"])
        except CLIError:
            raise
        except Exception as exc:  # zip, pickle and format errors alike
            raise CLIError(f"{path}: not a readable .npz file ({exc})") from exc
    with open(path, newline="") as fh:
        rows = [row for row in csv.reader(fh) if row and any(c.strip() for c in row)]
    if not rows:
        raise CLIError(f"{path}: the file is empty")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise CLIError(f"{path}: no data rows after the header")
    width = len(header) if header else len(rows[0])
    for line, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise CLIError(f"{path}, line {line}: {len(row)} cells, expected {width}")
        for col, cell in enumerate(row):
            if not _is_number(cell):
                raise CLIError(f"{path}, line {line}, column {col + 1}: {cell!r} is not a number")
    table = np.array(rows, dtype=np.float64)
    column = _target_column(path, target, header, width)
    if width < 2:
        raise CLIError(f"{path}: needs at least one feature column besides the label")
    return np.delete(table, column, axis=1), table[:, column]


def _target_column(path: str, target: str | None, header: list[str] | None, width: int) -> int:
    if target is None:
        return width - 1
    if header is not None and target in header:
        return header.index(target)
    if target.lstrip("-").isdigit() and -width <= int(target) < width:
        return int(target) % width
    names = f" (columns: {', '.join(header)})" if header else ""
    raise CLIError(f"{path}: no label column {target!r}{names}")


def _labels(y: np.ndarray, path: str) -> np.ndarray:
    if not np.all(y == np.round(y)) or y.min() < 0:
        raise CLIError(
            f"{path}: class labels must be integers 0, 1, 2, ...; use --output identity "
            "--loss mse for a regression target"
        )
    return y.astype(np.int64)


# --- commands ----------------------------------------------------------------------------------
def _plot_curves(path: str, history: dict[str, list[float]], accuracy: list[float]) -> None:
    """PNG (640 x 400) of the training (and validation) loss, and accuracy, per epoch."""
    plt = _pyplot()
    fig, ax1 = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    epochs = np.arange(1, len(history["loss"]) + 1)
    lines = ax1.plot(epochs, history["loss"], "o-", label="training loss")
    if history["val_loss"]:
        lines += ax1.plot(epochs, history["val_loss"], "o:", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("mean loss")
    ax1.xaxis.get_major_locator().set_params(integer=True)
    if accuracy:
        ax2 = ax1.twinx()
        lines += ax2.plot(epochs, accuracy, "s--", color="tab:orange", label="training accuracy")
        if history["val_accuracy"]:
            lines += ax2.plot(epochs, history["val_accuracy"], "s:", color="tab:red",
                              label="validation accuracy")  # fmt: skip
        ax2.set_ylabel("accuracy")
    ax1.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise CLIError(
            "--plot needs matplotlib: pip install matplotlib (or fastmlp[plot])"
        ) from exc
    return plt


def cmd_train(args: argparse.Namespace) -> int:
    if args.data is None:  # the main job: the shipped digits, fixed split
        X, y, X_test, y_test = datasets.digits_train_test()
        print(f"digits: {len(y)} training / {len(y_test)} test samples, 64 features, 10 classes")
    else:
        X, y = load_table(args.data, args.target)
        X_test = y_test = None
    classify = args.output != "identity"
    if classify:
        y = _labels(y, args.data or "digits")
    n_out = int(y.max()) + 1 if args.output == "softmax" else 1
    if args.layers:
        try:
            sizes = tuple(int(s) for s in args.layers.split(","))
        except ValueError as exc:
            raise CLIError(f"--layers must be comma-separated ints, got {args.layers!r}") from exc
    else:
        sizes = (X.shape[1], *[int(h) for h in args.hidden_sizes.split(",") if h], n_out)
    loss = args.loss or {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}.get(
        args.output, "mse"
    )
    t0 = time.perf_counter()
    net = MLP(sizes, hidden=args.hidden, output=args.output, loss=loss, seed=args.seed,
              dtype=args.dtype)  # fmt: skip
    warm = {"batch_size": args.batch_size, "momentum": args.momentum}
    try:  # compile (or load cached) kernels: ~no update, on a model thrown away
        net.fit(X[:1], y[:1], lr=1e-12, **warm)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from exc
    net = MLP(sizes, hidden=args.hidden, output=args.output, loss=loss, seed=args.seed,
              dtype=args.dtype)  # fmt: skip
    print(f"{net}: {net.n_params} parameters; kernels ready in {time.perf_counter() - t0:.2f} s")
    fit_kwargs: dict = {"batch_size": args.batch_size, "momentum": args.momentum}
    if args.val_fraction:
        if not 0 < args.val_fraction < 1:
            raise CLIError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
        n_val = int(np.ceil(len(y) * args.val_fraction))
        if n_val >= len(y):
            raise CLIError(f"--val-fraction {args.val_fraction} leaves no training data")
        perm = np.random.default_rng(args.seed).permutation(len(y))
        fit_kwargs["validation_data"] = (X[perm[:n_val]], y[perm[:n_val]])
        X, y = X[perm[n_val:]], y[perm[n_val:]]
        print(f"validation: {n_val} of the training samples held out")
    print(f"{'epoch':>5} {'loss':>9} {'val loss':>9} {'train acc':>9} {'val acc':>9} "
          f"{'test acc':>9} {'samples/s':>11}")  # fmt: skip
    accuracy = []
    nan = float("nan")
    logs: dict[str, float] = {}
    for epoch in range(1, args.epochs + 1):
        try:
            net.fit(X, y, epochs=1, lr=args.lr, callback=lambda _, new: logs.update(new),
                    **fit_kwargs)  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise CLIError(str(exc)) from exc
        h = net.history_
        rate = logs["samples_per_s"]
        train_acc = float(np.mean(net.predict_classes(X) == y)) if classify else nan
        test_acc = (
            float(np.mean(net.predict_classes(X_test) == y_test)) if X_test is not None else nan
        )
        accuracy.append(train_acc)
        val_loss = h["val_loss"][-1] if h["val_loss"] else nan
        val_acc = h["val_accuracy"][-1] if h["val_accuracy"] else nan
        print(f"{epoch:5d} {h['loss'][-1]:9.4f} {val_loss:9.4f} {train_acc:9.4f} {val_acc:9.4f} "
              f"{test_acc:9.4f} {rate:11,.0f}")  # fmt: skip
    if X_test is not None:
        test_acc = float(np.mean(net.predict_classes(X_test) == y_test))
        print(f"test accuracy: {test_acc:.4f}")
    else:
        print(f"final training loss: {net.history_['loss'][-1]:.4f}")
    if args.save:
        net.save(args.save)
        print(f"saved {args.save}")
    if args.plot:
        _plot_curves(args.plot, net.history_, accuracy if classify else [])
        print(f"wrote {args.plot}")
    if X_test is not None and test_acc < args.min_accuracy:
        print(f"below the expected {args.min_accuracy:.2f}", file=sys.stderr)
        return 1
    return 0


def _load_model(path: str) -> MLP:
    try:
        return MLP.load(path)
    except FileNotFoundError as exc:
        raise CLIError(f"{path}: no such file") from exc


def cmd_predict(args: argparse.Namespace) -> int:
    net = _load_model(args.model)
    X, _ = _data_for(net, args.data, args.target, need_target=False)
    out = net.predict_classes(X) if net.output != "identity" else net.predict(X)
    out = out.reshape(len(X), -1)
    text = "\n".join(",".join(f"{v:.10g}" for v in row) for row in out) + "\n"
    if args.output_file:
        with open(args.output_file, "w") as fh:
            fh.write(text)
        print(f"wrote {len(out)} predictions to {args.output_file}")
    else:
        sys.stdout.write(text)
    return 0


def _data_for(net: MLP, path: str, target: str | None, need_target: bool):
    if path.endswith(".npz") or need_target:
        X, y = load_table(path, target)
    else:  # predict: a CSV may hold only features, or features and a label column
        X, y = load_table(path, target)
        if X.shape[1] + 1 == net.layout.n_in:
            X, y = np.column_stack([X, y]), None
    if X.shape[1] != net.layout.n_in:
        raise CLIError(f"{path}: {X.shape[1]} feature columns, the model expects {net.layout.n_in}")
    return X, y


def cmd_evaluate(args: argparse.Namespace) -> int:
    net = _load_model(args.model)
    X, y = _data_for(net, args.data, args.target, need_target=True)
    if net.output != "identity":
        y = _labels(y, args.data)
        if net.output == "softmax" and y.max() >= net.layout.n_out:
            raise CLIError(f"{args.data}: label {int(y.max())} but the model has "
                           f"{net.layout.n_out} classes")  # fmt: skip
    print(f"loss: {net.loss(X, y):.6f}")
    if net.output == "identity":
        return 0
    pred = net.predict_classes(X)
    if pred.ndim > 1:
        print(f"accuracy (all outputs right): {np.mean(np.all(pred == y[:, None], axis=1)):.4f}")
        return 0
    print(f"accuracy: {np.mean(pred == y):.4f}")
    n_classes = max(net.layout.n_out, 2)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(4, len(str(confusion.max())) + 1)
    print(" " * 6 + "".join(f"{c:>{width}d}" for c in range(n_classes)))
    for c in range(n_classes):
        print(f"{c:>5d} " + "".join(f"{v:>{width}d}" for v in confusion[c]))
    if args.plot:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
        ax.imshow(confusion, cmap="Blues")
        ax.set_xticks(range(n_classes))
        ax.set_yticks(range(n_classes))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"{args.data}: accuracy {np.mean(pred == y):.3f}", fontsize=9)
        dark = confusion.max() / 2
        for (i, j), v in np.ndenumerate(confusion):
            color = "white" if v > dark else "black"
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color=color)
        fig.tight_layout()
        fig.savefig(args.plot)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    net = _load_model(args.model)
    print(f"model:       {args.model}")
    print(f"layers:      {' -> '.join(map(str, net.layer_sizes))}")
    print(f"activations: {', '.join(net.activations)}")
    print(f"loss:        {net.loss_name}")
    print(f"parameters:  {net.n_params:,}")
    print(f"dtype:       {net.dtype}")
    print(f"trained:     {len(net.history_['loss'])} epoch(s), {net.n_updates_:,} updates")
    if net.history_["loss"]:
        print(f"last loss:   {net.history_['loss'][-1]:.6f}")
    return 0


# --- parser ------------------------------------------------------------------------------------
def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", help="layer sizes, e.g. 64,32,10 (default: inferred)")
    p.add_argument("--hidden-sizes", default="32", help="hidden widths when --layers is not given")
    p.add_argument("--hidden", default="tanh", help="hidden activation (default tanh)")
    p.add_argument("--output", default="softmax", choices=["softmax", "sigmoid", "identity"])
    p.add_argument("--loss", help="default: cross_entropy / binary_cross_entropy / mse")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--batch-size", type=int, default=1, help="samples per update (default 1)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of the training data for validation")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--target", help="label column of a CSV: header name or 0-based index")
    p.add_argument("--save", help="write the trained model to this .npz")
    p.add_argument("--plot", help="write a PNG of the loss (and accuracy) per epoch")
    p.add_argument("--min-accuracy", type=float, default=0.95, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastmlp", description="Train and use small MLPs (online SGD in Numba kernels)."
    )
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train a model (default: on the shipped digits)")
    train.add_argument("data", nargs="?", help=".csv or .npz (X, y); none: the shipped digits")
    _train_options(train)
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model")
    predict.add_argument("data")
    predict.add_argument("-o", "--output-file", help="write predictions here (CSV)")
    predict.add_argument("--target", help="label column to drop, if the file has one")
    predict.set_defaults(func=cmd_predict)
    evaluate = sub.add_parser("evaluate", help="loss, accuracy and confusion matrix")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--target")
    evaluate.add_argument("--plot", help="write the confusion matrix as a PNG")
    evaluate.set_defaults(func=cmd_evaluate)
    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model")
    info.set_defaults(func=cmd_info)
    # listed for --help only: main() hands everything after "bench" to fastmlp.bench's own
    # parser (a REMAINDER argument here would not take options such as --nets)
    sub.add_parser("bench", help="the speed comparison table (fastmlp.bench)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``); without a subcommand, ``train`` is run.

    Returns
    -------
    int
        The exit code: 0 on success, 1 when the digits job misses its accuracy, 2 on bad input
        (with one line on stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train", "predict", "evaluate", "info", "bench", "-h", "--help"}
    if not argv or argv[0] not in commands:
        argv = ["train", *argv]  # the main job
    args = None if argv[0] == "bench" else build_parser().parse_args(argv)
    try:
        if args is None:
            from . import bench

            return bench.main(argv[1:])
        return args.func(args)
    except (CLIError, ValueError, TypeError, DivergenceError, OSError) as exc:
        print(f"fastmlp: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
