"""Every kernel result against the NumPy reference, per dtype x activation x output x loss.

``expected`` always comes from ``fastmlp.reference`` in float64 on the kernel's own parameters
and data (already rounded to the kernel's dtype); ``got`` from ``fastmlp._kernels``.
Tolerances: see ``TOL`` in conftest.py.
"""

import numpy as np
import pytest
from conftest import GRID, TOL, TOL_EPOCH, assert_same_up_to_rounding, case_id, make_case

from fastmlp import _kernel_args as KA
from fastmlp import _kernels as K
from fastmlp import reference as ref

DTYPES = [np.float64, np.float32]


def as64(a):
    return np.asarray(a, dtype=np.float64)


def ref_setup(net, X, Y):
    """float64 copies for the reference, plus its activation list."""
    return net.layout, as64(net.params), list(net.activations), as64(X), as64(Y)


def workspace(net):
    return tuple(np.zeros(net.layout.n_units, net.dtype) for _ in range(3))


def check(got, expected, tol, stage, case, dtype):
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), f"{stage}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == np.shape(expected), f"{stage}: shape {got.shape} vs {np.shape(expected)}"
    np.testing.assert_allclose(
        got, expected, **tol, err_msg=f"{stage} [{case_id(case)}, {np.dtype(dtype).name}]"
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_forward_delta_backward_gradient(case, dtype):
    """Stages 1-2 and the gradient: z and a per layer, output delta and loss, hidden deltas."""
    net, X, Y = make_case(case, dtype)
    tol = TOL[np.dtype(dtype)]
    lay, p64, acts_names, X64, Y64 = ref_setup(net, X, Y)
    zs_ref, acts_ref = ref.forward(lay, p64, acts_names, X64)
    out = acts_names[-1]
    delta_out = ref.output_delta(net.loss_name, out, zs_ref[-1], acts_ref[-1], Y64)
    deltas_ref = ref.backward(lay, p64, acts_names, zs_ref, acts_ref, delta_out)
    losses_ref = ref.losses(net.loss_name, out, zs_ref[-1], acts_ref[-1], Y64)

    zs, acts, deltas = workspace(net)
    grad = np.empty(net.n_params, dtype)
    for r in range(X.shape[0]):
        lse = K.forward(net.params, KA.meta_of(net), X, r, zs, acts)
        np.testing.assert_array_equal(acts[lay.unit_slice(0)], X[r], err_msg="input level")
        for l in range(lay.n_layers):
            sl = lay.unit_slice(l + 1)  # level l + 1 is weight layer l's output
            check(zs[sl], zs_ref[l][r], tol, f"forward z[{l}] row {r}", case, dtype)
            check(acts[sl], acts_ref[l][r], tol, f"forward a[{l}] row {r}", case, dtype)
        loss = K.output_delta(
            KA.meta_of(net), KA.LOSS_CODES[net.loss_name], Y, r, zs, acts, deltas, lse
        )
        check(np.asarray(loss, dtype), losses_ref[r], tol, f"loss row {r}", case, dtype)
        K.backward(net.params, KA.meta_of(net), zs, acts, deltas)
        for l in range(lay.n_layers):
            sl = lay.unit_slice(l + 1)
            check(deltas[sl], deltas_ref[l][r], tol, f"delta[{l}] row {r}", case, dtype)
        K.gradient(KA.meta_of(net), acts, deltas, grad)
        grad_ref = ref.gradient(lay, p64, acts_names, net.loss_name, X64[r], Y64[r])
        check(grad, grad_ref, tol, f"gradient row {r}", case, dtype)
        # The public wrapper runs the same kernels end to end.
        check(net.gradient(X[r], Y[r]), grad_ref, tol, f"net.gradient row {r}", case, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_sgd_step_and_epoch(case, dtype):
    """Stages 3-4: parameters after one step and after one epoch in a fixed order."""
    net, X, Y = make_case(case, dtype)
    lay, p64, acts_names, X64, Y64 = ref_setup(net, X, Y)
    lr = 0.02  # small enough that no case diverges in 8 steps (checked below)
    zs, acts, deltas = workspace(net)

    # one step, fused kernel
    params = net.params.copy()
    loss = K.sgd_step(
        params, KA.meta_of(net), KA.LOSS_CODES[net.loss_name], X, Y, 0, dtype(lr), zs, acts, deltas
    )
    p_ref, loss_ref = ref.sgd_step(lay, p64, acts_names, net.loss_name, X64[0], Y64[0], lr)
    tol = TOL[np.dtype(dtype)]
    check(params, p_ref, tol, "params after sgd_step", case, dtype)
    check(np.asarray(loss, dtype), loss_ref, tol, "loss of sgd_step", case, dtype)

    # the unfused update (backward, then sgd_update) is the same step
    params2 = net.params.copy()
    lse = K.forward(params2, KA.meta_of(net), X, 0, zs, acts)
    K.output_delta(KA.meta_of(net), KA.LOSS_CODES[net.loss_name], Y, 0, zs, acts, deltas, lse)
    K.backward(params2, KA.meta_of(net), zs, acts, deltas)
    K.sgd_update(params2, KA.meta_of(net), acts, deltas, dtype(lr))
    check(params2, p_ref, tol, "params after sgd_update", case, dtype)

    # one epoch in a fixed, non-trivial order (a repeated row included)
    order = np.array([3, 0, 7, 1, 1, 6, 2, 5], dtype=np.int64)
    params = net.params.copy()
    losses = np.empty(order.size, dtype)
    K.train_epoch(
        params,
        KA.meta_of(net),
        KA.LOSS_CODES[net.loss_name],
        X,
        Y,
        order,
        dtype(lr),
        zs,
        acts,
        deltas,
        losses,
    )
    p_ref, losses_ref = ref.train_epoch(lay, p64, acts_names, net.loss_name, X64, Y64, order, lr)
    assert np.all(np.abs(p_ref) < 10), "reference diverged: the comparison would mean little"
    tol = TOL_EPOCH[np.dtype(dtype)]
    check(params, p_ref, tol, "params after train_epoch", case, dtype)
    check(losses, losses_ref, tol, "losses of train_epoch", case, dtype)

    # The epoch's fusions (layer 0's update with the next forward pass, each layer's backprop
    # with its update, two rows per pass) change no operation: it equals the same steps done
    # unfused, one row at a time, up to rounding (bit for bit where the compiler vectorises
    # both alike: assert_same_up_to_rounding).
    unfused = net.params.copy()
    for t, r in enumerate(order):
        lse = dtype(
            K.forward(unfused, KA.meta_of(net), X, r, zs, acts)
        )  # returned as a Python float
        loss = K.output_delta(
            KA.meta_of(net), KA.LOSS_CODES[net.loss_name], Y, r, zs, acts, deltas, lse
        )
        K.backward(unfused, KA.meta_of(net), zs, acts, deltas)
        K.sgd_update(unfused, KA.meta_of(net), acts, deltas, dtype(lr))
        assert_same_up_to_rounding(losses[t], dtype(loss), dtype, f"loss of step {t}")
    assert_same_up_to_rounding(params, unfused, dtype, "params after the epoch")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_hidden", [2, 3])  # layer 0's rows in pairs only / an odd last row
@pytest.mark.parametrize("n_in", [1, 5, 64, K.STACK_INPUTS, K.STACK_INPUTS + 1])
def test_epoch_equals_unfused_steps_at_any_input_width(n_in, n_hidden, dtype):
    """``train_epoch``'s layer 0 reads its inputs from copies on the kernel's stack up to
    ``STACK_INPUTS`` wide and from X in place beyond: either way, with or without an odd last
    row, the epoch equals the unfused steps up to rounding."""
    from fastmlp import MLP

    net = MLP((n_in, n_hidden, 3), hidden="tanh", output="softmax", dtype=dtype, seed=2)
    rng = np.random.default_rng(n_in)
    X = rng.random((6, n_in)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 6)]
    order = np.array([2, 0, 5, 5, 1, 4, 3], dtype=np.int64)
    lr = dtype(0.1)
    zs, acts, deltas = workspace(net)
    params, losses = net.params.copy(), np.empty(order.size, dtype)
    K.train_epoch(
        params,
        KA.meta_of(net),
        KA.LOSS_CODES[net.loss_name],
        X,
        Y,
        order,
        lr,
        zs,
        acts,
        deltas,
        losses,
    )
    assert np.all(np.isfinite(params)) and not np.array_equal(params, net.params)
    unfused = net.params.copy()
    for t, r in enumerate(order):
        lse = dtype(K.forward(unfused, KA.meta_of(net), X, r, zs, acts))
        loss = K.output_delta(
            KA.meta_of(net), KA.LOSS_CODES[net.loss_name], Y, r, zs, acts, deltas, lse
        )
        K.backward(unfused, KA.meta_of(net), zs, acts, deltas)
        K.sgd_update(unfused, KA.meta_of(net), acts, deltas, lr)
        assert_same_up_to_rounding(losses[t], dtype(loss), dtype, f"loss of step {t}")
    assert_same_up_to_rounding(params, unfused, dtype, "params after the epoch")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_predict_batch(case, dtype):
    """``predict_batch`` (its own forward pass, ``PREDICT_BLOCK`` rows per pass over each W)
    against the reference, and every row's output the same bits wherever the row sits: alone,
    at any place of a full block, or in a last block that is only partly filled."""
    net, X, Y = make_case(case, dtype, n_samples=11)  # 11 = two full blocks of 4 + 3
    lay, p64, acts_names, X64, _ = ref_setup(net, X, Y)
    _, acts_ref = ref.forward(lay, p64, acts_names, X64)
    got = net.predict(X, n_jobs=1)
    check(got, acts_ref[-1], TOL[np.dtype(dtype)], "predict", case, dtype)
    for r in range(X.shape[0]):
        np.testing.assert_array_equal(net.predict(X[r : r + 1], n_jobs=1), got[r : r + 1])
        np.testing.assert_array_equal(net.predict(X[: r + 1], n_jobs=1), got[: r + 1])
        np.testing.assert_array_equal(net.predict(X[r:], n_jobs=1), got[r:])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_loss_batch(case, dtype):
    """Per-row losses of ``loss_batch`` (blocked forward pass, like ``predict_batch``) against
    the reference, each row's the same bits alone or in a partly filled last block; and
    ``loss``, their mean."""
    net, X, Y = make_case(case, dtype, n_samples=11)
    lay, p64, acts_names, X64, Y64 = ref_setup(net, X, Y)
    tol = TOL[np.dtype(dtype)]
    zs_ref, acts_ref = ref.forward(lay, p64, acts_names, X64)
    expected = ref.losses(net.loss_name, acts_names[-1], zs_ref[-1], acts_ref[-1], Y64)
    n_units = lay.n_units
    zs, acts = KA.block_buffers(net.layout, net.dtype)
    deltas = np.zeros(n_units, dtype)

    def losses_of(rows):
        out = np.empty(len(rows), dtype)
        K.loss_batch(
            net.params,
            KA.meta_of(net),
            KA.LOSS_CODES[net.loss_name],
            X[rows],
            Y[rows],
            zs,
            acts,
            deltas,
            out,
        )
        return out

    got = losses_of(np.arange(11))
    check(got, expected, tol, "losses", case, dtype)
    for r in range(11):
        np.testing.assert_array_equal(losses_of(np.array([r])), got[r : r + 1])
        np.testing.assert_array_equal(losses_of(np.arange(r, 11)), got[r:])
    np.testing.assert_allclose(net.loss(X, Y), np.mean(expected), **tol, err_msg="loss")
