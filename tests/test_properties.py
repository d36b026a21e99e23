"""Property-based tests (hypothesis): random shapes, dtypes and values thrown at the public API.
The only outcomes allowed are a valid result or a clean ValueError/TypeError (DivergenceError
for a diverging fit), and after an error the model is unchanged.

The fuzzing of fit/step/predict/gradient runs in a subprocess, so that a crash (a kernel reading
out of bounds would segfault) fails the test instead of killing the test run."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp import MLP, DivergenceError

ALLOWED = (ValueError, TypeError, DivergenceError)
NAMES = st.sampled_from(
    ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "mse", "cross_entropy",
     "binary_cross_entropy", "glorot", "he", "auto", "Relu", "", "tanhh"]
)  # fmt: skip
DTYPES = st.sampled_from(
    [np.float64, np.float32, np.float16, np.int64, np.uint8, np.bool_, np.complex128, object, str]
)
SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 1e-300, np.nan, np.inf, -np.inf])


@st.composite
def arrays(draw, max_dims=3, max_side=5):
    ndim = draw(st.integers(0, max_dims))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(ndim))
    dtype = draw(DTYPES)
    values = draw(
        st.lists(st.one_of(st.floats(-5, 5), SPECIAL), min_size=1, max_size=1)
    )[0]  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arr = np.asarray(rng.normal(size=shape) * draw(st.sampled_from([1.0, 3.0])))
    if arr.size and draw(st.booleans()):
        arr.flat[draw(st.integers(0, arr.size - 1))] = values
    if dtype is str:
        return arr.astype(str)
    with np.errstate(all="ignore"):
        return arr.astype(dtype)


@st.composite
def models(draw):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(-1, 5)) for _ in range(n_layers + 1)]
    kwargs = {
        "hidden": draw(st.one_of(NAMES, st.lists(NAMES, max_size=3))),
        "output": draw(NAMES),
        "loss": draw(NAMES),
        "init": draw(NAMES),
        "seed": draw(st.one_of(st.none(), st.integers(0, 10), st.floats(0, 1))),
        "dtype": draw(st.sampled_from([np.float64, np.float32, np.float16, np.int32, "float32"])),
    }
    return sizes, kwargs


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(models())
def test_constructor_builds_or_refuses_cleanly(spec):
    sizes, kwargs = spec
    try:
        net = MLP(sizes, **kwargs)
    except ALLOWED:
        return
    assert net.params.shape == (net.n_params,) and np.all(np.isfinite(net.params))
    assert len(net.weights) == len(sizes) - 1


FUZZ_EXAMPLES = int(os.environ.get("FASTMLP_FUZZ_EXAMPLES", "200"))
COUNT = {"calls": 0, "ok": 0}


@st.composite
def workloads(draw):
    # A valid model (so the data checks are what is exercised), and arbitrary data.
    hidden = draw(st.sampled_from(["identity", "sigmoid", "tanh", "relu", "leaky_relu"]))
    output, loss = draw(
        st.sampled_from([("identity", "mse"), ("sigmoid", "mse"), ("softmax", "mse"),
                         ("identity", "mae"),
                         ("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy")])
    )  # fmt: skip
    n_in = draw(st.integers(1, 4))
    n_out = draw(st.integers(2 if output == "softmax" else 1, 4))
    sizes = [n_in, *[draw(st.integers(1, 9)) for _ in range(draw(st.integers(0, 2)))], n_out]
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    net = MLP(sizes, hidden=hidden, output=output, loss=loss, dtype=dtype, seed=0)
    X = draw(arrays())
    if draw(st.booleans()):  # often well-shaped, so the deeper checks run too
        n = draw(st.integers(0, 6))
        X = np.random.default_rng(n).normal(size=(n, n_in))
    Y = draw(arrays(max_dims=2))
    if draw(st.booleans()) and X.ndim == 2:
        Y = np.random.default_rng(1).integers(-1, n_out + 1, size=X.shape[0])
    lr = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 2)))
    epochs = draw(st.integers(-1, 2))
    return net, X, Y, lr, epochs


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(workloads())
def test_public_api_returns_or_refuses_cleanly(work):
    net, X, Y, lr, epochs = work
    calls = [
        lambda: net.fit(X, Y, epochs=epochs, lr=lr),
        lambda: net.predict(X),
        lambda: net.loss(X, Y),
        lambda: net.step(X[0] if X.ndim and len(X) else X, Y[0] if Y.ndim and len(Y) else Y, lr),
        lambda: net.gradient(X[0] if X.ndim and len(X) else X, Y[0] if Y.ndim and len(Y) else Y),
        lambda: net.predict_classes(X),
    ]
    for call in calls:
        before = net.params.copy()
        COUNT["calls"] += 1
        try:
            result = call()
        except ALLOWED as exc:
            if not isinstance(exc, DivergenceError):
                np.testing.assert_array_equal(net.params, before)  # nothing lost
            assert np.all(np.isfinite(net.params))
            continue
        COUNT["ok"] += 1
        if isinstance(result, np.ndarray) and result.dtype.kind == "f":
            assert result.dtype == net.dtype


@pytest.mark.skipif(os.environ.get("FASTMLP_IN_FUZZ_SUBPROCESS") == "1", reason="the subprocess")
def test_fuzz_public_api_in_a_subprocess():
    """Run the property above in a child process: a segfault shows as a failing exit code."""
    env = {**os.environ, "FASTMLP_IN_FUZZ_SUBPROCESS": "1", "FASTMLP_FUZZ_EXAMPLES": "300"}
    test_id = f"{Path(__file__).name}::test_public_api_returns_or_refuses_cleanly"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_id, "-s"],
        cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "1 passed" in proc.stdout


def teardown_module():
    if os.environ.get("FASTMLP_IN_FUZZ_SUBPROCESS") == "1":
        print(f"\nfuzz: {COUNT['calls']} API calls, {COUNT['ok']} returned a result")
