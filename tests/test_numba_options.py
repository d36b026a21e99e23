"""Every kernel carries the one set of Numba options, and float32 kernels stay in float32."""

import os
import subprocess
import sys

import numba
import pytest

from fastmlp import _kernels as K

DISPATCHERS = {
    name: obj for name, obj in vars(K).items() if isinstance(obj, numba.core.dispatcher.Dispatcher)
}


def test_all_kernels_found():
    expected = {"forward", "output_delta", "backward", "gradient", "sgd_update", "sgd_step"}
    assert expected | {"train_epoch", "predict_batch", "loss_batch"} <= set(DISPATCHERS)


@pytest.mark.parametrize("name", sorted(DISPATCHERS))
def test_kernel_options(name):
    disp = DISPATCHERS[name]
    if name in EXACT:
        options = K.EXACT_OPTIONS
    elif name.startswith("_"):
        options = K.INLINE_OPTIONS
    else:
        options = K.JIT_OPTIONS
    expected = {k: v for k, v in options.items() if k != "cache"}
    expected |= {"nopython": True, "boundscheck": None}  # boundscheck None: NUMBA_BOUNDSCHECK rules
    assert disp.targetoptions == expected, name
    # cache=True is not a target option; it shows as the dispatcher's cache object
    cached = type(disp._cache).__name__ != "NullCache"
    assert cached == K.CACHE, name


# The scalar exp helpers need exact operation order (no reassoc); they take only scalars, so
# LLVM inlines them into the vectorised loops without Numba-level inlining.
# The blocked update's tile is one too: a chain of multiply-adds from W, which reassociation
# turned into a product, 3 multiply-adds and an add (5% slower on mnist128).
EXACT = {"_exp_parts", "_exp_nonpos", "_expm1_nonpos", "_subtract_4x4"}


def test_private_blocks_are_inlined_public_kernels_are_not():
    assert K.INLINE_OPTIONS == {**K.JIT_OPTIONS, "inline": "always"}
    assert K.EXACT_OPTIONS == {**K.JIT_OPTIONS, "fastmath": K.FASTMATH - {"reassoc"}}
    for name, disp in DISPATCHERS.items():
        inlined = name.startswith("_") and name not in EXACT
        assert (disp.targetoptions.get("inline") == "always") == inlined, name


def test_fastmath_keeps_nan_and_inf_semantics():
    # nnan/ninf would let LLVM assume no NaN/inf and hide divergence.
    assert not {"nnan", "ninf", "fast"} & set(K.FASTMATH)
    assert "reassoc" in K.FASTMATH  # needed to vectorise the dot products


