"""The command line: ``fastmlp train|predict|evaluate|stream|export|info|bench``.

``python -m fastmlp`` is the same command.

With no subcommand it runs the main job: ``train`` on the shipped 8x8 digits with a fixed
train/test split. ``train`` decides the task from the label column (text, booleans or a few
integers: classification; non-integer numbers or many distinct integers: regression; ``--task``
overrides) and says so first; it standardises the features (and a regression target) and
stores the scaling, the feature names, the target name and the class names in the model, so
``predict`` and ``evaluate`` take raw files and pick their columns by name. Bad input (a
missing, empty or ragged file, a non-numeric or missing cell, a label column that does not
exist, a label the model does not know, a file that is not a model) gives one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from . import _report, _sources, optim, persistence
from ._table import TableError
from .errors import DivergenceError
from .model import MLP
from .preprocessing import Preprocessor

__all__ = ["main", "build_parser", "load_table"]


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def load_table(path: str, target: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``X, y`` from a ``.csv`` or a ``.npz`` file.

    Parameters
    ----------
    path : str
        A ``.csv`` (header auto-detected: a first row without numbers) or a ``.npz`` holding
        arrays ``X`` and ``y``.
    target : str, optional
        The label column of a CSV: a header name or a 0-based index; default the last.

    Returns
    -------
    X : ndarray (n_samples, n_features)
        The features (float64 from a CSV, NaN for a missing cell; as stored in a ``.npz``).
    y : ndarray (n_samples,)
        The label column: float64 if every label is a number, else the stripped strings.

    Raises
    ------
    ValueError
        For a missing, empty or ragged file, a non-numeric feature cell, a missing label or an
        unknown label column (the message names the file, line and column).
    """
    if path.endswith(".npz"):
        return _sources.load_npz(path)
    source = _sources.CsvSource(path, target, _sources.DEFAULT_CHUNK_ROWS, impute=True)
    chunks = list(source.chunks())
    if not chunks:
        raise TableError(f"{path}: no data rows after the header")
    X = np.concatenate([c.X for c in chunks])
    y = np.concatenate([c.labels for c in chunks])
    try:
        return X, y.astype(np.float64)
    except ValueError:
        return X, y


# --- commands ----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """``fastmlp train``: scan the file, decide the task, train, save (``fastmlp._cli_train``)."""
    from . import _cli_train

    return _cli_train.cmd_train(args)


def cmd_stream(args: argparse.Namespace) -> int:
    """``fastmlp stream``: one pass of test-then-train over a CSV file or standard input."""
    from . import _cli_train

    return _cli_train.cmd_stream(args)


def _load_model(path: str) -> tuple[MLP, Preprocessor]:
    """Load a model and its preprocessing (older files: classes 0..n-1, raw inputs)."""
    try:
        net, pre = persistence.load_with_preprocessing(MLP, path)
    except FileNotFoundError as exc:
        raise CLIError(f"{path}: no such file") from exc
    return net, pre if pre is not None else _sources.legacy_preprocessor(net)


def _outputs(net: MLP, pre: Preprocessor, X: np.ndarray) -> np.ndarray:
    """Raw inputs -> the network's outputs (regressor: on the target's scale)."""
    try:
        Z = pre.transform(X)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    out = net.predict(Z).astype(np.float64)
    return pre.unscale_target(out) if pre.class_names is None else out


def _classes(net: MLP, out: np.ndarray) -> np.ndarray:
    if net.output == "softmax":
        return out.argmax(axis=1)
    return (out >= 0.5).astype(np.int64)[:, 0] if out.shape[1] == 1 else (out >= 0.5)


