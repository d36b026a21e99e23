"""Every bad input -> the exact error type and a message naming the argument, expected vs actual;
the model is unchanged afterwards."""

import numpy as np
import pytest

from fastmlp import MLP


@pytest.fixture
def net():
    return MLP((4, 4, 2), hidden="relu", output="softmax", loss="cross_entropy", seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 4)), rng.integers(0, 2, size=10)


FIT_CASES = [
    # (X, Y, kwargs) builders -> (error type, message regex)
    (lambda X, y: (X[:, :2], y, {}), ValueError,
     r"X has shape \(10, 2\), expected \(n_samples, 4\): the network's input layer has n_in=4"),
    (lambda X, y: (X[0], y, {}), ValueError, r"X must be 2-D with shape \(n_samples, 4\), got 1-D"),
    (lambda X, y: (X[None], y, {}), ValueError, r"X must be 2-D .* got 3-D shape \(1, 10, 4\)"),
    (lambda X, y: (np.float64(1.0), y, {}), ValueError, r"X must be 2-D .* got 0-D"),
    (lambda X, y: (X[:0], y[:0], {}), ValueError, r"X is empty \(shape \(0, 4\)\)"),
    (lambda X, y: (X, y[:7], {}), ValueError, r"Y has 7 rows but X has 10; they must match"),
    (lambda X, y: (X, np.eye(3)[y], {}), ValueError,
     r"Y has shape \(10, 3\), expected \(n_samples, 2\): the network's output layer has n_out=2"),
    (lambda X, y: (np.where(np.arange(40).reshape(10, 4) == 17, np.nan, X), y, {}), ValueError,
     r"X contains 1 non-finite value\(s\) \(first at index \(4, 1\)\)"),
    (lambda X, y: (np.where(np.arange(40).reshape(10, 4) == 3, np.inf, X), y, {}), ValueError,
     r"X contains 1 non-finite"),
    (lambda X, y: (X, np.where(np.arange(10) == 2, 5, y), {}), ValueError,
     r"Y contains labels outside \[0, 2\) for a 2-unit softmax output: found \[5\]"),
    (lambda X, y: (X, y - 1, {}), ValueError, r"labels outside \[0, 2\).*found \[-1\]"),
    (lambda X, y: (X, y + 0.5, {}), ValueError, r"Y is 1-D, so it is read as class labels"),
    (lambda X, y: (X, 2.0 * np.eye(2)[y], {}), ValueError,
     r"Y must lie in \[0, 1\] for loss='cross_entropy'"),
    (lambda X, y: (X.astype(complex), y, {}), TypeError, r"X has dtype complex128; expected"),
    (lambda X, y: (X.astype(str), y, {}), TypeError, r"X has dtype <U\d+; expected a real"),
    (lambda X, y: (X.astype(object), y, {}), TypeError, r"X has dtype object"),
    (lambda X, y: (X, y.astype(str), {}), TypeError, r"Y has dtype <U\d+"),
    (lambda X, y: (X, y, {"lr": 0.0}), ValueError, r"lr must be a finite number > 0, got 0.0"),
    (lambda X, y: (X, y, {"lr": -0.1}), ValueError, r"lr must be a finite number > 0, got -0.1"),
    (lambda X, y: (X, y, {"lr": float("nan")}), ValueError, r"lr must be a finite number > 0"),
    (lambda X, y: (X, y, {"lr": "0.1"}), TypeError, r"lr must be a real number > 0, got '0.1'"),
    (lambda X, y: (X, y, {"epochs": 0}), ValueError, r"epochs must be >= 1, got 0"),
    (lambda X, y: (X, y, {"epochs": 2.5}), TypeError, r"epochs must be an int >= 1, got 2.5"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "error", "message"), FIT_CASES)
def test_fit_rejects_bad_input_and_keeps_the_model(net, data, build, error, message):
    X, y, kwargs = build(*data)
    before = net.params.copy()
    with pytest.raises(error, match=message):
        net.fit(X, y, **kwargs)
    np.testing.assert_array_equal(net.params, before)
    assert net.history_["loss"] == [] and net.n_updates_ == 0


def test_the_error_the_original_user_wanted():
    """The from-scratch net crashed with 'shapes (4,4) and (2,2) not aligned'; we name the cause."""
    net = MLP((4, 4, 2), hidden="relu")
    with pytest.raises(ValueError, match=r"expected \(n_samples, 4\).*n_in=4"):
        net.fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_bce_targets_must_be_probabilities():
    net = MLP((2, 1), output="sigmoid", loss="binary_cross_entropy")
    with pytest.raises(ValueError, match=r"Y must lie in \[0, 1\] for loss='binary_cross_entropy'"):
        net.fit(np.zeros((3, 2)), [0, 1, 2])


