"""The public API end to end: fit == reference epoch by epoch, the motivating nets, buffers."""

import numpy as np
import pytest
from conftest import GRID, TOL_EPOCH, assert_same_up_to_rounding, case_id, make_case

from fastmlp import MLP, DivergenceError, datasets
from fastmlp import _kernel_args as KA
from fastmlp import reference as ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GRID[::3], ids=case_id)
def test_fit_matches_reference_epoch_by_epoch(case, dtype):
    """Stage 5: parameters and the loss curve after each epoch of fit (shuffled from a seed)."""
    net, X, Y = make_case(case, dtype)
    p_ref = net.params.astype(np.float64)
    lr = 0.02
    rng = np.random.default_rng(7)  # fit(seed=7) draws its orders from the same generator
    net.fit(X, Y, epochs=3, lr=lr, seed=7)
    history_ref = []
    for _ in range(3):
        order = rng.permutation(X.shape[0])
        p_ref, losses = ref.train_epoch(
            net.layout, p_ref, list(net.activations), net.loss_name,
            X.astype(np.float64), Y.astype(np.float64), order, lr,
        )  # fmt: skip
        history_ref.append(losses.mean())
    tol = TOL_EPOCH[np.dtype(dtype)]
    # three epochs compound three times the per-epoch error
    tol = {k: 3 * v for k, v in tol.items()}
    np.testing.assert_allclose(net.params, p_ref, **tol, err_msg="params after fit")
    np.testing.assert_allclose(net.history_["loss"], history_ref, **tol, err_msg="history_")
    assert net.n_updates_ == 3 * X.shape[0]


def test_step_equals_one_sample_fit():
    net, X, Y = make_case(((3, 5, 2), "tanh", "softmax", "cross_entropy"), np.float64)
    twin = MLP((3, 5, 2), hidden="tanh", seed=1)
    twin.params = net.params
    loss = net.step(X[0], Y[0], lr=0.1)
    twin.fit(X[:1], Y[:1], lr=0.1, shuffle=False)
    np.testing.assert_array_equal(net.params, twin.params)
    assert loss == pytest.approx(twin.history_["loss"][0], rel=1e-15)


def test_step_accepts_a_class_label():
    a = MLP((3, 4, 3), seed=3)
    b = MLP((3, 4, 3), seed=3)
    x = np.array([0.1, -0.2, 0.3])
    a.step(x, 2, lr=0.1)
    b.step(x, np.array([0.0, 0.0, 1.0]), lr=0.1)
    np.testing.assert_array_equal(a.params, b.params)


def test_labels_equal_one_hot_targets():
    X, y = datasets.load_digits()
    X, y = X[:50], y[:50]
    a = MLP((64, 8, 10), seed=0).fit(X, y, epochs=2, lr=0.05)
    b = MLP((64, 8, 10), seed=0).fit(X, np.eye(10)[y], epochs=2, lr=0.05)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.loss(X, y) == b.loss(X, np.eye(10)[y])


def test_weights_and_biases_are_views_of_params():
    net = MLP((4, 3, 2), seed=0)
    assert all(np.shares_memory(w, net.params) for w in net.weights + net.biases)
    net.weights[1][0, 2] = 5.0
    assert net.params[net.layout.w_offsets[1] + 2] == 5.0
    net.biases[0][:] = 1.5
    assert np.all(net.params[net.layout.bias_slice(0)] == 1.5)
    before = net.params
    net.params = np.zeros(net.n_params)  # assignment copies into the same buffer
    assert net.params is before and np.all(net.weights[1] == 0)
    x = np.ones(4)
    np.testing.assert_array_equal(net.predict(x[None])[0], [0.5, 0.5])


def test_seed_gives_bit_identical_models_and_runs():
    X, y = datasets.load_digits()
    X, y = X[:100], y[:100]
    a = MLP((64, 16, 10), hidden="relu", seed=42).fit(X, y, epochs=2, lr=0.05)
    b = MLP((64, 16, 10), hidden="relu", seed=42).fit(X, y, epochs=2, lr=0.05)
    c = MLP((64, 16, 10), hidden="relu", seed=43)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.history_ == b.history_
    assert not np.array_equal(MLP((64, 16, 10), seed=42).params, c.params)


