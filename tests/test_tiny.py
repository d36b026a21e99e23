"""The shape-specialised kernels of tiny nets (``fastmlp._tiny``): the same epoch as the general
``train_epoch`` and as the NumPy reference, the same options, and ``fit`` runs them.

Each case compiles its own kernel (~1-2 s here), so the cases cover every code path of the
generator once rather than the whole grid: every hidden activation, every (output, loss) pair,
hidden layers after the first (the derivative inside backprop), a 1-unit layer, and xor.
Their float32 code (no double-precision op) is checked with the other kernels' in
test_numba_options.py.
"""

import sys

import numba
import numpy as np
import pytest
from conftest import HIDDEN, OUTPUT_LOSS, TOL_EPOCH, case_id, make_case

from fastmlp import MLP, _tiny, tuning
from fastmlp import _kernel_args as KA
from fastmlp import _kernels as K
from fastmlp import reference as ref
from fastmlp.errors import DivergenceError

DTYPES = [np.float64, np.float32]
# hidden activation i % 5 with (output, loss) pair i: each of both appears at least once
CASES = [
    ((3, 4, 3, 2), HIDDEN[i % len(HIDDEN)], out, loss) for i, (out, loss) in enumerate(OUTPUT_LOSS)
]
CASES += [
    ((2, 3, 2, 1), "sigmoid", "sigmoid", "mse"),  # xor's net
    ((3, 1, 2), "tanh", "softmax", "cross_entropy"),
    ((3, 1), "identity", "sigmoid", "binary_cross_entropy"),
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """One directory for this module's generated files (not the user's ~/.cache)."""
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(autouse=True)
def tiny_on(monkeypatch, tiny_dir):
    """conftest turns the specialised kernels off for the rest of the suite; on here."""
    monkeypatch.setattr(_tiny, "ENABLED", True)
    monkeypatch.setattr(_tiny, "_LOADED", {})
    monkeypatch.setenv("FASTMLP_TINY_DIR", str(tiny_dir))


def tiny_kernel(net):
    kernel = net._tiny_kernel()
    assert kernel is not None, "not run by the specialised kernel"
    return kernel


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_epoch_equals_the_general_kernel_and_the_reference(case, dtype):
    net, X, Y = make_case(case, dtype)
    order = np.array([3, 0, 7, 1, 1, 6, 2, 5], dtype=np.int64)
    lr = dtype(0.02)
    params, losses = net.params.copy(), np.empty(order.size, dtype)
    tiny_kernel(net)(params, X, Y, order, lr, losses)

    general, general_losses = net.params.copy(), np.empty(order.size, dtype)
    zs, acts, deltas = KA.unit_buffers(net.layout, net.dtype)
    meta, loss_code = KA.meta_of(net), KA.LOSS_CODES[net.loss_name]
    K.train_epoch(general, meta, loss_code, X, Y, order, lr, zs, acts, deltas, general_losses)
    # The same operations in the same order; LLVM may reassociate or contract them differently
    # (fastmath), so they end a few ulps apart (measured after these 8 steps: at most 6 eps
    # relative, bit-equal in about half the cases). Allowed: ~45 eps in float64, ~30 in float32.
    tol = {"rtol": 1e-14, "atol": 1e-15} if dtype == np.float64 else {"rtol": 4e-6, "atol": 1e-7}
    np.testing.assert_allclose(params, general, **tol, err_msg="params vs train_epoch")
    np.testing.assert_allclose(losses, general_losses, **tol, err_msg="losses vs train_epoch")

    p64 = np.asarray(net.params, np.float64)
    p_ref, losses_ref = ref.train_epoch(
        net.layout, p64, list(net.activations), net.loss_name,
        X.astype(np.float64), Y.astype(np.float64), order, 0.02,
    )  # fmt: skip
    assert np.all(np.abs(p_ref) < 10), "reference diverged: the comparison would mean little"
    np.testing.assert_allclose(params, p_ref, **TOL_EPOCH[np.dtype(dtype)], err_msg="params")
    np.testing.assert_allclose(losses, losses_ref, **TOL_EPOCH[np.dtype(dtype)], err_msg="losses")


def test_which_nets_are_tiny():
    assert _tiny.applies((2, 3, 2, 1))
    assert _tiny.applies((7, 7))  # 56 parameters
    assert not _tiny.applies((3, _tiny.MAX_UNITS + 1, 2))  # the general kernels vectorise there
    assert not _tiny.applies((_tiny.MAX_UNITS + 1, 1))  # a wide input too
    assert not _tiny.applies((7, 7, 2))  # 72 parameters > tuning.TINY_MAX_PARAMS
    assert not _tiny.applies((64, 32, 10))  # digits


def test_fit_runs_the_tiny_kernel(monkeypatch):
    """``fit`` on a tiny net calls its kernel (not ``train_epoch``), with the same result as
    calling it directly, in one call or in chunks of 3 samples (Ctrl-C's chunks)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, dtype=float)
    y = np.array([0, 1, 1, 0] * 5, dtype=float)
    net = MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse", seed=1)
    start = net.params.copy()
    direct, losses = start.copy(), np.empty(len(X))
    tiny_kernel(net)(direct, X, y[:, None], np.arange(len(X)), 0.5, losses)

    def general(*args):
        raise AssertionError("train_epoch ran on a tiny net")

    monkeypatch.setattr(K, "train_epoch", general)
    net.fit(X, y, lr=0.5, epochs=1, shuffle=False)
    np.testing.assert_array_equal(net.params, direct)
    assert net.history_["loss"] == [pytest.approx(losses.mean(), rel=1e-15)]

    monkeypatch.setattr(tuning, "UPDATES_PER_CHUNK", 3 * (net.n_params + net.layout.n_units))
    chunked = MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse", seed=1)
    chunked.fit(X, y, lr=0.5, epochs=1, shuffle=False)
    np.testing.assert_array_equal(chunked.params, direct)


def test_no_writable_directory_falls_back_to_the_general_kernel(monkeypatch):
    monkeypatch.setattr(_tiny, "_directory", lambda: None)
    net = MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse", seed=1)
    assert net._tiny_kernel() is None
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    net.fit(X, [0, 1, 1, 0], lr=0.5, epochs=2)
    assert np.isfinite(net.params).all() and net.n_updates_ == 8


def test_generated_kernel_carries_the_shared_options():
    net = MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse", seed=1)
    kernel = tiny_kernel(net)
    assert isinstance(kernel, numba.core.dispatcher.Dispatcher)
    expected = {k: v for k, v in K.JIT_OPTIONS.items() if k != "cache"}
    assert kernel.targetoptions == expected | {"nopython": True, "boundscheck": None}
    assert (type(kernel._cache).__name__ != "NullCache") == K.CACHE


def test_generated_file_is_named_by_its_source(tmp_path, monkeypatch):
    """A change to the generator, the options or ``_kernels.py`` (whose exp it calls) changes the
    text, hence the file: Numba's cache, keyed by file, never runs a stale build."""
    monkeypatch.setenv("FASTMLP_TINY_DIR", str(tmp_path))
    text = _tiny.source((2, 3, 2, 1), (K.SIGMOID,) * 3, K.MSE)
    assert _tiny._kernels_digest() in text
    kernel = _tiny.kernel((2, 3, 2, 1), (K.SIGMOID,) * 3, K.MSE)
    (path,) = tmp_path.glob("tiny_*.py")
    assert path.read_text() == text
    assert kernel.py_func.__code__.co_filename == str(path)
    assert _tiny.source((2, 3, 2, 1), (K.TANH,) * 3, K.MSE) != text


def test_row_parallel_fit_of_a_tiny_net_is_the_serial_fit(monkeypatch):
    def rows(*args):
        raise AssertionError("the row-parallel kernel ran on a tiny net")

    monkeypatch.setattr(tuning, "available_cores", lambda: 2)
    monkeypatch.setattr(K, "train_epoch_rows", rows)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, dtype=float)
    y = np.array([0, 1, 1, 0] * 5, dtype=float)
    nets = [MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse", seed=1)] * 2
    nets[1] = MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse", seed=1)
    nets[0].fit(X, y, lr=0.5, epochs=3)
    nets[1].fit(X, y, lr=0.5, epochs=3, n_jobs=2)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


def test_divergence_keeps_the_last_finite_parameters():
    """A NaN midway: fit replays the chunk with the same kernel up to the bad update, keeps the
    parameters from before it and counts exactly the updates it holds."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, dtype=float)
    y = np.array([0, 1, 1, 0] * 5, dtype=float)
    net = MLP((2, 3, 2, 1), hidden="identity", output="identity", loss="mse", seed=1)
    X[13] = [1e300, 1e300]  # finite, but z overflows: the loss becomes inf
    replay = MLP((2, 3, 2, 1), hidden="identity", output="identity", loss="mse", seed=1)
    with pytest.raises(DivergenceError) as caught:
        net.fit(X, y, lr=0.1, epochs=1, shuffle=False)
    assert (caught.value.step, caught.value.sample) == (13, 13)
    assert net.n_updates_ == 13 and np.isfinite(net.params).all()
    replay.fit(X[:13], y[:13], lr=0.1, epochs=1, shuffle=False)
    np.testing.assert_array_equal(net.params, replay.params)


def test_a_file_with_other_content_is_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTMLP_TINY_DIR", str(tmp_path))
    args = (2, 3, 2, 1), (K.SIGMOID,) * 3, K.MSE
    _tiny.kernel(*args)
    (path,) = tmp_path.glob("tiny_*.py")
    path.write_bytes(b"\xff not python")
    monkeypatch.setattr(_tiny, "_LOADED", {})
    assert _tiny.kernel(*args) is not None
    assert path.read_text() == _tiny.source(*args)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failed_load_falls_back_and_leaves_no_module(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTMLP_TINY_DIR", str(tmp_path))

    def broken(*args):
        raise ImportError("simulated")

    monkeypatch.setattr(_tiny.importlib.util, "module_from_spec", broken)
    assert _tiny.kernel((2, 3, 2, 1), (K.SIGMOID,) * 3, K.MSE) is None
    assert not [name for name in sys.modules if name.startswith("fastmlp._tiny_generated_")
                and sys.modules[name].__file__.startswith(str(tmp_path))]  # fmt: skip


def test_a_directory_others_can_write_to_is_not_used(tmp_path, monkeypatch):
    """Numba unpickles the cache files beside the generated ones: never from a directory another
    user could have planted them in (here: group/other-writable)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("FASTMLP_TINY_DIR", str(shared))
    monkeypatch.setattr(_tiny.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    directory = _tiny._directory()
    assert directory is not None and directory.startswith(str(tmp_path / "tmp"))
    (tmp_path / "tmp").chmod(0o777)
    for entry in (tmp_path / "tmp").iterdir():
        entry.chmod(0o777)
    assert _tiny._directory() is None


def test_step_and_a_one_sample_fit_agree_to_a_few_ulps():
    """``step`` keeps the general kernel; ``fit`` on a tiny net runs its own: the same
    operations, so the same parameters up to rounding (bit for bit with the tiny kernels off:
    test_model.py)."""
    net, X, Y = make_case(((3, 5, 2), "tanh", "softmax", "cross_entropy"), np.float64)
    twin = MLP((3, 5, 2), hidden="tanh", seed=1)
    twin.params = net.params
    loss = net.step(X[0], Y[0], lr=0.1)
    twin.fit(X[:1], Y[:1], lr=0.1, shuffle=False)
    assert tiny_kernel(twin) is not None
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-14, atol=1e-16)
    assert loss == pytest.approx(twin.history_["loss"][0], rel=1e-14)
