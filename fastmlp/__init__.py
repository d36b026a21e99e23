"""fastmlp: small multilayer perceptrons trained by online SGD in Numba kernels."""

from . import datasets
from .errors import DivergenceError
from .gradcheck import GradientCheck, check_gradients
from .layout import Layout
from .many import train_many
from .model import MLP

__all__ = [
    "MLP",
    "Layout",
    "DivergenceError",
    "check_gradients",
    "GradientCheck",
    "train_many",
    "datasets",
    "__version__",
]
__version__ = "0.1.0"
