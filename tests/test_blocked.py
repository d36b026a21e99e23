"""Issue 21's blocked layer-0 pass, stated in NumPy (``reference.train_epoch_blocked``),
against plain per-sample SGD (``reference.train_epoch``): the same trajectory summed in
another order, on the whole grid, for blocks of 1, of 3 (which does not divide the 8 samples)
and of the whole epoch. Checked before any kernel is made fast on it.

Tolerances: the epoch's (``conftest.TOL_EPOCH``). The blocked form only reassociates sums (the
Gram-matrix correction against the per-sample weights), so the difference is rounding: over the
grid, measured at most 2.6e-14 (float64) and 2.8e-5 (float32) of |param| + 1e-3.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DTYPES, GRID, TOL_EPOCH, case_id, make_case

from fastmlp import reference


@pytest.mark.parametrize("block", [1, 3, 8])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_blocked_layer_zero_is_per_sample_sgd(case, dtype, block):
    net, X, Y = make_case(case, dtype)  # lr 0.02: the deep identity nets diverge at 0.1
    order = np.random.default_rng(block).permutation(X.shape[0])
    args = (net.layout, net.params, net.activations, net.loss_name, X, Y, order, 0.02)
    expected, expected_losses = reference.train_epoch(*args)
    got, got_losses = reference.train_epoch_blocked(*args, block)
    tol = TOL_EPOCH[np.dtype(dtype)]
    np.testing.assert_allclose(got, expected, **tol, err_msg="params after the epoch")
    np.testing.assert_allclose(got_losses, expected_losses, **tol, err_msg="per-step losses")
