"""Argument checks shared by the operations: fail early, name the culprit."""

import numbers

import numpy as np


def check_array(name, array, ndim=None):
    """Check that ``array`` is a floating-point array of the given rank."""
    if not hasattr(array, "dtype") or not hasattr(array, "shape"):
        raise TypeError(f"{name} must be an array or Variable, "
                        f"got {type(array).__name__}")
    if not np.issubdtype(np.dtype(array.dtype), np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype "
                        f"{array.dtype} (convert with .astype(np.float32))")
    if ndim is not None and len(array.shape) != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape "
                         f"{tuple(array.shape)}")


def check_same_dtype(**arrays):
    """Check that all given arrays share one dtype."""
    dtypes = {name: np.dtype(a.dtype) for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{n} is {d}" for n, d in dtypes.items())
        raise TypeError(f"dtypes differ ({listed}); cast them to one dtype")


def pair(name, value, minimum):
    """Return ``value`` as an (int, int) pair, each at least ``minimum``."""
    values = value if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool)
            for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, "
                        f"got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def output_size(name, size, kernel, stride, dilation, axis):
    """Return the output length of a sliding window, or raise if none fits."""
    span = dilation * (kernel - 1) + 1
    if size < span:
        raise ValueError(
            f"{name}: the kernel spans {span} pixels along the {axis} axis "
            f"(kernel {kernel}, dilation {dilation}) but the input is only "
            f"{size} pixels {axis}")
    return (size - span) // stride + 1
