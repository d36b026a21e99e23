"""Training controls beyond plain online SGD (momentum, Nesterov, Adam, weight decay,
mini-batches, sample weights, dropout, schedules, validation, early stopping), each against the
NumPy reference or an exact property."""

import numpy as np
import pytest
from conftest import GRID, HIDDEN, TOL_EPOCH, case_id, make_case

from fastmlp import MLP, DivergenceError, optim, tuning
from fastmlp import reference as ref
from fastmlp.optim import dropout_threshold

CONFIGS = {
    "momentum": {"momentum": 0.9},
    "nesterov-l2": {"momentum": 0.9, "nesterov": True, "alpha": 0.01},
    # Adam's step lr * m / (sqrt(v) + epsilon) turns a gradient that is ~0 up to rounding (the
    # sign-valued mae deltas cancel exactly in exact arithmetic) into a step of up to lr: its
    # sensitivity to rounding is lr / (|g| + epsilon) per unit of error in g. On the grid the
    # tests use epsilon = 1e-3, which bounds that to lr * 1e3 * (rounding of g): ~4e-14 in
    # float64, ~1e-5 in float32; the default epsilon is tested on a well-conditioned case below.
    "adam": {"optimizer": "adam", "epsilon": 1e-3},
    "adam-batch3-l2": {"optimizer": "adam", "batch_size": 3, "alpha": 0.01, "epsilon": 1e-3},
    "batch3-weights": {"batch_size": 3, "weighted": True},
    "dropout": {"dropout": 0.3},
    "dropout-batch4-momentum": {"dropout": 0.5, "batch_size": 4, "momentum": 0.5},
}


