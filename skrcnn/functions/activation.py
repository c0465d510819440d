"""Point-wise non-linearities."""

from ..autograd import Function
from ..backend import get_array_module
from ._checks import check_array


class Tanh(Function):
    def forward(self, x):
        y = get_array_module(x).tanh(x)
        if self.needs_input_grad[0]:
            self.saved = (y,)  # the derivative needs only the output
        return y

    def backward(self, grad_y):
        (y,) = self.saved
        xp = get_array_module(y)
        grad_x = y * y
        xp.subtract(1, grad_x, out=grad_x)  # in place: no negated copy
        grad_x *= grad_y
        return (grad_x,)


def tanh(x):
    """Hyperbolic tangent, element-wise.

    Parameters
    ----------
    x : Variable or ndarray, floating point

    Returns
    -------
    Variable of the same shape
    """
    check_array("tanh: x", x)
    return Tanh()(x)
