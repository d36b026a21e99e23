"""What the command line prints and draws: the epoch table, progress bars, metrics, plots."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

# --- the epoch table ---------------------------------------------------------------------------
FORMATS = {
    "epoch": ("{:5d}", 5),
    "samples/s": ("{:11,.0f}", 11),
    "lr": ("{:9.3g}", 9),
}


class EpochTable:
    """Prints a header, then one row per epoch, with only the columns given."""

    def __init__(self, columns: Sequence[str], bar: Any = None) -> None:
        self.columns, self.bar = list(columns), bar
        self.widths = [FORMATS.get(c, ("", max(9, len(c))))[1] for c in self.columns]
        self._write(" ".join(f"{c:>{w}}" for c, w in zip(self.columns, self.widths, strict=True)))

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def row(self, values: dict[str, float]) -> None:
        cells = []
        for c, w in zip(self.columns, self.widths, strict=True):
            v = values.get(c, math.nan)
            fmt = FORMATS.get(c, ("{:" + str(w) + ".4f}", w))[0]
            cells.append(fmt.format(v) if not (isinstance(v, float) and math.isnan(v))
                         else f"{'-':>{w}}")  # fmt: skip
        self._write(" ".join(cells))


def progress_bar(total: int | None, unit: str, enabled: bool, leave: bool = True) -> Any:
    """A tqdm bar on stderr when tqdm is installed, ``enabled`` and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, file=sys.stderr, leave=leave, dynamic_ncols=True)


# --- metrics -----------------------------------------------------------------------------------
def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (y, pred), 1)
    return out


class ClassificationFigures:
    """Accumulates a confusion matrix and the summed loss over chunks of labelled rows."""

    def __init__(self, n_classes: int) -> None:
        self.cm = np.zeros((n_classes, n_classes), dtype=np.int64)
        self.loss_sum, self.n = 0.0, 0

    def add(self, y: np.ndarray, pred: np.ndarray, mean_loss: float) -> None:
        self.cm += confusion(y, pred, self.cm.shape[0])
        self.loss_sum += mean_loss * len(y)
        self.n += len(y)

    def metrics(self, names: Sequence[str]) -> dict[str, Any]:
        return classification_metrics(self.cm, names, self.loss_sum / max(self.n, 1))


def classification_metrics(cm: np.ndarray, names: Sequence[str], loss: float) -> dict[str, Any]:
    """accuracy, loss, per-class precision/recall/F1/support and the confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(actual[i]),
        }
        for i, name in enumerate(names)
    }
    n = int(cm.sum())
    return {
        "task": "classification",
        "n_samples": n,
        "accuracy": float(tp.sum() / n) if n else math.nan,
        "loss": float(loss),
        "classes": list(names),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


class RegressionFigures:
    """Accumulates the sums behind MAE, RMSE and R^2 over chunks (and the points, if kept)."""

    def __init__(self, keep: bool) -> None:
        self.n, self.abs_err, self.sq_err = 0, 0.0, 0.0
        self.shift: float | None = None
        self.total, self.total_sq = 0.0, 0.0  # of y - shift: the variance without cancellation
        self.keep, self.parts = keep, []

    def add(self, y: np.ndarray, pred: np.ndarray) -> None:
        if self.shift is None:
            self.shift = float(y.mean())
        err, d = pred - y, y - self.shift
        self.n += len(y)
        self.abs_err += float(np.sum(np.abs(err)))
        self.sq_err += float(np.sum(err * err))
        self.total += float(d.sum())
        self.total_sq += float(np.sum(d * d))
        if self.keep:
            self.parts.append((y, pred))

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([p[0] for p in self.parts]),
                np.concatenate([p[1] for p in self.parts]))  # fmt: skip

    def metrics(self) -> dict[str, Any]:
        """mae, rmse, r2 (1 - SSE/SST; NaN for a constant target: ``is_constant``, the rule of
        ``Standardizer``)."""
        from .preprocessing import is_constant, mean_std

        n = max(self.n, 1)
        mean, std = mean_std(n, self.total, self.total_sq, self.shift or 0.0)
        constant = self.n == 0 or bool(is_constant(mean, std))
        return {
            "task": "regression",
            "n_samples": self.n,
            "mae": self.abs_err / n,
            "rmse": math.sqrt(self.sq_err / n),
            "r2": math.nan if constant else 1.0 - self.sq_err / (n * float(std) ** 2),
        }


def print_classification(m: dict[str, Any]) -> None:
    names = m["classes"]
    print(f"samples:  {m['n_samples']}")
    print(f"loss:     {m['loss']:.6f}")
    print(f"accuracy: {m['accuracy']:.4f}")
    w = max(7, *(len(n) for n in names))
    print(f"{'class':>{w}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for name in names:
        c = m["per_class"][name]
        print(f"{name:>{w}} {c['precision']:9.4f} {c['recall']:9.4f} {c['f1']:9.4f} "
              f"{c['support']:8d}")  # fmt: skip
    cm = np.asarray(m["confusion_matrix"])
    print("confusion matrix (rows: true class, columns: predicted):")
    cw = max(4, len(str(cm.max())) + 1, *(len(n) + 1 for n in names))
    print(" " * (w + 1) + "".join(f"{n:>{cw}}" for n in names))
    for name, row in zip(names, cm, strict=True):
        print(f"{name:>{w}} " + "".join(f"{v:>{cw}d}" for v in row))


def print_regression(m: dict[str, Any]) -> None:
    print(f"samples: {m['n_samples']}")
    print(f"mae:     {m['mae']:.6g}")
    print(f"rmse:    {m['rmse']:.6g}")
    print(f"r2:      {m['r2']:.4f}")


# --- plots -------------------------------------------------------------------------------------
class PlotError(RuntimeError):
    """matplotlib is missing."""


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotError(
            "--plot needs matplotlib: pip install matplotlib (or fastmlp[plot])"
        ) from exc
    return plt


def plot_curves(path: str, history: dict[str, list[float]], accuracy: list[float]) -> None:
    """PNG (640 x 400) of the training (and validation) loss, and accuracy, per epoch."""
    plt = pyplot()
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
        lines += ax2.plot(epochs[: len(accuracy)], accuracy, "s--", color="tab:orange",
                          label="training accuracy")  # fmt: skip
        if history["val_accuracy"]:
            lines += ax2.plot(epochs, history["val_accuracy"], "s:", color="tab:red",
                              label="validation accuracy")  # fmt: skip
        ax2.set_ylabel("accuracy")
    ax1.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(path: str, cm: np.ndarray, names: Sequence[str], title: str) -> None:
    """PNG (500 x 500) of the confusion matrix."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.imshow(cm, cmap="Blues")
    n = len(names)
    ax.set_xticks(range(n), labels=list(names), rotation=45 if n > 4 else 0)
    ax.set_yticks(range(n), labels=list(names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    dark = cm.max() / 2
    for (i, j), v in np.ndenumerate(cm):
        color = "white" if v > dark else "black"
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color=color)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_scatter(path: str, y: np.ndarray, pred: np.ndarray, title: str, name: str) -> None:
    """PNG (500 x 500) of predicted against true values, with the diagonal."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(y, pred, s=8, alpha=0.6)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="predicted = true")
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel(f"predicted {name}")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
