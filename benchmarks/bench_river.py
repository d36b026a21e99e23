"""Per-event cost of ``fastmlp.river`` against River's own linear models: one ``learn_one`` and
one ``predict_proba_one``/``predict_one`` call on a fixed event of a fixed small stream.

The stream is deterministic (seed 0): ``N_EVENTS`` events of ``n_features`` standard-normal
features, named ``f0, f1, ...``, and a label that is a nonlinear function of them. ``setup``
learns the whole stream once (this loads the Numba kernels, grows the feature index and warms
the caches), so each timed call is one steady-state event. River is not in asv's environment
matrix: without it, ``setup`` raises ``NotImplementedError`` and asv skips these benchmarks
(``asv run --python=same`` in a venv with the ``river`` extra runs them).
"""

import numpy as np

N_EVENTS = 500
MODELS = ["fastmlp", "river"]  # fastmlp.river's MLP, River's LogisticRegression/LinearRegression


def _stream(n_features: int, regression: bool) -> list[tuple[dict, object]]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_EVENTS, n_features))
    t = np.sin(X[:, 0]) + X[:, -1] * X[:, 0] + 0.1 * rng.standard_normal(N_EVENTS)
    names = [f"f{i}" for i in range(n_features)]
    targets = (40.0 + 2.0 * t).tolist() if regression else (t > 0).tolist()
    rows = [dict(zip(names, row, strict=True)) for row in X.tolist()]
    return list(zip(rows, targets, strict=True))


def _model(model: str, regression: bool):
    try:
        from river import linear_model
    except ImportError:
        raise NotImplementedError("River is not installed") from None
    from fastmlp.river import MLPClassifier, MLPRegressor

    if model == "fastmlp":
        return MLPRegressor(seed=0) if regression else MLPClassifier(seed=0)
    return linear_model.LinearRegression() if regression else linear_model.LogisticRegression()


class ClassifierEvent:
    """One event of a binary stream (bool labels), 2, 9 and 18 features (Bananas', Phishing's
    and ImageSegments' widths); fastmlp's default (n_features, 32, 2) MLP against River's
    ``LogisticRegression``."""

    params = (MODELS, [2, 9, 18])
    param_names = ["model", "n_features"]
    repeat = (20, 200, 5.0)

    def setup(self, model, n_features):
        self.model = _model(model, regression=False)
        stream = _stream(n_features, regression=False)
        for x, y in stream:
            self.model.predict_proba_one(x)
            self.model.learn_one(x, y)
        self.x, self.y = stream[0]

    def time_learn_one(self, model, n_features):
        self.model.learn_one(self.x, self.y)

    def time_predict_proba_one(self, model, n_features):
        self.model.predict_proba_one(self.x)

    def time_predict_one(self, model, n_features):
        self.model.predict_one(self.x)


class RegressorEvent:
    """One event of a regression stream (targets around 40, as TrumpApproval's) with 6
    features; fastmlp's default (6, 32, 1) MLP against River's ``LinearRegression``."""

    params = (MODELS, [6])
    param_names = ["model", "n_features"]
    repeat = (20, 200, 5.0)

    def setup(self, model, n_features):
        self.model = _model(model, regression=True)
        stream = _stream(n_features, regression=True)
        for x, y in stream:
            self.model.predict_one(x)
            self.model.learn_one(x, y)
        self.x, self.y = stream[0]

    def time_learn_one(self, model, n_features):
        self.model.learn_one(self.x, self.y)

    def time_predict_one(self, model, n_features):
        self.model.predict_one(self.x)
