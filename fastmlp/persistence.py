"""Saving and loading models: a documented ``.npz`` format, no pickle, atomic writes.

Format version 1 (every entry a NumPy array; strings are unicode arrays)::

    format          "fastmlp-mlp"
    format_version  1
    layer_sizes     int64 (n_layers + 1,)
    activations     str (n_layers,): the hidden activations, then the output activation
    loss, init, dtype   str
    seed            int64; -1 when the model was built with seed=None
    params          (n_params,) in ``dtype``: the flat parameter buffer (see fastmlp.layout)
    n_updates       int64: SGD updates applied so far
    history         float64 (n_epochs,): the loss curve
    rng_state       str: JSON of the NumPy bit generator's state (the shuffling stream), so a
                    resumed ``fit`` visits samples in the same order as an uninterrupted one

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

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load"]

FORMAT = "fastmlp-mlp"
FORMAT_VERSION = 1
_KEYS = {
    "format", "format_version", "layer_sizes", "activations", "loss", "init", "dtype", "seed",
    "params", "n_updates", "history", "rng_state",
}  # fmt: skip


def save(model: MLP, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the format)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "layer_sizes": np.array(model.layer_sizes, dtype=np.int64),
        "activations": np.array(model.activations),
        "loss": np.array(model.loss_name),
        "init": np.array(model.init),
        "dtype": np.array(model.dtype.name),
        "seed": np.array(-1 if model.seed is None else model.seed, dtype=np.int64),
        "params": model.params,
        "n_updates": np.array(model.n_updates_, dtype=np.int64),
        "history": np.array(model.history_, dtype=np.float64),
        "rng_state": np.array(json.dumps(model._rng.bit_generator.state)),
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
    missing = sorted(_KEYS - set(arrays))
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
    history = arrays["history"]
    n_updates = int(arrays["n_updates"])
    if history.ndim != 1 or n_updates < 0:
        raise bad("history or n_updates is malformed")
    try:
        model._rng.bit_generator.state = json.loads(str(arrays["rng_state"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise bad(f"rng_state is malformed ({exc})") from exc
    model.params = params
    model.history_ = [float(h) for h in history]
    model.n_updates_ = n_updates
    return model