def _reference_epochs(net, X, Y, config, lr, epochs, seed, weights):
    """The reference trained like ``net.fit(..., seed=seed, **config)``, from net's state now."""
    p = net.params.astype(np.float64)
    state = ref.new_optimizer_state(p, int(net._optimizer_state.rng[0]))
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        p, losses, state = ref.train_epoch_opt(
            net.layout, p, list(net.activations), net.loss_name, X.astype(np.float64),
            Y.astype(np.float64), order, lr, state, sample_weight=weights, **config,
        )  # fmt: skip
        w = np.ones(X.shape[0]) if weights is None else weights[order]
        history.append(np.dot(w, losses) / w.sum())
    return p, history, state


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("case", GRID[::3], ids=case_id)
def test_fit_with_optimizer_settings_matches_reference(case, name, dtype):
    """Parameters, velocity and loss curve after two shuffled epochs, every setting."""
    config = dict(CONFIGS[name])
    weighted = config.pop("weighted", False)
    net, X, Y = make_case(case, dtype, n_samples=10)
    weights = np.random.default_rng(3).uniform(0, 2, 10).astype(dtype) if weighted else None
    lr = 0.005 if config.get("momentum") else 0.02  # momentum 0.9 multiplies the step by ~10
    p_ref, history_ref, state = _reference_epochs(net, X, Y, config, lr, 2, 7, weights)
    net.fit(X, Y, epochs=2, lr=lr, seed=7, sample_weight=weights, **config)
    # Two epochs: twice the per-epoch tolerance (see conftest).
    tol = {k: 2 * v for k, v in TOL_EPOCH[np.dtype(dtype)].items()}
    np.testing.assert_allclose(net.params, p_ref, **tol, err_msg="params")
    np.testing.assert_allclose(net.history_["loss"], history_ref, **tol, err_msg="history")
    if config.get("momentum") or config.get("optimizer") == "adam":
        opt = net._optimizer_state
        np.testing.assert_allclose(opt.velocity, state["velocity"], **tol, err_msg="velocity")
    assert int(net._optimizer_state.rng[0]) == state["rng"], "dropout stream out of step"
    batch = config.get("batch_size", 1)
    assert net.n_updates_ == 2 * -(-10 // batch)
    assert net.n_samples_seen_ == 20


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_with_default_epsilon_matches_reference(dtype):
    """Default beta1, beta2, epsilon on a case whose gradients are far from 0."""
    net, X, Y = make_case(((5, 12, 9), "tanh", "softmax", "cross_entropy"), dtype, 20)
    p_ref, history_ref, _ = _reference_epochs(net, X, Y, {"optimizer": "adam"}, 1e-3, 2, 1, None)
    net.fit(X, Y, epochs=2, lr=1e-3, seed=1, optimizer="adam")
    tol = {k: 2 * v for k, v in TOL_EPOCH[np.dtype(dtype)].items()}
    np.testing.assert_allclose(net.params, p_ref, **tol)
    np.testing.assert_allclose(net.history_["loss"], history_ref, **tol)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_dropout_masks_match_reference_for_every_hidden_activation(hidden):
    """One step with dropout on a 3-hidden-layer net, float64, each hidden activation."""
    net, X, Y = make_case(((4, 7, 6, 5, 3), hidden, "softmax", "cross_entropy"), np.float64)
    config = {"dropout": 0.4, "batch_size": 2}
    p_ref, _, state = _reference_epochs(net, X, Y, config, 0.1, 1, 5, None)
    net.fit(X, Y, lr=0.1, seed=5, **config)
    np.testing.assert_allclose(net.params, p_ref, **TOL_EPOCH[np.dtype(np.float64)])
    assert int(net._optimizer_state.rng[0]) == state["rng"]


def test_dropout_threshold_and_rng_agree_with_the_reference():
    for p in (0.0, 1e-9, 0.25, 0.5, 0.999):
        assert dropout_threshold(p) == ref.dropout_threshold(p)
    assert ref.dropout_threshold(0.5) == 2**52
    # splitmix64's published first output for seed 0 (Vigna's splitmix64.c)
    assert ref.splitmix64(0)[1] == 0xE220A8397B1DCDAF


def test_dropout_drops_about_p_of_the_units():
    """Through the kernel: the share of zeroed hidden activations is p (binomial bounds)."""
    net = MLP((4, 200, 2), hidden="relu", seed=1)
    X = np.ones((50, 4))
    zero_rows = np.zeros((50, 2))
    # lr tiny: the mask, not learning, decides; count dropped units via the gradient of W_1
    net.fit(X, zero_rows.argmax(1), lr=1e-300, dropout=0.3, batch_size=50, seed=0)
    opt = net._optimizer_state
    assert opt.rng[0] != MLP((4, 200, 2), hidden="relu", seed=1)._optimizer_state.rng[0]
    p = 0.3
    dropped = 0
    rng = int(MLP((4, 200, 2), hidden="relu", seed=1)._optimizer_state.rng[0])
    for _ in range(50 * 200):
        rng, bits = ref.splitmix64(rng)
        dropped += (bits >> 11) < ref.dropout_threshold(p)
    assert rng == int(opt.rng[0])  # the kernel drew exactly 50 x 200 numbers
    n = 50 * 200
    assert abs(dropped - p * n) < 5 * np.sqrt(n * p * (1 - p))


def test_momentum_zero_adam_and_sgd_state_persist_between_fits():
    """fit(epochs=2) == fit(epochs=1) twice (same stream): the optimizer state carries over."""
    for config in ({"momentum": 0.9, "nesterov": True}, {"optimizer": "adam", "batch_size": 4},
                   {"dropout": 0.2, "momentum": 0.5}):  # fmt: skip
        net, X, Y = make_case(((5, 12, 9), "tanh", "softmax", "cross_entropy"), np.float64, 20)
        twin = MLP((5, 12, 9), hidden="tanh", seed=0)
        twin.params = net.params
        twin._optimizer_state.rng[:] = net._optimizer_state.rng
        net.fit(X, Y, epochs=2, lr=0.05, seed=1, **config)
        rng = np.random.default_rng(1)
        for _ in range(2):
            order = rng.permutation(20)
            twin.fit(X[order], Y[order], epochs=1, lr=0.05, shuffle=False, **config)
        np.testing.assert_array_equal(net.params, twin.params)


def test_splitting_an_epoch_into_kernel_calls_changes_nothing(monkeypatch):
    """The general kernel in chunks (batch boundaries kept) is bit-identical to one call."""
    config = {"optimizer": "adam", "batch_size": 3, "dropout": 0.3, "alpha": 1e-3}
    results = []
    for updates_per_chunk in (1 << 24, 1):
        monkeypatch.setattr(tuning, "UPDATES_PER_CHUNK", updates_per_chunk)
        net, X, Y = make_case(((5, 12, 9), "relu", "softmax", "cross_entropy"), np.float32, 40)
        net.fit(X, Y, epochs=2, lr=0.01, seed=3, **config)
        results.append((net.params.copy(), net.history_["loss"], net.n_updates_))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1:] == results[1][1:]


