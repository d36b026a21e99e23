"""Python overhead of the public calls on a tiny net, where the kernel's arithmetic is
negligible: what these time is the validation, the epoch loop and the bookkeeping around the
kernel call. Refactors of the Python layer must leave these unchanged (``asv continuous``).
"""

import numpy as np

from .common import DTYPES, make_model


class FitOverhead:
    """``fit`` of one epoch over the 4 XOR rows on the (2, 3, 2, 1) ``xor`` net: four
    updates (~0.1 us of arithmetic), so the time is ``fit``'s own Python. Plain SGD (the fused
    kernel) and ``momentum=0.9`` (the general optimiser kernel and its settings)."""

    params = (DTYPES, ["sgd", "momentum"])
    param_names = ["dtype", "optimizer"]
    repeat = (20, 200, 5.0)

    def setup(self, dtype, optimizer):
        self.X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
        self.y = np.array([[0], [1], [1], [0]], dtype=dtype)
        self.kwargs = {"momentum": 0.9} if optimizer == "momentum" else {}
        self.model = make_model("xor", dtype)
        for _ in range(200):  # compile/load the kernels and warm the caches
            self.model.fit(self.X, self.y, lr=0.1, **self.kwargs)

    def time_fit_one_epoch(self, dtype, optimizer):
        self.model.fit(self.X, self.y, lr=0.1, **self.kwargs)


class PredictOverhead:
    """``predict`` of one row and of the 4 XOR rows on the ``xor`` net."""

    params = DTYPES
    param_names = ["dtype"]
    repeat = (20, 200, 5.0)

    def setup(self, dtype):
        self.X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
        self.model = make_model("xor", dtype)
        for _ in range(200):
            self.model.predict(self.X)

    def time_predict_one_row(self, dtype):
        self.model.predict(self.X[:1])

    def time_predict_four_rows(self, dtype):
        self.model.predict(self.X)
