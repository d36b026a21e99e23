"""Saving and loading models: a documented ``.npz`` format, no pickle, atomic writes.

Format version 2 (every entry a NumPy array; strings are unicode arrays)::

    format          "fastmlp-mlp"
    format_version  2, or 3 with preprocessing
    layer_sizes     int64 (n_layers + 1,)
    activations     str (n_layers,): the hidden activations, then the output activation
    loss, init, dtype   str
    seed            int64; -1 when the model was built with seed=None
    params          (n_params,) in ``dtype``: the flat parameter buffer (see fastmlp.layout)
    n_updates       int64: SGD updates applied so far
    n_samples_seen  int64: training samples processed so far                     (version 2)
    history         str: JSON of ``history_`` ({"loss": [...], "val_loss": [...], ...});
                    version 1 stored the loss curve alone as float64 (n_epochs,)
    rng_state       str: JSON of the NumPy bit generator's state (the shuffling stream), so a
                    resumed ``fit`` visits samples in the same order as an uninterrupted one
    optimizer       str: "sgd" or "adam", what the optimizer state belongs to      (version 2)
    velocity        (n_params,) or (0,): momentum velocity / Adam's first moment   (version 2)
    moment2         (n_params,) or (0,): Adam's second moment                     (version 2)
    powers          (2,): beta1^t, beta2^t of Adam's bias corrections             (version 2)
    dropout_rng     uint64 (1,): the dropout stream's state                       (version 2)

Version 3 adds the preprocessing of a model trained on a table
(``fastmlp.preprocessing.Preprocessor``; the command line always stores it). A model saved
without preprocessing (``MLP.save``) is written as version 2, which fastmlp releases without
preprocessing also read. In a version 3 file each entry is empty, shape (0,) or "", when it
does not apply::

    feature_names   str (n_in,) or (0,): the input columns, in input order
    target_name     str: the label column's name, or ""
    class_names     str (n_classes,) or (0,): output unit i (softmax) or value i (one sigmoid
                    unit, 2 names) is class class_names[i]; (0,) for a regressor
    input_mean      float64 (n_in,) or (0,): the network sees (x - input_mean) / input_scale
    input_scale     float64 (n_in,) or (0,), > 0
    target_mean     float64 (n_out,) or (0,): a regressor predicts out * target_scale +
    target_scale    float64 (n_out,) or (0,)   target_mean (identity output only)
    input_fill      float64 (n_in,) or (0,): replaces a missing input (before scaling); (0,):
                    a missing input is an error

Version 1, 2 and 3 files load (version 1 with fresh optimizer state; 1 and 2 without
preprocessing). ``load_preprocessing(path)`` returns the preprocessing alone (``None`` when
every entry is empty); ``load_with_preprocessing`` returns the model and it.

Writes go to a temporary file in the target's directory, are flushed and fsync'ed, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows): a crash or kill
mid-save leaves the previous file intact. The file gets the mode a plain ``open`` would give
it (``0o666`` less the umask), not the temporary file's ``0o600``. Loading uses
``allow_pickle=False``, checks every entry and refuses truncated, corrupted (zip CRC),
tampered or future-version files with a ``ValueError`` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from . import _state

if TYPE_CHECKING:
    from .model import MLP
    from .preprocessing import Preprocessor

__all__ = [
    "FORMAT", "FORMAT_VERSION", "save", "load", "load_preprocessing", "load_with_preprocessing",
]  # fmt: skip

FORMAT = "fastmlp-mlp"
FORMAT_VERSION = 3  # the newest version read and written; without preprocessing, 2 is written
PLAIN_VERSION = 2
_KEYS = {
    "format", "format_version", "layer_sizes", "activations", "loss", "init", "dtype", "seed",
    "params", "n_updates", "history", "rng_state",
}  # fmt: skip
_KEYS_V2 = _KEYS | {"n_samples_seen", "optimizer", "velocity", "moment2", "powers", "dropout_rng"}
_PRE_STR = ("feature_names", "class_names")
_PRE_FLOAT = ("input_mean", "input_scale", "target_mean", "target_scale", "input_fill")
_KEYS_V3 = _KEYS_V2 | {"target_name", *_PRE_STR, *_PRE_FLOAT}
_PRE_FIELDS = ("feature_names", "target_name", "class_names", "features", "target", "fill")


def save(
    model: MLP, path: str | os.PathLike[str], preprocessing: Preprocessor | None = None
) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the format).

    Parameters
    ----------
    model : MLP
    path : str or os.PathLike
        The file to write; an existing file is replaced.
    preprocessing : Preprocessor, optional
        Stored with the model (checked against its layout first).
    """
    state = _state.capture(model)
    pre = _preprocessing_arrays(model, preprocessing)
    version = FORMAT_VERSION if pre else PLAIN_VERSION
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(version, dtype=np.int64),
        "layer_sizes": np.array(model.layer_sizes, dtype=np.int64),
        "activations": np.array(model.activations),
        "loss": np.array(model.loss_name),
        "init": np.array(model.init),
        "dtype": np.array(model.dtype.name),
        "seed": np.array(-1 if model.seed is None else model.seed, dtype=np.int64),
        "params": state.params,
        "n_updates": np.array(state.n_updates, dtype=np.int64),
        "n_samples_seen": np.array(state.n_samples_seen, dtype=np.int64),
        "history": np.array(json.dumps(state.history)),
        "rng_state": np.array(json.dumps(state.rng_state)),
        "optimizer": np.array(state.optimizer),
        "velocity": state.velocity,
        "moment2": state.moment2,
        "powers": state.powers,
        "dropout_rng": state.dropout_rng,
        **pre,
    }
    with atomic_open(path, "wb", prefix=".fastmlp-save-") as fh:
        np.savez(fh, **arrays)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", prefix: str = ".fastmlp-"):
    """Write ``path`` atomically: a temporary file next to it, renamed over it at the end.

    On a clean exit the file is flushed, fsync'ed, given mode ``0o666 & ~umask`` and renamed
    over ``path``; on an error it is removed and ``path`` is left as it was. An ``OSError`` of
    the temporary file (a directory that cannot be written, a full disk) names ``path``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o666 & ~_umask())
            fh = os.fdopen(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise _naming(exc, path) from exc
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _naming(exc, path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _naming(exc: OSError, path: str) -> OSError:
    """``exc`` about ``path`` rather than the temporary file."""
    return type(exc)(exc.errno, exc.strerror or str(exc), path)


def load(cls: type[MLP], path: str | os.PathLike[str]) -> MLP:
    """Read a model written by ``save``; ``ValueError`` if the file is not a valid one."""
    return load_with_preprocessing(cls, path)[0]


def load_preprocessing(path: str | os.PathLike[str]) -> Preprocessor | None:
    """Read the preprocessing stored with a model (the whole file is checked).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``save``.

    Returns
    -------
    Preprocessor or None
        None for a file without preprocessing (``MLP.save``, format version 1 or 2).
        ``.onnx_kwargs()`` gives ``feature_names``, ``class_names``, ``input_mean``,
        ``input_scale``, ``target_mean`` and ``target_scale`` for an exporter.

    Raises
    ------
    ValueError
        For a file that is not a valid model file (as ``load``).
    """
    from .model import MLP

    return load_with_preprocessing(MLP, path)[1]


def load_with_preprocessing(
    cls: type[MLP], path: str | os.PathLike[str]
) -> tuple[MLP, Preprocessor | None]:
    """Read a model and its preprocessing (None if it has none) in one pass.

    Parameters
    ----------
    cls : type
        ``MLP`` (or a subclass).
    path : str or os.PathLike

    Returns
    -------
    (MLP, Preprocessor or None)
    """
    path = os.fspath(path)

    def bad(problem: str) -> ValueError:
        return ValueError(f"{path} is not a valid fastmlp model file: {problem}.")

    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # an .npz is a zip archive
        raise bad("it is not an .npz (zip) archive")
    try:
        # Our own file handle: np.load leaks its handle when it fails on a broken file.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}  # reads all: zip CRCs are checked
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise bad(f"it cannot be read as .npz ({type(exc).__name__}: {exc})") from exc
    if not isinstance(arrays, dict) or "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise bad(f"no 'format' entry equal to {FORMAT!r}")
    version = int(arrays.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise bad(
            f"it has format version {version}, written by a newer fastmlp; this version reads "
            f"format {FORMAT_VERSION}"
        )
    if version < 1:
        raise bad(f"unknown format version {version}")
    keys = _KEYS_V3 if version >= 3 else _KEYS_V2 if version == 2 else _KEYS
    missing = sorted(keys - set(arrays))
    if missing:
        raise bad(f"missing entries {missing}")
    try:
        activations = [str(a) for a in arrays["activations"].reshape(-1)]
        seed = int(arrays["seed"])
        model = cls(
            [int(s) for s in arrays["layer_sizes"].reshape(-1)],
            hidden=activations[:-1],
            output=activations[-1],
            loss=str(arrays["loss"]),
            init=str(arrays["init"]),
            seed=None if seed == -1 else seed,
            dtype=str(arrays["dtype"]),
        )
    except (ValueError, TypeError, IndexError) as exc:
        raise bad(f"its description does not make a valid MLP ({exc})") from exc
    params = arrays["params"]
    if params.shape != (model.n_params,) or params.dtype != model.dtype:
        raise bad(
            f"params has shape {params.shape} and dtype {params.dtype}, expected "
            f"({model.n_params},) and {model.dtype} for layer_sizes {model.layer_sizes}"
        )
    if not np.all(np.isfinite(params)):
        raise bad("params contains NaN/inf")
    n_updates = int(arrays["n_updates"])
    n_samples_seen = int(arrays["n_samples_seen"]) if version >= 2 else n_updates
    if n_updates < 0 or n_samples_seen < 0:
        raise bad("n_updates or n_samples_seen is negative")
    history = _read_history(arrays["history"], version, bad)
    if version >= 2:
        optimizer = _read_optimizer_state(model, arrays, bad)
    else:  # version 1 files have no optimizer state: the new model's fresh one
        fresh = _state.capture(model)
        optimizer = (fresh.optimizer, fresh.velocity, fresh.moment2, fresh.powers,
                     fresh.dropout_rng)  # fmt: skip
    try:
        model._rng.bit_generator.state = json.loads(str(arrays["rng_state"]))  # checks it
    except (ValueError, TypeError, KeyError) as exc:
        raise bad(f"rng_state is malformed ({exc})") from exc
    rng_state = model._rng.bit_generator.state
    trained = _state.TrainedState(params, history, n_updates, n_samples_seen, rng_state, *optimizer)
    preprocessing = _read_preprocessing(model, arrays, bad) if version >= 3 else None
    _state.restore(model, trained)
    return model, preprocessing


def _read_history(entry: np.ndarray, version: int, bad) -> dict[str, list[float]]:
    """``history_`` from its entry: a JSON dict (version 2) or the loss curve (version 1)."""
    history = _state.new_history()
    if version == 1:
        if entry.ndim != 1 or entry.dtype.kind != "f":
            raise bad("history is malformed")
        history["loss"] = [float(h) for h in entry]
        return history
    try:
        stored = json.loads(str(entry))
        if not isinstance(stored, dict) or not set(stored) <= set(_state.HISTORY_KEYS):
            raise ValueError(f"keys {sorted(stored) if isinstance(stored, dict) else stored}")
        for key, values in stored.items():
            history[key] = [float(v) for v in values]
    except (ValueError, TypeError) as exc:
        raise bad(f"history is malformed ({exc})") from exc
    return history


def _read_optimizer_state(model: MLP, arrays: dict, bad) -> tuple:
    """Return ``(optimizer, velocity, moment2, powers, dropout_rng)`` from a version 2 file.

    These are the momentum / Adam buffers and the dropout stream, checked against the model's
    layout.
    """
    optimizer = str(arrays["optimizer"])
    if optimizer not in ("sgd", "adam"):
        raise bad(f"optimizer {optimizer!r} is not 'sgd' or 'adam'")
    buffers = {}
    for key in ("velocity", "moment2"):
        arr = arrays[key]
        if arr.shape not in ((0,), (model.n_params,)) or arr.dtype != model.dtype:
            raise bad(
                f"{key} has shape {arr.shape} and dtype {arr.dtype}, expected (0,) or "
                f"({model.n_params},) and {model.dtype}"
            )
        buffers[key] = arr
    powers, rng = arrays["powers"], arrays["dropout_rng"]
    if powers.shape != (2,) or powers.dtype != model.dtype or rng.shape != (1,):
        raise bad("powers or dropout_rng is malformed")
    if rng.dtype != np.uint64:
        raise bad(f"dropout_rng has dtype {rng.dtype}, expected uint64")
    if not all(np.all(np.isfinite(a)) for a in (*buffers.values(), powers)):
        raise bad("the optimizer state contains NaN/inf")
    return optimizer, buffers["velocity"], buffers["moment2"], powers, rng


def _class_count(model: MLP) -> int:
    """How many class names a classifier of this output has (0: a regressor has none)."""
    if model.output == "softmax":
        return model.layout.n_out
    if model.output == "sigmoid" and model.layout.n_out == 1:
        return 2
    return 0


def _preprocessing_arrays(model: MLP, pre: Preprocessor | None) -> dict[str, np.ndarray]:
    """Return the version 3 entries of ``pre``, checked; ``{}`` when there is nothing to store.

    Nothing to store (None, or every field empty): the file is written as version 2.
    """
    if pre is None or all(getattr(pre, f) is None for f in _PRE_FIELDS):
        return {}

    def floats(std, attr):
        return np.zeros(0) if std is None else np.asarray(getattr(std, attr), dtype=np.float64)

    arrays = {
        "feature_names": np.array(list(pre.feature_names or ()), dtype=str),
        "target_name": np.array(pre.target_name or ""),
        "class_names": np.array(list(pre.class_names or ()), dtype=str),
        "input_mean": floats(pre.features, "mean_"),
        "input_scale": floats(pre.features, "scale_"),
        "target_mean": floats(pre.target, "mean_"),
        "target_scale": floats(pre.target, "scale_"),
        "input_fill": np.zeros(0) if pre.fill is None else np.asarray(pre.fill, np.float64),
    }
    problem = _preprocessing_problem(model, arrays)
    if problem:
        raise ValueError(f"the preprocessing does not fit the model: {problem}.")
    return arrays


def _preprocessing_problem(model: MLP, arrays: dict) -> str | None:
    """Return what is wrong with the version 3 entries for ``model``, or None."""
    n_in, n_out = model.layout.n_in, model.layout.n_out
    n_classes = _class_count(model)
    expected = {"feature_names": n_in, "class_names": n_classes, "input_mean": n_in,
                "input_scale": n_in, "target_mean": n_out, "target_scale": n_out,
                "input_fill": n_in}  # fmt: skip
    for key, n in expected.items():
        arr = arrays[key]
        kind = "U" if key in _PRE_STR else "f"
        if arr.ndim != 1 or arr.shape[0] not in (0, n) or (arr.size and arr.dtype.kind != kind):
            return f"{key} has shape {arr.shape} and dtype {arr.dtype}, expected (0,) or ({n},)"
        if kind == "f" and not np.all(np.isfinite(arr)):
            return f"{key} contains NaN/inf"
        if kind == "U" and len(set(arr.tolist())) != arr.shape[0]:
            return f"{key} has repeated names"
    if arrays["target_name"].ndim != 0 or arrays["target_name"].dtype.kind != "U":
        return "target_name is not a string"
    for mean, scale in (("input_mean", "input_scale"), ("target_mean", "target_scale")):
        if arrays[mean].shape != arrays[scale].shape:
            return f"{mean} and {scale} differ in shape"
        if np.any(arrays[scale] <= 0):
            return f"{scale} has a value <= 0"
    if arrays["target_mean"].size and model.output != "identity":
        return "target scaling needs an identity output"
    return None


def _read_preprocessing(model: MLP, arrays: dict, bad) -> Preprocessor | None:
    """Return the ``Preprocessor`` of a version 3 file (None: all entries empty)."""
    from .preprocessing import Preprocessor, Standardizer

    problem = _preprocessing_problem(model, arrays)
    if problem:
        raise bad(problem)
    names = {key: tuple(str(v) for v in arrays[key].tolist()) or None for key in _PRE_STR}
    target_name = str(arrays["target_name"]) or None

    def standardizer(mean: str, scale: str) -> Standardizer | None:
        if not arrays[mean].size:
            return None
        return Standardizer(arrays[mean].astype(np.float64), arrays[scale].astype(np.float64))

    pre = Preprocessor(
        feature_names=names["feature_names"], target_name=target_name,
        class_names=names["class_names"], features=standardizer("input_mean", "input_scale"),
        target=standardizer("target_mean", "target_scale"),
        fill=arrays["input_fill"].astype(np.float64) if arrays["input_fill"].size else None,
    )  # fmt: skip
    return None if all(getattr(pre, f) is None for f in _PRE_FIELDS) else pre
