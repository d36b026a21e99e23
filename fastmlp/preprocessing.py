"""What a model needs to work on raw data: feature scaling, names, class names, target scaling.

``Standardizer`` scales columns to mean 0 and standard deviation 1 (scikit-learn's
``StandardScaler``: ``mean_``, ``scale_``; a constant column gets scale 1). ``Preprocessor``
bundles what a model trained on a table remembers: its feature names, target name, class
names, the feature standardisation, the target standardisation (regression) and the values
that fill missing cells. ``PreprocessedMLP`` is an ``MLP`` with its ``Preprocessor``: it fits
and predicts on raw inputs and labels, and its ``save``/``load`` carry both in one ``.npz``
(``fastmlp.persistence``). ``fastmlp.persistence.load_preprocessing(path)`` reads the
preprocessing of a saved model alone.

Examples
--------
>>> import numpy as np
>>> from fastmlp import MLP
>>> from fastmlp.preprocessing import PreprocessedMLP, Preprocessor
>>> X = np.array([[150.0, 1.0], [160.0, 0.0], [170.0, 1.0], [180.0, 0.0]] * 10)
>>> y = np.array(["short", "short", "tall", "tall"] * 10)
>>> model = PreprocessedMLP(MLP((2, 8, 2), seed=0), Preprocessor.for_classifier(X, y))
>>> model = model.fit(X, y, epochs=100, lr=0.1)
>>> model.predict_classes(np.array([[152.0, 0.0], [178.0, 1.0]])).tolist()
['short', 'tall']
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from .model import MLP

__all__ = [
    "Standardizer", "Preprocessor", "PreprocessedMLP", "class_names_of", "class_lookup",
    "label_name",
]  # fmt: skip


class Standardizer:
    """Scale columns to mean 0 and standard deviation 1: ``(X - mean_) / scale_``.

    Parameters
    ----------
    mean : array_like (n_columns,), optional
        Column means; with ``scale``, a standardizer that needs no ``fit``.
    scale : array_like (n_columns,), optional
        Column standard deviations (> 0, finite).

    Attributes
    ----------
    mean_ : ndarray (n_columns,) of float64
        The column means (NaN cells ignored).
    scale_ : ndarray (n_columns,) of float64
        The column standard deviations (population, ``ddof=0``); 1 for a constant column.

    Examples
    --------
    >>> s = Standardizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> s.mean_.tolist(), s.scale_.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    >>> s.transform(np.array([[3.0, 6.0]])).tolist()
    [[1.0, 1.0]]
    """

    def __init__(self, mean: ArrayLike | None = None, scale: ArrayLike | None = None) -> None:
        if (mean is None) != (scale is None):
            raise ValueError("give both mean and scale, or neither.")
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        if mean is not None:
            self._set(np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64))

    def _set(self, mean: np.ndarray, scale: np.ndarray) -> None:
        mean, scale = np.atleast_1d(mean), np.atleast_1d(scale)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise ValueError(
                f"mean and scale must be 1-D of one length, got shapes {mean.shape} and "
                f"{scale.shape}."
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("mean must be finite and scale finite and > 0.")
        self.mean_, self.scale_ = mean, scale

    @classmethod
    def from_moments(
        cls, count: ArrayLike, total: ArrayLike, total_sq: ArrayLike, shift: ArrayLike = 0.0
    ) -> Standardizer:
        """Build from running sums (one pass over data that does not fit in memory).

        Parameters
        ----------
        count : array_like (n_columns,)
            Number of values seen per column (> 0).
        total, total_sq : array_like (n_columns,)
            Sums of ``x - shift`` and of ``(x - shift)**2``; a shift near the mean (e.g. the
            first value) keeps the variance accurate.
        shift : array_like (n_columns,) or float, default 0

        Returns
        -------
        Standardizer
        """
        if np.any(np.asarray(count) <= 0):
            raise ValueError("every column needs at least one value.")
        return cls._from_mean_std(*mean_std(count, total, total_sq, shift))

    @classmethod
    def _from_mean_std(cls, mean: np.ndarray, std: np.ndarray) -> Standardizer:
        return cls(mean, np.where(is_constant(mean, std), 1.0, std))

    def fit(self, X: ArrayLike) -> Standardizer:
        """Compute ``mean_`` and ``scale_`` from ``X``, ignoring NaN cells.

        Parameters
        ----------
        X : array_like (n_samples, n_columns) or (n_samples,)
            Data; a 1-D array is one column.

        Returns
        -------
        self
        """
        X = np.asarray(X, dtype=np.float64)
        X = X.reshape(len(X), -1)
        counts = np.sum(~np.isnan(X), axis=0)
        if X.shape[0] == 0 or np.any(counts == 0):
            raise ValueError("every column needs at least one non-missing value.")
        mean = np.nanmean(X, axis=0)
        s = self._from_mean_std(mean, np.sqrt(np.nanmean((X - mean) ** 2, axis=0)))
        self.mean_, self.scale_ = s.mean_, s.scale_
        return self

    def _check(self, X: ArrayLike) -> np.ndarray:
        if self.mean_ is None or self.scale_ is None:
            raise ValueError("this Standardizer is not fitted: call fit first.")
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1:] != self.mean_.shape and not (X.ndim == 1 and self.mean_.shape == (1,)):
            raise ValueError(
                f"X has {X.shape[-1] if X.ndim else 0} columns, the standardizer "
                f"{self.mean_.shape[0]}."
            )
        return X

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return ``(X - mean_) / scale_`` as a new float64 array of ``X``'s shape.

        Parameters
        ----------
        X : array_like (n_samples, n_columns), or (n_samples,) for one column

        Returns
        -------
        ndarray of float64, the shape of ``X``
        """
        X = self._check(X)
        if X.ndim == 1 and self.mean_.shape == (1,):
            return (X - self.mean_[0]) / self.scale_[0]
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Return ``Z * scale_ + mean_``: standardised values back on the data's scale.

        Parameters
        ----------
        Z : array_like (n_samples, n_columns), or (n_samples,) for one column

        Returns
        -------
        ndarray of float64, the shape of ``Z``
        """
        Z = self._check(Z)
        if Z.ndim == 1 and self.mean_.shape == (1,):
            return Z * self.scale_[0] + self.mean_[0]
        return Z * self.scale_ + self.mean_

    def __repr__(self) -> str:
        """``Standardizer(n_columns=...)``, or ``Standardizer()`` when not fitted."""
        if self.mean_ is None:
            return "Standardizer()"
        return f"Standardizer(n_columns={self.mean_.shape[0]})"


def mean_std(
    count: ArrayLike, total: ArrayLike, total_sq: ArrayLike, shift: ArrayLike = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return means and (population) standard deviations from one pass of running sums.

    The sums are of ``x - shift`` and ``(x - shift)**2`` over ``count`` values (> 0): the
    moments of the command line's scan (``_table.Stats``), of ``Standardizer.from_moments``
    and of the regression figures.
    """
    n = np.asarray(count, dtype=np.float64)
    m = np.asarray(total, dtype=np.float64) / n
    var = np.maximum(np.asarray(total_sq, dtype=np.float64) / n - m * m, 0.0)
    return m + np.asarray(shift, dtype=np.float64), np.sqrt(var)


