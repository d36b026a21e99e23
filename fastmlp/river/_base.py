"""What fastmlp.river's two estimators share: parameter checks, the growing feature index, the
dict -> vector gather, and building and growing the ``fastmlp.MLP`` behind them.

The network's input layer has ``capacity >= n_features`` columns: column ``j`` is the feature
``features[j]``; columns past ``n_features`` have zero weights and always see a 0 input, so they
change nothing (their gradient is 0 too). A new feature takes the next column, with zero
weights; when the columns run out, the network is rebuilt with twice as many (amortised O(1) per
new feature, as a list grows), copying every parameter.

The features of the first event learned get random input weights drawn from a generator seeded
by ``(seed, crc32(repr(name)))``: a feature's weights depend on its name, not on where it sits
in the dict; and features arriving in one event are numbered in a canonical order, so the same
events in any key order give the bit-identical model.

Each event is one or two kernel calls through ``fastmlp._streaming.RowCalls``: the gather
writes the event straight into its input row, ``predict()``/``step()`` return False/NaN (and
change nothing) on a NaN or inf, and only then does the slow path run, to name the feature.
An event or batch that adds features, classes or capacity takes a checkpoint first, and a
failure rolls all of it back.
"""

from __future__ import annotations

import math
import numbers
import operator
import struct
import zlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from .._streaming import RowCalls
from ..errors import DivergenceError
from ..model import MLP

__all__ = ["HIDDEN_ACTIVATIONS", "OnlineMLP", "check_lr", "check_params", "check_weight"]

HIDDEN_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
# The first hidden layer's biases start U(-FIRST_BIAS, FIRST_BIAS): with standardised inputs,
# zero biases would put every unit's hyperplane through the origin (the net an odd function of
# x at the start), which cost 2-10 points of progressive accuracy on Bananas (measured).
FIRST_BIAS = 1.0
_BIAS_KEY = 0x62696173  # the stream of the first hidden biases ("bias")
_NO_NEW: tuple = ()  # what a gather returns when every feature of x is known


def check_params(hidden_sizes: Any, activation: Any, lr: Any, seed: Any) -> tuple[int, ...]:
    """Check the shared constructor arguments; return ``hidden_sizes`` as a tuple of int."""
    if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
        raise TypeError(
            f"hidden_sizes must be a tuple of ints >= 1 (one per hidden layer), got "
            f"{type(hidden_sizes).__name__} {hidden_sizes!r}."
        )
    bad = [
        h for h in hidden_sizes if isinstance(h, bool) or not isinstance(h, numbers.Integral)
        or h < 1
    ]  # fmt: skip
    if bad or not hidden_sizes:  # () would be a linear model, but River cannot clone it
        raise ValueError(
            f"hidden_sizes must be a tuple of ints >= 1 (one per hidden layer, at least one), "
            f"got {hidden_sizes!r}."
        )
    if activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {list(HIDDEN_ACTIVATIONS)}, got {activation!r}."
        )
    check_lr(lr)
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}.")
    return tuple(int(h) for h in hidden_sizes)


def check_lr(lr: Any) -> float:
    """Return ``lr`` as a float; raise if it is not a finite number > 0."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a finite float > 0, got {lr!r}.")
    return float(lr)


def check_weight(w: Any) -> float:
    """Return a sample weight as a float; raise if it is not a finite number >= 0 (bools are
    refused, as every other type that is not a real number)."""
    if (
        isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Real)
        or not 0 <= w < math.inf
    ):  # fmt: skip
        raise ValueError(f"w (the sample weight) must be a finite float >= 0, got {w!r}.")
    return float(w)


# rebuilt from _index and _net, never pickled
_DERIVED = ("_calls", "_x", "_out", "_getter", "_pack", "_bytes")


def _one_getter(name: Hashable) -> Any:
    """``operator.itemgetter`` of one key returns the value itself; this returns a 1-tuple."""
    return lambda x: (x[name],)


def _canonical(name: Hashable) -> tuple[int, str, str]:
    """Sort key of a feature's name that any two names have (names may be of mixed types)."""
    return _feature_key(name), type(name).__name__, repr(name)


