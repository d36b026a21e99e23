"""train_many: independent models trained in parallel threads equal serial fits bit for bit."""

import numpy as np
import pytest

from fastmlp import MLP, datasets, train_many


def test_train_many_equals_serial_fits():
    X, y = datasets.xor()  # y: (4, 1) floats
    labels = y[:, 0].astype(int)
    configs = [
        {"layer_sizes": (2, 3, 1), "output": "sigmoid", "loss": "mse", "seed": s, "epochs": 50,
         "lr": 0.5, "dtype": dtype}
        for s in range(6) for dtype in (np.float64, np.float32)
    ] + [{"layer_sizes": (2, 8, 2), "hidden": "relu", "seed": 1, "epochs": 20, "lr": 0.1,
          "momentum": 0.9, "batch_size": 2, "dropout": 0.1}]  # fmt: skip
    sigmoid = configs[:-1]
    models = train_many(sigmoid, X, y, n_jobs=2)
    assert len(models) == len(sigmoid) and all(isinstance(m, MLP) for m in models)
    for config, model in zip(sigmoid, models, strict=True):
        args = {k: v for k, v in config.items() if k not in ("epochs", "lr")}
        twin = MLP(**args).fit(X, y, epochs=config["epochs"], lr=config["lr"])
        np.testing.assert_array_equal(model.params, twin.params)
        assert model.dtype == np.dtype(config["dtype"])
    (relu,) = train_many(configs[-1:], X, labels)
    twin = MLP((2, 8, 2), hidden="relu", seed=1)
    twin.fit(X, labels, epochs=20, lr=0.1, momentum=0.9, batch_size=2, dropout=0.1)
    np.testing.assert_array_equal(relu.params, twin.params)


@pytest.mark.parametrize(
    "configs, error, match",
    [
        ([], ValueError, "configs is empty"),
        ({"layer_sizes": (2, 1)}, TypeError, "configs must be a list of dicts"),
        ([{"layer_sizes": (2, 2)}, 3], TypeError, r"configs\[1\] must be a dict"),
        ([{"layer_sizes": (2, 2), "lrr": 0.1}], ValueError, r"unknown key\(s\) \['lrr'\]"),
        ([{"hidden": "tanh"}], ValueError, r"configs\[0\] needs 'layer_sizes'"),
        ([{"layer_sizes": (2, 2), "output": "softmx"}], ValueError, "Did you mean 'softmax'"),
    ],
)
def test_bad_configs_are_refused_before_training(configs, error, match):
    X, y = datasets.xor()
    y = y[:, 0].astype(int)
    with pytest.raises(error, match=match):
        train_many(configs, X, y)


def test_a_failing_fit_is_reraised():
    X, y = datasets.xor()
    y = y[:, 0].astype(int)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        train_many([{"layer_sizes": (2, 2)}, {"layer_sizes": (2, 2), "lr": -1.0}], X, y)
