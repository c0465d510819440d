"""skrcnn: recurrent convolutional scene parsing for the scikit-learn world.

The package is built on a small define-by-run autograd of its own
(:mod:`skrcnn.autograd`, :mod:`skrcnn.functions`) that runs on NumPy, or on
CuPy when a GPU is available (:mod:`skrcnn.backend`).
"""

from . import functions
from .autograd import Function, Variable, no_grad
from .backend import gpu_available, resolve_device
from .preprocessing import ImageStandardizer
from .segmenter import RecurrentCNNSegmenter

__version__ = "0.1.0.dev0"

__all__ = ["Function", "ImageStandardizer", "RecurrentCNNSegmenter",
           "Variable", "functions", "gpu_available", "no_grad",
           "resolve_device", "__version__"]
