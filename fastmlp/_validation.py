"""Input checks for the public API. Every check raises ``ValueError``/``TypeError`` naming the
argument, what was expected and what came, *before* any kernel runs (kernels have no bounds
checks, so an unchecked shape would read or write out of bounds)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from . import _kernels as K

HIDDEN_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "softmax")
LOSSES = ("mse", "mae", "binary_cross_entropy", "cross_entropy")
INITS = ("auto", "glorot", "he")
# Output activations each loss accepts.
COMPATIBLE_OUTPUTS = {
    "mse": OUTPUT_ACTIVATIONS,
    "mae": OUTPUT_ACTIVATIONS,
    "binary_cross_entropy": ("sigmoid",),
    "cross_entropy": ("softmax",),
}
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# np.finfo is slow per call, so the largest values are computed once
_LARGEST = {dt: float(np.finfo(dt).max) for dt in DTYPES}


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise with a "did you mean"."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(choices)}; got {value!r}.")
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.{hint}")
    return value


def check_layer_sizes(layer_sizes: object) -> tuple[int, ...]:
    """Layer widths as a tuple of ints >= 1, at least (n_in, n_out)."""
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence | np.ndarray):
        raise TypeError(
            f"layer_sizes must be a sequence of ints such as (784, 128, 10), got {layer_sizes!r}."
        )
    sizes = []
    for s in layer_sizes:
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise TypeError(f"layer_sizes must contain ints, got {s!r} in {tuple(layer_sizes)}.")
        sizes.append(int(s))
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes must have at least 2 entries (n_in, ..., n_out), got {tuple(sizes)}."
        )
    if min(sizes) < 1:
        raise ValueError(f"layer_sizes must all be >= 1, got {tuple(sizes)}.")
    return tuple(sizes)


def check_dtype(dtype: object) -> np.dtype:
    """float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}.") from exc
    if dt not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}.")
    return dt


def check_positive(name: str, value: object) -> float:
    """A finite real number > 0."""
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, Real)):
        raise TypeError(f"{name} must be a real number > 0, got {value!r}.")
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return v


def check_lr(value: object, dtype: np.dtype) -> float:
    """A learning rate: finite, > 0 and representable in the model's dtype."""
    lr = check_positive("lr", value)
    if lr > _LARGEST[dtype]:
        raise ValueError(
            f"lr must be a finite number > 0 representable in {dtype} (at most "
            f"{_LARGEST[dtype]:.4g}), got {value!r}."
        )
    return lr


def check_positive_int(name: str, value: object) -> int:
    """An int >= 1."""
    if type(value) is int and value >= 1:  # the common case, without the ABC checks below
        return value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}.")
    return int(value)


def check_real(name: str, value: object, lo: float, hi: float, lo_open: bool, hi_open: bool):
    """A finite real in the interval given (open or closed at each end)."""
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, Real)):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    v = float(value)
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}.")
    return v


def _as_real_array(name: str, value: object, dtype: np.dtype) -> np.ndarray:
    """Convert once to a C-contiguous array of ``dtype`` (no copy if it already is one)."""
    if (
        type(value) is np.ndarray
        and value.dtype == dtype
        and value.flags.c_contiguous
        and value.flags.writeable
    ):  # already what the steps below return (fit's common case): skip them
        return value
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {arr.dtype}; expected a real numeric array "
            f"(it is converted to {dtype})."
        )
    with np.errstate(over="ignore"):  # float64 beyond float32's range -> inf, reported below
        out = np.asarray(arr, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
    if out.dtype.itemsize < arr.dtype.itemsize and arr.dtype.kind == "f":
        overflow = np.isinf(out) & np.isfinite(arr)
        if overflow.any():
            raise ValueError(
                f"{name} has {int(overflow.sum())} value(s) beyond the range of {dtype} "
                f"(|x| > {np.finfo(dtype).max:.4g}), e.g. {arr[overflow].flat[0]!r}."
            )
    return writeable(out)


def writeable(arr: np.ndarray) -> np.ndarray:
    """``arr``, copied if it is read-only (a memmap, a broadcast view): Numba compiles a second
    version of every kernel for read-only arrays (seconds each, per process without a cache)."""
    return arr if arr.flags.writeable else arr.copy()


def check_finite(name: str, arr: np.ndarray) -> None:
    if arr.dtype.kind in "biu":  # integers are finite
        return
    if arr.ndim == 2 and arr.dtype.kind == "f" and arr.flags.c_contiguous and arr.size > 4096:
        if K.count_nonfinite(arr.reshape(-1)) == 0:  # allocation-free pass (a view)
            return
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        where = ", ".join(str(int(i)) for i in bad[0])
        raise ValueError(
            f"{name} contains {len(bad)} non-finite value(s) (first at index ({where})); "
            "remove or impute NaN/inf."
        )


def check_X(
    X: object, n_in: int, dtype: np.dtype, name: str = "X", finite: bool = True
) -> np.ndarray:
    """2-D ``(n_samples, n_in)``, non-empty, finite; returned C-contiguous in ``dtype``.

    ``finite=False`` skips the finiteness scan: the caller then scans (in parallel, say) and
    calls ``check_finite`` itself before using any result."""
    arr = _as_real_array(name, X, dtype)
    if arr.ndim != 2:
        hint = " (use X.reshape(1, -1) for a single sample)" if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, {n_in}), got {arr.ndim}-D shape "
            f"{arr.shape}{hint}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample is needed.")
    if arr.shape[1] != n_in:
        raise ValueError(
            f"{name} has shape {arr.shape}, expected (n_samples, {n_in}): the network's input "
            f"layer has n_in={n_in}."
        )
    if finite:
        check_finite(name, arr)
    return arr


