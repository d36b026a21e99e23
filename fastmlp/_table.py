"""Reading CSV files for the command line: header, columns by name, chunks, statistics.

A file is read as a stream of chunks (``Reader.chunks``), so a file larger than memory can be
scanned (``Stats``: column moments, the label column's kind and distinct values) and then
trained on chunk by chunk. Every problem is a ``TableError`` (a ``ValueError``) naming the file,
the line and the column: the command line prints it as its one line.
"""

from __future__ import annotations

import csv
import itertools
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from .preprocessing import label_name

MISSING = frozenset({"", "na", "n/a", "nan", "null", "?"})
MAX_DISTINCT = 10_000  # distinct label values remembered by a scan (more: not a class column)
AUTO_MAX_CLASSES = 100  # integer labels with more distinct values are taken as a regression
MIN_ROWS_PER_CLASS = 5  # ... and so are integer labels with fewer rows per distinct value


class TableError(ValueError):
    """A bad data file: the message names the file (and the line and column)."""


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def open_text(path: str) -> IO[str]:
    """The file at ``path`` (``-``: standard input) as text, for the csv module."""
    if path == "-":
        return sys.stdin
    try:
        return open(path, newline="", encoding="utf-8-sig")  # -sig: a byte-order mark is dropped
    except FileNotFoundError as exc:
        raise TableError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise TableError(f"{path}: is a directory") from exc


class ByteLines:
    """The text lines of a file opened in binary, counting the bytes read: ``offset`` is where
    the next line starts, so a reader can later ``seek`` back to a row boundary (UTF-8; a
    byte-order mark at the start of the file is dropped; line ends kept, as ``newline=""``
    does, for the csv module)."""

    def __init__(self, fh: IO[bytes], offset: int = 0) -> None:
        fh.seek(offset)
        self.fh, self.offset, self._start = fh, offset, offset == 0

    def __iter__(self) -> ByteLines:
        return self

    def __next__(self) -> str:
        raw = self.fh.readline()
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        if self._start:
            raw, self._start = raw.removeprefix(b"\xef\xbb\xbf"), False
        return raw.decode("utf-8")


