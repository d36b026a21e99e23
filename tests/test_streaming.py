"""The per-event paths: ``step``, ``test_then_train`` and the one-row ``predict``.

Their fast paths skip the general conversion and check inside the kernel (``stream_step``,
``predict_rows_if_finite``), so each is compared here with the NumPy reference on the whole
grid, with the general path bit for bit on every input form that takes it, and on every bad
input (same error, model unchanged).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import DTYPES, GRID, TOL, assert_same_up_to_rounding, case_id, make_case

from fastmlp import MLP, _streaming, reference
from fastmlp import _kernels as K
from fastmlp._kernel_args import KernelArgs
from fastmlp.errors import DivergenceError


def _ref_step(net, x, y, lr):
    """The reference's step and its pre-update output, in float64 on the kernel's own values."""
    params = net.params.astype(np.float64)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    _, acts = reference.forward(net.layout, params, net.activations, x64[None])
    new, loss = reference.sgd_step(net.layout, params, net.activations, net.loss_name, x64,
                                   y64, lr)  # fmt: skip
    return new, float(loss), acts[-1][0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_test_then_train_equals_the_reference(case, dtype):
    """Prediction before the update, parameters after it and the loss, on every combination;
    tolerances of one step (conftest.TOL)."""
    net, X, Y = make_case(case, dtype)
    twin, _, _ = make_case(case, dtype)
    lr = 0.1
    for r in range(3):
        p_ref, loss_ref, out_ref = _ref_step(net, X[r], Y[r], lr)
        out = net.test_then_train(X[r], Y[r], lr)
        loss = twin.step(X[r], Y[r], lr)
        tol = TOL[np.dtype(dtype)]
        assert out.shape == (net.layout.n_out,) and out.dtype == dtype
        np.testing.assert_allclose(out, out_ref, **tol, err_msg="prediction before the update")
        np.testing.assert_allclose(net.params, p_ref, **tol, err_msg="params after the update")
        np.testing.assert_allclose(loss, loss_ref, **tol, err_msg="step's loss")
        # test_then_train is step plus the forward pass's output: the same update, bit for bit
        np.testing.assert_array_equal(net.params, twin.params)
        net.params = p_ref  # the next sample starts from the reference's parameters
        twin.params = p_ref
    assert net.n_updates_ == net.n_samples_seen_ == 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_the_guarded_step_is_sgd_step(case, dtype):
    """step's kernel saves each old parameter and checks each new one in the pass that updates
    it (``_guarded_*``): the arithmetic must stay ``sgd_step``'s (up to rounding: they are
    compiled apart)."""
    net, X, Y = make_case(case, dtype)
    args = KernelArgs.of(net)
    params = net.params.copy()
    lr = dtype(0.1)
    for r in range(3):
        loss = K.sgd_step(params, args.meta, args.loss_code, X, Y, r, lr, args.zs, args.acts,
                          args.deltas)  # fmt: skip
        assert_same_up_to_rounding(net.step(X[r], Y[r], 0.1), loss, dtype, f"loss, step {r}")
        assert_same_up_to_rounding(net.params, params, dtype, f"params, step {r}")


def _label_forms(label):
    return [label, np.int64(label), np.int32(label), np.uint8(label), np.intp(label)]


def _scalar_forms(value):
    return [value, np.float64(value), np.float32(value), [value], np.array([value])]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_target_form_gives_the_general_paths_update(dtype):
    """Labels and scalars of every Python/NumPy type take the same update as a target given as
    a list (the general conversion), bit for bit."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=4).astype(dtype)
    onehot = [0.0, 0.0, 1.0]
    forms = {
        ("softmax", "cross_entropy", 3): (onehot, _label_forms(2) + [np.array(onehot, dtype)]),
        ("softmax", "mse", 3): (onehot, _label_forms(2)),
        ("sigmoid", "binary_cross_entropy", 1): ([1.0], _scalar_forms(1.0) + _label_forms(1)),
        ("identity", "mse", 1): ([0.375], _scalar_forms(0.375)),  # exact in float32 too
        ("identity", "mae", 1): ([-7.0], _scalar_forms(-7.0) + [-7, np.int64(-7)]),
    }
    for (output, loss, n_out), (general, fast) in forms.items():
        expected = MLP((4, 5, n_out), output=output, loss=loss, seed=1, dtype=dtype)
        expected_loss = expected.step(list(x), general, lr=0.05)
        for y in fast:
            net = MLP((4, 5, n_out), output=output, loss=loss, seed=1, dtype=dtype)
            assert net.step(x, y, lr=0.05) == expected_loss, (output, loss, type(y))
            np.testing.assert_array_equal(net.params, expected.params, err_msg=f"{type(y)}")


