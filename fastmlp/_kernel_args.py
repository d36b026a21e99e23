"""What the kernels are handed: name -> code tables, the per-layer ``meta`` table and the work
buffers. The one place that turns a model's description into kernel arguments; ``MLP`` and the
tests both build them here (the kernels run unchecked, so the sizes are decided here only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _kernels as K
from .layout import Layout, work_buffer

__all__ = [
    "ACTIVATION_CODES",
    "LOSS_CODES",
    "KernelArgs",
    "block_buffers",
    "block_workspace",
    "layer_table",
    "meta_of",
    "unit_buffers",
]

ACTIVATION_CODES = {
    "identity": K.IDENTITY,
    "sigmoid": K.SIGMOID,
    "tanh": K.TANH,
    "relu": K.RELU,
    "leaky_relu": K.LEAKY_RELU,
    "softmax": K.SOFTMAX,
}
LOSS_CODES = {
    "mse": K.MSE,
    "mae": K.MAE,
    "binary_cross_entropy": K.BINARY_CROSS_ENTROPY,
    "cross_entropy": K.CROSS_ENTROPY,
}


def layer_table(layout: Layout, activations: Sequence[str]) -> np.ndarray:
    """The kernels' ``meta``: ``(n_layers, N_META)`` uint64, one row per weight layer of
    ``n_in, n_out``, the W and b offsets in ``params``, the input and output unit offsets in
    the unit buffers, and the activation code (columns ``K.N_IN`` ... ``K.ACT``)."""
    return np.array(
        [
            [
                layout.sizes[l],
                layout.sizes[l + 1],
                layout.w_offsets[l],
                layout.b_offsets[l],
                layout.unit_offsets[l],
                layout.unit_offsets[l + 1],
                ACTIVATION_CODES[activations[l]],
            ]
            for l in range(layout.n_layers)
        ],
        dtype=np.uint64,
    )


def meta_of(net) -> np.ndarray:
    """``layer_table`` of a model, from its public ``layout`` and ``activations``."""
    return layer_table(net.layout, net.activations)


def unit_buffers(layout: Layout, dtype: np.dtype, count: int = 3) -> list[np.ndarray]:
    """``count`` new ``(n_units,)`` buffers (``zs, acts, deltas`` for the default 3)."""
    return [work_buffer(layout.n_units, dtype) for _ in range(count)]


def block_buffers(layout: Layout, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """New ``zs, acts`` for ``predict_batch`` / ``loss_batch``: ``PREDICT_BLOCK`` rows' unit
    buffers each. New per call, so several threads may predict with one model at once."""
    n = K.PREDICT_BLOCK * layout.n_units
    return work_buffer(n, dtype), work_buffer(n, dtype)


def block_workspace(layout: Layout, dtype: np.dtype, block: int) -> tuple[np.ndarray, ...]:
    """New ``xs, zb, cb, gram`` of ``train_epoch_blocked`` (and of each thread of
    ``train_epoch_blocked_rows``) for blocks of ``block`` samples."""
    n_pad = -(-block // K.BLOCK_TILE) * K.BLOCK_TILE
    n_in, n_out = layout.sizes[0], layout.sizes[1]
    sizes = (2 * n_pad * n_in, n_pad * n_out, n_pad * n_out, n_pad * n_pad)
    return tuple(work_buffer(n, dtype) for n in sizes)


class KernelArgs:
    """One model's kernel arguments: its tables and its preallocated work buffers.

    Attributes
    ----------
    meta : ndarray (n_layers, N_META) of uint64
        ``layer_table`` of the model.
    loss_code : int
        The loss's code.
    zs, acts, deltas : ndarray (n_units,)
        Pre-activations, activations and deltas of one sample (serial kernels).
    xin, mask : ndarray (n_units,)
        The general kernel's dropout input copy and mask.
    backup : ndarray (n_params,)
        The parameters before the kernel call in flight (``fit`` and ``step`` roll back to it).
    workspace : ndarray (n_params,) or (0,)
        The general kernel's gradient buffer, allocated on first use (``gradient_workspace``).
    blocks : tuple of ndarray
        The blocked kernel's ``xs, zb, cb, gram``, allocated on first use
        (``block_workspace``).
    """

    def __init__(
        self, layout: Layout, activations: Sequence[str], loss: str, dtype: np.dtype
    ) -> None:
        self.layout, self.dtype = layout, dtype
        self.meta = layer_table(layout, activations)
        self.loss_code = LOSS_CODES[loss]
        self.zs, self.acts, self.deltas, self.xin, self.mask = unit_buffers(layout, dtype, 5)
        self.backup = np.empty(layout.n_params, dtype)
        self.workspace = np.empty(0, dtype)
        self.blocks: tuple[np.ndarray, ...] = ()
        self.block = 0

    @classmethod
    def of(cls, net) -> KernelArgs:
        """New kernel arguments (fresh buffers) for ``net``, from its public description."""
        return cls(net.layout, net.activations, net.loss_name, net.dtype)

    def gradient_workspace(self) -> np.ndarray:
        """The ``(n_params,)`` gradient buffer of ``train_epoch_opt`` (allocated once)."""
        if self.workspace.shape[0] != self.layout.n_params:
            self.workspace = work_buffer(self.layout.n_params, self.dtype)
        return self.workspace

    def block_workspace(self, block: int) -> tuple[np.ndarray, ...]:
        """``train_epoch_blocked``'s ``xs, zb, cb, gram`` for blocks of ``block`` samples
        (allocated once per block size)."""
        if self.block != block:
            self.blocks = block_workspace(self.layout, self.dtype, block)
            self.block = block
        return self.blocks
