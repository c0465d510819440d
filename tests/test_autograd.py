"""The define-by-run engine: gradient accumulation, graph walking, no_grad,
consumed graphs, argument checks of backward, and no in-place surprises."""

import numpy as np
import pytest

import reference_ops as ref
from gradcheck import check_gradients
from op_cases import make_op_cases
from skrcnn.autograd import Function, Variable, grad_enabled, no_grad
from skrcnn.functions import (bias_add, concat, conv2d, crop, max_pool2d,
                              pad, softmax_cross_entropy, tanh)


def _rng(seed):
    return np.random.default_rng(seed)


# ======================================================== shared weights

def _recurrent(x, weights, bias):
    """Three conv2d applications chained like a recurrent network.

    ``weights`` holds one Variable per application: the same object three
    times for a shared weight, or three distinct copies.
    """
    h = x
    for k, w in enumerate(weights):
        dilation = 2 if k == 1 else 1  # a "same" 3x3 conv, dilated or not
        h = tanh(conv2d(pad(h, dilation), w, bias, dilation=dilation))
    return h


def _shared_weight_problem(seed=0):
    rng = _rng(seed)
    x = rng.standard_normal((2, 3, 7, 6))
    w = 0.4 * rng.standard_normal((3, 3, 3, 3))
    b = 0.1 * rng.standard_normal(3)
    return x, w, b