def test_init_schemes():
    net = MLP((100, 50, 50, 10), hidden=["relu", "tanh"], init="auto", seed=0)
    he, glorot = np.sqrt(6 / 100), np.sqrt(6 / (50 + 50))
    assert np.abs(net.weights[0]).max() <= he and np.abs(net.weights[0]).max() > 0.9 * he
    assert np.abs(net.weights[1]).max() <= glorot and np.abs(net.weights[1]).max() > 0.9 * glorot
    assert np.all(net.params[net.layout.bias_slice(2)] == 0)
    g = MLP((100, 50, 10), hidden="relu", init="glorot", seed=0)
    assert np.abs(g.weights[0]).max() <= np.sqrt(6 / 150)
    h = MLP((100, 50, 10), hidden="tanh", init="he", seed=0)
    assert np.abs(h.weights[0]).max() > np.sqrt(6 / 150)


def test_float32_model_keeps_float32():
    net = MLP((3, 4, 2), dtype=np.float32)
    X = np.random.default_rng(0).normal(size=(5, 3))  # float64 input is converted once
    net.fit(X, [0, 1, 0, 1, 1], epochs=2, lr=0.1)
    assert net.params.dtype == np.float32
    assert net.predict(X).dtype == np.float32
    assert net.gradient(X[0], 1).dtype == np.float32


def test_non_contiguous_and_integer_inputs_are_accepted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6))
    y = rng.integers(0, 2, size=20)
    a = MLP((3, 4, 2), seed=0).fit(X[:, ::2], y, lr=0.1, shuffle=False)
    b = MLP((3, 4, 2), seed=0).fit(np.ascontiguousarray(X[:, ::2]), y, lr=0.1, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)
    Xi = rng.integers(0, 3, size=(20, 3))
    c = MLP((3, 4, 2), seed=0).fit(Xi, y, lr=0.1, shuffle=False)
    d = MLP((3, 4, 2), seed=0).fit(Xi.astype(float), y, lr=0.1, shuffle=False)
    np.testing.assert_array_equal(c.params, d.params)


def test_predict_classes():
    soft = MLP((2, 3), hidden=[], output="softmax", seed=0)
    X = np.random.default_rng(0).normal(size=(7, 2))
    np.testing.assert_array_equal(soft.predict_classes(X), np.argmax(soft.predict(X), axis=1))
    sig = MLP((2, 1), output="sigmoid", loss="binary_cross_entropy", seed=0)
    assert sig.predict_classes(X).shape == (7,)
    multi = MLP((2, 3), output="sigmoid", loss="binary_cross_entropy", seed=0)
    assert multi.predict_classes(X).shape == (7, 3)
    with pytest.raises(ValueError, match="predict_classes needs a sigmoid or softmax"):
        MLP((2, 1), output="identity", loss="mse").predict_classes(X)


# --- The cases that started the project -------------------------------------------------------
def learns_xor(sizes, seed):
    X, Y = datasets.xor()
    net = MLP(sizes, hidden="sigmoid", output="sigmoid", loss="mse", seed=seed)
    net.fit(X, Y, epochs=5000, lr=0.4)  # 5,000 epochs x 4 samples = 20,000 updates, random order
    assert net.n_updates_ == 20_000
    return bool(np.all((net.predict(X)[:, 0] > 0.5) == (Y[:, 0] > 0.5)))


@pytest.mark.parametrize(
    ("sizes", "min_learned"), [((2, 3, 2, 1), 8), ((2, 3, 1), 9), ((2, 2, 1), 5)]
)
def test_xor_is_learned(sizes, min_learned):
    learned = [learns_xor(sizes, seed) for seed in range(10)]
    assert sum(learned) >= min_learned, f"{sizes}: learned for seeds {learned}"


