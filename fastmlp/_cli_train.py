"""``fastmlp train`` and ``fastmlp stream``: from a file to a trained, saved model.

``train`` scans its file once (column statistics, the label column's kind and classes), decides
the task, builds the ``Preprocessor`` and the network, then trains: a file of one chunk
(``--chunk-rows``) in memory with one ``MLP.fit`` call, a larger one chunk by chunk, each
chunk read again in every epoch (memory: one chunk and the model). ``stream`` makes one pass of
test-then-train over a file or standard input.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import _report, _sources, datasets, optim, persistence
from ._sources import ArraySource, CsvSource
from ._table import Reader, Stats, TableError, open_text, parse
from .model import MLP
from .preprocessing import Preprocessor

DEFAULT_ALPHA = 0.01  # measured on breast cancer, diabetes, wine and digits (see the tests)
ALPHA_UPDATES = 500  # ... on ~500 updates per epoch: the decay per epoch that DEFAULT_ALPHA gives
LOSS_OF_OUTPUT = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy", "identity": "mse"}


# --- the network ---------------------------------------------------------------------------------
def _sizes(args: argparse.Namespace, n_in: int, n_out: int) -> tuple[int, ...]:
    if args.layers:
        try:
            sizes = tuple(int(s) for s in args.layers.split(","))
        except ValueError as exc:
            raise TableError(f"--layers must be comma-separated ints, got {args.layers!r}") from exc
        if sizes[0] != n_in or sizes[-1] != n_out:
            raise TableError(f"--layers {args.layers}: the data has {n_in} features and needs "
                             f"{n_out} outputs")  # fmt: skip
        return sizes
    try:
        hidden = [int(h) for h in args.hidden_sizes.split(",") if h.strip()]
    except ValueError as exc:
        raise TableError(f"--hidden-sizes must be comma-separated ints, got "
                         f"{args.hidden_sizes!r}") from exc  # fmt: skip
    return (n_in, *hidden, n_out)


def _output(args: argparse.Namespace, pre: Preprocessor) -> tuple[str, int]:
    if pre.class_names is None:
        return "identity", 1
    if args.output == "sigmoid":
        if len(pre.class_names) != 2:
            raise TableError(f"--output sigmoid needs 2 classes, the data has "
                             f"{len(pre.class_names)}")  # fmt: skip
        return "sigmoid", 1
    return "softmax", len(pre.class_names)


def build_net(args: argparse.Namespace, n_in: int, pre: Preprocessor) -> MLP:
    output, n_out = _output(args, pre)
    loss = args.loss or LOSS_OF_OUTPUT[output]
    return MLP(_sizes(args, n_in, n_out), hidden=args.hidden, output=output, loss=loss,
               seed=args.seed, dtype=args.dtype)  # fmt: skip


def task_flag(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The task the options ask for, and the option that asks (``--task``, or ``--output``,
    which implies it)."""
    if args.task:
        return args.task, f"--task {args.task}"
    if args.output == "identity":
        return "regression", "--output identity"
    if args.output in ("softmax", "sigmoid"):
        return "classification", f"--output {args.output}"
    return None, None


# --- settings ------------------------------------------------------------------------------------
def optimizer_kwargs(args: argparse.Namespace) -> dict:
    """``MLP.fit``'s optimiser settings from the flags."""
    return {
        "batch_size": args.batch_size, "optimizer": args.optimizer, "momentum": args.momentum,
        "nesterov": args.nesterov, "alpha": args.alpha, "beta1": args.beta1,
        "beta2": args.beta2, "epsilon": args.epsilon, "dropout": args.dropout,
    }  # fmt: skip


def learning_rate(args: argparse.Namespace) -> float:
    if args.lr is not None:
        return args.lr
    return 0.001 if args.optimizer == "adam" else 0.02


