"""Shared fixtures: seeded data, the activation x output x loss grid, tiny nets, tolerances."""

from __future__ import annotations

import itertools
import os

# The suite runs the general kernels on its tiny nets: each tiny net would compile its own
# shape-specialised kernel (fastmlp._tiny, ~1-2 s apiece; the grid has ~100 of them).
# test_tiny.py turns them on and checks them against the general kernels and the reference.
# Set before fastmlp is imported (it reads the switch then); subprocesses inherit it.
os.environ["FASTMLP_TINY"] = "0"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastmlp import MLP  # noqa: E402

SEED = 20261122

HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
# Every valid (output activation, loss) pair.
OUTPUT_LOSS = (
    ("identity", "mse"),
    ("sigmoid", "mse"),
    ("softmax", "mse"),
    ("identity", "mae"),
    ("sigmoid", "mae"),
    ("softmax", "mae"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
)
# Tiny nets: no hidden layer, a 1-unit hidden layer, one hidden layer, three hidden layers, and
# layers of >= 8 units (the kernels switch to their vectorised exp/tanh there: SIMD_MIN_UNITS).
# n_out is 2 or 3 so every output type (softmax needs >= 2 units) runs on every shape; a 1-unit
# output is covered by SIZES_ONE_OUT for the elementwise outputs.
SIZES = ((3, 2), (3, 1, 2), (3, 5, 2), (4, 7, 6, 5, 3), (5, 12, 9))
SIZES_ONE_OUT = ((3, 1), (2, 3, 2, 1))
DTYPES = (np.float64, np.float32)

# Tolerances, kernel vs reference. The reference always runs in float64 on the kernel's own
# (dtype-rounded) parameters and data, so the difference measures the kernel's rounding error.
#  float64: the two sides differ only in summation order (the kernels reassociate under
#    fastmath; NumPy uses BLAS/pairwise sums) and in exp/tanh implementations: a few ulps (eps =
#    2.2e-16) per operation, times depth (<= 4 layers) and width (<= 7 terms per dot product),
#    on O(1) values: ~1e-14. Measured max over the grid: 2e-14 relative for forward, gradient
#    and step, 6e-15 after an epoch. We allow 1e-12 (rtol and atol), the spec's figure, for one
#    sample or step, and 1e-11 for an epoch (8 updates compound the per-step error).
#  float32: eps = 6e-8; the same argument gives ~1e-6 relative. Measured max: ~1e-5 relative
#    only on entries near 0 (cancellation, e.g. the softmax-mse delta s*(g - s.g)), which the
#    1e-6 absolute term covers; 1e-5 relative elsewhere. After an epoch 1e-4 / 1e-5.
TOL = {
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-12},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
}
TOL_EPOCH = {
    np.dtype(np.float64): {"rtol": 1e-11, "atol": 1e-11},
    np.dtype(np.float32): {"rtol": 1e-4, "atol": 1e-5},
}


def assert_same_up_to_rounding(actual, desired, dtype, what: str) -> None:
    """Two compiled code paths that do the same operations in the same order: a fused epoch and
    its unfused steps, a kernel called whole and in chunks, the guarded step and ``sgd_step``.

    They were bit-identical on the AVX-512 hosts (Zen 4) this suite was first run on, and differ
    by a few ulps on an AVX2 host (Zen 3, 2026-12-02: up to 1.1e-13 absolute in float64 and
    6e-8 absolute / 3e-6 relative in float32, over 104 cases): fastmath's ``reassoc`` and
    ``contract`` let LLVM vectorise a sum or fuse a multiply-add in one copy and not in the
    other, and its choice depends on the vector width. Only rounding differs, as between the
    kernels and the reference, so the tolerance is the reference's one-step ``TOL``.
    """
    np.testing.assert_allclose(actual, desired, **TOL[np.dtype(dtype)], err_msg=what)


def grid():
    """(sizes, hidden, output, loss) for every combination on every tiny net."""
    cases = []
    for sizes, hidden, (output, loss) in itertools.product(SIZES, HIDDEN, OUTPUT_LOSS):
        cases.append((sizes, hidden, output, loss))
    for sizes, hidden, (output, loss) in itertools.product(SIZES_ONE_OUT, HIDDEN, OUTPUT_LOSS):
        if output != "softmax" and (len(sizes) > 2 or hidden == "identity"):
            cases.append((sizes, hidden, output, loss))
    return cases


def case_id(case):
    sizes, hidden, output, loss = case
    return f"{'x'.join(map(str, sizes))}-{hidden}-{output}-{loss}"


GRID = grid()


def make_targets(rng, n_samples, n_out, output, loss, labels=False):
    """Targets in the range each loss expects (soft, not only 0/1, to exercise the formulas)."""
    if loss == "cross_entropy":
        if labels:
            return rng.integers(0, n_out, size=n_samples)
        return rng.dirichlet(np.ones(n_out), size=n_samples)
    if loss == "binary_cross_entropy" or output in ("sigmoid", "softmax"):
        return rng.uniform(0.0, 1.0, size=(n_samples, n_out))
    return rng.normal(size=(n_samples, n_out))


def make_case(case, dtype, n_samples=8, seed=SEED):
    """A net with random (not freshly initialised) parameters and matching data, all in dtype."""
    sizes, hidden, output, loss = case
    rng = np.random.default_rng(seed)
    net = MLP(sizes, hidden=hidden, output=output, loss=loss, seed=seed, dtype=dtype)
    # Random weights of about the initialiser's scale (so deep nets neither vanish nor explode),
    # and non-zero biases so that every term of the formulas is exercised.
    for l, (n_out, n_in) in enumerate(map(net.layout.weight_shape, range(net.layout.n_layers))):
        net.weights[l][...] = rng.normal(scale=1.0 / np.sqrt(n_in), size=(n_out, n_in))
        net.biases[l][...] = rng.normal(scale=0.5, size=n_out)
    X = rng.normal(size=(n_samples, sizes[0])).astype(dtype)
    Y = make_targets(rng, n_samples, sizes[-1], output, loss).astype(dtype)
    return net, X, Y


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)
