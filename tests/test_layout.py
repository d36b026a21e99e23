import numpy as np
import pytest

from fastmlp import MLP, Layout
from fastmlp import _kernel_args as KA
from fastmlp.layout import BUFFER_PAD_BYTES, CACHE_LINE_BYTES, work_buffer


def test_offsets_follow_w_then_b_per_layer():
    lay = Layout((2, 3, 2, 1))
    # layer 0: W 3x2 at 0, b at 6; layer 1: W 2x3 at 9, b at 15; layer 2: W 1x2 at 17, b at 19
    assert lay.w_offsets == (0, 9, 17)
    assert lay.b_offsets == (6, 15, 19)
    assert lay.n_params == 20
    assert lay.unit_offsets == (0, 2, 5, 7)  # levels: input, then each layer's output
    assert lay.n_units == 8
    assert lay.unit_slice(1) == slice(2, 5)
    assert lay.n_layers == 3 and lay.n_in == 2 and lay.n_out == 1


def test_views_share_memory_and_are_row_major():
    lay = Layout((3, 4, 2))
    params = np.arange(lay.n_params, dtype=float)
    W, b = lay.weights(params), lay.biases(params)
    assert [w.shape for w in W] == [(4, 3), (2, 4)]
    assert [v.shape for v in b] == [(4,), (2,)]
    assert W[0][1, 2] == 1 * 3 + 2  # row-major: row j, column i at j * n_in + i
    assert b[0][0] == 12 and W[1][0, 0] == 16
    W[1][...] = -1.0
    assert np.all(params[16:24] == -1.0)
    assert all(np.shares_memory(w, params) for w in W + b)


def test_pack_round_trips():
    lay = Layout((5, 3, 3, 2))
    rng = np.random.default_rng(0)
    params = rng.normal(size=lay.n_params)
    again = lay.pack(lay.weights(params), lay.biases(params))
    np.testing.assert_array_equal(again, params)


@pytest.mark.parametrize("sizes", [(3,), (), (3, 0, 2), (4, -1)])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="layer_sizes"):
        Layout(sizes)


def test_wrong_params_length():
    lay = Layout((2, 2))
    with pytest.raises(ValueError, match=r"params has shape \(5,\), expected \(6,\)"):
        lay.weights(np.zeros(5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint64])
@pytest.mark.parametrize("n", [1, 7, 1000, 100_003])
def test_work_buffers_start_on_a_cache_line_with_padding_around(dtype, n):
    buf = work_buffer(n, dtype)
    assert buf.shape == (n,) and buf.dtype == dtype and buf.flags.c_contiguous
    assert buf.ctypes.data % CACHE_LINE_BYTES == 0
    assert not buf.any()
    start = buf.ctypes.data - buf.base.ctypes.data
    assert start >= BUFFER_PAD_BYTES
    assert buf.base.nbytes - start - buf.nbytes >= BUFFER_PAD_BYTES


def test_model_buffers_are_aligned():
    net = MLP((784, 128, 10), dtype="float32")
    args = KA.KernelArgs.of(net)
    for buf in (net.params, args.zs, args.acts, args.deltas, args.xin, args.mask):
        assert buf.ctypes.data % CACHE_LINE_BYTES == 0
