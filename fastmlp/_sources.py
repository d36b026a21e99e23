"""Data for the command line: training sources (a CSV in chunks, arrays), their scan, the
``Preprocessor`` built from the scan, and the inputs and targets a model reads from a file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ._table import (
    ByteLines,
    Chunk,
    Reader,
    Stats,
    TableError,
    decide_task,
    feature_columns,
    open_text,
    parsed_chunks,
    resolve_target,
)
from .preprocessing import Preprocessor, Standardizer, class_lookup, class_names_of, label_name

DEFAULT_CHUNK_ROWS = 100_000


SEGMENTS_PER_CHUNK = 16  # a chunk of training rows is read from this many places of the file


class CsvSource:
    """A CSV training file, read in chunks of ``chunk_rows`` rows (again for every pass).

    A chunk is made of segments (``chunk_rows`` split in up to ``SEGMENTS_PER_CHUNK``): the
    first pass (``chunks``, the scan) records where each segment starts (byte offset and line),
    so a training pass (``shuffled_chunks``) can put each chunk together from segments taken
    all over the file, in a new random order every epoch; a file sorted by its label is then
    not learned one label at a time.
    """

    def __init__(self, path: str, target: str | None, chunk_rows: int, impute: bool) -> None:
        self.name, self.chunk_rows, self.impute = path, chunk_rows, impute
        with open_text(path) as fh:
            reader = Reader(fh, path)
            self.label = resolve_target(reader, target)
            if reader.width < 2:
                raise TableError(f"{path}: needs at least one feature column besides the label")
            self.features = [j for j in range(reader.width) if j != self.label]
            self.header, self.width = reader.header, reader.width
        header = self.header
        self.feature_names = None if header is None else tuple(header[j] for j in self.features)
        self.target_name = None if header is None else header[self.label]
        per_chunk = max(k for k in range(1, SEGMENTS_PER_CHUNK + 1) if chunk_rows % k == 0)
        self.segment_rows, self.per_chunk = chunk_rows // per_chunk, per_chunk
        self.segments: list[tuple[int, int]] | None = None  # (byte offset, lines before)

    def _segments(self, fh) -> Iterator[Chunk]:
        lines = ByteLines(fh)
        reader = Reader(lines, self.name)
        marks = [(0, 0)]
        try:
            for part in parsed_chunks(reader, self.segment_rows, self.features, self.label,
                                      self.impute):  # fmt: skip
                marks.append((lines.offset, reader.line_num))  # where the next segment starts
                yield part
        finally:
            reader.close()
        if self.segments is None:
            self.segments = marks[:-1]

    def chunks(self) -> Iterator[Chunk]:
        """The file's chunks in file order (the first call records the segments)."""
        with open(self.name, "rb") as fh:
            parts: list[Chunk] = []
            for part in self._segments(fh):
                parts.append(part)
                if len(parts) == self.per_chunk:
                    yield _joined(parts)
                    parts = []
            if parts:
                yield _joined(parts)

    def shuffled_chunks(self, rng: np.random.Generator) -> Iterator[Chunk]:
        """The file's rows in chunks of up to ``chunk_rows``, each put together from
        segments in a random order (``rng``); needs the segments of a ``chunks`` pass."""
        if self.segments is None:
            raise RuntimeError("shuffled_chunks needs a chunks() pass first")
        order = rng.permutation(len(self.segments))
        with open(self.name, "rb") as fh:
            for start in range(0, len(order), self.per_chunk):
                yield _joined(
                    [self._segment(fh, int(i)) for i in order[start : start + self.per_chunk]]
                )

    def _segment(self, fh, i: int) -> Chunk:
        offset, before = self.segments[i]
        if i == 0:
            reader = Reader(ByteLines(fh), self.name)
        else:
            reader = Reader.resume(ByteLines(fh, offset), self.name, self.header, self.width,
                                   before)  # fmt: skip
        try:
            return next(parsed_chunks(reader, self.segment_rows, self.features, self.label,
                                      self.impute))  # fmt: skip
        finally:
            reader.close()


