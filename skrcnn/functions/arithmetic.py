"""Weighted sums of same-shape values (e.g. several losses into one)."""

import numbers

from ..autograd import Function
from ._checks import check_array, check_same_dtype


class WeightedSum(Function):
    def __init__(self, weights):
        self.weights = weights

    def forward(self, *xs):
        total = xs[0] * xs[0].dtype.type(self.weights[0])
        for x, weight in zip(xs[1:], self.weights[1:]):
            total = total + x * x.dtype.type(weight)
        return total

    def backward(self, grad_y):
        return tuple(grad_y * grad_y.dtype.type(weight) if needed else None
                     for weight, needed in zip(self.weights,
                                               self.needs_input_grad))


def weighted_sum(xs, weights):
    """``sum(w * x for x, w in zip(xs, weights))``, differentiable in ``xs``.

    Used to train on several losses at once (every recurrent instance's)
    with one backward pass through their shared graph.

    Parameters
    ----------
    xs : sequence of Variable or ndarray, all of one shape and dtype
    weights : sequence of float, one per element of ``xs``

    Returns
    -------
    Variable of the shape of ``xs[0]``
    """
    xs = list(xs)
    weights = list(weights)
    if not xs:
        raise ValueError("weighted_sum: xs is empty")
    if len(weights) != len(xs):
        raise ValueError(f"weighted_sum: {len(weights)} weights for "
                         f"{len(xs)} values")
    for k, weight in enumerate(weights):
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            raise TypeError(f"weighted_sum: weights[{k}] must be a real "
                            f"number, got {weight!r}")
    for k, x in enumerate(xs):
        check_array(f"weighted_sum: xs[{k}]", x)
        if tuple(x.shape) != tuple(xs[0].shape):
            raise ValueError(f"weighted_sum: xs[{k}] has shape "
                             f"{tuple(x.shape)}, xs[0] has "
                             f"{tuple(xs[0].shape)}")
    check_same_dtype(**{f"xs[{k}]": x for k, x in enumerate(xs)})
    return WeightedSum(tuple(float(w) for w in weights))(*xs)
