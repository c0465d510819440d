"""One representative call of every operation (a test helper).

Each case is ``(inputs, constants, f)``: ``f(*inputs, *constants)`` returns a
Variable; ``inputs`` are the float arrays to differentiate, ``constants`` are
arrays passed as they are (integer targets, class weights). Tests cast the
float arrays to the dtype under test and move everything to the device
under test.
"""

import numpy as np

from skrcnn.autograd import Variable
from skrcnn.functions import (avg_pool2d, bias_add, channel_slice, concat,
                              conv2d, conv_max_pool2d, crop, max_pool2d, pad,
                              softmax_cross_entropy, tanh, weighted_sum)


def distinct_values(rng, shape):
    """Values without ties, at least 1 apart (safe for max-pool gradchecks)."""
    size = int(np.prod(shape))
    return (rng.permutation(size).astype(np.float64) - size / 2).reshape(shape)


def loss_case(shape, seed, ignore_fraction=0.3, scale=2.0):
    """Random scores and targets with about ``ignore_fraction`` ignored."""
    rng = np.random.default_rng(seed)
    scores = scale * rng.standard_normal(shape)
    targets = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    targets[rng.random(targets.shape) < ignore_fraction] = -1
    return scores, targets


def make_op_cases(seed=18):
    rng = np.random.default_rng(seed)
    x4 = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((2, 3, 3, 2))
    b3 = rng.standard_normal(3)
    b2 = rng.standard_normal(2)
    perm = distinct_values(rng, (2, 3, 9, 8)) / 10
    scores, targets = loss_case((2, 4, 3, 5), seed=seed + 1)
    targets.flat[0] = 1
    assert (targets < 0).any()
    class_weight = np.array([1.0, 0.5, 2.0, 1.5])
    soft_targets = rng.random(scores.shape)
    soft_targets /= soft_targets.sum(axis=1, keepdims=True)
    return {
        "conv2d": ([x4, w, b2], [],
                   lambda a, k, c: conv2d(a, k, c, stride=(2, 1),
                                          dilation=(1, 2))),
        # 6x6 windows (36 taps): fused on NumPy, two operations on CuPy.
        "conv_max_pool2d": ([x4, w, b2], [],
                            lambda a, k, c: conv_max_pool2d(a, k, c, 6)),
        "max_pool2d": ([perm], [],
                       lambda a: max_pool2d(a, 3, stride=2, dilation=1)),
        # Non-overlapping windows of 9+ taps: the scatter backward.
        "max_pool2d_scatter": ([perm], [],
                               lambda a: max_pool2d(a, 3, stride=(3, 4))),
        "avg_pool2d": ([x4], [],
                       lambda a: avg_pool2d(a, (2, 3), stride=1, dilation=2)),
        "tanh": ([x4], [], tanh),
        "bias_add": ([x4, b3], [], bias_add),
        "concat": ([x4, x4[:, :2] * 2], [], lambda a, c: concat([a, c])),
        "crop": ([x4], [], lambda a: crop(a, 1, 2, 5, 4)),
        "channel_slice": ([x4], [], lambda a: channel_slice(a, 1, 3)),
        "pad": ([x4], [], lambda a: pad(a, (1, 0, 2, 1), 0.5)),
        "softmax_cross_entropy": (
            [scores], [targets],
            lambda s, t: softmax_cross_entropy(s, t)),
        "softmax_cross_entropy_weighted": (
            [scores], [targets, class_weight],
            lambda s, t, c: softmax_cross_entropy(s, t, c)),
        "softmax_cross_entropy_soft": (
            [scores], [targets, class_weight, soft_targets],
            lambda s, t, c, p: softmax_cross_entropy(
                s, t, c, soft_targets=p, soft_weight=0.4)),
        "weighted_sum": ([x4, x4[::-1] * 3, np.tanh(x4)], [],
                         lambda a, c, d: weighted_sum([a, c, d],
                                                      [0.5, -2.0, 1.25])),
    }


def conv_case_arrays(case, dtype=np.float64):
    """Random ``x``, ``weight`` and ``bias`` for a case that starts with
    ``(n, c, h, w, o, kh, kw)``, seeded by those numbers."""
    n, c, h, w, o, kh, kw = case[:7]
    rng = np.random.default_rng(sum(case[:7]))
    return (rng.standard_normal((n, c, h, w)).astype(dtype),
            rng.standard_normal((o, c, kh, kw)).astype(dtype),
            rng.standard_normal(o).astype(dtype))


def cast_constants(constants, dtype):
    """Float constants to ``dtype``; integer ones unchanged."""
    return [np.asarray(c, dtype=dtype)
            if np.issubdtype(np.asarray(c).dtype, np.floating) else c
            for c in constants]


def conv_all(x, weight, bias, stride, dilation, grad_y):
    """conv2d forward and backward on copies: (y, grad_x, grad_w, grad_b)."""
    xv = Variable(x.copy(), requires_grad=True)
    wv = Variable(weight.copy(), requires_grad=True)
    bv = Variable(bias.copy(), requires_grad=True)
    y = conv2d(xv, wv, bv, stride=stride, dilation=dilation)
    y.backward(grad_y.copy())
    return y.data.copy(), xv.grad, wv.grad, bv.grad


def spy_chunks(monkeypatch):
    """Record every chunk list the convolution plans."""
    plans = []
    from skrcnn.functions import convolution

    original = convolution._chunks

    def spy(*args, **kwargs):
        chunks = original(*args, **kwargs)
        plans.append(list(chunks))
        return chunks

    monkeypatch.setattr(convolution, "_chunks", spy)
    return plans