class Reader:
    """The rows of a CSV file: its header (detected), width and data rows, in chunks.

    A first row without any number in it is the header. Blank lines are skipped; line numbers
    are the file's own (1-based).
    """

    def __init__(self, fh: IO[str], name: str) -> None:
        self.name, self.line_base = name, 0
        self._reader = csv.reader(fh)
        self._records = self._nonblank()
        first = next(self._records, None)
        if first is None:
            raise TableError(f"{name}: the file is empty")
        line, row = first
        row[0] = row[0].lstrip("\ufeff")  # a byte-order mark (standard input)
        self.pending: list[tuple[int, list[str]]] = []
        if any(is_number(c) for c in row):
            self.header: list[str] | None = None
            self.pending.append(first)
        else:
            self.header = [c.strip() for c in row]
            if len(set(self.header)) != len(self.header):
                dup = next(h for h in self.header if self.header.count(h) > 1)
                raise TableError(f"{name}, line {line}: the header repeats the column {dup!r}")
        self.width = len(row)

    @classmethod
    def resume(
        cls, lines: ByteLines, name: str, header: list[str] | None, width: int, line_base: int
    ) -> Reader:
        """A reader of the same file from a row boundary (``lines`` seeked there), the line
        numbers counting on from ``line_base`` (the lines before it)."""
        self = cls.__new__(cls)
        self.name, self.line_base, self.header, self.width = name, line_base, header, width
        self._reader = csv.reader(lines)
        self._records, self.pending = self._nonblank(), []
        return self

    def close(self) -> None:
        """End the reading: frees the row generator (which refers back to the reader) now,
        not at the next garbage collection."""
        self._records.close()
        self.pending = []

    @property
    def line_num(self) -> int:
        """The lines read so far (the file's own count)."""
        return self.line_base + self._reader.line_num

    def _nonblank(self) -> Iterator[tuple[int, list[str]]]:
        try:
            for row in self._reader:
                if row and any(c.strip() for c in row):
                    yield self.line_base + self._reader.line_num, row
        except csv.Error as exc:
            raise TableError(f"{self.name}, line {self.line_num}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise TableError(f"{self.name}: not a text file ({exc.reason})") from exc

    def column_name(self, j: int) -> str:
        return self.header[j] if self.header else f"column {j + 1}"

    def where(self, line: int, j: int) -> str:
        """``path, line 7, column 3 ('age')``."""
        named = f" ({self.header[j]!r})" if self.header else ""
        return f"{self.name}, line {line}, column {j + 1}{named}"

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(line, cells)`` of each data row, each checked for the file's width."""
        while self.pending:
            yield self._checked(*self.pending.pop(0))
        for line, row in self._records:
            yield self._checked(line, row)

    def raw_rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(line, cells)`` of each data row, its width not checked."""
        while self.pending:
            yield self.pending.pop(0)
        yield from self._records

    def _width_error(self, line: int, row: list[str]) -> str:
        return f"{self.name}, line {line}: {len(row)} cells, expected {self.width}"

    def _checked(self, line: int, row: list[str]) -> tuple[int, list[str]]:
        if len(row) != self.width:
            raise TableError(self._width_error(line, row))
        return line, row

    def chunks(
        self, n_rows: int, skip: Callable[[str], object] | None = None
    ) -> Iterator[tuple[list[int], list[list[str]]]]:
        """Lists of up to ``n_rows`` data rows: ``(lines, rows)``. A row of the wrong width
        raises ``TableError``, or with ``skip`` is left out and its message passed to ``skip``
        (after the rows before it are yielded: the messages come in file order)."""
        lines: list[int] = []
        rows: list[list[str]] = []
        for line, row in self.rows() if skip is None else self.raw_rows():
            if skip is not None and len(row) != self.width:
                if rows:
                    yield lines, rows
                    lines, rows = [], []
                skip(self._width_error(line, row))
                continue
            lines.append(line)
            rows.append(row)
            if len(rows) >= n_rows:
                yield lines, rows
                lines, rows = [], []
        if rows:
            yield lines, rows

    def peek(self, n_rows: int) -> list[tuple[int, list[str]]]:
        """The next ``n_rows`` rows, left to be read again by ``rows``/``chunks``."""
        taken = []
        for _ in range(n_rows):
            record = next(self._records, None)
            if record is None:
                break
            taken.append(self._checked(*record))
        self.pending.extend(taken)
        return list(self.pending)


def resolve_target(reader: Reader, target: str | None) -> int:
    """The label column: a header name or a 0-based index (negative from the end); default
    the last column."""
    width, header = reader.width, reader.header
    if target is None:
        return width - 1
    if header is not None and target in header:
        return header.index(target)
    if target.lstrip("-").isdigit() and -width <= int(target) < width:
        return int(target) % width
    names = f" (columns: {', '.join(header)})" if header else ""
    raise TableError(f"{reader.name}: no label column {target!r}{names}")


def feature_columns(
    reader: Reader, names: Sequence[str] | None, n_in: int, label: int | None
) -> list[int]:
    """The columns of a model's inputs, by name when both sides have names, else by position
    (every column but the label)."""
    header = reader.header
    if names is not None and header is not None:
        missing = [n for n in names if n not in header]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise TableError(
                f"{reader.name}: no column {missing[0]!r}{more} (the model's features: "
                f"{_listing(names)})"
            )
        return [header.index(n) for n in names]
    columns = [j for j in range(reader.width) if j != label]
    if len(columns) != n_in:
        raise TableError(f"{reader.name}: {len(columns)} feature columns, the model expects {n_in}")
    return columns


def _listing(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


@dataclass
class Chunk:
    """Parsed rows: features (NaN where missing), the raw label cells, and the lines."""

    X: np.ndarray
    labels: np.ndarray | None
    lines: np.ndarray


def parse(
    reader: Reader, lines: list[int], rows: list[list[str]], features: Sequence[int],
    label: int | None, allow_missing: bool,
) -> Chunk:  # fmt: skip
    """Features as float64 (missing cells NaN, or an error naming the first one), labels as
    stripped strings (a missing label is an error)."""
    X = np.empty((len(rows), len(features)))
    first_bad: tuple[int, int, str] | None = None  # (row, column, cell): the first in the file
    for k, j in enumerate(features):
        cells = [r[j] for r in rows]
        try:
            X[:, k] = np.array(cells, dtype=np.float64)
        except ValueError:
            X[:, k], bad = _parse_column(cells)
            if bad is not None and (first_bad is None or bad < first_bad[0]):
                first_bad = (bad, j, cells[bad])
    if first_bad is not None:
        i, j, cell = first_bad
        raise TableError(f"{reader.where(lines[i], j)}: {cell!r} is not a number")
    if not allow_missing and np.isnan(X).any():
        i, k = np.argwhere(np.isnan(X))[0]  # row-major: the first in the file
        raise TableError(f"{reader.where(lines[i], features[k])}: missing value; fill the cell, "
                         "drop the row, or train with --impute mean")  # fmt: skip
    if not np.all(np.isfinite(X[~np.isnan(X)])):
        i, k = np.argwhere(np.isinf(X))[0]
        raise TableError(f"{reader.where(lines[i], features[k])}: {rows[i][features[k]]!r} "
                         "is not a finite number")  # fmt: skip
    labels = None
    if label is not None:
        labels = np.array([r[label].strip() for r in rows])
        empty = [i for i, c in enumerate(labels.tolist()) if c.lower() in MISSING]
        if empty:
            raise TableError(f"{reader.where(lines[empty[0]], label)}: the label is missing "
                             f"({rows[empty[0]][label]!r})")  # fmt: skip
    return Chunk(X, labels, np.asarray(lines))


PARSE_BATCH = 512  # rows held as text at a time: a chunk is kept as floats, not strings


def parsed_chunks(
    reader: Reader, n_rows: int, features: Sequence[int], label: int | None, allow_missing: bool
) -> Iterator[Chunk]:
    """``parse``d chunks of ``n_rows`` rows, read ``PARSE_BATCH`` rows at a time: the text of
    at most one batch is in memory, the chunk itself as float64 (8 bytes a cell)."""
    records = reader.rows()
    while True:
        parts, count = [], 0
        while count < n_rows:
            batch = list(itertools.islice(records, min(PARSE_BATCH, n_rows - count)))
            if not batch:
                break
            lines, rows = [ln for ln, _ in batch], [r for _, r in batch]
            del batch
            parts.append(parse(reader, lines, rows, features, label, allow_missing))
            count += len(rows)
        if not parts:
            return
        yield parts[0] if len(parts) == 1 else Chunk(
            np.concatenate([c.X for c in parts]),
            None if label is None else np.concatenate([c.labels for c in parts]),
            np.concatenate([c.lines for c in parts]),
        )  # fmt: skip
        if count < n_rows:
            return


def _parse_column(cells: list[str]) -> tuple[np.ndarray, int | None]:
    """Floats of a column, NaN for missing cells; and the row of its first non-number."""
    out = np.empty(len(cells))
    bad = None
    for i, cell in enumerate(cells):
        if is_missing(cell):
            out[i] = math.nan
            continue
        try:
            out[i] = float(cell)
        except ValueError:
            out[i] = math.nan
            if bad is None:
                bad = i
    return out, bad


@dataclass
class Stats:
    """One pass of statistics over parsed chunks: feature moments, the label column's kind."""

    n_rows: int = 0
    count: np.ndarray | None = None
    total: np.ndarray | None = None
    total_sq: np.ndarray | None = None
    shift: np.ndarray | None = None
    label_numeric: bool = True
    label_integral: bool = True
    label_count: int = 0
    label_total: float = 0.0
    label_total_sq: float = 0.0
    label_shift: float | None = None
    distinct: dict[str, int] = field(default_factory=dict)
    too_many: bool = False

    def add(self, X: np.ndarray, labels: np.ndarray | None) -> None:
        present = ~np.isnan(X)
        if self.count is None:  # shift by the first chunk's means: an accurate variance
            self.count = np.zeros(X.shape[1], dtype=np.int64)
            self.total, self.total_sq = np.zeros(X.shape[1]), np.zeros(X.shape[1])
            n = present.sum(axis=0)
            self.shift = np.where(present, X, 0.0).sum(axis=0) / np.maximum(n, 1)
        self.n_rows += X.shape[0]
        D = np.where(present, X - self.shift, 0.0)
        self.count += present.sum(axis=0)
        self.total += D.sum(axis=0)
        self.total_sq += (D * D).sum(axis=0)
        if labels is not None:
            self._add_labels(labels)

    def _add_labels(self, labels: np.ndarray) -> None:
        values = None
        if self.label_numeric:
            try:
                values = labels.astype(np.float64)
            except ValueError:
                self.label_numeric = False
            else:
                if not np.all(np.isfinite(values)):
                    self.label_numeric = False
                    values = None
        if values is not None:
            if self.label_shift is None:
                self.label_shift = float(values.mean())
            d = values - self.label_shift
            self.label_count += d.size
            self.label_total += float(d.sum())
            self.label_total_sq += float((d * d).sum())
            self.label_integral = self.label_integral and bool(np.all(values == np.round(values)))
        if self.too_many:
            return
        for name, n in zip(*np.unique(labels, return_counts=True), strict=True):
            key = label_name(name)
            self.distinct[key] = self.distinct.get(key, 0) + int(n)
            if len(self.distinct) > MAX_DISTINCT:
                self.too_many = True
                self.distinct.clear()
                return

    @property
    def n_distinct(self) -> int:
        return MAX_DISTINCT + 1 if self.too_many else len(self.distinct)


def decide_task(
    stats: Stats, task: str | None, name: str, flag: str | None = None
) -> tuple[str, str]:
    """``(task, why)``: classification or regression, from the label column or ``task`` (set
    by the option ``flag``, default ``--task <task>``)."""
    k, n = stats.n_distinct, stats.n_rows
    many = f"{k:,}" if not stats.too_many else f"more than {MAX_DISTINCT:,}"
    flag = flag or f"--task {task}"
    if task == "regression":
        if not stats.label_numeric:
            raise TableError(f"{name}: {flag} needs a numeric label column; it has "
                             "text labels")  # fmt: skip
        return "regression", flag
    if task == "classification":
        if stats.too_many:
            raise TableError(f"{name}: the label column has {many} distinct values: too many "
                             "classes for a softmax")  # fmt: skip
        return "classification", f"{flag}: {k} classes"
    if not stats.label_numeric:
        if k > AUTO_MAX_CLASSES:
            raise TableError(
                f"{name}: the label column has {many} distinct text values in {n:,} rows; "
                f"pass --task classification to train a {many}-class softmax anyway, or "
                "choose another --target"
            )
        return "classification", f"text labels, {k} classes"
    if not stats.label_integral:
        return "regression", "the label column has non-integer numbers"
    if k <= 2 or (k <= AUTO_MAX_CLASSES and n >= MIN_ROWS_PER_CLASS * k):
        return "classification", f"integer labels, {k} classes"
    return "regression", (
        f"integer labels with {many} distinct values in {n:,} rows (more than "
        f"{AUTO_MAX_CLASSES}, or fewer than {MIN_ROWS_PER_CLASS} rows per value); "
        "--task classification overrides"
    )