def _feature_key(name: Hashable) -> int:
    """A key of a feature's name that is the same in every process (``hash(str)`` is not)."""
    return zlib.crc32(repr(name).encode("utf-8", "backslashreplace"))


class OnlineMLP:
    """Mixin of the River estimators: state, gather, network construction and growth.

    Subclasses set ``_output`` and ``_loss`` (the ``MLP``'s output activation and loss), and
    the constructor parameters ``hidden_sizes``, ``activation``, ``lr``, ``seed``.
    """

    _output: str
    _loss: str
    hidden_sizes: tuple[int, ...]
    activation: str
    lr: float
    seed: int | None

    def _init_state(self) -> None:
        self._index: dict[Hashable, int] = {}  # feature name -> input column
        self._n_features = 0
        self._net: MLP | None = None
        self._set_net(None)
        self._seed_base: int | None = None  # drawn at the first build when seed is None
        self._n_learned = 0  # learn events so far

    def _set_net(self, net: MLP | None) -> None:
        """Use ``net``: its per-event calls (``fastmlp._streaming.RowCalls``), whose input row
        ``calls.x`` is the buffer every gather writes to (zero past the named features)."""
        old = getattr(self, "_x", None)
        self._net = net
        if net is None:
            self._calls: RowCalls | None = None
            self._x = np.zeros(1)  # a placeholder: nothing is gathered before the first build
            self._out: memoryview | None = None
        else:
            self._calls = RowCalls(net)
            self._x = self._calls.x[0]  # the input buffer (capacity,): one event's features
            self._x.fill(0.0)
            # the outputs of calls.predict(); indexing it gives Python floats, 50 ns faster a
            # call than calls.out.tolist() (measured)
            self._out = memoryview(self._calls.out).cast("B").cast("d")
            if old is not None:  # a rebuild keeps the event gathered (e.g. for a new class)
                n = min(old.shape[0], self._x.shape[0])
                self._x[:n] = old[:n]
        self._refresh_gather()

    def _refresh_gather(self) -> None:
        """Rebuild what the fast gather uses, after the features or the buffer changed.

        ``_getter(x)`` is the tuple of ``x``'s values in column order (``operator.itemgetter``,
        one C call), and ``_pack`` stores it into the buffer's first ``n_features`` doubles
        (``struct.pack_into``, one C call): 0.34 µs for 9 features, against 0.43 µs for a loop
        of memoryview stores and 0.61 µs for a loop of ndarray stores (measured).
        """
        names = list(self._index)  # in column order
        if len(names) >= 2:
            self._getter: Any = operator.itemgetter(*names)
        elif names:
            self._getter = _one_getter(names[0])
        else:
            self._getter = None  # calling it raises TypeError: the slow path
        self._pack = struct.Struct(f"{len(names)}d").pack_into
        self._bytes = memoryview(self._x).cast("B")  # the same memory, for _pack

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in _DERIVED:  # views and C helpers: rebuilt on the unpickled buffer
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._set_net(self._net)

    def _checkpoint(self) -> tuple:
        """What ``_rollback`` needs to put the estimator back as it is now: taken before an
        event (or a batch) that may add features, classes or rebuild the network."""
        state = self.__dict__.copy()
        for name, value in state.items():  # the containers mutated in place
            if isinstance(value, (dict, list)):
                state[name] = value.copy()
        net = self._net
        if net is None:
            return state, None, None
        return state, net, (net._params.copy(), net.n_updates_, net.n_samples_seen_)

    def _rollback(self, checkpoint: tuple) -> None:
        state, net, saved = checkpoint
        if net is not None:
            net._params[...] = saved[0]
            net.n_updates_, net.n_samples_seen_ = saved[1], saved[2]
        self.__dict__.clear()
        self.__dict__.update(state)
        self._x.fill(0.0)  # columns past the features must read 0 (the fast gather skips them)

    # ---- public read-only views ------------------------------------------------------------

    @property
    def features(self) -> tuple:
        """The features seen by ``learn_one``/``learn_many``, in input-column order."""
        return tuple(self._index)

    @property
    def net(self) -> MLP | None:
        """The ``fastmlp.MLP`` behind the estimator (``None`` before the first event learned).

        Its input layer may have more columns than ``features`` (spare capacity, zero weights).
        """
        return self._net

    # ---- gather ----------------------------------------------------------------------------

    def _gather(self, x: Mapping) -> Sequence[tuple[Hashable, float]]:
        """Write ``x``'s known features into the input buffer, 0 for the missing ones.

        Returns the unknown features as ``(name, value)`` pairs (``()`` when there are none).
        The common case, every known feature present, takes two C calls (``_refresh_gather``);
        anything else (missing, unknown or non-float values) takes ``_gather_slow``.
        """
        if len(x) == self._n_features:
            try:  # every known feature present and no other: one getter and one pack call
                self._pack(self._bytes, 0, *self._getter(x))
                return _NO_NEW
            except (KeyError, TypeError, struct.error, OverflowError):  # missing, unknown, bad
                pass
        return self._gather_slow(x)

    def _gather_slow(self, x: Mapping) -> list[tuple[Hashable, float]]:
        """Like ``_gather`` for any dict: None counts as missing; non-numbers, NaN and inf are
        refused with the feature's name; the buffer is only written once all values passed.
        """
        if not isinstance(x, Mapping):
            raise TypeError(f"x must be a dict of feature name -> number, got {type(x).__name__}.")
        known, new = [], []
        index = self._index
        for k, v in x.items():
            if v is None:
                continue
            try:
                if isinstance(v, (str, bytes)):  # categories: one-hot encode them upstream
                    raise TypeError
                f = float(v)
            except (TypeError, ValueError):
                raise TypeError(
                    f"x[{k!r}] must be a real number, got {type(v).__name__} {v!r}."
                ) from None
            except OverflowError:  # an int beyond float64's range
                raise ValueError(
                    f"x[{k!r}] must be finite, got {type(v).__name__} beyond float64's range."
                ) from None
            if not math.isfinite(f):
                raise ValueError(f"x[{k!r}] must be finite, got {v!r}.")
            j = index.get(k)
            if j is None:
                new.append((k, f))
            else:
                known.append((j, f))
        buf = self._x
        buf.fill(0.0)
        for j, f in known:
            buf[j] = f
        return new

    def _gather_frame(self, X: Any) -> np.ndarray:
        """A DataFrame's known columns as a ``(n_rows, capacity)`` C-contiguous matrix; NaN
        (pandas' missing value) and unknown columns count as 0.
        """
        if not hasattr(X, "columns") or not hasattr(X, "to_numpy"):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}.")
        M = np.zeros((len(X), self._x.shape[0]))
        for name in X.columns:
            j = self._index.get(name)
            if j is not None:
                try:
                    col = X[name].to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError, OverflowError):
                    raise TypeError(
                        f"X[{name!r}] must hold real numbers, got dtype {X[name].dtype}."
                    ) from None
                _check_column(X, name, col)
                M[:, j] = np.nan_to_num(col, nan=0.0, posinf=np.inf, neginf=-np.inf)
        return M

    def _frame_if_complete(self, X: Any) -> np.ndarray | None:
        """``X`` as a gathered matrix when learning it needs no slow path: no NaN, finite; new
        columns are registered first (as ``learn_one`` on its first row would).
        """
        if not hasattr(X, "columns") or not hasattr(X, "to_numpy"):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}.")
        try:
            values = X.to_numpy(dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return None  # the slow path names the bad value
        finite = np.isfinite(values)
        if not finite.all():
            if np.isinf(values).any():  # refused before anything is learned
                for i, name in enumerate(X.columns):
                    _check_column(X, name, values[:, i])
            return None  # NaN: missing values, the rows' dicts go without them
        new = [c for c in X.columns if c not in self._index]
        if new:
            self._add_features(new)
        return self._gather_frame(X)

    @staticmethod
    def _frame_rows(X: Any) -> list[dict]:
        """A DataFrame's rows as dicts without their missing (NaN) entries."""
        if not hasattr(X, "columns") or not hasattr(X, "to_dict"):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}.")
        return [
            {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
            for row in X.to_dict(orient="records")
        ]

    # ---- the network -----------------------------------------------------------------------

    def _mlp(self, sizes: Sequence[int]) -> MLP:
        return MLP(
            sizes, hidden=self.activation, output=self._output, loss=self._loss,
            seed=self._seed_base,
        )  # fmt: skip

    def _build(self, new: Sequence[tuple[Hashable, float]], n_out: int) -> None:
        """Build the network for the first event: its features get seeded random weights."""
        if self._seed_base is None:
            self._seed_base = (
                int(np.random.SeedSequence().generate_state(1)[0])
                if self.seed is None else int(self.seed)
            )  # fmt: skip
        self._add_features([k for k, _ in new], grow=False)
        sizes = (max(1, self._n_features), *self.hidden_sizes, n_out)
        net = self._mlp(sizes)
        W0 = net.weights[0]
        W0[:, self._n_features :] = 0.0  # spare columns (e.g. an empty first event): unused
        n_next = sizes[1]
        limit = math.sqrt(6.0 / max(1, self._n_features))  # He uniform, for every activation
        for name, j in self._index.items():
            rng = np.random.default_rng([self._seed_base, _feature_key(name)])
            W0[:, j] = rng.uniform(-limit, limit, n_next)
        if len(sizes) > 2:  # spread the first hidden units' hyperplanes over the data
            rng = np.random.default_rng([self._seed_base, _BIAS_KEY])
            net.biases[0][...] = rng.uniform(-FIRST_BIAS, FIRST_BIAS, n_next)
        self._init_output_layer(net)
        self._set_net(net)

    def _init_output_layer(self, net: MLP) -> None:
        """Hook: the estimator's choice of the output layer's initial weights."""

    def _add_features(self, names: Sequence[Hashable], grow: bool = True) -> None:
        """Give each new feature the next input column; rebuild with more columns if needed.

        The features arriving together are numbered in the order of ``_feature_key``, not of
        the dict, so that every column, and so every sum in the kernels, is the same whatever
        the order of the keys: the same events in any key order give bit-identical models.
        """
        for name in sorted(names, key=_canonical):
            self._index[name] = self._n_features
            self._n_features += 1
        if grow and self._n_features > self._x.shape[0]:
            self._resize(n_in=max(2 * self._x.shape[0], self._n_features))
        self._refresh_gather()

    def _resize(self, n_in: int | None = None, n_out: int | None = None) -> None:
        """Rebuild the network with ``n_in`` inputs and ``n_out`` outputs (each >= the current
        one), every parameter copied: new input columns and new output rows are zero.
        """
        old = self._net
        assert old is not None
        sizes = list(old.layer_sizes)
        sizes[0] = sizes[0] if n_in is None else n_in
        sizes[-1] = sizes[-1] if n_out is None else n_out
        net = self._mlp(sizes)
        layers = zip(net.weights, net.biases, old.weights, old.biases, strict=True)
        for W, b, W_old, b_old in layers:
            W[...] = 0.0
            W[: W_old.shape[0], : W_old.shape[1]] = W_old
            b[...] = 0.0
            b[: b_old.shape[0]] = b_old
        self._set_net(net)

    def _learn_features(self, x: Mapping, new: Sequence[tuple[Hashable, float]]) -> None:
        """Register ``x``'s new features (zero weights) and gather ``x`` again."""
        self._add_features([k for k, _ in new])
        self._gather_slow(x)

    def _bad_input(self, x: Mapping) -> Exception | None:
        """The error to raise when the core refused the gathered input (a NaN or inf), naming
        the feature at fault; None if every value of ``x`` is good (then a step diverged)."""
        try:
            self._gather_slow(x)  # raises naming the feature if a value is at fault
        except (TypeError, ValueError) as named:
            return named
        return None

    def _refused(self, x: Mapping, lr: float) -> Exception:
        """The error of a step that returned NaN: a bad value of ``x``, or divergence."""
        bad = self._bad_input(x)
        return DivergenceError(0, 0, 0, lr, 1, streaming=True) if bad is None else bad

    def _predict_rows(self, M: np.ndarray) -> np.ndarray:
        assert self._net is not None
        return self._net.predict(M)


def _check_column(X: Any, name: Hashable, values: np.ndarray) -> None:
    """Raise naming the column (and the row) if ``values`` (a column of ``X``) holds inf."""
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        i = int(bad[0])
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        raise ValueError(
            f"X[{name!r}] must be finite, got {float(values[i])!r} in row "
            f"{X.index[i : i + 1].tolist()[0]!r}{more}."
        )
