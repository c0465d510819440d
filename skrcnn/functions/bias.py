"""Per-channel bias."""

from ..autograd import Function
from ._checks import check_array, check_same_dtype


class BiasAdd(Function):
    def forward(self, x, bias):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x + bias.reshape(shape)

    def backward(self, grad_y):
        axes = (0,) + tuple(range(2, grad_y.ndim))
        grad_bias = grad_y.sum(axis=axes) if self.needs_input_grad[1] else None
        return grad_y, grad_bias


def bias_add(x, bias):
    """Add ``bias[c]`` to every value of channel ``c`` (axis 1).

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, ...)
    bias : Variable or ndarray of shape (C,)

    Returns
    -------
    Variable of the shape of ``x``
    """
    check_array("bias_add: x", x)
    check_array("bias_add: bias", bias, 1)
    if len(x.shape) < 2 or x.shape[1] != bias.shape[0]:
        raise ValueError(f"bias_add: bias of shape {tuple(bias.shape)} does "
                         f"not match the channels of x, shape {tuple(x.shape)}")
    check_same_dtype(x=x, bias=bias)
    return BiasAdd()(x, bias)
