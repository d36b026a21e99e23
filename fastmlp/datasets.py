"""Small datasets shipped with fastmlp: the 8x8 handwritten digits, and XOR."""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_digits", "digits_train_test", "xor"]


def load_digits(scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load the 8x8 handwritten digits (UCI optdigits, reduced; CC BY 4.0).

    Parameters
    ----------
    scale : bool, default True
        Divide the pixel counts (0..16) by 16 so features lie in [0, 1].

    Returns
    -------
    X : ndarray (1797, 64) float64
    y : ndarray (1797,) int64, labels 0..9
    """
    with resources.files("fastmlp").joinpath("data/digits.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as data:
            X = data["X"].astype(np.float64)
            y = data["y"].astype(np.int64)
    if scale:
        X /= 16.0
    return X, y


def digits_train_test(
    test_fraction: float = 0.2, seed: int = 0, scale: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split the digits into a fixed, stratified training and test set.

    With the defaults: 1,438 training and 359 test samples, the same every time.

    Parameters
    ----------
    test_fraction : float in (0, 1), default 0.2
        Fraction of each class held out for testing.
    seed : int, default 0
        Seed of the split.
    scale : bool, default True
        As in ``load_digits``.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        Rows of ``load_digits``' ``X`` ``(n, 64)`` and ``y`` ``(n,)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    X, y = load_digits(scale=scale)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):  # stratified: the same fraction of every class
        idx = np.flatnonzero(y == label)
        n_test = int(round(test_fraction * len(idx)))
        test[rng.choice(idx, size=n_test, replace=False)] = True
    return X[~test], y[~test], X[test], y[test]


def xor() -> tuple[np.ndarray, np.ndarray]:
    """Return the four XOR rows: ``X`` (4, 2) float64 and ``Y`` (4, 1) float64."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return X, Y