def is_constant(mean: ArrayLike, std: ArrayLike) -> np.ndarray:
    """Return whether each column is constant: its spread is rounding noise.

    Constant means ``std <= 1e-12 * max(|mean|, 1)`` (or NaN). Such a column gets scale 1
    (``Standardizer``), and a constant target has no R^2 (``fastmlp evaluate``).
    """
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    return ~(std > 1e-12 * np.maximum(np.abs(mean), 1.0))


def class_names_of(labels: ArrayLike) -> tuple[str, ...]:
    """Return the sorted class names of a label column: numbers in numeric order, then text.

    Numbers given as numbers are named without a decimal point when integer-valued (``1.0`` is
    class ``"1"``); text is kept as written (stripped), so ``"01"`` stays ``"01"`` and ``"1e3"``
    stays ``"1e3"``. Texts that are one number written two ways (``"1"``, ``"1.0"``) are one
    class, named by its shortest spelling; ``class_lookup`` maps either spelling to it.

    Parameters
    ----------
    labels : array_like (n_samples,)
        Labels: numbers, booleans or strings.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> class_names_of(["b", "a", "b"])
    ('a', 'b')
    >>> class_names_of([10, 2, 2.0])
    ('2', '10')
    >>> class_names_of(["10", "02", "01", "1.0"])
    ('01', '02', '10')
    """
    names = {label_name(v) for v in np.asarray(labels).reshape(-1).tolist()}

    def key(name: str) -> tuple:
        number = _number(name)
        return (1, 0.0, 0, name) if number is None else (0, number, len(name), name)

    kept, seen = [], set()
    for name in sorted(names, key=key):
        number = _number(name)
        if number is not None and number in seen:
            continue  # the same number, spelt another way
        if number is not None:
            seen.add(number)
        kept.append(name)
    return tuple(kept)


