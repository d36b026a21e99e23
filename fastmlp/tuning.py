"""The Python-side tunables: how fastmlp splits work into kernel calls and threads.

None of these changes a result beyond rounding (splitting an epoch into calls, or ``predict``
into blocks, is tested: bit for bit on AVX-512 hosts, a few ulps on AVX2 ones); they trade
responsiveness against per-call overhead. They are read at call time, so a test or a user
may set them (``fastmlp.tuning.UPDATES_PER_CHUNK = ...``). The measurements behind the values
are in ``docs/performance.md``. Numba's options are not here: they live with the kernels in
``fastmlp/_kernels.py`` (Numba's cache key does not include them).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .layout import Layout

__all__ = [
    "BLOCKS_PER_CHUNK",
    "BLOCK_CHUNK_FACTOR",
    "BLOCK_LARGE_BYTES",
    "BLOCK_MAX_SAMPLES",
    "BLOCK_MIN_INPUTS",
    "BLOCK_MIN_WEIGHTS",
    "BLOCK_SAMPLES",
    "BLOCK_SAMPLES_LARGE",
    "PARALLEL_PREDICT_WORK",
    "ROWS_CHUNK_FACTOR",
    "TINY_MAX_PARAMS",
    "BLOCKED_SOLO_FRACTION",
    "UPDATES_PER_CHUNK",
    "available_cores",
    "blocked_solo",
    "block_size",
]

# Samples per kernel call inside an epoch are chosen so that one call does about this many
# parameter updates (a few ms): Ctrl-C is only seen between calls, and the per-call overhead
# stays negligible against the call.
UPDATES_PER_CHUNK = 1 << 24

# Row-parallel epochs use chunks this many times longer: their per-call overhead is far larger
# (the calling thread backs up and scans all parameters, pulling the other threads' rows out of
# their caches, and the pool hands the call over). A 4x chunk still stops promptly on Ctrl-C.
ROWS_CHUNK_FACTOR = 4

# predict() uses threads above this many multiply-adds (below it, the thread pool's own cost
# outweighs the gain).
PARALLEL_PREDICT_WORK = 1 << 22

# Largest parameter count of a net trained on a shape-specialised kernel (fastmlp._tiny): the
# straight-line code, and its compile time, grow with it.
TINY_MAX_PARAMS = 64


# Blocked epochs (``_kernels.train_epoch_blocked``, issue 21): ``fit``'s plain online SGD runs
# layer 0 in blocks of samples -- the same trajectory as one sample at a time, summed in
# another order (equal within rounding, not bit for bit) -- on nets whose layer 0 has at least
# BLOCK_MIN_INPUTS inputs and BLOCK_MIN_WEIGHTS weights for the dtype: where blocks were faster
# in every shape measured (a narrow input saves little memory traffic per sample and the block's
# correction, about block/2 axpys of layer 0's width per sample, eats it). Blocks are
# BLOCK_SAMPLES long, or BLOCK_SAMPLES_LARGE when layer 0's weights take more than
# BLOCK_LARGE_BYTES (out of L2, more samples per pass over them pay). The measurements, per
# shape and dtype, are in docs/performance.md.
# (keyed by the dtype itself: ``dtype.name`` costs ~1.7 us, a lot in a one-row partial_fit)
BLOCK_MIN_INPUTS = {np.dtype(np.float64): 32, np.dtype(np.float32): 64}
BLOCK_MIN_WEIGHTS = {np.dtype(np.float64): 4096, np.dtype(np.float32): 8192}
BLOCK_SAMPLES = 8
BLOCK_SAMPLES_LARGE = 16
BLOCK_LARGE_BYTES = 1 << 20
# Blocked epochs run in chunks this many times longer (in samples) than UPDATES_PER_CHUNK gives,
# and of at least BLOCKS_PER_CHUNK blocks: a call's first and last pass over layer 0 are not
# fused with a neighbour block's, and every call costs a backup and a finiteness scan of the
# parameters. At wide's 535,818 parameters UPDATES_PER_CHUNK alone gave one block per call;
# with this factor a call lasts 15-60 ms here (mnist128 float64 ~25 ms), still far below what
# a user notices after Ctrl-C. Row-parallel blocked epochs use the same chunks.
BLOCK_CHUNK_FACTOR = 16
BLOCKS_PER_CHUNK = 32
# The largest block_size fit accepts: the Gram workspace grows with its square.
BLOCK_MAX_SAMPLES = 256


def block_size(layout: Layout, dtype: np.dtype) -> int:
    """Return the samples per block of ``fit``'s plain online SGD on this net (1: none)."""
    dtype = np.dtype(dtype)
    n_in, n_out = layout.sizes[0], layout.sizes[1]
    if n_in < BLOCK_MIN_INPUTS[dtype] or n_in * n_out < BLOCK_MIN_WEIGHTS[dtype]:
        return 1
    if n_in * n_out * dtype.itemsize > BLOCK_LARGE_BYTES:
        return BLOCK_SAMPLES_LARGE
    return BLOCK_SAMPLES


# Row-parallel blocked epochs: when the layers above layer 0 hold fewer than this fraction of
# layer 0's weights, thread 0 alone runs every sample's part of a block (two meetings per
# block); otherwise those layers are split between the threads too (meetings per sample).
BLOCKED_SOLO_FRACTION = 0.1


def blocked_solo(layout: Layout) -> bool:
    """Return whether a row-parallel blocked epoch runs the per-sample part on one thread."""
    n_first = layout.sizes[0] * layout.sizes[1]
    return layout.n_params - n_first - layout.sizes[1] < BLOCKED_SOLO_FRACTION * n_first


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