def _joined(parts: list[Chunk]) -> Chunk:
    if len(parts) == 1:
        return parts[0]
    return Chunk(
        np.concatenate([c.X for c in parts]),
        None if parts[0].labels is None else np.concatenate([c.labels for c in parts]),
        np.concatenate([c.lines for c in parts]),
    )


class ArraySource:
    """In-memory ``X, y`` (an ``.npz`` file, the shipped digits): one chunk."""

    def __init__(self, name: str, X: np.ndarray, y: np.ndarray, impute: bool) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or np.asarray(y).ndim != 1 or len(X) != len(y):
            raise TableError(f"{name}: X must be (n_samples, n_features) and y (n_samples,), got "
                             f"{X.shape} and {np.asarray(y).shape}")  # fmt: skip
        if len(X) == 0:
            raise TableError(f"{name}: no data rows")
        if not impute and np.isnan(X).any():
            row, col = np.argwhere(np.isnan(X))[0]
            raise TableError(f"{name}: X[{row}, {col}] is missing (NaN); train with --impute mean")
        self.name, self.feature_names, self.target_name = name, None, None
        self.chunk = Chunk(X, np.asarray(y), np.arange(1, len(X) + 1))

    def chunks(self) -> Iterator[Chunk]:
        yield self.chunk


def load_npz(path: str, need_y: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` and ``y`` of an ``.npz`` data file (``y`` None when absent and not ``need_y``)."""
    if not os.path.exists(path):
        raise TableError(f"{path}: no such file")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            if "X" not in data.files or (need_y and "y" not in data.files):
                raise TableError(f"{path}: an .npz data file needs arrays 'X' and 'y'")
            y = np.asarray(data["y"]) if "y" in data.files else None
            return np.asarray(data["X"]), y
    except TableError:
        raise
    except Exception as exc:  # zip, pickle and format errors alike
        raise TableError(f"{path}: not a readable .npz file ({exc})") from exc


@dataclass
class Scan:
    """One pass over a training source: statistics, and the data if it was one chunk."""

    stats: Stats
    only_chunk: Chunk | None
    n_chunks: int


def scan(source: CsvSource | ArraySource) -> Scan:
    stats, kept, n = Stats(), None, 0
    for chunk in source.chunks():
        if chunk.X.shape[0] == 0:
            continue
        stats.add(chunk.X, chunk.labels)
        n += 1
        kept = chunk if n == 1 else None
    if n == 0:
        raise TableError(f"{source.name}: no data rows after the header")
    return Scan(stats, kept, n)


def feature_standardizer(stats: Stats, source) -> Standardizer:
    empty = np.flatnonzero(stats.count == 0)
    if empty.size:
        j = int(empty[0])
        name = source.feature_names[j] if source.feature_names else f"feature {j + 1}"
        raise TableError(f"{source.name}: the column {name!r} has no values")
    return Standardizer.from_moments(stats.count, stats.total, stats.total_sq, stats.shift)


def build_preprocessor(
    source, stats: Stats, task: str, scale: bool, scale_target: bool, impute: bool
) -> Preprocessor:
    """The ``Preprocessor`` of a training scan (class names sorted; moments from the scan)."""
    moments = feature_standardizer(stats, source)
    pre = Preprocessor(feature_names=source.feature_names, target_name=source.target_name,
                       features=moments if scale else None,
                       fill=moments.mean_.copy() if impute else None)  # fmt: skip
    if task == "classification":
        pre.class_names = class_names_of(list(stats.distinct))
        if len(pre.class_names) < 2:
            only = pre.class_names[0]
            raise TableError(f"{source.name}: the label column has one class ({only!r}); a "
                             "classifier needs two or more")  # fmt: skip
    elif scale_target:
        pre.target = Standardizer.from_moments(
            [stats.label_count], [stats.label_total], [stats.label_total_sq], [stats.label_shift]
        )
    return pre


def decide(source, stats: Stats, task: str | None, flag: str | None = None) -> tuple[str, str]:
    return decide_task(stats, task, source.name, flag)


def targets(pre: Preprocessor, output: str, chunk: Chunk, name: str) -> np.ndarray:
    """The network's targets for a chunk: class indices (softmax), 0/1 (sigmoid), or the
    (scaled) regression target; a label the model does not know names its line."""
    if pre.class_names is None:
        try:
            y = chunk.labels.astype(np.float64)
        except ValueError:
            bad = next(v for v in chunk.labels.tolist() if not _is_float(v))
            i = chunk.labels.tolist().index(bad)
            raise TableError(f"{name}, line {chunk.lines[i]}: label {bad!r} is not a number "
                             "(the model is a regressor)") from None  # fmt: skip
        return pre.scale_target(y)
    lookup = class_lookup(pre.class_names)
    out = np.empty(len(chunk.labels), dtype=np.int64)
    for i, value in enumerate(chunk.labels.tolist()):
        code = lookup(value)
        if code is None:
            raise TableError(
                f"{name}, line {chunk.lines[i]}: label {label_name(value)!r} is not one of the "
                f"model's classes ({', '.join(pre.class_names[:10])}"
                f"{', ...' if len(pre.class_names) > 10 else ''})"
            )
        out[i] = code
    return out if output == "softmax" else out.astype(np.float64)


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def legacy_preprocessor(net) -> Preprocessor:
    """What a model saved without preprocessing means: classes 0..n-1, raw inputs."""
    if net.output == "softmax":
        return Preprocessor(class_names=tuple(str(i) for i in range(net.layout.n_out)))
    if net.output == "sigmoid" and net.layout.n_out == 1:
        return Preprocessor(class_names=("0", "1"))
    return Preprocessor()


def read_for_model(
    path: str, pre: Preprocessor, n_in: int, target: str | None, need_labels: bool
) -> Chunk:
    """A file's inputs for a model (columns by name when both have names), and its labels
    (``need_labels``, or when the file has the label column), in one chunk."""
    chunks = list(iter_for_model(path, pre, n_in, target, need_labels))
    if len(chunks) == 1:
        return chunks[0]
    return Chunk(
        np.concatenate([c.X for c in chunks]),
        None if chunks[0].labels is None else np.concatenate([c.labels for c in chunks]),
        np.concatenate([c.lines for c in chunks]),
    )


def iter_for_model(
    path: str, pre: Preprocessor, n_in: int, target: str | None, need_labels: bool,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[Chunk]:  # fmt: skip
    """``read_for_model`` in chunks of ``chunk_rows`` rows (at least one chunk)."""
    if path.endswith(".npz"):
        X, y = load_npz(path, need_y=need_labels)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != n_in:
            raise TableError(f"{path}: X has shape {X.shape}, the model expects {n_in} features")
        if not need_labels:  # predict: a y, if any, is not read
            y = None
        elif y.ndim != 1 or len(y) != len(X):
            raise TableError(f"{path}: y has shape {y.shape}; the labels need shape "
                             f"({len(X)},), one per row of X")  # fmt: skip
        yield Chunk(X, y, np.arange(1, len(X) + 1))
        return
    with open_text(path) as fh:
        reader = Reader(fh, path)
        label = _label_column(reader, pre, n_in, target, need_labels)
        features = feature_columns(reader, pre.feature_names, n_in, label)
        empty = True
        for chunk in parsed_chunks(reader, chunk_rows, features, label, pre.fill is not None):
            empty = False
            yield chunk
    if empty:
        raise TableError(f"{path}: no data rows after the header")


def _label_column(
    reader: Reader, pre: Preprocessor, n_in: int, target: str | None, need_labels: bool
) -> int | None:
    by_name = pre.feature_names is not None and reader.header is not None
    if target is None and by_name and pre.target_name:
        if pre.target_name in reader.header:
            return reader.header.index(pre.target_name)
        if need_labels:
            raise TableError(f"{reader.name}: no label column {pre.target_name!r} (the model's "
                             "target); name it with --target")  # fmt: skip
        return None
    if need_labels or target is not None:
        return resolve_target(reader, target)
    if not by_name and reader.width == n_in + 1:  # by position, with the label column
        return resolve_target(reader, None)
    return None
