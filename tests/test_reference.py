"""The NumPy reference itself, so it is not trusted blindly: its gradient against central finite
differences (float64, every combination), its SGD step and epoch against its own gradient, the
full-Jacobian softmax delta against differences in z, and numerical safety at huge |z|."""

import warnings

import numpy as np
import pytest
from conftest import GRID, case_id, make_case

from fastmlp import reference as ref

# Central differences with eps = 1e-6: truncation ~eps^2 |L'''| ~ 1e-13, rounding ~2e-10 |L|.
EPS, ATOL, RTOL = 1e-6, 1e-7, 1e-6


def args(net):
    return net.layout, net.params.copy(), list(net.activations), net.loss_name


@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_reference_gradient_matches_finite_differences(case):
    net, X, Y = make_case(case, np.float64, n_samples=2)
    layout, params, acts, loss = args(net)
    for r in range(2):
        zs, _ = ref.forward(layout, params, acts, X[r : r + 1])
        assert min(np.abs(z).min() for z in zs) > 1e-4, "too close to a relu kink for FD"
        if loss == "mae":
            out = ref.forward(layout, params, acts, X[r : r + 1])[1][-1]
            assert np.abs(out - Y[r]).min() > 1e-4, "too close to the mae kink for FD"
        got = ref.gradient(layout, params, acts, loss, X[r], Y[r])
        expected = ref.finite_difference_gradient(layout, params, acts, loss, X[r], Y[r], EPS)
        scale = 1.0 + ref.mean_loss(layout, params, acts, loss, X[r : r + 1], Y[r : r + 1])
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * scale)


ONE_HOT_CASES = [
    (sizes, hidden, "softmax", "cross_entropy")
    for sizes in ((3, 1, 2), (3, 5, 2), (4, 7, 6, 5, 3))
    for hidden in ref.ACTIVATIONS
]


@pytest.mark.parametrize("case", ONE_HOT_CASES, ids=case_id)
def test_reference_gradient_with_one_hot_targets(case):
    # The grid's cross-entropy targets are Dirichlet rows; hard labels are the common use.
    net, X, _ = make_case(case, np.float64, n_samples=2)
    layout, params, acts, loss = args(net)
    Y = np.eye(layout.n_out)[[0, layout.n_out - 1]]
    for r in range(2):
        zs, _ = ref.forward(layout, params, acts, X[r : r + 1])
        assert min(np.abs(z).min() for z in zs) > 1e-4, "too close to a relu kink for FD"
        got = ref.gradient(layout, params, acts, loss, X[r], Y[r])
        expected = ref.finite_difference_gradient(layout, params, acts, loss, X[r], Y[r], EPS)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * 2)


def test_finite_differences_refuse_float32():
    net, X, Y = make_case(((3, 5, 2), "tanh", "identity", "mse"), np.float32, n_samples=1)
    layout, params, acts, loss = args(net)
    with pytest.raises(TypeError, match="float64"):
        ref.finite_difference_gradient(layout, params, acts, loss, X[0], Y[0])


@pytest.mark.parametrize("case", GRID[::4], ids=case_id)
def test_reference_step_and_epoch_follow_its_gradient(case):
    net, X, Y = make_case(case, np.float64, n_samples=3)
    layout, params, acts, loss = args(net)
    lr = 0.05
    stepped, loss0 = ref.sgd_step(layout, params, acts, loss, X[0], Y[0], lr)
    grad = ref.gradient(layout, params, acts, loss, X[0], Y[0])
    np.testing.assert_array_equal(stepped, params - lr * grad)
    assert loss0 == ref.mean_loss(layout, params, acts, loss, X[:1], Y[:1])
    assert np.array_equal(params, net.params), "sgd_step must not modify its input"
    # an epoch over rows (2, 0) is two steps by hand
    p1, l1 = ref.sgd_step(layout, params, acts, loss, X[2], Y[2], lr)
    p2, l2 = ref.sgd_step(layout, p1, acts, loss, X[0], Y[0], lr)
    p_epoch, losses = ref.train_epoch(layout, params, acts, loss, X, Y, [2, 0], lr)
    np.testing.assert_array_equal(p_epoch, p2)
    np.testing.assert_array_equal(losses, [l1, l2])