def default_alpha(args: argparse.Namespace, n_rows: int) -> tuple[float, str]:
    """``--alpha``'s default and why: the weight decay is applied per update, so the default
    is scaled to give, per epoch, the decay of ``DEFAULT_ALPHA`` over ``ALPHA_UPDATES`` updates
    (and no more: capped at ``DEFAULT_ALPHA`` for smaller files); 0 with ``--n-jobs > 1``."""
    if args.n_jobs and args.n_jobs > 1:
        return 0.0, f"default with --n-jobs {args.n_jobs}, which needs plain online SGD"
    n_val = math.ceil(n_rows * args.val_fraction) if 0 < args.val_fraction < 1 else 0
    updates = max(1, math.ceil((n_rows - n_val) / max(args.batch_size, 1)))
    if updates <= ALPHA_UPDATES:
        return DEFAULT_ALPHA, "default"
    alpha = float(f"{DEFAULT_ALPHA * ALPHA_UPDATES / updates:.3g}")
    return alpha, f"default: {DEFAULT_ALPHA:g} x {ALPHA_UPDATES} / {updates:,} updates per epoch"


def describe(net: MLP, pre: Preprocessor, args: argparse.Namespace, lr: float,
             alpha_why: str | None = None) -> str:  # fmt: skip
    scaling = "standardised" if pre.features is not None else "as they are (--no-scale)"
    parts = [f"features {scaling}"]
    if pre.target is not None:
        parts.append("target standardised (predictions on its own scale)")
    if pre.fill is not None:
        parts.append("missing cells filled with the training means")
    opt = args.optimizer + (f", momentum {args.momentum}" if args.momentum else "")
    opt += ", nesterov" if args.nesterov else ""
    opt += f", alpha {args.alpha:g}" + (f" ({alpha_why})" if alpha_why else "")
    schedule = args.schedule + (f" power_t {args.power_t:g}" if args.schedule == "invscaling"
                                else "")  # fmt: skip
    return (f"model: {net}: {net.n_params:,} parameters; {'; '.join(parts)}\n"
            f"training: {opt}, lr {lr:g} ({schedule}), batch size {args.batch_size}, "
            f"up to {args.epochs} epochs")  # fmt: skip


# --- train ---------------------------------------------------------------------------------------
def _source(args: argparse.Namespace):
    if args.data is None:  # the main job: the shipped digits, fixed split
        X, y, X_test, y_test = datasets.digits_train_test()
        print(f"digits: {len(y)} training / {len(y_test)} test samples, 64 features, 10 classes")
        return ArraySource("digits", X, y, False), (X_test, y_test)
    if args.data == "-":
        raise TableError("train reads its file once per epoch and cannot take standard "
                         "input; give a file name, or use: fastmlp stream -")  # fmt: skip
    if args.data.endswith(".npz"):
        X, y = _sources.load_npz(args.data)
        return ArraySource(args.data, X, y, args.impute == "mean"), None
    return CsvSource(args.data, args.target, args.chunk_rows, args.impute == "mean"), None