def test_one_output_accepts_1d_targets_but_multi_output_does_not():
    MLP((2, 1), output="identity", loss="mse").fit(np.zeros((3, 2)), [0.5, 1.0, 2.0])
    net = MLP((2, 3), output="identity", loss="mse")
    with pytest.raises(ValueError, match=r"Y has shape \(3,\), expected \(n_samples, 3\)"):
        net.fit(np.zeros((3, 2)), [0.5, 1.0, 2.0])


@pytest.mark.parametrize(
    ("x", "y", "error", "message"),
    [
        (np.zeros(3), 0, ValueError, r"x must have shape \(4,\) \(one sample\), got shape \(3,\)"),
        (np.zeros((1, 4)), 0, ValueError, r"x must have shape \(4,\).*got shape \(1, 4\)"),
        (np.array([0, 0, np.nan, 0]), 0, ValueError, r"x contains 1 non-finite"),
        (np.zeros(4), 2, ValueError, r"y contains labels outside \[0, 2\)"),
        (np.zeros(4), [0, 1, 0], ValueError, r"y must be one sample's target of shape \(2,\)"),
    ],
)
def test_step_and_gradient_reject_bad_samples(net, x, y, error, message):
    before = net.params.copy()
    with pytest.raises(error, match=message):
        net.step(x, y, lr=0.1)
    with pytest.raises(error, match=message):
        net.gradient(x, y)
    np.testing.assert_array_equal(net.params, before)


def test_predict_and_loss_validate(net):
    with pytest.raises(ValueError, match=r"X has shape \(3, 5\), expected \(n_samples, 4\)"):
        net.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"X is empty"):
        net.predict(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"Y has 2 rows but X has 3"):
        net.loss(np.zeros((3, 4)), [0, 1])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layer_sizes": (4,)}, ValueError, r"layer_sizes must have at least 2 entries"),
        ({"layer_sizes": (4, 0, 2)}, ValueError, r"layer_sizes must all be >= 1, got \(4, 0, 2\)"),
        ({"layer_sizes": (4, -3, 2)}, ValueError, r"layer_sizes must all be >= 1"),
        ({"layer_sizes": (4, 2.5, 2)}, TypeError, r"layer_sizes must contain ints, got 2.5"),
        ({"layer_sizes": "4,2"}, TypeError, r"layer_sizes must be a sequence of ints"),
        ({"layer_sizes": 4}, TypeError, r"layer_sizes must be a sequence of ints"),
        ({"hidden": "rleu"}, ValueError, r"got 'rleu'. Did you mean 'relu'\?"),
        ({"hidden": ["relu", "tanh"]}, ValueError, r"hidden has 2 activations but layer_sizes"),
        ({"hidden": "softmax"}, ValueError, r"hidden must be one of"),
        ({"output": "tanh"}, ValueError, r"output must be one of \['identity', 'sigmoid'"),
        ({"loss": "cross_entropyy"}, ValueError, r"Did you mean 'cross_entropy'\?"),
        ({"loss": "binary_cross_entropy"}, ValueError,
         r"output='softmax' cannot be used with loss='binary_cross_entropy'.*needs output in "
         r"\['sigmoid'\]. Compatible output\+loss pairs: identity\+mse"),
        ({"output": "sigmoid"}, ValueError,
         r"output='sigmoid' cannot be used with loss='cross_entropy'"),
        ({"layer_sizes": (4, 1)}, ValueError, r"a softmax output needs at least 2 units"),
        ({"init": "xavier"}, ValueError, r"init must be one of \['auto', 'glorot', 'he'\]"),
        ({"dtype": np.int32}, TypeError, r"dtype must be float32 or float64, got int32"),
        ({"dtype": np.float16}, TypeError, r"dtype must be float32 or float64, got float16"),
        ({"seed": 1.5}, TypeError, r"seed must be an int or None"),
    ],
)  # fmt: skip
def test_constructor_rejects_bad_arguments(kwargs, error, message):
    args = {"layer_sizes": (4, 3, 2), **kwargs}
    with pytest.raises(error, match=message):
        MLP(**args)


def test_params_setter_validates(net):
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"params must have shape \(\d+,\)"):
        net.params = np.zeros(3)
    with pytest.raises(ValueError, match=r"params contains 1 non-finite"):
        net.params = np.where(np.arange(net.n_params) == 0, np.nan, 0.0)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_fast_path_rejects_non_finite_and_keeps_the_model(dtype):
    """step's fast path (arrays of the model's dtype) checks finiteness inside the kernel."""
    net = MLP((2, 3, 1), hidden="tanh", output="identity", loss="mse", dtype=dtype)
    before = net.params.copy()
    x, y = np.array([0.5, 1.0], dtype), np.array([2.0], dtype)
    with pytest.raises(
        ValueError, match=r"x contains 1 non-finite value\(s\) \(first at index \(1\)\)"
    ):
        net.step(np.array([0.5, np.inf], dtype), y, lr=0.1)
    with pytest.raises(ValueError, match=r"y contains 1 non-finite"):
        net.step(x, np.array([np.nan], dtype), lr=0.1)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got inf"):
        net.step(x, y, lr=float("inf"))
    np.testing.assert_array_equal(net.params, before)
    assert net.n_updates_ == 0
    # a strided (non-contiguous) x takes the general path and gives the same update
    twin = MLP((2, 3, 1), hidden="tanh", output="identity", loss="mse", dtype=dtype)
    net.step(np.array([0.5, 9.0, 1.0], dtype)[::2], y, lr=0.1)
    twin.step([0.5, 1.0], 2.0, lr=0.1)
    np.testing.assert_array_equal(net.params, twin.params)