def check_x(x: object, n_in: int, dtype: np.dtype, name: str = "x") -> np.ndarray:
    """One sample: 1-D ``(n_in,)``, finite; returned C-contiguous in ``dtype``."""
    arr = _as_real_array(name, x, dtype)
    if arr.shape != (n_in,):
        raise ValueError(f"{name} must have shape ({n_in},) (one sample), got shape {arr.shape}.")
    check_finite(name, arr)
    return arr


def check_Y(
    Y: object, n_samples: int, n_out: int, output: str, loss: str, dtype: np.dtype, name: str = "Y"
) -> np.ndarray:
    """Targets as a C-contiguous ``(n_samples, n_out)`` array of ``dtype``.

    Accepted: a 2-D ``(n_samples, n_out)`` target matrix; a 1-D ``(n_samples,)`` vector when
    ``n_out == 1``; for softmax outputs, 1-D integer class labels in ``[0, n_out)`` (one-hot
    encoded here). Targets of binary cross-entropy and cross-entropy must lie in [0, 1].
    """
    arr = np.asarray(Y)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {arr.dtype}; expected a real numeric array.")
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(
            f"{name} must be 1-D (n_samples,) or 2-D (n_samples, {n_out}), got {arr.ndim}-D "
            f"shape {arr.shape}."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} rows but X has {n_samples}; they must match.")
    check_finite(name, arr)
    if arr.ndim == 1 and output == "softmax":  # softmax nets have n_out >= 2
        plain = arr.dtype == np.int64 and arr.flags.c_contiguous and arr.flags.writeable
        labels = arr if plain else _check_labels(name, arr, n_out)  # (one compiled kernel)
        onehot = np.empty((n_samples, n_out), dtype=dtype)
        if K.one_hot(labels, onehot):  # int64 labels out of range: raise, naming them
            _check_labels(name, arr, n_out)
        return onehot
    if arr.ndim == 1:
        if n_out != 1:
            raise ValueError(
                f"{name} has shape {arr.shape}, expected (n_samples, {n_out}) for a network "
                f"with n_out={n_out} (1-D targets need n_out=1, or class labels for softmax)."
            )
        arr = arr.reshape(-1, 1)
    if arr.shape[1] != n_out:
        raise ValueError(
            f"{name} has shape {arr.shape}, expected (n_samples, {n_out}): the network's "
            f"output layer has n_out={n_out}."
        )
    if loss in ("binary_cross_entropy", "cross_entropy"):
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{name} must lie in [0, 1] for loss={loss!r} (probabilities or one-hot), "
                f"found values in [{lo}, {hi}]."
            )
    return writeable(np.ascontiguousarray(arr, dtype=dtype))