def _check_counts(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(args, name.replace("-", "_"))
        if value is not None and value < 1:
            raise TableError(f"--{name} must be >= 1, got {value}")


def cmd_train(args: argparse.Namespace) -> int:
    _check_counts(args, ("epochs", "patience", "chunk-rows", "step-size"))
    source, test = _source(args)
    scanned = _sources.scan(source)
    stats = scanned.stats
    alpha_why = None
    if args.alpha is None:  # online SGD on small tables overfits without weight decay
        args.alpha, alpha_why = default_alpha(args, stats.n_rows)
    task, why = _sources.decide(source, stats, *task_flag(args))
    target = source.target_name or ("the last column" if args.target is None else args.target)
    rows = f"{stats.n_rows:,} rows"
    if scanned.only_chunk is None:
        rows += f" in {scanned.n_chunks} chunks of up to {args.chunk_rows:,}, trained one by one"
    print(f"task: {task} ({why}); label: {target}; {rows}")
    pre = _sources.build_preprocessor(source, stats, task, not args.no_scale,
                                      not args.no_scale_target, args.impute == "mean")  # fmt: skip
    if pre.class_names is not None and task == "classification":
        shown = ", ".join(pre.class_names[:10]) + (", ..." if len(pre.class_names) > 10 else "")
        print(f"classes: {shown}")
    n_in = len(source.feature_names) if source.feature_names else int(stats.count.shape[0])
    net = build_net(args, n_in, pre)
    lr = learning_rate(args)
    print(describe(net, pre, args, lr, alpha_why))
    _warm_up(args, n_in, pre, lr)
    run = Run(net, pre, args, lr, source.name)
    if scanned.only_chunk is not None:
        run.fit_in_memory(scanned.only_chunk, test)
    else:
        run.fit_chunked(source)
    return run.finish(test)


def _warm_up(args: argparse.Namespace, n_in: int, pre: Preprocessor, lr: float) -> None:
    """Compile (or load cached) kernels on a throwaway model, so epoch 1's speed is honest."""
    t0 = time.perf_counter()
    net = build_net(args, n_in, pre)
    X = np.zeros((1, n_in))
    Y = np.zeros(1, dtype=np.int64) if net.output == "softmax" else np.zeros(1)
    net.fit(X, Y, lr=1e-12, n_jobs=args.n_jobs, parallel=args.parallel, **optimizer_kwargs(args))
    print(f"kernels ready in {time.perf_counter() - t0:.2f} s")


@dataclass
class Run:
    """One training run of ``fastmlp train``: the epoch table, the fit, the summary."""

    net: MLP
    pre: Preprocessor
    args: argparse.Namespace
    lr: float
    name: str
    accuracy: list[float] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def classify(self) -> bool:
        return self.pre.class_names is not None

    def _columns(self, val: bool, test: bool, chunked: bool) -> list[str]:
        cols = ["epoch", "loss"]
        if val:
            cols.append("val loss")
        if not chunked:
            cols.append("train acc" if self.classify else "train rmse")
        if val:
            cols.append("val acc" if self.classify else "val rmse")
        if test:
            cols.append("test acc")
        if self.args.schedule != "constant":
            cols.append("lr")
        return [*cols, "samples/s"]

    def _metric(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Accuracy (classifier), or RMSE on the target's own scale (regressor)."""
        if self.classify:
            pred = self.net.predict_classes(X)
            return float(np.mean(pred == (Y if self.net.output == "softmax" else Y >= 0.5)))
        out = self.pre.unscale_target(self.net.predict(X)[:, 0])
        return float(np.sqrt(np.mean((out - self.pre.unscale_target(Y)) ** 2)))

    def fit_in_memory(self, chunk, test) -> None:
        args, net, pre = self.args, self.net, self.pre
        X = pre.transform(chunk.X)
        Y = _sources.targets(pre, net.output, chunk, self.name)
        val = None
        if args.val_fraction:
            X, Y, val = self._split(X, Y)
        X_test = y_test = None
        if test is not None:
            X_test, y_test = pre.transform(test[0]), test[1]
        bar = _report.progress_bar(args.epochs, "epoch", not args.no_progress)
        table = _report.EpochTable(self._columns(val is not None, test is not None, False), bar)

        def callback(epoch: int, logs: dict[str, float]) -> None:
            row = {"epoch": epoch + 1, "loss": logs["loss"], "lr": logs["lr"],
                   "samples/s": logs["samples_per_s"], "train acc": math.nan}  # fmt: skip
            row["train acc" if self.classify else "train rmse"] = self._metric(X, Y)
            self.accuracy.append(row.get("train acc", math.nan))
            if val is not None:
                row["val loss"] = logs["val_loss"]
                row["val acc" if self.classify else "val rmse"] = self._metric(*val)
            if X_test is not None:
                row["test acc"] = float(np.mean(net.predict_classes(X_test) == y_test))
            table.row(row)
            if bar is not None:
                bar.update(1)

        t0 = time.perf_counter()
        try:
            net.fit(X, Y, epochs=args.epochs, lr=self.lr, validation_data=val,
                    schedule=args.schedule, power_t=args.power_t, step_size=args.step_size,
                    gamma=args.gamma, patience=args.patience, tol=args.tol, callback=callback,
                    n_jobs=args.n_jobs, parallel=args.parallel,
                    **optimizer_kwargs(args))  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        self.seconds = time.perf_counter() - t0
        self.final["train"] = self._metric(X, Y)
        if val is not None:
            self.final["validation"] = self._metric(*val)

    def _split(self, X, Y):
        args = self.args
        if not 0 < args.val_fraction < 1:
            raise TableError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
        n_val = int(np.ceil(len(Y) * args.val_fraction))
        if n_val >= len(Y):
            raise TableError(f"--val-fraction {args.val_fraction} leaves no training data")
        perm = np.random.default_rng(args.seed).permutation(len(Y))
        print(f"validation: {n_val} of the training samples held out")
        return X[perm[n_val:]], Y[perm[n_val:]], (X[perm[:n_val]], Y[perm[:n_val]])

    def fit_chunked(self, source: CsvSource) -> None:
        from ._chunked import fit_chunked

        fit_chunked(self, source)

    def summary(self) -> str:
        """``trained N epoch(s) ...``: why it stopped early, and which epoch's weights it kept
        (``--patience`` restores the best epoch's: its training loss is the one shown)."""
        args, h = self.args, self.net.history_
        epochs = len(h["loss"])
        stopped = ""
        if epochs < args.epochs and args.schedule == "adaptive":
            stopped = (f" (stopped early: --schedule adaptive would take the learning rate "
                       f"below {optim.ADAPTIVE_MIN_LR:g})")  # fmt: skip
        elif epochs < args.epochs and args.patience:
            stopped = f" (stopped early: no improvement for {args.patience} epochs)"
        head = f"trained {epochs} epoch(s), {self.net.n_updates_:,} updates in " \
               f"{self.seconds:.2f} s{stopped}"  # fmt: skip
        best = self.best_epoch()
        if best is None or best == epochs - 1:
            return f"{head}; final training loss {h['loss'][-1]:.4f}"
        watched = "validation loss" if len(h["val_loss"]) == epochs else "training loss"
        return (f"{head}; restored epoch {best + 1} (the best {watched}), its training loss "
                f"{h['loss'][best]:.4f}")  # fmt: skip

    def best_epoch(self) -> int | None:
        """The 0-based epoch whose weights ``--patience`` restored (None without it)."""
        args, h = self.args, self.net.history_
        if args.patience is None or not h["loss"]:
            return None
        watched = h["val_loss"] if len(h["val_loss"]) == len(h["loss"]) else h["loss"]
        best, where = math.inf, None
        for i, value in enumerate(watched):
            if value < best - args.tol:
                best, where = value, i
        return where

    def finish(self, test) -> int:
        net, args = self.net, self.args
        print(self.summary())
        what = "accuracy" if self.classify else "rmse"
        for part, value in self.final.items():
            print(f"{part} {what}: {value:.4f}")
        if args.save:
            persistence.save(net, args.save, preprocessing=self.pre)
            print(f"saved {args.save}")
        if args.plot:
            _report.plot_curves(args.plot, net.history_, self.accuracy if self.classify else [])
            print(f"wrote {args.plot}")
        if test is not None:
            X_test = self.pre.transform(test[0])
            test_acc = float(np.mean(net.predict_classes(X_test) == test[1]))
            print(f"test accuracy: {test_acc:.4f}")
            if test_acc < args.min_accuracy:
                print(f"below the expected {args.min_accuracy:.2f}", file=sys.stderr)
                return 1
        return 0


# --- stream --------------------------------------------------------------------------------------
@dataclass
class Progressive:
    """Running test-then-train figures: each row is scored before the model learns it."""

    classify: bool
    n: int = 0
    loss: float = 0.0
    correct: int = 0
    abs_err: float = 0.0

    def add(self, out: np.ndarray, code, y_raw: float, pre: Preprocessor) -> None:
        self.n += 1
        if self.classify:
            if out.shape[0] == 1:  # one sigmoid unit
                p = float(out[0]) if code == 1 else 1.0 - float(out[0])
                pred = int(out[0] >= 0.5)
            else:
                p, pred = float(out[code]), int(np.argmax(out))
            self.loss -= math.log(max(p, 1e-15))
            self.correct += pred == code
        else:
            err = float(pre.unscale_target(out[:1])[0]) - y_raw
            self.loss += err * err
            self.abs_err += abs(err)

    def line(self) -> str:
        if self.classify:
            return (f"{self.n:>10,d} {self.loss / self.n:10.4f} "
                    f"{self.correct / self.n:10.4f}")  # fmt: skip
        return f"{self.n:>10,d} {math.sqrt(self.loss / self.n):10.4g} {self.abs_err / self.n:10.4g}"

    def header(self) -> str:
        second = ("log loss", "accuracy") if self.classify else ("rmse", "mae")
        return f"{'rows':>10} {second[0]:>10} {second[1]:>10}  (progressive: each row scored " \
               "before it is learned)"  # fmt: skip


MAX_WARNINGS = 5  # bad rows of a stream named on stderr; the rest are only counted


def cmd_stream(args: argparse.Namespace) -> int:
    """A bad row (a cell that is not a number, a missing cell, an unknown label, a wrong
    number of cells) is skipped with a warning and counted, as Vowpal Wabbit does with a
    malformed example; an error that ends the stream (an unreadable file) saves the model
    learned so far before the one-line error."""
    _check_counts(args, ("every", "warmup"))
    name = "standard input" if args.data == "-" else args.data
    fh = open_text(args.data)
    try:
        reader = Reader(fh, name)
        net, pre, label, features = _stream_model(args, reader, name)
        score = Progressive(pre.class_names is not None)
        print(score.header())
        t0 = time.perf_counter()
        code = 0
        skipped = _Skipped()
        try:
            _stream_rows(args, reader, net, pre, label, features, score, skipped)
        except KeyboardInterrupt:  # Ctrl-C: keep what was learned so far
            print("interrupted", file=sys.stderr)
            code = 130
        except (ValueError, OSError) as exc:  # the stream cannot go on: keep what was learned
            raise TableError(f"{exc}{_saved_so_far(args, net, pre, score.n)}") from exc
    finally:
        if fh is not sys.stdin:
            fh.close()
    if score.n and score.n % args.every:
        print(score.line())
    bad = f"; {skipped.n:,} bad row(s) skipped" if skipped.n else ""
    print(f"streamed {score.n:,} rows in {time.perf_counter() - t0:.2f} s{bad}")
    if skipped.n > MAX_WARNINGS:
        print(f"fastmlp: warning: {skipped.n:,} bad rows skipped in all (the first "
              f"{MAX_WARNINGS} named above)", file=sys.stderr)  # fmt: skip
    if args.model:
        persistence.save(net, args.model, preprocessing=pre)
        print(f"saved {args.model}")
    return code


def _saved_so_far(args, net: MLP, pre: Preprocessor, n: int) -> str:
    if not args.model or n == 0:
        return ""
    try:
        persistence.save(net, args.model, preprocessing=pre)
    except (ValueError, OSError) as exc:
        return f"; the model learned so far could not be saved ({exc})"
    return f"; the model learned from the first {n:,} rows was saved to {args.model}"


@dataclass
class _Skipped:
    """The bad rows of a stream: the first few named on stderr, all counted."""

    n: int = 0

    def add(self, problem: str) -> None:
        self.n += 1
        if self.n <= MAX_WARNINGS:
            print(f"fastmlp: warning: {problem}; row skipped", file=sys.stderr, flush=True)


def _stream_model(args, reader: Reader, name: str):
    """The model to stream into: ``--model`` if it exists, else one built from the first
    ``--warmup`` rows (task, classes, scaling)."""
    from ._table import decide_task, feature_columns, resolve_target

    if args.model and os.path.exists(args.model):
        net, pre = persistence.load_with_preprocessing(MLP, args.model)
        pre = pre if pre is not None else _sources.legacy_preprocessor(net)
        target = args.target if args.target is not None else pre.target_name
        label = resolve_target(reader, target)
        features = feature_columns(reader, pre.feature_names, net.layout.n_in, label)
        print(f"model: {args.model}: {net}, {net.n_samples_seen_:,} samples seen so far")
        return net, pre, label, features
    label = resolve_target(reader, args.target)
    features = [j for j in range(reader.width) if j != label]
    first = reader.peek(args.warmup)
    if not first:
        raise TableError(f"{name}: no data rows after the header")
    chunk = parse(reader, [ln for ln, _ in first], [r for _, r in first], features, label,
                  args.impute == "mean")  # fmt: skip
    stats = Stats()
    stats.add(chunk.X, chunk.labels)
    src = _StreamSource(name, reader, features, label)
    asked, flag = task_flag(args)
    task, why = decide_task(stats, asked, name, flag)
    pre = _sources.build_preprocessor(src, stats, task, not args.no_scale, True,
                                      args.impute == "mean")  # fmt: skip
    net = build_net(args, len(features), pre)
    print(f"task: {task} ({why}), decided on the first {len(first):,} rows; new model {net}")
    return net, pre, label, features


@dataclass
class _StreamSource:
    name: str
    reader: Reader
    features: list[int]
    label: int

    @property
    def feature_names(self):
        h = self.reader.header
        return None if h is None else tuple(h[j] for j in self.features)

    @property
    def target_name(self):
        return None if self.reader.header is None else self.reader.header[self.label]


def _stream_rows(args, reader, net: MLP, pre: Preprocessor, label, features, score,
                 skipped: _Skipped) -> None:  # fmt: skip
    lr = args.lr
    test_then_train = getattr(net, "test_then_train", None)
    for lines, rows in reader.chunks(min(args.every, 1024), skip=skipped.add):
        X, Y, raw = _stream_batch(reader, net, pre, lines, rows, label, features, skipped)
        for i in range(len(X)):
            x, y = X[i], Y[i]
            if test_then_train is not None:
                out = np.asarray(test_then_train(x, y, lr))
            else:
                out = net.predict(x[None])[0]
                net.step(x, y, lr)
            if score.classify:
                score.add(out, int(y if net.output == "softmax" else y[0]), 0.0, pre)
            else:
                score.add(out, None, float(raw[i]), pre)
            if score.n % args.every == 0:
                print(score.line(), flush=True)


def _stream_batch(reader, net: MLP, pre: Preprocessor, lines, rows, label, features,
                  skipped: _Skipped):  # fmt: skip
    """The network's inputs, targets and the raw labels of a batch; a bad row is skipped (the
    batch is parsed row by row only when it has one)."""
    allow_missing = pre.fill is not None

    def convert(lines, rows):
        chunk = parse(reader, lines, rows, features, label, allow_missing)
        X = pre.transform(chunk.X).astype(net.dtype)
        Y = _sources.targets(pre, net.output, chunk, reader.name)
        if net.output != "softmax":
            Y = Y.astype(net.dtype).reshape(len(Y), 1)
        return X, Y, chunk.labels

    try:
        return convert(lines, rows)
    except TableError:
        pass
    good = []
    for line, row in zip(lines, rows, strict=True):
        try:
            good.append(convert([line], [row]))
        except TableError as exc:
            skipped.add(str(exc))
    if not good:
        return np.zeros((0, len(features))), np.zeros(0), np.zeros(0, dtype=str)
    return tuple(np.concatenate(parts) for parts in zip(*good, strict=True))
