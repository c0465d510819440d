"""The gradient checker must pass correct gradients and reject wrong ones."""

import numpy as np
import pytest

from gradcheck import check_gradients, numerical_directional_derivative
from skrcnn.autograd import Function


class Cube(Function):
    """y = x**3 with a correct backward."""

    def forward(self, x):
        self.saved = (x,)
        return x ** 3

    def backward(self, grad_y):
        (x,) = self.saved
        return (3 * x ** 2 * grad_y,)


class CubeWrongScale(Cube):
    """Backward off by a factor: 2 x**2 instead of 3 x**2."""

    def backward(self, grad_y):
        (x,) = self.saved
        return (2 * x ** 2 * grad_y,)


class CubeOneEntryOff(Cube):
    """Backward correct except for a 1% error in a single entry."""

    def backward(self, grad_y):
        (grad,) = super().backward(grad_y)
        grad = grad.copy()
        grad.flat[grad.size // 2] *= 1.01
        return (grad,)


class CubeNoGrad(Cube):
    """Backward that forgets to return a gradient."""

    def backward(self, grad_y):
        return (None,)


class CubeWrongShape(Cube):
    """Backward that returns a reduced gradient, broadcastable but wrong."""

    def backward(self, grad_y):
        (grad,) = super().backward(grad_y)
        return (grad.sum(axis=0),)


class ProductWrongSecondInput(Function):
    """y = a * b, gradient of b wrong (uses b instead of a)."""

    def forward(self, a, b):
        self.saved = (a, b)
        return a * b

    def backward(self, grad_y):
        a, b = self.saved
        return grad_y * b, grad_y * b


class SumOfSquares(Function):
    """A scalar output: sum(x**2)."""

    def forward(self, x):
        self.saved = (x,)
        return (x * x).sum()

    def backward(self, grad_y):
        (x,) = self.saved
        return (2 * x * grad_y,)


def _x(shape=(3, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_numerical_directional_derivative_matches_closed_form():
    x = _x()
    v = np.random.default_rng(1).standard_normal(x.shape)
    r = np.random.default_rng(2).standard_normal(x.shape)
    numeric = numerical_directional_derivative(lambda a: Cube()(a), [x], [v],
                                               eps=1e-6, weights=r)
    exact = np.sum(r * 3 * x ** 2 * v)
    assert numeric == pytest.approx(exact, rel=1e-8, abs=1e-10)


def test_numerical_directional_derivative_scalar_output_and_fixed_inputs():
    a, b = _x(seed=3), _x(seed=4)
    v = np.random.default_rng(5).standard_normal(a.shape)

    def f(p, q):
        return SumOfSquares()(ProductWrongSecondInput()(p, q))

    numeric = numerical_directional_derivative(f, [a, b], [None, v])
    exact = np.sum(2 * a * a * b * v)  # d/db sum((a b)^2) = 2 a^2 b
    assert numeric == pytest.approx(exact, rel=1e-7, abs=1e-9)


def test_correct_gradients_pass():
    # Non-scalar output: the gradient returned is that of sum(R * x**3).
    check_gradients(lambda a: Cube()(a), [_x()], seed=0)
    check_gradients(lambda a: SumOfSquares()(a), [_x()], seed=1)


def test_returned_gradient_is_the_analytic_one_for_scalar_output():
    x = _x()
    (grad,) = check_gradients(lambda a: SumOfSquares()(a), [x], seed=0)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-15)


def test_caller_inputs_are_not_modified():
    x = _x()
    before = x.copy()
    check_gradients(lambda a: Cube()(a), [x], seed=0)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("wrong", [CubeWrongScale, CubeOneEntryOff])
def test_wrong_gradient_raises(wrong):
    with pytest.raises(AssertionError, match="gradient mismatch for input 0"):
        check_gradients(lambda a: wrong()(a), [_x((5, 6))], seed=0)


def test_wrong_gradient_of_second_input_raises():
    with pytest.raises(AssertionError, match="gradient mismatch for input 1"):
        check_gradients(lambda a, b: ProductWrongSecondInput()(a, b),
                        [_x(seed=1), _x(seed=2)], seed=0)


def test_missing_gradient_raises():
    with pytest.raises(AssertionError, match="got no gradient"):
        check_gradients(lambda a: CubeNoGrad()(a), [_x()], seed=0)


def test_wrong_gradient_shape_raises():
    with pytest.raises(AssertionError, match="gradient shape"):
        check_gradients(lambda a: CubeWrongShape()(a), [_x()], seed=0)