@pytest.mark.parametrize("uses", [2, 3])
def test_shared_weight_gradient_is_sum_over_uses(uses):
    x, w, b = _shared_weight_problem()
    shared = Variable(w.copy(), requires_grad=True)
    shared_b = Variable(b.copy(), requires_grad=True)
    out = _recurrent(x, [shared] * uses, shared_b)
    grad_y = _rng(1).standard_normal(out.shape)
    out.backward(grad_y)

    copies = [Variable(w.copy(), requires_grad=True) for _ in range(uses)]
    b_copies = Variable(b.copy(), requires_grad=True)
    out_copies = _recurrent(x, copies, b_copies)
    np.testing.assert_array_equal(out.data, out_copies.data)
    out_copies.backward(grad_y)

    per_use = [c.grad for c in copies]
    # The uses genuinely differ: otherwise the sum would test nothing.
    assert not np.allclose(per_use[0], per_use[1])
    np.testing.assert_allclose(shared.grad, sum(per_use), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(shared_b.grad, b_copies.grad, rtol=1e-12,
                               atol=1e-12)


def test_shared_weight_gradient_matches_numerical():
    x, w, b = _shared_weight_problem(seed=2)
    check_gradients(lambda a, k, c: _recurrent(a, [k] * 3, c), [x, w, b],
                    seed=3)


def test_shared_weight_gradient_as_leaf_of_a_longer_graph():
    # The weight is used by two convolutions, then a crop and the loss.
    x, w, b = _shared_weight_problem(seed=4)
    targets = _rng(5).integers(-1, 3, size=(2, 3, 2))

    def f(a, k):
        h = tanh(conv2d(pad(a, 1), k))
        h = conv2d(h, k)
        return softmax_cross_entropy(crop(h, 1, 1, 3, 2), targets)

    check_gradients(f, [x, w], seed=6)


# ============================================================= diamonds

def test_value_used_twice_diamond():
    rng = _rng(7)
    x = rng.standard_normal((2, 2, 3, 3))
    r1, r2 = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(
        (2, 2, 3, 3))
    xv = Variable(x, requires_grad=True)
    a = tanh(xv)
    out = concat([a, tanh(a)])  # a feeds two branches that rejoin
    out.backward(np.concatenate([r1, r2], axis=1))
    t = np.tanh(x)
    expected = (r1 + r2 * (1 - np.tanh(t) ** 2)) * (1 - t ** 2)
    np.testing.assert_allclose(xv.grad, expected, rtol=1e-13, atol=1e-15)
    check_gradients(lambda v: concat([tanh(v), tanh(tanh(v))]), [x], seed=8)


def test_same_variable_twice_in_one_function():
    rng = _rng(9)
    x = rng.standard_normal((1, 2, 3, 3))
    xv = Variable(x, requires_grad=True)
    grad_y = rng.standard_normal((1, 4, 3, 3))
    concat([xv, xv]).backward(grad_y)
    np.testing.assert_array_equal(xv.grad, grad_y[:, :2] + grad_y[:, 2:])

    # x is both the images and the filters of one convolution.
    w = rng.standard_normal((2, 2, 3, 3))
    wv = Variable(w, requires_grad=True)
    y = conv2d(wv, wv)
    grad_y = rng.standard_normal(y.shape)
    y.backward(grad_y)
    gx, gw, _ = ref.conv2d_backward(w, w, grad_y)
    np.testing.assert_allclose(wv.grad, gx + gw, rtol=1e-13, atol=1e-13)
    check_gradients(lambda v: conv2d(v, v), [w], seed=10)


def test_long_diamond_with_different_depths():
    # One branch is 1 op long, the other 6: the short branch's gradient must
    # wait for the long one (generation order), or be counted too early.
    x = _rng(11).standard_normal((1, 2, 4, 4))

    def f(v):
        long = v
        for _ in range(6):
            long = tanh(long)
        return concat([tanh(v), long, v])

    check_gradients(f, [x], seed=12)


# ============================================================ deep chains

def test_very_deep_chain_backward_without_recursion():
    depth = 5000
    x = np.array([0.9, -0.3, 0.05])
    xv = Variable(x, requires_grad=True)
    y = xv
    for _ in range(depth):
        y = tanh(y)
    y.backward(np.ones(3))
    # d/dx of tanh^depth(x) = prod_k (1 - tanh^(k+1)(x)^2)
    value, expected = x.copy(), np.ones(3)
    for _ in range(depth):
        value = np.tanh(value)
        expected *= 1 - value ** 2
    np.testing.assert_array_equal(y.data, value)
    np.testing.assert_allclose(xv.grad, expected, rtol=1e-10)


def test_very_deep_graph_can_be_dropped_without_backward():
    xv = Variable(np.ones(2), requires_grad=True)
    y = xv
    for _ in range(20000):
        y = tanh(y)
    del y  # freeing the chain must not overflow the stack
    assert xv.grad is None


# ================================================================ no_grad

def test_no_grad_records_nothing():
    x = Variable(_rng(13).standard_normal((1, 2, 4, 4)), requires_grad=True)
    w = Variable(_rng(14).standard_normal((3, 2, 2, 2)), requires_grad=True)
    assert grad_enabled()
    with no_grad():
        assert not grad_enabled()
        y = tanh(conv2d(x, w))
        with no_grad():
            assert not grad_enabled()
        assert not grad_enabled()
    assert grad_enabled()
    assert y.requires_grad is False
    assert y.creator is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward(np.ones(y.shape))
    assert x.grad is None and w.grad is None
    # The values are those of the recording computation.
    np.testing.assert_array_equal(y.data, tanh(conv2d(x, w)).data)


def test_no_grad_restores_state_after_exception():
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("boom")
    assert grad_enabled()
    y = tanh(Variable(np.ones(2), requires_grad=True))
    assert y.requires_grad and y.creator is not None


def test_backward_of_constant_computation_raises():
    y = tanh(np.ones((2, 2)))  # no input requires grad
    assert not y.requires_grad and y.creator is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward(np.ones((2, 2)))


# =============================================== grads only where wanted

def test_inputs_not_requiring_grad_get_none():
    rng = _rng(15)
    x = Variable(rng.standard_normal((2, 2, 5, 5)))
    w = Variable(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = Variable(rng.standard_normal(3))
    y = conv2d(x, w, b)
    grad_y = rng.standard_normal(y.shape)
    y.backward(grad_y)
    assert x.grad is None
    assert b.grad is None
    _, gw, _ = ref.conv2d_backward(x.data, w.data, grad_y)
    np.testing.assert_allclose(w.grad, gw, rtol=1e-12, atol=1e-12)


def test_only_bias_requires_grad():
    rng = _rng(16)
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b = Variable(rng.standard_normal(3), requires_grad=True)
    y = conv2d(x, w, b)
    grad_y = rng.standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(b.grad, grad_y.sum(axis=(0, 2, 3)),
                               rtol=1e-13)


def test_only_some_concat_inputs_require_grad():
    rng = _rng(17)
    a = Variable(rng.standard_normal((1, 2, 3, 3)))
    b = Variable(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)
    grad_y = rng.standard_normal((1, 3, 3, 3))
    concat([a, b]).backward(grad_y)
    assert a.grad is None
    np.testing.assert_array_equal(b.grad, grad_y[:, 2:])


def test_intermediate_grads_only_with_retain_grad():
    x = Variable(_rng(18).standard_normal((2, 3)), requires_grad=True)
    h = tanh(x)
    y = tanh(h)
    y.backward(np.ones((2, 3)))
    assert h.grad is None
    x2 = Variable(x.data.copy(), requires_grad=True)
    h2 = tanh(x2)
    y2 = tanh(h2)
    y2.backward(np.ones((2, 3)), retain_grad=True)
    np.testing.assert_allclose(h2.grad, 1 - np.tanh(h2.data) ** 2,
                               rtol=1e-14)
    np.testing.assert_array_equal(x2.grad, x.grad)


def test_backward_on_a_leaf_sets_its_grad():
    x = Variable(np.zeros((2, 2)), requires_grad=True)
    g = np.arange(4.0).reshape(2, 2)
    x.backward(g)
    np.testing.assert_array_equal(x.grad, g)


# ================================================== accumulation, zeroing

def test_gradients_accumulate_across_backward_calls():
    rng = _rng(19)
    x1, x2 = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal(
        (1, 2, 5, 7))
    w = rng.standard_normal((2, 2, 3, 3))

    def grad_of(x, wv):
        y = tanh(conv2d(x, wv, stride=(1, 2)))
        y.backward(np.ones(y.shape))
        return wv.grad

    ga = grad_of(x1, Variable(w.copy(), requires_grad=True))
    gb = grad_of(x2, Variable(w.copy(), requires_grad=True))
    shared = Variable(w.copy(), requires_grad=True)
    grad_of(x1, shared)
    np.testing.assert_array_equal(shared.grad, ga)
    grad_of(x2, shared)
    np.testing.assert_allclose(shared.grad, ga + gb, rtol=1e-14, atol=1e-15)
    shared.zero_grad()
    assert shared.grad is None
    grad_of(x2, shared)
    np.testing.assert_array_equal(shared.grad, gb)


def test_second_backward_through_consumed_graph_raises():
    x = Variable(_rng(20).standard_normal((1, 1, 4, 4)), requires_grad=True)
    loss = softmax_cross_entropy(max_pool2d(tanh(x), 2),
                                 np.zeros((1, 2, 2), dtype=int))
    loss.backward()
    first = x.grad.copy()
    with pytest.raises(RuntimeError, match="second time|consumed"):
        loss.backward()
    # The failed call added nothing.
    np.testing.assert_array_equal(x.grad, first)


def test_a_backward_failing_half_way_changes_no_leaf_gradient():
    """Concat's backward reaches x before tanh's fails (its graph was
    consumed): x.grad must stay as it was, not hold half a gradient."""
    x = Variable(_rng(21).standard_normal((1, 1, 2, 2)), requires_grad=True)
    h = tanh(x)
    both = concat([h, x])
    h.backward(np.ones_like(h.data))
    first = x.grad.copy()
    with pytest.raises(RuntimeError, match="second time"):
        both.backward(np.ones_like(both.data))
    np.testing.assert_array_equal(x.grad, first)


def test_second_backward_from_an_intermediate_raises():
    x = Variable(np.ones((2, 2)), requires_grad=True)
    h = tanh(x)
    y = tanh(h)
    y.backward(np.ones((2, 2)))
    with pytest.raises(RuntimeError):
        h.backward(np.ones((2, 2)))


# ==================================================== backward arguments

def test_backward_grad_shape_mismatch():
    y = tanh(Variable(np.ones((2, 3)), requires_grad=True))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))