def test_sample_weights():
    """Ones == no weights; zero weights change nothing; online weight w == lr * w."""
    case = ((3, 5, 2), "tanh", "softmax", "cross_entropy")
    net, X, Y = make_case(case, np.float64, 12)
    start = net.params.copy()
    a = MLP((3, 5, 2), hidden="tanh", seed=0)
    a.params = start
    a.fit(X, Y, lr=0.1, seed=2, sample_weight=np.ones(12))
    net.fit(X, Y, lr=0.1, seed=2)
    np.testing.assert_allclose(a.params, net.params, rtol=1e-13, atol=1e-14)
    a.params = start
    a.fit(X, Y, lr=0.1, seed=2, sample_weight=np.zeros(12), batch_size=4)
    np.testing.assert_array_equal(a.params, start)
    a.params = start
    b = MLP((3, 5, 2), hidden="tanh", seed=0)
    b.params = start
    w = np.array([2.0, 0.5, 0.0, 3.0] * 3)
    a.fit(X, Y, lr=0.1, shuffle=False, sample_weight=w)
    for r in range(12):
        if w[r] > 0:
            b.step(X[r], Y[r], lr=0.1 * w[r])
    np.testing.assert_allclose(a.params, b.params, rtol=1e-13, atol=1e-14)
    c = MLP((3, 5, 2), hidden="tanh", seed=0)
    c.params = start
    for r in range(12):
        c.step(X[r], Y[r], lr=0.1, sample_weight=w[r])
    np.testing.assert_allclose(c.params, b.params, rtol=1e-15, atol=0)


def test_weight_two_counts_a_sample_twice_in_its_batch():
    """Batch {a (w=2), b} of size 2 == batch {a, a, b} of size 3 with lr scaled by 3/2."""
    case = ((3, 5, 2), "sigmoid", "sigmoid", "binary_cross_entropy")
    net, X, Y = make_case(case, np.float64, 2)
    twin = MLP((3, 5, 2), hidden="sigmoid", output="sigmoid", loss="binary_cross_entropy")
    twin.params = net.params
    net.fit(X, Y, lr=0.2, shuffle=False, batch_size=2, sample_weight=[2.0, 1.0])
    rows = [0, 0, 1]
    twin.fit(X[rows], Y[rows], lr=0.2 * 3 / 2, shuffle=False, batch_size=3)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-14, atol=1e-15)


