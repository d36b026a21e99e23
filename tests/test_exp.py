"""The kernels' own exp/expm1 (vectorisable polynomials) against NumPy, in ulps, and the
activations built on them against the reference at the edges (tiny and huge z)."""

import numpy as np
import pytest

from fastmlp import MLP
from fastmlp import _kernel_args as KA
from fastmlp import _kernels as K
from fastmlp import reference as ref

# Measured maxima: 1.0 ulp (float64) and 2.7 ulp (float32) for exp; ~1 ulp for expm1.
MAX_ULPS = {np.float64: 2.0, np.float32: 4.0}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_and_expm1_within_a_few_ulps(dtype):
    rng = np.random.default_rng(3)
    lo = -700.0 if dtype is np.float64 else -87.0
    xs = np.concatenate(
        [
            -rng.exponential(3.0, 600),
            rng.uniform(lo, 0.0, 300),
            -(10.0 ** -rng.uniform(0, 30, 300)),  # tiny arguments: expm1 must not cancel
            [0.0, -0.0, -0.34657359, -0.34657360, -1.0, lo],  # 0, near ln2/2, the clamp
        ]
    ).astype(dtype)
    eps = np.finfo(dtype).eps
    for x in xs:
        exact_exp = np.exp(np.float64(x))
        exact_expm1 = np.expm1(np.float64(x))
        got_exp = K._exp_nonpos(x)
        got_expm1 = K._expm1_nonpos(x)
        assert abs(got_exp - exact_exp) <= MAX_ULPS[dtype] * eps * exact_exp, x
        assert abs(got_expm1 - exact_expm1) <= MAX_ULPS[dtype] * eps * abs(exact_expm1), x


def test_exp_below_the_normal_range_is_tiny_not_garbage():
    for x in (-708.5, -745.0, -1e4, -np.inf):
        assert 0.0 <= K._exp_nonpos(np.float64(x)) < 3e-308
        assert K._expm1_nonpos(np.float64(x)) == -1.0
    assert 0.0 <= K._exp_nonpos(np.float32(-200.0)) < 2e-38


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
@pytest.mark.parametrize("width", [16, 4])
def test_activations_at_tiny_and_huge_z(dtype, hidden, width):
    """Hidden layers of 16 units (vectorised exp) and of 4 (libm, narrower than
    ``SIMD_MIN_UNITS``) fed z from 1e-12 to 1e3: match NumPy's tanh/sigmoid to the same relative
    precision; no overflow, no cancellation near 0."""
    assert (width >= K.SIMD_MIN_UNITS) == (width == 16)
    z = np.array([1e-12, -1e-9, 0.0, -1e-4, 0.01, -0.3, 0.35, -1.0, 2.0, -5.0, 10.0, -19.0,
                  40.0, -300.0, 1000.0, -1000.0], dtype=np.float64)  # fmt: skip
    net = MLP((1, width, 2), hidden=hidden, output="softmax", dtype=dtype)
    zs, acts = (np.zeros(net.layout.n_units, dtype) for _ in range(2))
    rtol = 4 * np.finfo(dtype).eps
    for chunk in z.reshape(-1, width):
        net.weights[0][:, 0] = chunk
        K.forward(net.params, KA.meta_of(net), np.ones((1, 1), dtype), 0, zs, acts)
        got = acts[net.layout.unit_slice(1)]
        expected = ref.activate(hidden, chunk.astype(dtype).astype(np.float64))
        # below the smallest normal number: ~tiny (the vectorised exp's clamp) or 0
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=2 * np.finfo(dtype).tiny)