def _check_labels(name: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            raise ValueError(
                f"{name} is 1-D, so it is read as class labels for the softmax output, but it "
                f"holds non-integer values; pass integer labels in [0, {n_classes}) or a "
                f"(n_samples, {n_classes}) target matrix."
            )
    bad = (y < 0) | (y >= n_classes)  # on the original values: casting 1e300 would overflow
    if bad.any():
        found = sorted(set(y[bad].tolist()))[:5]
        if y.dtype.kind == "f":
            found = [int(v) if abs(v) < 2**63 else v for v in found]
        raise ValueError(
            f"{name} contains labels outside [0, {n_classes}) for a {n_classes}-unit softmax "
            f"output: found {found}."
        )
    return y.astype(np.int64)


def check_sample_weight(sample_weight: object, n_samples: int, dtype: np.dtype) -> np.ndarray:
    """Weights ``(n_samples,)``: finite, >= 0, converted to ``dtype``."""
    arr = np.asarray(sample_weight)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be a real numeric array, got dtype {arr.dtype}.")
    if arr.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) (one weight per sample), got "
            f"shape {arr.shape}."
        )
    arr = writeable(np.ascontiguousarray(arr, dtype=dtype))
    check_finite("sample_weight", arr)
    if (arr < 0).any():
        first = int(np.argmax(arr < 0))
        raise ValueError(
            f"sample_weight must be >= 0, got {arr[first]!r} at index {first} "
            f"({int((arr < 0).sum())} negative)."
        )
    return arr


def check_non_negative(name: str, value: object) -> float:
    """A finite real >= 0."""
    return check_real(name, value, 0.0, math.inf, False, True)


def check_fraction(name: str, value: object) -> float:
    """A real in [0, 1)."""
    return check_real(name, value, 0.0, 1.0, False, True)


def check_callback(callback: object) -> None:
    """None, or a callable ``callback(epoch, logs)``."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(epoch, logs), got {callback!r}.")


def check_target(
    y: object, n_out: int, output: str, loss: str, dtype: np.dtype, name: str = "y"
) -> np.ndarray:
    """One sample's target as a validated ``(1, n_out)`` array of ``dtype``: a ``(n_out,)``
    vector, a scalar for one output, or an integer class label for a softmax output."""
    arr = np.asarray(y)
    if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] != n_out and arr.shape[0] == 1):
        arr = arr.reshape(1)  # a label (softmax) or the single target (n_out == 1)
    elif arr.ndim == 1 and arr.shape[0] == n_out:
        arr = arr.reshape(1, n_out)
    else:
        raise ValueError(
            f"{name} must be one sample's target of shape ({n_out},)"
            + (" or an integer class label" if output == "softmax" else "")
            + f", got shape {arr.shape}."
        )
    return check_Y(arr, 1, n_out, output, loss, dtype, name=name)


def check_architecture(
    layer_sizes: object, hidden: object, output: object, loss: object, init: object, seed: object
) -> tuple[tuple[int, ...], list[str]]:
    """``MLP``'s description checked, in the order of its arguments: ``(sizes, hidden names)``,
    one hidden activation name per hidden layer."""
    sizes = check_layer_sizes(layer_sizes)
    n_hidden = len(sizes) - 2
    hidden_names = [hidden] * n_hidden if isinstance(hidden, str) else list(hidden)
    if len(hidden_names) != n_hidden:
        raise ValueError(
            f"hidden has {len(hidden_names)} activations but layer_sizes {sizes} has "
            f"{n_hidden} hidden layer(s); give one name or one per hidden layer."
        )
    for h in hidden_names:
        check_choice("hidden", h, HIDDEN_ACTIVATIONS)
    check_choice("output", output, OUTPUT_ACTIVATIONS)
    check_choice("loss", loss, LOSSES)
    check_choice("init", init, INITS)
    if output not in COMPATIBLE_OUTPUTS[loss]:
        pairs = ", ".join(f"{o}+{lo}" for lo, os_ in COMPATIBLE_OUTPUTS.items() for o in os_)
        raise ValueError(
            f"output={output!r} cannot be used with loss={loss!r}; loss={loss!r} needs "
            f"output in {list(COMPATIBLE_OUTPUTS[loss])}. Compatible output+loss pairs: "
            f"{pairs}."
        )
    if output == "softmax" and sizes[-1] < 2:
        raise ValueError(
            f"a softmax output needs at least 2 units, got n_out={sizes[-1]}; use "
            "output='sigmoid' with loss='binary_cross_entropy' for one binary output."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int or None, got {seed!r}.")
    return sizes, hidden_names


def check_params(value: object, n_params: int, layer_sizes: tuple[int, ...]) -> np.ndarray:
    """A new flat parameter vector: ``(n_params,)``, real, finite (converted on assignment)."""
    arr = np.asarray(value)
    if arr.shape != (n_params,):
        raise ValueError(
            f"params must have shape ({n_params},) for layer_sizes {layer_sizes}, got {arr.shape}."
        )
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"params has dtype {arr.dtype}; expected a real numeric array.")
    check_finite("params", arr)
    return arr