def _prediction_lines(net: MLP, pre: Preprocessor, out: np.ndarray, proba: bool) -> list[str]:
    if proba:
        if pre.class_names is None or net.output != "softmax" and out.shape[1] != 1:
            raise CLIError("--proba needs a classifier (this model is a regressor)")
        P = out if net.output == "softmax" else np.column_stack([1 - out[:, 0], out[:, 0]])
        return [",".join(f"{v:.6g}" for v in row) for row in P]
    if pre.class_names is not None:
        return pre.decode(_classes(net, out)).tolist()
    if net.output != "identity":  # several sigmoid units saved without class names
        return [",".join(str(int(v)) for v in row) for row in _classes(net, out)]
    return [",".join(f"{v:.10g}" for v in row) for row in out]


def cmd_predict(args: argparse.Namespace) -> int:
    """``fastmlp predict``: one class name (or value) per line, or ``--proba`` columns.

    The file is read and predicted in chunks (memory: one chunk); ``-o`` is written to a
    temporary file renamed at the end, so an error leaves no partial output.
    """
    net, pre = _load_model(args.model)
    chunks = _sources.iter_for_model(args.data, pre, net.layout.n_in, args.target, False)
    with contextlib.ExitStack() as stack:
        sink = sys.stdout
        if args.output_file:
            sink = stack.enter_context(
                persistence.atomic_open(args.output_file, "w", prefix=".fastmlp-predict-")
            )
        if args.proba and pre.class_names is not None:
            csv.writer(sink, lineterminator="\n").writerow(pre.class_names)
        n = 0
        for chunk in chunks:
            lines = _prediction_lines(net, pre, _outputs(net, pre, chunk.X), args.proba)
            sink.write("\n".join(lines) + "\n")
            n += len(lines)
    if args.output_file:
        print(f"wrote {n} predictions to {args.output_file}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``fastmlp evaluate``: a classifier's or a regressor's figures on a labelled file.

    A classifier: accuracy, loss, per-class precision/recall/F1 and the confusion matrix; a
    regressor: MAE, RMSE and R^2. ``--json`` prints them as one object. The file is read in
    chunks and the figures accumulated (a regressor's ``--plot`` keeps two floats per row).
    """
    net, pre = _load_model(args.model)
    if net.output != "identity" and (pre.class_names is None or net.layout.n_out > 1
                                     and net.output == "sigmoid"):  # fmt: skip
        raise CLIError(f"{args.model}: evaluate needs a model with one label per sample")
    chunks = _sources.iter_for_model(args.data, pre, net.layout.n_in, args.target, True)
    if pre.class_names is not None:
        figures = _report.ClassificationFigures(len(pre.class_names))
    else:
        figures = _report.RegressionFigures(keep=bool(args.plot))
    for chunk in chunks:
        y = _sources.targets(pre, net.output, chunk, args.data)
        out = _outputs(net, pre, chunk.X)
        if pre.class_names is not None:
            loss = net.loss(pre.transform(chunk.X), y)
            figures.add(y.astype(np.int64), _classes(net, out), loss)
        else:
            figures.add(pre.unscale_target(y), out[:, 0])
    metrics = figures.metrics(pre.class_names) if pre.class_names is not None \
        else figures.metrics()  # fmt: skip
    if args.json:  # strict JSON: an undefined figure (R^2 of a constant target) is null
        print(json.dumps({k: None if isinstance(v, float) and v != v else v
                          for k, v in metrics.items()}))  # fmt: skip
    elif pre.class_names is not None:
        _report.print_classification(metrics)
    else:
        _report.print_regression(metrics)
    if args.plot:
        _evaluation_plot(args, pre, metrics, figures)
    return 0


def _evaluation_plot(args: argparse.Namespace, pre: Preprocessor, metrics: dict, figures) -> None:
    if pre.class_names is not None:
        title = f"{args.data}: accuracy {metrics['accuracy']:.3f}"
        _report.plot_confusion(args.plot, np.asarray(metrics["confusion_matrix"]),
                               pre.class_names, title)  # fmt: skip
    else:
        title = f"{args.data}: R2 {metrics['r2']:.3f}, RMSE {metrics['rmse']:.4g}"
        truth, pred = figures.points()
        _report.plot_scatter(args.plot, truth, pred, title, pre.target_name or "target")
    if not args.json:
        print(f"wrote {args.plot}")


def cmd_export(args: argparse.Namespace) -> int:
    """``fastmlp export``: a saved model, with its preprocessing, as an ONNX file."""
    from . import export

    kwargs = {} if args.opset is None else {"opset": args.opset}
    try:
        export.export_file(args.model, args.output_file, dtype=args.dtype, **kwargs)
    except ImportError as exc:  # the onnx extra is missing: one line, exit code 2
        raise CLIError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise CLIError(f"{args.model}: no such file") from exc
    print(f"wrote {args.output_file}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``fastmlp info``: the architecture, training counts and preprocessing of a model."""
    net, pre = _load_model(args.model)
    print(f"model:       {args.model}")
    print(f"layers:      {' -> '.join(map(str, net.layer_sizes))}")
    print(f"activations: {', '.join(net.activations)}")
    print(f"loss:        {net.loss_name}")
    print(f"parameters:  {net.n_params:,}")
    print(f"dtype:       {net.dtype}")
    print(f"trained:     {len(net.history_['loss'])} epoch(s), {net.n_updates_:,} updates")
    if net.history_["loss"]:
        print(f"last loss:   {net.history_['loss'][-1]:.6f}")
    if pre.feature_names is not None:
        print(f"features:    {', '.join(pre.feature_names)}")
    if pre.target_name:
        print(f"target:      {pre.target_name}")
    if pre.class_names is not None:
        print(f"classes:     {', '.join(pre.class_names)}")
    print(f"scaling:     inputs {'standardised' if pre.features is not None else 'raw'}"
          + ("; target standardised" if pre.target is not None else ""))  # fmt: skip
    if pre.fill is not None:
        print("missing:     filled with the training means")
    return 0


# --- parser ------------------------------------------------------------------------------------
def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="label column: header name or 0-based index (default: last)")
    p.add_argument("--task", choices=["classification", "regression"],
                   help="override the decision taken from the label column")  # fmt: skip
    p.add_argument("--no-scale", action="store_true",
                   help="do not standardise the features (default: mean 0, std 1)")  # fmt: skip
    p.add_argument("--impute", choices=["mean"],
                   help="fill missing cells (empty, NA, nan, ?) with the column mean; "
                        "default: a missing cell is an error")  # fmt: skip
    p.add_argument("--layers", help="all layer sizes, e.g. 30,32,2 (default: inferred)")
    p.add_argument("--hidden-sizes", default="32", help="hidden widths (default 32)")
    p.add_argument("--hidden", default="tanh", help="hidden activation (default tanh)")
    p.add_argument("--output", choices=["softmax", "sigmoid", "identity"],
                   help="output activation (default: softmax for classes, identity for "
                        "regression); implies the task")  # fmt: skip
    p.add_argument("--loss", help="default: cross_entropy / binary_cross_entropy / mse")
    p.add_argument("--seed", type=int, default=0, help="weights, shuffling, split (default 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")


def _train_options(p: argparse.ArgumentParser) -> None:
    _data_options(p)
    p.add_argument("--no-scale-target", action="store_true",
                   help="train a regressor on the raw target (default: standardised)")  # fmt: skip
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.02; 0.001 with adam)")
    p.add_argument("--optimizer", choices=list(optim.OPTIMIZERS), default="sgd")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    p.add_argument("--beta1", type=float, default=0.9, help=argparse.SUPPRESS)
    p.add_argument("--beta2", type=float, default=0.999, help=argparse.SUPPRESS)
    p.add_argument("--epsilon", type=float, default=1e-8, help=argparse.SUPPRESS)
    p.add_argument("--alpha", type=float,
                   help="L2 weight decay per update (default 0.01, scaled down by "
                        "500 / updates per epoch on larger files; 0 with --n-jobs > 1, which "
                        "needs plain online SGD)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=1, help="samples per update (default 1)")
    p.add_argument("--schedule", choices=list(optim.SCHEDULES), default="constant",
                   help="learning-rate schedule (default constant)")  # fmt: skip
    p.add_argument("--power-t", type=float, default=0.5,
                   help="invscaling: lr / (t+1)^power_t, t samples seen (default 0.5)")  # fmt: skip
    p.add_argument("--step-size", type=int, default=10, help="step: epochs per lr drop")
    p.add_argument("--gamma", type=float, default=0.1, help="step: lr factor per drop")
    p.add_argument("--dropout", type=float, default=0.0, help="hidden-unit dropout (default 0)")
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without improvement (of the validation "
                        "loss, else the training loss)")  # fmt: skip
    p.add_argument("--tol", type=float, default=1e-4, help="improvement that counts (1e-4)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of the training rows for validation")  # fmt: skip
    p.add_argument("--n-jobs", type=int, help="threads (plain online SGD only)")
    p.add_argument("--parallel", choices=["rows", "hogwild"], default="rows",
                   help="how --n-jobs threads share the work (default rows)")  # fmt: skip
    p.add_argument("--chunk-rows", type=int, default=_sources.DEFAULT_CHUNK_ROWS,
                   help="a CSV with more rows is trained chunk by chunk, in bounded memory "
                        f"(default {_sources.DEFAULT_CHUNK_ROWS:,})")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--save", help="write the trained model (and its preprocessing) to this .npz")
    p.add_argument("--plot", help="write a PNG of the loss (and accuracy) per epoch")
    p.add_argument("--min-accuracy", type=float, default=0.95, help=argparse.SUPPRESS)


def _stream_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a .csv file, or - for standard input")
    p.add_argument("--model", help="start from this .npz if it exists; saved here at the end")
    p.add_argument("--every", type=int, default=1000, help="print every N rows (default 1000)")
    p.add_argument("--lr", type=float, default=0.02, help="learning rate (default 0.02)")
    p.add_argument("--warmup", type=int, default=1000,
                   help="a new model's task, classes and scaling come from this many first "
                        "rows (default 1000)")  # fmt: skip
    _data_options(p)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``fastmlp`` argument parser (subcommands and their options).

    Returns
    -------
    argparse.ArgumentParser
    """
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
    predict.add_argument("--target", help="label column to leave out, if the file has one")
    predict.add_argument("--proba", action="store_true",
                         help="one probability column per class, with a header")  # fmt: skip
    predict.set_defaults(func=cmd_predict)
    evaluate = sub.add_parser("evaluate", help="accuracy, per-class figures, confusion matrix; "
                                               "or MAE, RMSE, R2")  # fmt: skip
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--target", help="label column (default: the model's target name)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--plot", help="write the confusion matrix (or predicted vs true) PNG")
    evaluate.set_defaults(func=cmd_evaluate)
    stream = sub.add_parser("stream", help="one pass of test-then-train over a CSV or stdin")
    _stream_options(stream)
    stream.set_defaults(func=cmd_stream)
    export = sub.add_parser("export", help="write a saved model as ONNX (needs the onnx extra)")
    export.add_argument("model")
    export.add_argument("-o", "--output-file", required=True, help="the .onnx file to write")
    export.add_argument("--dtype", choices=["float32", "float64"], help="default: the model's")
    export.add_argument("--opset", type=int, help="ONNX opset, 13 or later (default 17)")
    export.set_defaults(func=cmd_export)
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
    commands = {"train", "predict", "evaluate", "stream", "export", "info", "bench", "-h", "--help"}
    if not argv or argv[0] not in commands:
        argv = ["train", *argv]  # the main job
    args = None if argv[0] == "bench" else build_parser().parse_args(argv)
    try:
        if args is None:
            from . import bench

            return bench.main(argv[1:])
        return args.func(args)
    except BrokenPipeError:  # the reader went away (``fastmlp predict ... | head``): quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (CLIError, ValueError, TypeError, DivergenceError, OSError, _report.PlotError) as exc:
        print(f"fastmlp: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