def test_softmax_mse_delta_is_the_derivative_wrt_z():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1, 5))
    y = rng.uniform(size=(1, 5))

    def loss_of(zz):
        a = ref.activate("softmax", zz)
        return ref.losses("mse", "softmax", zz, a, y)[0]

    delta = ref.output_delta("mse", "softmax", z, ref.activate("softmax", z), y)[0]
    fd = np.empty(5)
    for k in range(5):
        up, down = z.copy(), z.copy()
        up[0, k] += EPS
        down[0, k] -= EPS
        fd[k] = (loss_of(up) - loss_of(down)) / (2 * EPS)
    np.testing.assert_allclose(delta, fd, rtol=1e-6, atol=1e-9)
    # and it differs from the cross-entropy shortcut a - y (the bug this project started from)
    assert not np.allclose(delta, ref.activate("softmax", z)[0] - y[0], atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_overflow_or_log0_at_huge_z(dtype):
    z = np.array([[-1000.0, 0.0, 1000.0]], dtype=dtype)
    y = np.array([[0.0, 0.0, 1.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("sigmoid", "softmax", "tanh"):
            a = ref.activate(name, z)
            assert a.dtype == dtype and np.all(np.isfinite(a)), name
        s = ref.activate("sigmoid", z)
        bce = ref.losses("binary_cross_entropy", "sigmoid", z, s, y)
        ce = ref.losses("cross_entropy", "softmax", z, ref.activate("softmax", z), y)
    assert np.isfinite(bce).all() and np.isfinite(ce).all()
    np.testing.assert_allclose(ce, [0.0], atol=1e-6)  # confident and right: loss ~0
    # per unit softplus(z) - y z: 0 (right and confident) + log 2 (z = 0) + 0
    np.testing.assert_allclose(bce, [np.log(2.0)], rtol=1e-6)
    wrong = ref.losses("binary_cross_entropy", "sigmoid", z, s, 1 - y)  # confidently wrong
    np.testing.assert_allclose(wrong, [2000.0 + np.log(2.0)], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("output,loss", [(o, l) for o in ref.OUTPUTS for l in ("mse", "mae")])
def test_elementwise_losses_and_deltas_finite_at_huge_z(dtype, output, loss):
    z = np.array([[-1000.0, 0.0, 1000.0]], dtype=dtype)
    y = np.array([[0.2, 0.5, 0.9]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = ref.activate(output, z)
        values = ref.losses(loss, output, z, a, y)
        delta = ref.output_delta(loss, output, z, a, y)
    assert values.dtype == delta.dtype == dtype
    assert np.isfinite(values).all() and np.isfinite(delta).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reference_keeps_the_dtype(dtype):
    net, X, Y = make_case(((3, 5, 2), "tanh", "softmax", "cross_entropy"), dtype)
    layout, params, acts, loss = args(net)
    zs, a = ref.forward(layout, params, acts, X)
    assert all(v.dtype == dtype for v in zs + a)
    assert ref.gradient(layout, params, acts, loss, X[0], Y[0]).dtype == dtype
    assert ref.sgd_step(layout, params, acts, loss, X[0], Y[0], 0.1)[0].dtype == dtype
    # a NumPy float64 learning rate must not upcast float32 params (NumPy 2 promotion)
    lr64 = np.float64(0.1)
    assert ref.sgd_step(layout, params, acts, loss, X[0], Y[0], lr64)[0].dtype == dtype
    p_epoch, step_losses = ref.train_epoch(layout, params, acts, loss, X, Y, [1, 0], lr64)
    assert p_epoch.dtype == step_losses.dtype == dtype