FLOAT32_CHECK = r"""
import re, numba, numpy as np
from fastmlp import MLP, Layout
from fastmlp import _kernels as K
from fastmlp import _tiny
from fastmlp._streaming import RowCalls
assert not K.CACHE  # compiled here, so the LLVM IR is available (cached kernels have none)
# float32 only: the index arithmetic (the int-to-float check) does not depend on the float
# dtype, and compiling every kernel a second time for float64 took ~100 s of the suite here.
for dtype in (np.float32,):
    net = MLP((3, 4, 2), hidden="tanh", output="softmax", dtype=dtype)
    X = np.ones((2, 3), dtype)
    net.fit(X, [0, 1], epochs=1, lr=0.1)
    net.step(X[0], 1, lr=0.1)
    net.predict(X)
    net.predict(X[:1])  # one row: predict_rows_if_finite
    net.loss(X, [0, 1])
    net.gradient(X[0], 0)
    net.fit(X, [0, 1], lr=0.1, optimizer="adam", dropout=0.5, alpha=0.1, batch_size=2)
    calls = RowCalls(net)  # fastmlp.river's per-event calls: row_predict, row_step
    calls.x[0] = X[0]
    calls.predict()
    calls.step(1, 0.1)
K.sgd_step(net._params, net._args.meta, net._args.loss_code, X, np.eye(2, dtype=dtype), 0,
           dtype(0.1), net._args.zs, net._args.acts, net._args.deltas)
kernels = ("train_epoch", "sgd_step", "stream_step", "predict_batch", "predict_rows_if_finite",
           "loss_batch", "sample_gradient", "train_epoch_opt", "row_step", "row_predict")
dispatchers = [(name, getattr(K, name)) for name in kernels]
# The tiny nets' generated kernels (off for the fits above: FASTMLP_TINY=0 from conftest), one
# per activation and loss the generator writes.
_tiny.ENABLED = True
for sizes, codes, loss in [((2, 3, 2, 1), (K.SIGMOID,) * 3, K.MSE),
                           ((3, 4, 3, 2), (K.TANH, K.RELU, K.SOFTMAX), K.CROSS_ENTROPY),
                           ((3, 4, 2), (K.LEAKY_RELU, K.SIGMOID), K.BINARY_CROSS_ENTROPY),
                           ((3, 4, 2), (K.IDENTITY, K.SOFTMAX), K.MAE)]:
    kernel = _tiny.kernel(sizes, codes, loss)
    n = Layout(sizes).n_params
    X, Y = np.ones((2, sizes[0]), np.float32), np.full((2, sizes[-1]), 0.5, np.float32)
    params, losses = np.full(n, 0.1, np.float32), np.empty(2, np.float32)
    kernel(params, X, Y, np.arange(2), np.float32(0.1), losses)
    dispatchers.append((f"tiny {sizes} {codes} {loss}", kernel))
checked = 0
for name, disp in dispatchers:
    for sig in disp.signatures:
        body, keep = [], False  # function bodies only: the CPython wrapper boxes to double
        for line in disp.inspect_llvm(sig).splitlines():
            if line.startswith("define"):
                keep = "@_ZN" in line and "cpython" not in line and "cfunc" not in line
            if keep:
                body.append(line)
        # float32 data promoted (fpext), or arithmetic / math calls in double.
        pattern = r".*(?:\bfpext\b|\b(?:fadd|fsub|fmul|fdiv|frem|fneg)\b[^=]*\bdouble\b"
        pattern += r"|\bcall\b[^=]*\bdouble @).*"
        body = "\n".join(body)
        # Index arithmetic is uint64 throughout; mixing it with int64 makes Numba go via float.
        to_float = re.findall(r".*\b[su]itofp\b.*", body)
        assert not to_float, f"{name}{sig}: int-to-float conversion in a kernel: {to_float[:3]}"
        if sig[0].dtype == numba.float32:
            doubles = re.findall(pattern, body)
            assert not doubles, f"{name}{sig}: float64 code in a float32 kernel: {doubles[:3]}"
        checked += 1
assert checked == 14, checked
print("OK", checked)
"""


def test_generated_code_has_no_float64_in_float32_and_no_int_to_float(tmp_path):
    """No silent promotion: the float32 specialisations contain no double-precision op, and no
    kernel converts integers to floats (a sign of uint64/int64 index arithmetic mixed up).

    Runs in a subprocess with caching off, because kernels loaded from the cache carry no IR.
    """
    env = {
        **os.environ, "FASTMLP_NUMBA_CACHE": "0", "FASTMLP_TINY": "0",
        "FASTMLP_TINY_DIR": str(tmp_path),  # the tiny kernels' files: not the user's ~/.cache
    }  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", FLOAT32_CHECK], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "OK 14"


def test_no_module_but_kernels_defines_a_jitted_function():
    """Every jitted function lives in ``_kernels.py``: Numba's cache misses edits to callees in
    other files, and its cache key does not include the fastmath options. (The tiny-net kernels
    are generated source files outside the package, compiled with ``_kernels``' decorator.)

    Checked on the source: no other module imports numba, or decorates or wraps a function
    with ``_kernels``' decorators (``jit``, ``jit_inline``, ``jit_exact``) or numba's."""
    import ast
    from pathlib import Path

    import fastmlp

    jit_names = {"jit", "jit_inline", "jit_exact", "njit", "vectorize", "guvectorize", "cfunc"}
    offenders = []
    for path in sorted(Path(fastmlp.__file__).parent.glob("*.py")):
        if path.name == "_kernels.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                    node.module or ""]  # fmt: skip
                if any(m == "numba" or m.startswith("numba.") for m in modules):
                    offenders.append(f"{path.name}:{node.lineno} imports numba")
            elif isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                if name in jit_names:
                    offenders.append(f"{path.name}:{node.lineno} uses {name}")
    assert offenders == []
