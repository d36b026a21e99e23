"""The kernels' gradient against central finite differences, float64, every combination.

(The reference is checked the same way in test_reference.py, so neither side is trusted blindly.)
"""

import numpy as np
import pytest
from conftest import GRID, case_id, make_case

from fastmlp import _kernel_args as KA
from fastmlp import _kernels as K

EPS = 1e-6
# Central differences: truncation error eps^2/6 |L'''| ~ 1e-13, rounding ~ 2.2e-16 |L| / eps
# ~ 2e-10 |L|. So 1e-7 (1 + |L|) absolute plus 1e-6 relative has a safe margin, while a wrong
# formula (a missing factor, a transposed W, an off-by-one layer) is off by 1e-2 or more.
ATOL, RTOL = 1e-7, 1e-6


def sample_loss(net, params, x, y):
    args = KA.KernelArgs.of(net)
    zs, acts = KA.block_buffers(net.layout, net.dtype)
    losses = np.empty(1)
    K.loss_batch(params, args.meta, args.loss_code, x[None], y[None], zs, acts, args.deltas, losses)
    return losses[0]


@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_gradient_matches_finite_differences(case):
    net, X, Y = make_case(case, np.float64, n_samples=3)
    args = KA.KernelArgs.of(net)
    for r in range(X.shape[0]):
        x, y = X[r], Y[r]
        K.forward(net.params, args.meta, X, r, args.zs, args.acts)
        # relu/leaky_relu are not differentiable at 0: make sure no unit sits near the kink.
        z = args.zs[net.layout.n_in :]  # level 0 (the input) has no pre-activation
        assert np.min(np.abs(z)) > 1e-4, "a pre-activation is too close to 0 for FD"
        if net.loss_name == "mae":  # |a - y| has a kink at a = y
            out = args.acts[net.layout.unit_slice(net.layout.n_layers)]
            assert np.min(np.abs(out - y)) > 1e-4, "an output is too close to its mae kink"
        got = net.gradient(x, y)
        scale = 1.0 + abs(sample_loss(net, net.params, x, y))
        expected = np.empty_like(got)
        params = net.params.copy()
        for k in range(net.n_params):
            old = params[k]
            params[k] = old + EPS
            up = sample_loss(net, params, x, y)
            params[k] = old - EPS
            down = sample_loss(net, params, x, y)
            params[k] = old
            expected[k] = (up - down) / (2 * EPS)
        np.testing.assert_allclose(
            got, expected, rtol=RTOL, atol=ATOL * scale, err_msg=f"gradient vs FD, row {r}"
        )
        err = np.abs(got - expected)
        assert err.mean() < 1e-8 * scale, f"mean FD error {err.mean():.2e} too large"