def test_read_only_inputs_are_accepted_without_new_kernel_versions():
    from fastmlp import _kernels as K

    X = np.random.default_rng(0).normal(size=(10, 4))
    y = np.arange(10) % 2
    net = MLP((4, 3, 2), seed=0)
    net.fit(X, y)
    n_versions = len(K.train_epoch.signatures)
    X.flags.writeable = False
    y.flags.writeable = False
    net.fit(X, y)
    net.predict(X)
    assert len(K.train_epoch.signatures) == n_versions
    for kernel in (K.predict_batch, K.one_hot, K.count_nonfinite):
        assert all(not getattr(a, "readonly", False) for sig in kernel.signatures for a in sig)


def test_values_beyond_float32_range_are_refused_by_name():
    net = MLP((2, 3, 2), seed=0, dtype=np.float32)
    with pytest.raises(ValueError, match=r"X has 1 value\(s\) beyond the range of float32"):
        net.fit(np.array([[1.0, 1e300]]), [0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 5000])
def test_count_nonfinite_counts_every_nan_and_inf(dtype, n):
    """The kernel behind the scan of large inputs and of every chunk's losses and parameters:
    its first pass sums ``a[i] * 0``, which must not be folded away (a NaN/inf anywhere, even
    among extreme finite values, is found and counted)."""
    from fastmlp import _kernels as K

    info = np.finfo(dtype)
    rng = np.random.default_rng(n)
    a = rng.normal(size=n).astype(dtype)
    assert K.count_nonfinite(a) == 0
    extremes = np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0], dtype)
    a[: min(n, 5)] = extremes[: min(n, 5)]
    assert K.count_nonfinite(a) == 0
    for bad in ([np.nan], [np.inf], [-np.inf], [np.nan, np.inf, -np.inf, np.nan]):
        b = a.copy()
        if n:
            where = rng.choice(n, size=min(n, len(bad)), replace=False)
            where[0] = n - 1  # the last entry too: the vector loop's tail
            b[where] = bad[: len(where)]
        assert K.count_nonfinite(b) == np.count_nonzero(~np.isfinite(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_X_with_one_nan_is_refused_by_its_index(dtype):
    """Above 4096 values the scan is the kernel's; the message still names the first entry."""
    net = MLP((8, 3, 2), seed=0, dtype=dtype)
    X = np.random.default_rng(0).normal(size=(1000, 8))
    X[617, 5] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains 1 non-finite value\(s\) \(first at index \(617, 5\)\)"
    ):
        net.fit(X, np.zeros(1000, dtype=np.int64))
    assert net.n_updates_ == 0


@pytest.mark.parametrize(
    "labels",
    [
        lambda y: y,  # int64, contiguous: one_hot's own path
        lambda y: y.astype(np.int32),
        lambda y: y.astype(np.uint8),
        lambda y: y.astype(np.float64),
        lambda y: np.repeat(y, 2)[::2],  # strided int64
    ],
)
def test_class_labels_are_one_hot_encoded_alike_whatever_their_dtype(labels):
    from fastmlp import _validation as V

    y = np.random.default_rng(0).integers(0, 3, size=50)
    for dtype in (np.float32, np.float64):
        Y = V.check_Y(labels(y), 50, 3, "softmax", "cross_entropy", np.dtype(dtype))
        assert Y.dtype == dtype and Y.flags.c_contiguous
        np.testing.assert_array_equal(Y, np.eye(3, dtype=dtype)[y])


def test_the_name_tables_agree():
    """Activation and loss names are accepted in _validation, coded in _kernel_args and
    restated by the reference (which imports nothing from the implementation on purpose)."""
    from fastmlp import _kernel_args as KA
    from fastmlp import _validation
    from fastmlp import reference as ref

    names = set(_validation.HIDDEN_ACTIVATIONS) | set(_validation.OUTPUT_ACTIVATIONS)
    assert set(KA.ACTIVATION_CODES) == names
    assert set(KA.LOSS_CODES) == set(_validation.LOSSES) == set(ref.LOSSES)
    assert tuple(ref.ACTIVATIONS) == _validation.HIDDEN_ACTIVATIONS
    assert tuple(ref.OUTPUTS) == _validation.OUTPUT_ACTIVATIONS
    assert set(_validation.COMPATIBLE_OUTPUTS) == set(_validation.LOSSES)
