"""Saving and loading models: a documented ``.npz`` format, no pickle, atomic writes.

Format version 2 (every entry a NumPy array; strings are unicode arrays)::

    format          "fastmlp-mlp"
    format_version  2
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

Version 1 files still load (with fresh optimizer state).

Writes go to a temporary file in the target's directory, are flushed and fsync'ed, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows): a crash or kill
mid-save leaves the previous file intact. Loading uses ``allow_pickle=False``, checks every
entry and refuses truncated, corrupted (zip CRC), tampered or future-version files with a
``ValueError`` naming the file and the problem.
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

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load"]

FORMAT = "fastmlp-mlp"
FORMAT_VERSION = 2
_KEYS = {
    "format", "format_version", "layer_sizes", "activations", "loss", "init", "dtype", "seed",
    "params", "n_updates", "history", "rng_state",
}  # fmt: skip
_KEYS_V2 = _KEYS | {"n_samples_seen", "optimizer", "velocity", "moment2", "powers", "dropout_rng"}


def save(model: MLP, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the format)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    state = _state.capture(model)
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
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
    }
    fd, tmp = tempfile.mkstemp(prefix=".fastmlp-save-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
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


def load(cls: type[MLP], path: str | os.PathLike[str]) -> MLP:
    """Read a model written by ``save``; ``ValueError`` if the file is not a valid one."""
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
    missing = sorted((_KEYS_V2 if version >= 2 else _KEYS) - set(arrays))
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
    _state.restore(model, trained)
    return model


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
