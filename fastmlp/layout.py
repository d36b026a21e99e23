"""Layout of the flat parameter buffer and of the per-sample unit buffers.

The parameters of every layer live in ONE contiguous 1-D array, layer by layer::

    params = [W_0 (row-major, shape (n_out_0, n_in_0)), b_0 (n_out_0),
              W_1 ..., b_1, ...]

Per-sample workspace (pre-activations ``zs``, activations ``acts``, deltas ``deltas``) is one flat
array of ``n_units = sum(sizes)`` entries holding every *level* in turn: level 0 is the input
(``acts`` holds x there), level ``l + 1`` is weight layer ``l``'s output; level ``k`` starts at
``unit_offsets[k]``.

This module is pure bookkeeping (no Numba), the single source of offsets for the model, the
kernels and the NumPy reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """Offsets and shapes of a fully connected network with layer widths ``sizes``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``(n_in, h_1, ..., n_out)``; at least two entries, each >= 1.

    Examples
    --------
    >>> lay = Layout((2, 3, 1))
    >>> lay.n_params, lay.w_offsets, lay.b_offsets, lay.unit_offsets
    (13, (0, 9), (6, 12), (0, 2, 5))
    """

    sizes: tuple[int, ...]
    w_offsets: tuple[int, ...] = field(init=False)
    b_offsets: tuple[int, ...] = field(init=False)
    unit_offsets: tuple[int, ...] = field(init=False)
    n_params: int = field(init=False)
    n_units: int = field(init=False)

    def __init__(self, sizes: Sequence[int]) -> None:
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"layer_sizes must have at least 2 entries (n_in, ..., n_out), got {sizes}."
            )
        if any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must all be >= 1, got {sizes}.")
        w_offsets, b_offsets = [], []
        pos = 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            w_offsets.append(pos)
            pos += n_out * n_in
            b_offsets.append(pos)
            pos += n_out
        unit_offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "w_offsets", tuple(w_offsets))
        object.__setattr__(self, "b_offsets", tuple(b_offsets))
        object.__setattr__(self, "unit_offsets", tuple(unit_offsets))
        object.__setattr__(self, "n_params", pos)
        object.__setattr__(self, "n_units", sum(sizes))

    @property
    def n_layers(self) -> int:
        """Number of weight layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    @property
    def n_in(self) -> int:
        """Width of the input."""
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        """Width of the output layer."""
        return self.sizes[-1]

    def weight_shape(self, layer: int) -> tuple[int, int]:
        """Shape ``(n_out, n_in)`` of layer ``layer``'s weight matrix."""
        return (self.sizes[layer + 1], self.sizes[layer])

    def weight_slice(self, layer: int) -> slice:
        """Slice of ``params`` holding layer ``layer``'s weights (row-major)."""
        return slice(self.w_offsets[layer], self.b_offsets[layer])

    def bias_slice(self, layer: int) -> slice:
        """Slice of ``params`` holding layer ``layer``'s biases."""
        lo = self.b_offsets[layer]
        return slice(lo, lo + self.sizes[layer + 1])

    def unit_slice(self, level: int) -> slice:
        """Slice of a unit buffer (``zs``, ``acts``, ``deltas``) holding ``level``.

        Level 0 is the input, level ``l + 1`` the output of weight layer ``l``.
        """
        lo = self.unit_offsets[level]
        return slice(lo, lo + self.sizes[level])

    def weights(self, params: np.ndarray) -> list[np.ndarray]:
        """Return views ``(n_out, n_in)`` of every layer's weights inside the flat ``params``.

        Parameters
        ----------
        params : ndarray (n_params,)
            A flat parameter buffer of this layout.

        Returns
        -------
        list of ndarray
            One ``(n_out, n_in)`` view per weight layer; writing to it writes ``params``.
        """
        self._check(params)
        return [
            params[self.weight_slice(l)].reshape(self.weight_shape(l)) for l in range(self.n_layers)
        ]

    def biases(self, params: np.ndarray) -> list[np.ndarray]:
        """Return views ``(n_out,)`` of every layer's biases inside the flat ``params``.

        Parameters
        ----------
        params : ndarray (n_params,)
            A flat parameter buffer of this layout.

        Returns
        -------
        list of ndarray
            One ``(n_out,)`` view per weight layer; writing to it writes ``params``.
        """
        self._check(params)
        return [params[self.bias_slice(l)] for l in range(self.n_layers)]

    def pack(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> np.ndarray:
        """Concatenate per-layer ``weights`` and ``biases`` into a new flat buffer.

        Parameters
        ----------
        weights : sequence of array_like
            ``weights[l]`` of shape ``(n_out, n_in)`` of layer ``l``.
        biases : sequence of array_like
            ``biases[l]`` of shape ``(n_out,)``.

        Returns
        -------
        ndarray (n_params,)
            The flat buffer, of the arrays' common dtype.
        """
        if len(weights) != self.n_layers or len(biases) != self.n_layers:
            raise ValueError(
                f"expected {self.n_layers} weight matrices and bias vectors, "
                f"got {len(weights)} and {len(biases)}."
            )
        dtype = np.result_type(*weights, *biases)
        params = np.empty(self.n_params, dtype=dtype)
        for l in range(self.n_layers):
            w, b = np.asarray(weights[l]), np.asarray(biases[l])
            if w.shape != self.weight_shape(l):
                raise ValueError(
                    f"weights[{l}] has shape {w.shape}, expected {self.weight_shape(l)}."
                )
            if b.shape != (self.sizes[l + 1],):
                raise ValueError(
                    f"biases[{l}] has shape {b.shape}, expected ({self.sizes[l + 1]},)."
                )
            params[self.weight_slice(l)] = w.ravel()
            params[self.bias_slice(l)] = b
        return params

    def _check(self, params: np.ndarray) -> None:
        if params.ndim != 1 or params.shape[0] != self.n_params:
            raise ValueError(
                f"params has shape {params.shape}, expected ({self.n_params},) "
                f"for sizes {self.sizes}."
            )


# LLVM guards a vectorised loop that stores into one array while reading another with a runtime
# check that the two lie at least one vector block apart; when they don't (small arrays that
# NumPy happened to place next to each other) it runs the scalar loop instead, whose reduction
# order differs. The same computation then differs in its last bits depending on where memory
# was allocated. Every buffer a kernel writes is therefore allocated with this much memory of its
# own on both sides, so no other array is ever that close to it.
BUFFER_PAD_BYTES = 4096
# Buffers also start on a cache line (NumPy's were 16- or 32-byte aligned). Vector loads and
# stores then split no cache line, and the threads of row-parallel SGD, which each write their
# own block of rows, share no line at a block boundary when the rows are whole lines (mnist128's
# are). Serial training of mid-sized nets (digits, mnist128) also runs faster and steadier.
CACHE_LINE_BYTES = 64


def work_buffer(n: int, dtype: np.dtype) -> np.ndarray:
    """Return a zeroed ``(n,)`` array of ``dtype`` starting on a cache line.

    The array starts on a ``CACHE_LINE_BYTES`` boundary, with at least ``BUFFER_PAD_BYTES`` of
    padding on each side.
    """
    dtype = np.dtype(dtype)
    pad = -(-BUFFER_PAD_BYTES // dtype.itemsize)
    line = CACHE_LINE_BYTES // dtype.itemsize
    raw = np.zeros(n + 2 * pad + line, dtype=dtype)
    start = pad + (-(raw.ctypes.data + pad * dtype.itemsize) % CACHE_LINE_BYTES) // dtype.itemsize
    return raw[start : start + n]