def test_backward_grad_must_be_an_array():
    y = tanh(Variable(np.ones((2, 3)), requires_grad=True))
    with pytest.raises(TypeError, match=r"grad must be an array of shape "
                       r"\(2, 3\), got float"):
        y.backward(1.0)


def test_leaf_gradients_never_alias_the_given_grad():
    """bias_add passes its output gradient through unchanged: the leaf's
    .grad is still a copy, in the variable's dtype, and writable."""
    x = Variable(np.zeros((1, 2, 2, 2), np.float32), requires_grad=True)
    b = Variable(np.zeros(2, np.float32), requires_grad=True)
    y = bias_add(x, b)
    given = np.broadcast_to(np.float64(1.0), y.shape)  # read-only, float64
    y.backward(given)
    assert x.grad.dtype == np.float32 and x.grad.flags.writeable
    assert not np.shares_memory(x.grad, given)
    np.testing.assert_array_equal(x.grad, 1)
    np.testing.assert_array_equal(b.grad, 4)


def test_backward_without_grad_needs_single_element():
    y = tanh(Variable(np.ones((2, 3)), requires_grad=True))
    with pytest.raises(ValueError, match=r"grad must be given.*\(2, 3\)"):
        y.backward()


def test_backward_without_grad_on_single_element_uses_one():
    x = Variable(np.array([[0.3]]), requires_grad=True)
    tanh(x).backward()
    np.testing.assert_allclose(x.grad, [[1 - np.tanh(0.3) ** 2]], rtol=1e-14)