def _number(name: str) -> float | None:
    try:
        number = float(name)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def label_name(value: Any) -> str:
    """Return one label's class name: ``1.0`` -> ``"1"``, ``True`` -> ``"True"``, text as written.

    Text is only stripped: ``" 01 "`` -> ``"01"``, ``"1e3"`` stays ``"1e3"``.
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def class_lookup(class_names: Sequence[str]):
    """Return ``code(value) -> int | None``: the index of a label's class in ``class_names``.

    A label's name (``label_name``) is looked up as written; a number that is not one of the
    names as written matches the class of the same numeric value (``"1.0"`` or ``1`` -> class
    ``"1"``; ``"1"`` -> class ``"01"``), when exactly one class has that value.
    """
    exact = {name: i for i, name in enumerate(class_names)}
    by_value: dict[float, int | None] = {}
    for i, name in enumerate(class_names):
        number = _number(name)
        if number is not None:
            by_value[number] = None if number in by_value else i  # ambiguous: no match

    def code(value: Any) -> int | None:
        name = label_name(value)
        i = exact.get(name)
        if i is None and by_value:
            number = _number(name)
            i = None if number is None else by_value.get(number)
        return i

    return code


@dataclass(eq=False)
class Preprocessor:
    """What a model trained on a table remembers about it; ``save``/``load`` carry it.

    Parameters
    ----------
    feature_names : tuple of str, optional
        The input columns, in the model's input order (``None``: columns by position).
    target_name : str, optional
        The label column's name.
    class_names : tuple of str, optional
        A classifier's classes: output unit (softmax) or value (sigmoid, 2 names) ``i`` is
        class ``class_names[i]``. ``None`` for a regressor.
    features : Standardizer, optional
        Applied to the inputs before the network (``None``: inputs used as they are).
    target : Standardizer, optional
        A regressor's target scaling: the network learns ``target.transform(y)`` and
        predictions are returned through ``target.inverse_transform``.
    fill : ndarray (n_features,), optional
        Values that replace missing (NaN) inputs, e.g. the training means (``--impute mean``);
        ``None``: a missing input is an error.

    Examples
    --------
    >>> p = Preprocessor.for_regressor(np.array([[1.0], [3.0]]), np.array([10.0, 20.0]))
    >>> p.onnx_kwargs()["target_mean"].tolist(), p.onnx_kwargs()["target_scale"].tolist()
    ([15.0], [5.0])
    """

    feature_names: tuple[str, ...] | None = None
    target_name: str | None = None
    class_names: tuple[str, ...] | None = None
    features: Standardizer | None = None
    target: Standardizer | None = None
    fill: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def for_classifier(
        cls, X: ArrayLike, labels: ArrayLike, *, scale: bool = True,
        feature_names: Sequence[str] | None = None, target_name: str | None = None,
    ) -> Preprocessor:  # fmt: skip
        """Fit on training data with class labels: feature scaling and the sorted class names.

        Parameters
        ----------
        X : array_like (n_samples, n_features)
        labels : array_like (n_samples,)
            Class labels of any kind (``class_names_of`` names them).
        scale : bool, default True
            Standardise the features.
        feature_names : sequence of str, optional
        target_name : str, optional

        Returns
        -------
        Preprocessor
        """
        return cls(
            feature_names=None if feature_names is None else tuple(feature_names),
            target_name=target_name,
            class_names=class_names_of(labels),
            features=Standardizer().fit(X) if scale else None,
        )

    @classmethod
    def for_regressor(
        cls, X: ArrayLike, y: ArrayLike, *, scale: bool = True, scale_target: bool = True,
        feature_names: Sequence[str] | None = None, target_name: str | None = None,
    ) -> Preprocessor:  # fmt: skip
        """Fit on training data with a numeric target: feature and target scaling.

        Parameters
        ----------
        X : array_like (n_samples, n_features)
        y : array_like (n_samples,) or (n_samples, n_out)
        scale, scale_target : bool, default True
            Standardise the features; the target.
        feature_names : sequence of str, optional
        target_name : str, optional

        Returns
        -------
        Preprocessor
        """
        return cls(
            feature_names=None if feature_names is None else tuple(feature_names),
            target_name=target_name,
            features=Standardizer().fit(X) if scale else None,
            target=Standardizer().fit(y) if scale_target else None,
        )

    @property
    def is_classifier(self) -> bool:
        """True when the model predicts classes (``class_names`` is set)."""
        return self.class_names is not None

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Raw inputs -> the network's inputs: fill missing cells, then standardise.

        Parameters
        ----------
        X : array_like (n_samples, n_features)

        Returns
        -------
        ndarray (n_samples, n_features) of float64

        Raises
        ------
        ValueError
            For a NaN input when there are no fill values.
        """
        X = np.array(X, dtype=np.float64)  # a copy: filled in place
        missing = np.isnan(X)
        if missing.any():
            if self.fill is None:
                row, col = np.argwhere(missing)[0]
                raise ValueError(
                    f"X[{row}, {col}] is missing (NaN) and this model has no fill values."
                )
            X[missing] = np.broadcast_to(self.fill, X.shape)[missing]
        return X if self.features is None else self.features.transform(X)

    def encode(self, labels: ArrayLike) -> np.ndarray:
        """Class labels -> class indices ``(n_samples,)`` (int64).

        Parameters
        ----------
        labels : array_like (n_samples,)

        Returns
        -------
        ndarray (n_samples,) of int64

        Raises
        ------
        ValueError
            For a label that is not one of ``class_names`` (naming it and its row).
        """
        if self.class_names is None:
            raise ValueError("encode needs a classifier's Preprocessor (class_names is None).")
        code = class_lookup(self.class_names)
        out = np.empty(len(labels), dtype=np.int64)
        for row, value in enumerate(np.asarray(labels).reshape(-1).tolist()):
            i = code(value)
            if i is None:
                raise ValueError(
                    f"label {label_name(value)!r} (row {row}) is not one of the model's classes "
                    f"{list(self.class_names)}"
                )
            out[row] = i
        return out

    def decode(self, indices: ArrayLike) -> np.ndarray:
        """Class indices -> class names (an array of str).

        Parameters
        ----------
        indices : array_like of int (n_samples,)

        Returns
        -------
        ndarray (n_samples,) of str
        """
        if self.class_names is None:
            raise ValueError("decode needs a classifier's Preprocessor (class_names is None).")
        return np.asarray(self.class_names)[np.asarray(indices, dtype=np.int64)]

    def scale_target(self, y: ArrayLike) -> np.ndarray:
        """Map a regression target to what the network learns (standardised if ``target``)."""
        y = np.asarray(y, dtype=np.float64)
        return y if self.target is None else self.target.transform(y)

    def unscale_target(self, out: ArrayLike) -> np.ndarray:
        """Map the network's outputs to predictions on the target's own scale."""
        out = np.asarray(out, dtype=np.float64)
        return out if self.target is None else self.target.inverse_transform(out)

    def onnx_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments of an exporter, ``to_onnx(net, path, **kwargs)``.

        Returns
        -------
        dict
            ``feature_names`` (list of str or None), ``class_names`` (list of str or None),
            ``input_mean``, ``input_scale``, ``input_fill`` (float64 ``(n_features,)`` or
            None), ``target_mean``, ``target_scale`` (float64 ``(n_out,)`` or None).
        """
        f, t = self.features, self.target
        return {
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "class_names": None if self.class_names is None else list(self.class_names),
            "input_mean": None if f is None else f.mean_.copy(),
            "input_scale": None if f is None else f.scale_.copy(),
            "input_fill": None if self.fill is None else np.array(self.fill, dtype=np.float64),
            "target_mean": None if t is None else t.mean_.copy(),
            "target_scale": None if t is None else t.scale_.copy(),
        }


class PreprocessedMLP:
    """An ``MLP`` with its ``Preprocessor``: fits and predicts on raw inputs and labels.

    Parameters
    ----------
    net : MLP
        The network (its input width is the number of features; a classifier's output
        width the number of classes, or 1 sigmoid unit for 2 classes).
    preprocessor : Preprocessor
        Fitted on the training data (``Preprocessor.for_classifier`` / ``for_regressor``).

    Attributes
    ----------
    net : MLP
    preprocessor : Preprocessor
    """

    def __init__(self, net: MLP, preprocessor: Preprocessor) -> None:
        self.net, self.preprocessor = net, preprocessor

    def fit(self, X: ArrayLike, y: ArrayLike, **fit_kwargs: Any) -> PreprocessedMLP:
        """Train the network on raw ``X`` and labels (or a raw regression target).

        Parameters
        ----------
        X : array_like (n_samples, n_features)
        y : array_like (n_samples,)
            Class labels (classifier) or target values (regressor).
        **fit_kwargs
            ``MLP.fit``'s arguments (``epochs``, ``lr``, ...). A ``validation_data`` pair is
            given raw too.

        Returns
        -------
        self
        """
        if "validation_data" in fit_kwargs and fit_kwargs["validation_data"] is not None:
            X_val, y_val = fit_kwargs["validation_data"]
            fit_kwargs["validation_data"] = (self.preprocessor.transform(X_val),
                                             self._targets(y_val))  # fmt: skip
        self.net.fit(self.preprocessor.transform(X), self._targets(y), **fit_kwargs)
        return self

    def _targets(self, y: ArrayLike) -> np.ndarray:
        p = self.preprocessor
        if not p.is_classifier:
            return p.scale_target(y)
        codes = p.encode(y)
        return codes if self.net.output == "softmax" else codes.astype(np.float64)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict on raw inputs: a regressor's values on the target's scale, else the outputs.

        Parameters
        ----------
        X : array_like (n_samples, n_features)

        Returns
        -------
        ndarray (n_samples, n_out) of float64
            Regressor: predictions in the target's units. Classifier: the network's outputs
            (softmax probabilities, or the sigmoid's P(class 1)).
        """
        out = self.net.predict(self.preprocessor.transform(X))
        return self.preprocessor.unscale_target(out) if not self.preprocessor.is_classifier \
            else out.astype(np.float64)  # fmt: skip

    def predict_classes(self, X: ArrayLike) -> np.ndarray:
        """Predict class names on raw inputs.

        Parameters
        ----------
        X : array_like (n_samples, n_features)

        Returns
        -------
        ndarray (n_samples,) of str
        """
        return self.preprocessor.decode(self.net.predict_classes(self.preprocessor.transform(X)))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the network and its preprocessing to one ``.npz`` (``fastmlp.persistence``).

        Parameters
        ----------
        path : str or os.PathLike
        """
        from . import persistence

        persistence.save(self.net, path, preprocessing=self.preprocessor)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PreprocessedMLP:
        """Load a model saved with its preprocessing (a file without any gets an empty one).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        PreprocessedMLP
        """
        from . import persistence
        from .model import MLP

        net, pre = persistence.load_with_preprocessing(MLP, path)
        return cls(net, pre if pre is not None else Preprocessor())

    def __repr__(self) -> str:
        """Show the network and its preprocessing."""
        return f"PreprocessedMLP({self.net!r}, {self.preprocessor!r})"