def test_schedules():
    X = np.random.default_rng(0).normal(size=(10, 3))
    y = np.arange(10) % 2
    net = MLP((3, 4, 2), seed=0)
    net.fit(X, y, epochs=3, lr=0.1, schedule="invscaling", power_t=0.5)
    assert net.history_["lr"] == pytest.approx([0.1, 0.1 / 11**0.5, 0.1 / 21**0.5])
    net = MLP((3, 4, 2), seed=0)
    net.fit(X, y, epochs=5, lr=0.1, schedule="step", step_size=2, gamma=0.5)
    assert net.history_["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    net.fit(X, y, epochs=1, lr=0.1, schedule="step", step_size=2, gamma=0.5)  # epoch 5 of model
    assert net.history_["lr"][-1] == pytest.approx(0.025)
    # adaptive: an lr far too small to improve the loss by tol: /5 after each `patience` epochs
    net = MLP((3, 4, 2), seed=0)
    net.fit(X, y, epochs=7, lr=1e-3, schedule="adaptive", patience=2, tol=1.0)
    # epoch 1 improves on inf, then 2 epochs without improvement -> lr / 5, and so on
    assert net.history_["lr"] == pytest.approx([1e-3] * 3 + [2e-4] * 2 + [4e-5] * 2)
    # and stops once lr would drop below 1e-6
    net = MLP((3, 4, 2), seed=0)
    net.fit(X, y, epochs=50, lr=2e-6, schedule="adaptive", patience=1, tol=1.0)
    assert net.history_["lr"] == pytest.approx([2e-6, 2e-6])


def test_validation_early_stopping_and_restore_best():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    Xv, yv = X[150:], y[150:]
    seen = []

    def callback(epoch, logs):
        seen.append((epoch, sorted(logs)))
        params.append(net.params.copy())

    params = []
    net = MLP((5, 64, 2), hidden="relu", seed=0)
    # a large lr overfits 150 noisy rows quickly: validation loss turns up, training stops
    net.fit(X[:150], y[:150], epochs=200, lr=0.3, validation_data=(Xv, yv), patience=3,
            tol=0.0, callback=callback)  # fmt: skip
    h = net.history_
    n = len(h["loss"])
    assert n < 200 and len(h["val_loss"]) == len(h["val_accuracy"]) == len(h["lr"]) == n
    best = int(np.argmin(h["val_loss"]))
    assert n == best + 1 + 3  # stopped `patience` epochs after the best
    np.testing.assert_array_equal(net.params, params[best])  # restore_best
    assert net.loss(Xv, yv) == pytest.approx(h["val_loss"][best], rel=1e-12)
    acc = float(np.mean(net.predict_classes(Xv) == yv))
    assert acc == pytest.approx(h["val_accuracy"][best])
    assert seen[0] == (0, ["loss", "lr", "samples_per_s", "val_accuracy", "val_loss"])
    # validation_fraction: the split is held out (history has val entries), train keeps the rest
    net = MLP((5, 8, 2), seed=0)
    net.fit(X, y, epochs=2, lr=0.1, validation_fraction=0.25)
    assert len(net.history_["val_loss"]) == 2 and net.n_samples_seen_ == 2 * 150
    # regression: no accuracy
    reg = MLP((5, 8, 1), output="identity", loss="mse", seed=0)
    reg.fit(X, X[:, 0], epochs=2, validation_data=(X, X[:, 0]))
    assert len(reg.history_["val_loss"]) == 2 and reg.history_["val_accuracy"] == []


def test_callback_can_stop_and_progress_prints(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):  # the built-in display, even where tqdm is installed
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    net = MLP((3, 4, 2), seed=0)
    net.fit(X, y, epochs=10, progress=True, callback=lambda epoch, logs: epoch == 2)
    assert len(net.history_["loss"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and err[0].startswith("epoch  1/10  loss ") and "samples/s" in err[0]


def test_divergence_with_momentum_keeps_last_finite_state():
    X = np.linspace(-3, 3, 40)[:, None] * np.ones((1, 3))
    y = 1e3 * X[:, 0]
    net = MLP((3, 8, 1), hidden="identity", output="identity", loss="mse", seed=0)
    with pytest.raises(DivergenceError, match="training diverged in epoch"):
        net.fit(X, y, epochs=50, lr=1.0, momentum=0.9, batch_size=4, seed=1)
    assert np.all(np.isfinite(net.params))
    assert np.all(np.isfinite(net._optimizer_state.velocity))
    assert net.n_samples_seen_ == 4 * net.n_updates_


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
        ({"batch_size": True}, TypeError, r"batch_size must be an int >= 1, got True"),
        ({"momentum": [0.5]}, TypeError, r"momentum must be a real number, got \[0.5\]"),
        ({"optimizer": "adma"}, ValueError, r"optimizer must be one of .* Did you mean 'adam'"),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\), got 1.0"),
        ({"nesterov": True}, ValueError, r"nesterov=True needs momentum > 0"),
        ({"optimizer": "adam", "momentum": 0.9}, ValueError, r"Adam's momentum is beta1"),
        ({"alpha": -1}, ValueError, r"alpha must be in \[0, inf\), got -1"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
        ({"schedule": "cosine"}, ValueError, r"schedule must be one of"),
        ({"beta2": 1.0}, ValueError, r"beta2 must be in \[0, 1\)"),
        ({"epsilon": 0}, ValueError, r"epsilon must be in \(0, inf\)"),
        ({"sample_weight": [1.0] * 5}, ValueError, r"sample_weight must have shape \(6,\)"),
        ({"sample_weight": [1, 1, -1, 1, 1, 1]}, ValueError, r"sample_weight must be >= 0"),
        ({"sample_weight": [1, 1, np.nan, 1, 1, 1]}, ValueError, r"sample_weight contains 1"),
        ({"validation_data": (np.ones((2, 4)), [0, 1])}, ValueError, r"X_val has shape \(2, 4\)"),
        ({"validation_data": np.ones(3)}, TypeError, r"validation_data must be a pair"),
        ({"validation_data": (np.ones((2, 3)), [0, 5])}, ValueError, r"Y_val contains labels"),
        ({"validation_data": (np.ones((2, 3)), [0, 1]), "validation_fraction": 0.2},
         ValueError, r"give validation_data or validation_fraction, not both"),
        ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must be in \[0, 1\)"),
        ({"validation_fraction": 0.99}, ValueError, r"leaves no training data"),
        ({"patience": 0}, ValueError, r"patience must be >= 1"),
        ({"callback": 3}, TypeError, r"callback must be callable"),
    ],
)  # fmt: skip
def test_bad_settings_raise_and_keep_the_model(kwargs, error, match):
    net = MLP((3, 4, 2), seed=0)
    before = net.params.copy()
    with pytest.raises(error, match=match):
        net.fit(np.ones((6, 3)), [0, 1] * 3, epochs=2, **kwargs)
    np.testing.assert_array_equal(net.params, before)
    assert net.n_updates_ == 0 and net.history_["loss"] == []


def test_settings_are_validated_once_per_value_and_type():
    """``fit``'s settings are cached by value *and* type: an accepted ``1`` does not let an equal
    ``True`` or ``1.0`` through."""
    first = optim.settings(lr=0.1, batch_size=2, step_size=3)
    assert optim.settings(lr=0.1, batch_size=2, step_size=3) is first
    assert first == optim.Settings(lr=0.1, batch_size=2, step_size=3)
    with pytest.raises(TypeError, match=r"batch_size must be an int >= 1, got True"):
        optim.settings(lr=0.1, batch_size=True, step_size=3)
    with pytest.raises(TypeError, match=r"step_size must be an int >= 1, got 3.0"):
        optim.settings(lr=0.1, batch_size=2, step_size=3.0)
    net = MLP((3, 4, 2), seed=0)
    net.fit(np.ones((6, 3)), [0, 1] * 3, batch_size=1)
    with pytest.raises(TypeError, match=r"batch_size must be an int >= 1, got True"):
        net.fit(np.ones((6, 3)), [0, 1] * 3, batch_size=True)


def test_step_sample_weight_is_validated():
    net = MLP((3, 4, 2), seed=0)
    with pytest.raises(ValueError, match="sample_weight must be in"):
        net.step(np.ones(3), 1, lr=0.1, sample_weight=-1.0)