BAD_TARGETS = [
    # (output, loss, n_out, y, message)
    ("softmax", "cross_entropy", 3, 3, r"y contains labels outside \[0, 3\)"),
    ("softmax", "cross_entropy", 3, -1, r"y contains labels outside \[0, 3\)"),
    ("softmax", "cross_entropy", 3, np.int64(7), r"y contains labels outside \[0, 3\)"),
    ("softmax", "cross_entropy", 3, [0.5, 0.7, -0.2],
     r"y must lie in \[0, 1\] for loss='cross_entropy'"),
    ("softmax", "cross_entropy", 3, "vector", r"y must lie in \[0, 1\] for loss='cross_entropy'"),
    ("softmax", "cross_entropy", 3, "nan-vector", r"y contains 1 non-finite"),
    ("sigmoid", "binary_cross_entropy", 1, 2.0,
     r"y must lie in \[0, 1\] for loss='binary_cross_entropy'"),
    ("sigmoid", "binary_cross_entropy", 1, 2,
     r"y must lie in \[0, 1\] for loss='binary_cross_entropy'"),
    ("sigmoid", "binary_cross_entropy", 1, -0.5, r"y must lie in \[0, 1\]"),
    ("sigmoid", "binary_cross_entropy", 1, float("nan"), r"y contains 1 non-finite"),
    ("identity", "mse", 1, float("inf"), r"y contains 1 non-finite"),
    ("identity", "mse", 1, np.float32("-inf"), r"y contains 1 non-finite"),
    ("identity", "mse", 1, "text", r"y has dtype <U4; expected a real numeric array"),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("output", "loss", "n_out", "y", "message"), BAD_TARGETS)
def test_bad_targets_are_named_and_the_model_is_unchanged(output, loss, n_out, y, message, dtype):
    if isinstance(y, str) and y.endswith("vector"):  # a fast-path array: the model's dtype
        y = np.array([0.5, 1.5 if y == "vector" else np.nan, 0.0], dtype)
    for method in ("step", "test_then_train"):
        net = MLP((4, 5, n_out), output=output, loss=loss, seed=1, dtype=dtype)
        before = net.params.copy()
        with pytest.raises((ValueError, TypeError), match=message):
            getattr(net, method)(np.zeros(4, dtype), y, lr=0.1)
        np.testing.assert_array_equal(net.params, before)
        assert net.n_updates_ == net.n_samples_seen_ == 0


def test_test_then_train_rolls_back_a_diverging_update():
    net = MLP((3, 8, 1), hidden="identity", output="identity", loss="mse", seed=0)
    x = np.array([1.0, -2.0, 3.0])
    before = net.params.copy()
    with pytest.raises(DivergenceError, match=r"training diverged in step\(\)"):
        net.test_then_train(x, 1e150, lr=1e300)
    np.testing.assert_array_equal(net.params, before)
    assert net.n_updates_ == 0


