"""One epoch of training, three ways, and the choice between them.

- ``serial``: every sample in turn on one thread, in chunks of kernel calls (plain online SGD on
  the fused ``train_epoch`` kernel, on ``train_epoch_blocked`` where layer 0 is large enough
  for blocks to pay (``tuning.block_size``), or on a tiny net's shape-specialised kernel;
  anything else on ``train_epoch_opt``). A chunk that produces NaN/inf is replayed one update
  at a time to stop exactly before the offending update.
- ``rows``: exact online SGD with each layer's rows split between threads that meet at a spin
  barrier between layers (``train_epoch_rows``).
- ``hogwild``: threads each take a share of the samples and update the shared parameters
  without locks; a diverging epoch is rolled back whole.

Each takes the model's buffers through ``net`` (``MLP`` owns them) and returns the epoch's
per-sample losses; ``strategy`` picks one for a ``fit`` call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from . import _kernel_args as KA
from . import _kernels as K
from . import optim, tuning
from .errors import DivergenceError
from .layout import work_buffer

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["chunk_samples", "default_block", "hogwild", "rows", "run_kernel", "serial", "strategy"]

# (X, Y, order, lr, epoch) -> the epoch's per-sample losses
EpochRunner = Callable[[np.ndarray, np.ndarray, np.ndarray, float, int], np.ndarray]


def strategy(
    net: MLP,
    settings: optim.Settings,
    weights: np.ndarray | None,
    n_jobs: int,
    parallel: str,
    block_size: int | None = None,
) -> EpochRunner:
    """The epoch runner of a ``fit`` call, after checking that ``n_jobs``/``parallel``/
    ``block_size`` fit the settings. Row-parallel epochs run on one thread per core at most (a
    spin barrier needs them all), and serially for nets without a hidden layer or on a tiny
    net's kernel. Serial plain SGD runs in blocks of ``block_size`` samples (None:
    ``tuning.block_size``'s choice; 1: one sample at a time, ``train_epoch``'s order)."""
    if parallel not in ("rows", "hogwild"):
        raise ValueError(f"parallel must be 'rows' or 'hogwild', got {parallel!r}.")
    if n_jobs > 1 and not (settings.is_plain_sgd and weights is None):
        raise ValueError(
            f"n_jobs={n_jobs} runs plain online SGD only: batch_size=1, "
            "optimizer='sgd', no momentum, alpha, dropout or sample_weight."
        )
    if block_size is not None and block_size > tuning.BLOCK_MAX_SAMPLES:
        raise ValueError(
            f"block_size must be at most {tuning.BLOCK_MAX_SAMPLES} (its workspace grows with "
            f"its square, each sample's correction with it), got {block_size}."
        )
    if block_size is not None and block_size > 1:
        if not (settings.is_plain_sgd and weights is None):
            raise ValueError(
                f"block_size={block_size} runs plain online SGD only: batch_size=1, "
                "optimizer='sgd', no momentum, alpha, dropout or sample_weight."
            )
        if n_jobs > 1 and parallel == "hogwild":
            raise ValueError(
                f"block_size={block_size} does not run Hogwild (threads taking samples): give "
                "parallel='rows', or block_size=None or 1."
            )
    if n_jobs > 1 and parallel == "hogwild":
        return functools.partial(hogwild, net, n_jobs)
    if n_jobs > 1:  # rows
        unsplit = net.layout.n_layers == 1 or net._tiny_kernel() is not None
        n_jobs = 1 if unsplit else min(n_jobs, tuning.available_cores())
    if block_size is None:
        block_size = default_block(net, settings, weights)
    if n_jobs > 1:
        return functools.partial(rows, net, n_jobs, block=block_size)
    # (a partial is a C call, cheaper than a lambda)
    return functools.partial(serial, net, weights, settings, block=block_size)


def default_block(net: MLP, settings: optim.Settings, weights: np.ndarray | None) -> int:
    """The block size ``fit`` uses unless told: ``tuning.block_size`` for plain SGD without
    sample weights on a net without a tiny kernel, else 1 (one sample at a time)."""
    if settings.is_plain_sgd and weights is None and net._tiny_kernel() is None:
        return tuning.block_size(net.layout, net.dtype)
    return 1


def chunk_samples(net: MLP, block: int = 1) -> int:
    """Samples per kernel call within an epoch: ~``tuning.UPDATES_PER_CHUNK`` updates; with
    ``block`` > 1, ``tuning.BLOCK_CHUNK_FACTOR`` times that and at least
    ``tuning.BLOCKS_PER_CHUNK`` blocks, in whole blocks (so chunking never changes where the
    blocks fall)."""
    chunk = max(1, tuning.UPDATES_PER_CHUNK // (net.n_params + net.layout.n_units))
    if block == 1:
        return chunk
    chunk = max(chunk * tuning.BLOCK_CHUNK_FACTOR, block * tuning.BLOCKS_PER_CHUNK)
    return chunk // block * block


def serial(
    net: MLP,
    weights: np.ndarray | None,
    settings: optim.Settings,
    X: np.ndarray,
    Y: np.ndarray,
    order: np.ndarray,
    lr: float,
    epoch: int,
    *,
    block: int = 1,
) -> np.ndarray:
    """One epoch over ``X[order]`` in chunks of kernel calls; returns per-sample losses.

    Each epoch runs in chunks: Ctrl-C, which Python only sees between kernel calls, then
    stops within a few ms with the model at a finished update. Splitting an epoch into
    calls changes the result by rounding at most (tested; bit for bit on AVX-512 hosts, a
    few ulps on AVX2 ones, where a boundary may split a pair of rows): chunks hold whole
    blocks. Plain online SGD runs the fused ``train_epoch`` kernel, or with ``block`` > 1
    ``train_epoch_blocked`` (every call ends on a finished block, its updates all applied);
    anything else the general ``train_epoch_opt``.
    """
    n_samples = order.shape[0]
    plain = settings.is_plain_sgd and weights is None
    batch = settings.batch_size
    losses = np.empty(n_samples, dtype=net.dtype)
    chunk = chunk_samples(net, block if plain else 1)
    state = net._optimizer_state
    kargs = net._args
    if plain:
        args = (net.dtype.type(lr),)
    else:
        chunk = max(batch, chunk // batch * batch)  # chunks end on batch boundaries
        state.prepare(settings.optimizer)
        opts, hyper = settings.kernel_arrays(net.dtype, lr)
        if weights is None:
            weights = np.ones(X.shape[0], dtype=net.dtype)
        args = (weights, opts, hyper, state.powers, state.velocity, state.moment2,
                kargs.gradient_workspace(), state.rng, kargs.xin, kargs.mask)  # fmt: skip
    backup = kargs.backup  # shared with step(): parameters before the kernel call in flight
    pending = 0  # updates of the kernel call in flight, not yet counted in n_updates_
    try:
        for start in range(0, n_samples, chunk):
            stop = min(n_samples, start + chunk)
            backup[...] = net._params
            snapshot = None if plain else state.snapshot()
            losses[stop - 1] = -1.0  # sentinel: a finished call writes a loss >= 0
            pending = -(-(stop - start) // batch)
            run_kernel(net, plain, X, Y, order[start:stop], args, losses[start:stop], block)
            net.n_updates_ += pending
            net.n_samples_seen_ += stop - start
            pending = 0
            if K.count_nonfinite(losses[start:stop]) or K.count_nonfinite(net._params):
                _replay_or_raise(
                    net, plain, snapshot, X, Y, order, start, stop, args, losses, epoch, lr, batch,
                    block,
                )  # fmt: skip
    except KeyboardInterrupt:
        # The interrupt can surface just after a kernel call returned (CPython checks for
        # signals after C calls), before it was counted: the sentinel tells if it ran.
        if pending and losses[stop - 1] != -1.0:
            net.n_updates_ += pending
            net.n_samples_seen_ += stop - start
        raise
    return losses


def run_kernel(net: MLP, plain: bool, X, Y, order, args, losses, block: int = 1) -> None:
    """One call of the training kernel over ``X[order]`` (``args``: see ``serial``); plain SGD
    with ``block`` > 1 on the blocked kernel."""
    kargs = net._args
    if plain:
        if block > 1:
            K.train_epoch_blocked(
                net._params, kargs.meta, kargs.loss_code, X, Y, order, args[0], kargs.zs,
                kargs.acts, kargs.deltas, losses, *kargs.block_workspace(block), block,
            )  # fmt: skip
            return
        tiny = net._tiny_kernel()
        if tiny is not None:  # a net of a few units: its shape-specialised kernel
            tiny(net._params, X, Y, order, args[0], losses)
            return
        K.train_epoch(
            net._params, kargs.meta, kargs.loss_code, X, Y, order, args[0], kargs.zs, kargs.acts,
            kargs.deltas, losses,
        )  # fmt: skip
    else:
        K.train_epoch_opt(
            net._params, kargs.meta, kargs.loss_code, X, Y, order, *args, kargs.zs, kargs.acts,
            kargs.deltas, losses,
        )  # fmt: skip


def _replay_or_raise(
    net: MLP, plain, snapshot, X, Y, order, start, stop, args, losses, epoch, lr, batch, block=1
) -> None:
    """A chunk produced NaN/inf: replay it from the backup one update at a time (the same
    kernel; a blocked one on one-sample blocks, the same trajectory within rounding) up to the
    first update with a non-finite loss or leaving a non-finite parameter, keep the state from
    before it, and raise. If the whole replay stays finite (only a blocked chunk can differ:
    its Gram products overflow first for inputs near the dtype's limit), keep its result and
    return: the chunk is then trained one sample at a time."""
    state = net._optimizer_state
    net._params[...] = net._args.backup
    if not plain:
        state.restore(snapshot)
    before = np.empty_like(net._params)
    t = start
    while t < stop:
        before[...] = net._params
        saved = None if plain else state.snapshot()
        end = min(t + batch, stop)
        run_kernel(net, plain, X, Y, order[t:end], args, losses[t:end], block)
        if K.count_nonfinite(losses[t:end]) or K.count_nonfinite(net._params):
            net._params[...] = before
            if not plain:
                state.restore(saved)
            break
        t = end
    if t >= stop:
        return
    net.n_updates_ -= -(-(stop - t) // batch)
    net.n_samples_seen_ -= stop - t
    raise DivergenceError(epoch + 1, t, int(order[t]), float(lr), len(order))


def rows(
    net: MLP,
    n_jobs: int,
    X: np.ndarray,
    Y: np.ndarray,
    order: np.ndarray,
    lr: float,
    epoch: int,
    *,
    block: int = 1,
) -> np.ndarray:
    """One epoch of row-parallel online SGD (``K.train_epoch_rows``, or with ``block`` > 1
    ``K.train_epoch_blocked_rows``) on ``n_jobs`` threads: this thread is rank 0, a pool runs
    the others. In chunks of kernel calls (whole blocks), like ``serial``; returns the
    per-sample losses."""
    n_samples = order.shape[0]
    losses = np.empty(n_samples, dtype=net.dtype)
    kargs = net._args
    args = (net._params, kargs.meta, kargs.loss_code, X, Y)
    lr_t = net.dtype.type(lr)
    units = (kargs.zs, kargs.acts, kargs.deltas)
    partial = work_buffer(n_jobs * net.layout.n_units, net.dtype)
    ranks = np.arange(n_jobs + 1, dtype=np.uint64)
    row_bounds = kargs.meta[:, K.N_OUT, None] * ranks // np.uint64(n_jobs)  # (n_layers, n_jobs+1)
    sync = np.zeros((n_jobs + 1) * K.SYNC_STRIDE, dtype=np.int64)
    # blocked chunks are long already (tuning.BLOCK_CHUNK_FACTOR)
    chunk = chunk_samples(net, block) * (tuning.ROWS_CHUNK_FACTOR if block == 1 else 1)
    backup = kargs.backup
    solo = block > 1 and tuning.blocked_solo(net.layout)
    if block > 1:
        row_bounds[0] = _blocked_row_bounds(net.layout.sizes[1], n_jobs)
        spaces = [kargs.block_workspace(block)] + [
            KA.block_workspace(net.layout, net.dtype, block) for _ in range(1, n_jobs)
        ]
        if solo:  # zb and cb: rank 0's, shared
            spaces = [spaces[0]] + [
                (xs, spaces[0][1], spaces[0][2], g) for xs, _, _, g in spaces[1:]
            ]
    else:
        inputs = [work_buffer(net.layout.n_in, net.dtype) for _ in range(n_jobs)]

    def run(rank: int, part: np.ndarray, part_losses: np.ndarray) -> int:
        if block > 1 and solo:
            return K.train_epoch_blocked_solo(
                *args, part, lr_t, *units, part_losses, row_bounds, ranks[rank], sync,
                *spaces[rank], block,
            )  # fmt: skip
        if block > 1:
            return K.train_epoch_blocked_rows(
                *args, part, lr_t, *units, partial, part_losses, row_bounds, ranks[rank], sync,
                *spaces[rank], block,
            )  # fmt: skip
        return K.train_epoch_rows(
            *args, part, lr_t, *units, inputs[rank], partial, part_losses, row_bounds,
            ranks[rank], sync,
        )  # fmt: skip

    with ThreadPoolExecutor(n_jobs - 1) as pool:
        for start in range(0, n_samples, chunk):
            stop = min(n_samples, start + chunk)
            part, part_losses = order[start:stop], losses[start:stop]
            backup[...] = net._params
            part_losses[-1] = -1.0  # sentinel: rank 0 writes a loss >= 0 when it finishes
            others = []
            try:
                others = [pool.submit(run, rank, part, part_losses)
                          for rank in range(1, n_jobs)]  # fmt: skip
                run(0, part, part_losses)
                for future in others:
                    future.result()
            except BaseException:
                # Ctrl-C (or an error). If rank 0 finished the chunk, so do the others
                # (they are at most one barrier behind): count it. Else make them return.
                finished = part_losses[-1] != -1.0
                if not finished:
                    sync[K.SYNC_ABORT] = 1
                for future in others:
                    future.exception()
                if finished:
                    net.n_updates_ += stop - start
                    net.n_samples_seen_ += stop - start
                else:
                    net._params[...] = backup  # an aborted chunk stops mid-sample
                raise
            net.n_updates_ += stop - start
            net.n_samples_seen_ += stop - start
            if K.count_nonfinite(part_losses) or K.count_nonfinite(net._params):
                _replay_or_raise(
                    net, True, None, X, Y, order, start, stop, (lr_t,), losses, epoch, lr, 1,
                    block,
                )  # fmt: skip
    return losses


def _blocked_row_bounds(n_rows: int, n_jobs: int) -> np.ndarray:
    """Layer 0's row bounds of a row-parallel blocked epoch, ``(n_jobs + 1,)`` uint64: about equal
    shares on multiples of 8 (of 4: every row gets the tiles it gets serially; and a 64-byte
    line of ``zb``/``cb`` in float64 has one writer). Giving rank 0, which in ``solo`` epochs
    also runs every sample's part, a smaller share was slower (mnist128 float64, paired
    speed-ups over serial: share 0.5 1.55-1.59x, 0.4 1.33x, 0.32 1.29x, 0.6 1.41x)."""
    bounds = [min(n_rows, round(n_rows * q / n_jobs / 8) * 8) for q in range(n_jobs)]
    return np.array([*bounds, n_rows], dtype=np.uint64)


def hogwild(
    net: MLP, n_jobs: int, X: np.ndarray, Y: np.ndarray, order: np.ndarray, lr: float, epoch: int
) -> np.ndarray:
    """One Hogwild epoch: ``n_jobs`` threads, each running the plain SGD kernel over its
    share of ``order`` (in chunks, so Ctrl-C stops them within a chunk), all writing the
    shared ``params`` without locks. Returns the per-sample losses."""
    n_samples = order.shape[0]
    losses = np.empty(n_samples, dtype=net.dtype)
    lr_t = net.dtype.type(lr)
    chunk = chunk_samples(net)
    bounds = np.linspace(0, n_samples, n_jobs + 1).astype(np.int64)
    done = [0] * n_jobs  # updates finished per thread
    stop = threading.Event()
    kargs = net._args

    def work(i: int) -> None:
        units = KA.unit_buffers(net.layout, net.dtype)  # this thread's zs, acts, deltas
        for start in range(int(bounds[i]), int(bounds[i + 1]), chunk):
            if stop.is_set():
                return
            end = min(int(bounds[i + 1]), start + chunk)
            K.train_epoch(
                net._params, kargs.meta, kargs.loss_code, X, Y, order[start:end], lr_t,
                *units, losses[start:end],
            )  # fmt: skip
            done[i] += end - start

    kargs.backup[...] = net._params
    with ThreadPoolExecutor(n_jobs) as pool:
        futures = [pool.submit(work, i) for i in range(n_jobs)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()  # Ctrl-C (or an error): the threads stop after their current chunk
            for future in futures:
                future.exception()
            net.n_updates_ += sum(done)
            net.n_samples_seen_ += sum(done)
            raise
    if K.count_nonfinite(losses) or K.count_nonfinite(net._params):
        net._params[...] = kargs.backup
        t = int(np.argmax(~np.isfinite(losses))) if not np.isfinite(losses).all() else 0
        raise DivergenceError(epoch + 1, t, int(order[t]), float(lr), n_samples)
    net.n_updates_ += n_samples
    net.n_samples_seen_ += n_samples
    return losses
