import numpy as np
import pytest

from fastmlp import MLP, check_gradients, datasets


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correct_backprop_passes(dtype):
    X, y = datasets.load_digits()
    net = MLP((64, 12, 10), hidden="tanh", dtype=dtype).fit(X[:200], y[:200], lr=0.05)
    before = net.params.copy()
    report = check_gradients(net, X, y, n_samples=2)
    assert report.max_error < 1e-3, str(report)  # typically ~1e-5; see the docstring
    assert len(report.weights) == len(report.biases) == 2
    np.testing.assert_array_equal(net.params, before)  # the check works on a copy
    assert "worst relative error" in str(report)


def test_big_nets_are_sampled_in_every_layer():
    net = MLP((300, 40, 20, 5), hidden="relu", seed=1)
    X = np.random.default_rng(0).random((2, 300))
    report = check_gradients(net, X, [1, 3], max_params=200)
    assert report.n_checked <= 200 + 65
    assert all(e > 0 for e in report.weights), "every layer's weights must be checked"
    assert report.max_error < 1e-5


def test_a_wrong_gradient_is_caught_in_its_layer(monkeypatch):
    net = MLP((4, 6, 3), hidden="sigmoid", output="softmax", seed=2)
    X = np.random.default_rng(3).normal(size=(3, 4))
    y = [0, 2, 1]
    real = MLP.gradient

    def off_by_a_bit(self, x, yy):  # a typical hand-written bug: layer 1's weights 10% off
        g = real(self, x, yy)
        g[self.layout.weight_slice(1)] *= 1.1
        return g

    monkeypatch.setattr(MLP, "gradient", off_by_a_bit)
    report = check_gradients(net, X, y)
    assert report.weights[1] > 0.05 and report.weights[0] < 1e-5 and max(report.biases) < 1e-5


def test_bad_arguments():
    with pytest.raises(TypeError, match="net must be a fastmlp.MLP"):
        check_gradients("net", np.zeros((1, 2)), [0])
    with pytest.raises(ValueError, match=r"X has shape \(1, 2\), expected \(n_samples, 3\)"):
        check_gradients(MLP((3, 2)), np.zeros((1, 2)), [0])