def test_a_label_after_a_one_hot_target_is_its_own():
    """The label path writes the one-hot row into a buffer of the model's: each label's update
    must see its own row, whatever the previous call left there."""
    a = MLP((4, 5, 3), seed=2)
    b = MLP((4, 5, 3), seed=2)
    x = np.linspace(-1.0, 1.0, 4)
    for label in (2, 0, 0, 1, 2):
        a.step(x, label, lr=0.1)
        b.step(x, np.eye(3)[label], lr=0.1)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_predict_equals_its_row_of_a_batch(dtype):
    """A row's output does not depend on the rows beside it, nor on how it is passed."""
    net, X, _ = make_case(((5, 12, 9), "tanh", "softmax", "cross_entropy"), dtype, n_samples=7)
    batch = net.predict(X)
    Xf = np.asfortranarray(X)  # its rows are strided: the general path
    for r in range(X.shape[0]):
        for row in (X[r : r + 1], X[r][None], Xf[r : r + 1], X[r : r + 1].astype(np.float16)):
            got = net.predict(row)
            assert got.shape == (1, 9) and got.dtype == dtype
            if row.dtype == np.float16:
                continue  # another input: converted, so another output
            np.testing.assert_array_equal(got[0], batch[r])
    first = net.predict(X[:1])
    net.predict(X[1:2])
    np.testing.assert_array_equal(first[0], batch[0])  # a new array each call, not a buffer


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_predict_rejects_non_finite_rows(dtype):
    net = MLP((3, 4, 2), dtype=dtype)
    for bad in (np.nan, np.inf, -np.inf):
        row = np.array([[0.0, bad, 1.0]], dtype)
        with pytest.raises(ValueError, match=r"X contains 1 non-finite value\(s\) \(first at "
                                             r"index \(0, 1\)\)"):  # fmt: skip
            net.predict(row)
    with pytest.raises(ValueError, match=r"X has shape \(1, 2\), expected \(n_samples, 3\)"):
        net.predict(np.zeros((1, 2), dtype))


def test_one_row_predict_from_two_threads():
    """predict allocates its work buffers per call, so threads may share one model."""
    net, X, _ = make_case(((5, 12, 9), "relu", "softmax", "cross_entropy"), np.float64, 64)
    expected = net.predict(X)
    errors = []

    def worker(offset):
        for i in range(2000):
            r = (i + offset) % X.shape[0]
            if not np.array_equal(net.predict(X[r : r + 1])[0], expected[r]):
                errors.append(r)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 31)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("sizes", [(5, 12, 3), (2, 6, 4)], ids=["wider-in", "wider-out"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_calls_equal_predict_and_step(dtype, sizes):
    """RowCalls (the River estimators' per-event calls) are MLP.test_then_train (its
    prediction, loss and update) and MLP.predict on the caller's buffers, to rounding: the same
    arithmetic, compiled in another kernel, where LLVM may vectorise the reductions over the
    outputs in another order (seen from 4 outputs on). NaN in, nothing changed, NaN out."""
    from fastmlp._streaming import RowCalls

    net, X, Y = make_case((sizes, "tanh", "softmax", "cross_entropy"), dtype)
    twin, _, _ = make_case((sizes, "tanh", "softmax", "cross_entropy"), dtype)
    calls = RowCalls(net)
    tol = TOL[np.dtype(dtype)]  # a few steps of one sample each: the per-step tolerance
    for r in range(4):
        calls.x[0] = X[r]
        assert calls.predict()
        np.testing.assert_allclose(calls.out[0], twin.predict(X[r : r + 1])[0], **tol)
        if r % 2:
            label, target = r % 3, r % 3
        else:
            calls.target[0] = target = Y[r]
            label = -1
        predicted = calls.out.copy()
        loss = calls.step(label, 0.1)
        out = np.empty(sizes[-1], dtype)  # test_then_train's prediction, step's loss
        expected_loss = _streaming.update(twin, X[r], target, 0.1, None, out)
        np.testing.assert_allclose(loss, expected_loss, **tol)
        np.testing.assert_allclose(predicted[0], out, **tol)
        np.testing.assert_allclose(net.params, twin.params, **tol)
    assert net.n_updates_ == twin.n_updates_ == 4
    before = net.params.copy()
    calls.x[0, -1] = np.nan
    assert not calls.predict()
    assert np.isnan(calls.step(0, 0.1))
    calls.x[0, -1] = 0.0
    calls.target[0] = 0.5
    calls.target[0, -1] = -0.2  # outside [0, 1] for cross-entropy
    assert np.isnan(calls.step(-1, 0.1))
    np.testing.assert_array_equal(net.params, before)
    assert net.n_updates_ == 4