def test_variable_of_variable_is_rejected():
    with pytest.raises(TypeError):
        Variable(Variable(np.ones(2)))


# ========================================================= no in-place

OP_CASES = make_op_cases()


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_ops_do_not_modify_inputs_or_output_grad(name):
    inputs, constants, f = OP_CASES[name]
    arrays = [np.array(a) for a in inputs]
    consts = [np.array(c) for c in constants]
    before = [a.copy() for a in arrays]
    consts_before = [c.copy() for c in consts]
    variables = [Variable(a, requires_grad=True) for a in arrays]
    y = f(*variables, *consts)
    for a, b in zip(arrays + consts, before + consts_before):
        np.testing.assert_array_equal(a, b)
    out_before = np.array(y.data, copy=True)
    grad_y = _rng(21).standard_normal(np.shape(y.data))
    grad_before = grad_y.copy()
    y.backward(grad_y)
    for a, b in zip(arrays + consts, before + consts_before):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(grad_y, grad_before)
    np.testing.assert_array_equal(y.data, out_before)
    # Variables wrap their arrays without copying.
    for v, a in zip(variables, arrays):
        assert v.data is a


def test_custom_function_protocol():
    # A user-defined Function gets needs_input_grad before forward and its
    # gradient flows on to the package's ops.
    seen = {}

    class Scale(Function):
        def forward(self, x, s):
            seen["needs"] = self.needs_input_grad
            self.saved = (s,)
            return x * s

        def backward(self, grad_y):
            (s,) = self.saved
            return grad_y * s, None

    x = Variable(np.array([[1.0, 2.0]]), requires_grad=True)
    y = tanh(Scale()(x, np.array(3.0)))
    assert seen["needs"] == (True, False)
    y.backward(np.ones((1, 2)))
    np.testing.assert_allclose(x.grad, 3 * (1 - np.tanh([[3.0, 6.0]]) ** 2),
                               rtol=1e-14)
    with no_grad():
        Scale()(x, np.array(3.0))
    assert seen["needs"] == (False, False)


def test_bias_add_and_crop_chain_matches_numerical():
    rng = _rng(22)
    x = rng.standard_normal((2, 3, 5, 6))
    b = rng.standard_normal(3)
    check_gradients(lambda a, c: crop(bias_add(tanh(a), c), 1, 1, 3, 4),
                    [x, b], seed=23)