def test_relu_softmax_4_4_2_trains_like_the_reference():
    """The (4, 4, 2) net from the original bug report: no shape errors, reference accuracy."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] > 0).astype(np.int64)
    net = MLP((4, 4, 2), hidden="relu", output="softmax", loss="cross_entropy", seed=0)
    p_ref = net.params.copy()
    net.fit(X, y, epochs=30, lr=0.05, shuffle=False)
    order = np.arange(len(y))
    for _ in range(30):
        p_ref, _ = ref.train_epoch(
            net.layout, p_ref, list(net.activations), "cross_entropy", X, np.eye(2)[y], order, 0.05
        )
    _, acts = ref.forward(net.layout, p_ref, list(net.activations), X)
    acc_ref = np.mean(np.argmax(acts[-1], axis=1) == y)
    acc = np.mean(net.predict_classes(X) == y)
    assert acc == acc_ref
    assert acc >= 0.8


def test_digits_main_job_reaches_95_percent(capsys):
    from fastmlp.__main__ import main

    assert main(["--epochs", "15"]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("test accuracy:") and float(last.split(":")[1]) >= 0.95


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_divergence_raises_and_keeps_the_last_finite_parameters(dtype):
    X = np.linspace(-3, 3, 40)[:, None] * np.ones((1, 3))
    y = 1e3 * X[:, 0]
    net = MLP((3, 8, 1), hidden="identity", output="identity", loss="mse", seed=0, dtype=dtype)
    start = net.params.copy()
    with pytest.raises(DivergenceError, match=r"training diverged in epoch \d+, step \d+ of 40 "
                       r"\(row \d+ of X\).*Try a smaller lr \(got 10.0\)") as info:  # fmt: skip
        net.fit(X, y, epochs=50, lr=10.0, seed=1)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert np.all(np.isfinite(net.params)), "the model must not be left full of NaN/inf"
    assert len(net.history_["loss"]) == err.epoch - 1
    # the kept parameters are exactly those after the n_updates_ good steps
    twin = MLP((3, 8, 1), hidden="identity", output="identity", loss="mse", seed=0, dtype=dtype)
    twin.params = start
    rng = np.random.default_rng(1)
    orders = np.concatenate([rng.permutation(40) for _ in range(err.epoch)])
    assert orders[net.n_updates_] == err.sample
    for r in orders[: net.n_updates_]:
        twin.step(X[r].astype(dtype), np.array([y[r]], dtype), lr=10.0)
    np.testing.assert_array_equal(net.params, twin.params)


def test_splitting_an_epoch_into_kernel_calls_changes_nothing():
    """fit runs each epoch in chunks (for Ctrl-C); chunk boundaries change nothing but rounding
    (a boundary can split one of the kernel's pairs of rows)."""
    from fastmlp import _kernels as K

    for sizes, hidden in (((64, 32, 10), "tanh"), ((30, 9, 5, 10), "relu")):
        for dtype in (np.float64, np.float32):
            rng = np.random.default_rng(0)
            X = rng.random((60, sizes[0])).astype(dtype)
            Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 60)]
            net = MLP(sizes, hidden=hidden, dtype=dtype)
            whole, split = net.params.copy(), net.params.copy()
            order = rng.permutation(60)
            buffers = [np.zeros(net.layout.n_units, dtype) for _ in range(3)]
            losses1, losses2 = np.empty(60, dtype), np.empty(60, dtype)
            args = (KA.meta_of(net), KA.LOSS_CODES[net.loss_name], X, Y)
            K.train_epoch(whole, *args, order, dtype(0.05), *buffers, losses1)
            for k in range(0, 60, 7):
                K.train_epoch(
                    split, *args, order[k : k + 7], dtype(0.05), *buffers, losses2[k : k + 7]
                )
            assert_same_up_to_rounding(split, whole, dtype, f"params, {sizes}")
            assert_same_up_to_rounding(losses2, losses1, dtype, f"losses, {sizes}")


def test_fit_allocates_no_copy_of_the_data():
    """C-contiguous data of the model's dtype is used in place: the extra memory of a fit is
    O(params + n_samples) (shuffle order, per-sample losses, one-hot labels), not O(X)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.random((5_000, 200), dtype=np.float32)  # 4 MB
    y = rng.integers(0, 10, size=5_000)
    net = MLP((200, 16, 10), hidden="relu", dtype=np.float32)
    net.fit(X[:2], y[:2])  # compile outside the measurement
    tracemalloc.start()
    net.fit(X, y, epochs=2, lr=0.01)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.15 * X.nbytes, f"fit allocated {peak / 2**20:.1f} MB for {X.nbytes / 2**20} MB"


def test_step_rolls_back_a_diverging_update():
    net = MLP((3, 8, 1), hidden="identity", output="identity", loss="mse", seed=0)
    x, y = np.array([1.0, -2.0, 3.0]), np.array([1e150])
    net.step(x, y, lr=1e-3)  # a finite, if silly, update
    before = net.params.copy()
    with pytest.raises(DivergenceError, match=r"training diverged in step\(\).*got 1e\+300"):
        net.step(x, y, lr=1e300)  # the update overflows
    np.testing.assert_array_equal(net.params, before)
    assert net.n_updates_ == 1
    with pytest.raises(
        ValueError, match=r"lr must be a finite number > 0 representable in float32"
    ):
        MLP((3, 1), output="identity", loss="mse", dtype=np.float32).step(x, 1.0, lr=1e39)
