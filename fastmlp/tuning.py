"""The Python-side tunables: how fastmlp splits work into kernel calls and threads.

None of these changes a result (splitting an epoch into calls, or ``predict`` into blocks, is
tested bit for bit); they trade responsiveness against per-call overhead. They are read at call
time, so a test or a user may set them (``fastmlp.tuning.UPDATES_PER_CHUNK = ...``). The
measurements behind the values are in ``docs/performance.md``. Numba's options are not here:
they live with the kernels in ``fastmlp/_kernels.py`` (Numba's cache key does not include them).
"""

from __future__ import annotations

import os

__all__ = [
    "PARALLEL_PREDICT_WORK",
    "ROWS_CHUNK_FACTOR",
    "TINY_MAX_PARAMS",
    "UPDATES_PER_CHUNK",
    "available_cores",
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


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
