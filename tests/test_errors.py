"""Bad arguments fail early with the right exception type, and the message
names the argument and the offending shape or value."""

import re

import numpy as np
import pytest

from skrcnn.autograd import Variable
from skrcnn.functions import (avg_pool2d, bias_add, channel_slice, concat,
                              conv2d, crop, max_pool2d, pad,
                              softmax_cross_entropy, tanh, weighted_sum)


def _zeros(*shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def esc(text):
    return re.escape(text)


# ================================================================== conv2d

def test_conv2d_x_wrong_ndim():
    with pytest.raises(ValueError, match=r"conv2d: x.*4-dimensional.*"
                       + esc("(2, 3, 5)")):
        conv2d(_zeros(2, 3, 5), _zeros(1, 3, 2, 2))


def test_conv2d_weight_wrong_ndim():
    with pytest.raises(ValueError, match=r"conv2d: weight.*4-dimensional.*"
                       + esc("(3, 2, 2)")):
        conv2d(_zeros(1, 3, 5, 5), _zeros(3, 2, 2))


def test_conv2d_mismatched_channels():
    with pytest.raises(ValueError, match=r"x has 3 channels.*"
                       + esc("(1, 3, 5, 5)") + r".*weight expects 2.*"
                       + esc("(4, 2, 3, 3)")):
        conv2d(_zeros(1, 3, 5, 5), _zeros(4, 2, 3, 3))


@pytest.mark.parametrize("x_shape,w_shape,axis", [
    ((1, 1, 4, 9), (1, 1, 5, 3), "vertical"),
    ((1, 1, 9, 2), (1, 1, 3, 3), "horizontal"),
])
def test_conv2d_kernel_larger_than_input(x_shape, w_shape, axis):
    with pytest.raises(ValueError, match=r"conv2d.*" + esc(str(x_shape))
                       + r".*" + esc(str(w_shape)) + r".*" + axis):
        conv2d(_zeros(*x_shape), _zeros(*w_shape))


def test_conv2d_kernel_too_large_only_because_of_dilation():
    x, w = _zeros(1, 1, 6, 9), _zeros(1, 1, 3, 3)
    assert conv2d(x, w, dilation=(2, 1)).shape == (1, 1, 2, 7)  # span 5 fits
    with pytest.raises(ValueError, match=r"spans 7 pixels along the vertical"
                       r".*dilation 3.*only 6 pixels"):
        conv2d(x, w, dilation=(3, 1))


def test_conv2d_integer_input_is_type_error():
    with pytest.raises(TypeError, match=r"conv2d: x.*floating.*int"):
        conv2d(np.zeros((1, 1, 3, 3), dtype=np.int64), _zeros(1, 1, 2, 2))
    with pytest.raises(TypeError, match=r"conv2d: weight.*floating.*int32"):
        conv2d(_zeros(1, 1, 3, 3), np.zeros((1, 1, 2, 2), dtype=np.int32))


def test_conv2d_non_array_input_is_type_error():
    with pytest.raises(TypeError, match=r"conv2d: x.*list"):
        conv2d([[[[1.0]]]], _zeros(1, 1, 1, 1))


def test_conv2d_mixed_dtypes_is_type_error():
    with pytest.raises(TypeError, match=r"x is float32.*weight is float64"):
        conv2d(_zeros(1, 1, 3, 3, dtype=np.float32), _zeros(1, 1, 2, 2))
    with pytest.raises(TypeError, match=r"bias is float32"):
        conv2d(_zeros(1, 1, 3, 3), _zeros(1, 1, 2, 2),
               _zeros(1, dtype=np.float32))


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(stride=0), r"stride must be >= 1, got 0"),
    (dict(stride=(1, 0)), r"stride must be >= 1, got \(1, 0\)"),
    (dict(dilation=-1), r"dilation must be >= 1, got -1"),
    (dict(dilation=(2, -2)), r"dilation must be >= 1, got \(2, -2\)"),
])
def test_conv2d_bad_stride_or_dilation_value(kwargs, pattern):
    with pytest.raises(ValueError, match=r"conv2d: " + pattern):
        conv2d(_zeros(1, 1, 5, 5), _zeros(1, 1, 2, 2), **kwargs)


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(stride=1.5), r"stride must be an int or a pair of ints, got 1\.5"),
    (dict(stride=(1, 2, 3)), r"stride .*got \(1, 2, 3\)"),
    (dict(stride=True), r"stride .*got True"),
    (dict(dilation="2"), r"dilation .*got '2'"),
    (dict(dilation=(1, 2.0)), r"dilation .*got \(1, 2\.0\)"),
])
def test_conv2d_non_int_stride_or_dilation(kwargs, pattern):
    with pytest.raises(TypeError, match=r"conv2d: " + pattern):
        conv2d(_zeros(1, 1, 5, 5), _zeros(1, 1, 2, 2), **kwargs)


def test_conv2d_numpy_int_stride_is_accepted():
    y = conv2d(_zeros(1, 1, 5, 5), _zeros(1, 1, 2, 2), stride=np.int64(2))
    assert y.shape == (1, 1, 2, 2)


@pytest.mark.parametrize("bias_shape,error", [
    ((3,), ValueError), ((2, 1), ValueError), ((), ValueError),
])
def test_conv2d_bad_bias_shape(bias_shape, error):
    with pytest.raises(error, match=r"conv2d: bias.*" + esc(str(bias_shape))):
        conv2d(_zeros(1, 1, 5, 5), _zeros(2, 1, 2, 2), _zeros(*bias_shape))


# ================================================================= pooling

@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
def test_pool_wrong_ndim(pool):
    name = pool.__name__
    with pytest.raises(ValueError, match=name + r": x.*4-dimensional.*"
                       + esc("(1, 5, 5)")):
        pool(_zeros(1, 5, 5), 2)


@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
def test_pool_kernel_larger_than_input(pool):
    with pytest.raises(ValueError, match=pool.__name__ + r".*"
                       + esc("(1, 1, 3, 8)") + r".*spans 4.*vertical"):
        pool(_zeros(1, 1, 3, 8), 4)
    # fits without dilation, not with it
    assert pool(_zeros(1, 1, 5, 8), 3, stride=1).shape == (1, 1, 3, 6)
    with pytest.raises(ValueError, match=r"spans 7 pixels along the "
                       r"horizontal.*dilation 3.*only 6"):
        pool(_zeros(1, 1, 9, 6), 3, stride=1, dilation=3)


@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
def test_pool_bad_arguments(pool):
    x = _zeros(1, 1, 6, 6)
    name = pool.__name__
    with pytest.raises(ValueError, match=name + r": kernel_size must be >= 1"
                       r", got 0"):
        pool(x, 0)
    with pytest.raises(ValueError, match=name + r": stride must be >= 1, "
                       r"got \(0, 1\)"):
        pool(x, 2, stride=(0, 1))
    with pytest.raises(ValueError, match=name + r": dilation must be >= 1, "
                       r"got -2"):
        pool(x, 2, dilation=-2)
    with pytest.raises(TypeError, match=name + r": kernel_size must be an "
                       r"int or a pair of ints, got 2\.0"):
        pool(x, 2.0)
    with pytest.raises(TypeError, match=name + r": stride .*got 1\.5"):
        pool(x, 2, stride=1.5)
    with pytest.raises(TypeError, match=name + r": x must be a "
                       r"floating-point array, got dtype int64"):
        pool(np.zeros((1, 1, 6, 6), dtype=np.int64), 2)


# ===================================================== pointwise and bias

def test_tanh_integer_input():
    with pytest.raises(TypeError, match=r"tanh: x.*floating.*int64"):
        tanh(np.arange(3))
    with pytest.raises(TypeError, match=r"tanh: x .*array or Variable.*list"):
        tanh([0.5])


def test_bias_add_bad_bias_shape():
    with pytest.raises(ValueError, match=r"bias_add: bias of shape "
                       + esc("(4,)") + r".*" + esc("(2, 3, 5, 5)")):
        bias_add(_zeros(2, 3, 5, 5), _zeros(4))
    with pytest.raises(ValueError, match=r"bias_add: bias .*1-dimensional.*"
                       + esc("(3, 1)")):
        bias_add(_zeros(2, 3, 5, 5), _zeros(3, 1))


def test_bias_add_dtype_errors():
    with pytest.raises(TypeError, match=r"x is float64.*bias is float32"):
        bias_add(_zeros(2, 3), _zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match=r"bias_add: bias.*floating.*int"):
        bias_add(_zeros(2, 3), np.zeros(3, dtype=int))


# ================================================================== shapes

def test_crop_window_outside():
    x = _zeros(1, 2, 5, 6)
    for args in [(0, 0, 6, 1), (3, 0, 3, 1), (0, 4, 1, 3), (0, 0, 0, 2)]:
        top, left, height, width = args
        with pytest.raises(ValueError, match=esc(
                f"crop: window (top={top}, left={left}, height={height}, "
                f"width={width}) does not fit in x of shape (1, 2, 5, 6)")):
            crop(x, *args)


def test_crop_negative_and_non_int():
    x = _zeros(1, 2, 5, 6)
    with pytest.raises(ValueError, match=r"crop: top must be >= 0, got -1"):
        crop(x, -1, 0, 2, 2)
    with pytest.raises(TypeError, match=r"crop: width must be an int, "
                       r"got 2\.0"):
        crop(x, 0, 0, 2, 2.0)
    with pytest.raises(ValueError, match=r"crop: x.*4-dimensional.*"
                       + esc("(2, 5, 6)")):
        crop(_zeros(2, 5, 6), 0, 0, 1, 1)


def test_pad_negative():
    with pytest.raises(ValueError, match=r"pad: left must be >= 0, got -1"):
        pad(_zeros(1, 1, 3, 3), (0, 1, -1, 2))
    with pytest.raises(ValueError, match=r"pad: top must be >= 0, got -2"):
        pad(_zeros(1, 1, 3, 3), -2)


def test_pad_bad_widths():
    with pytest.raises(ValueError, match=r"pad: widths must be .*"
                       + esc("(1, 2)")):
        pad(_zeros(1, 1, 3, 3), (1, 2))
    with pytest.raises(TypeError, match=r"pad: right must be an int, "
                       r"got 1\.5"):
        pad(_zeros(1, 1, 3, 3), (1, 1, 1, 1.5))
    with pytest.raises(ValueError, match=r"pad: x.*4-dimensional.*"
                       + esc("(3, 3)")):
        pad(_zeros(3, 3), 1)


def test_concat_mismatched_shapes():
    a = _zeros(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"concat: xs\[1\] has shape "
                       + esc("(2, 1, 4, 6)") + r".*xs\[0\] of shape "
                       + esc("(2, 3, 4, 5)")):
        concat([a, _zeros(2, 1, 4, 6)])
    with pytest.raises(ValueError, match=r"concat: xs\[2\] has shape "
                       + esc("(3, 1, 4, 5)")):
        concat([a, _zeros(2, 1, 4, 5), _zeros(3, 1, 4, 5)])


def test_weighted_sum_errors():
    a = _zeros(2, 3)
    with pytest.raises(ValueError, match=r"weighted_sum: xs is empty"):
        weighted_sum([], [])
    with pytest.raises(ValueError, match=r"weighted_sum: 1 weights for 2 "):
        weighted_sum([a, a], [1.0])
    with pytest.raises(TypeError, match=r"weighted_sum: weights\[1\] must be"
                       r" a real number, got 'x'"):
        weighted_sum([a, a], [1.0, "x"])
    with pytest.raises(ValueError, match=r"weighted_sum: xs\[1\] has shape "
                       + esc("(3, 2)") + ".*" + esc("(2, 3)")):
        weighted_sum([a, _zeros(3, 2)], [1.0, 1.0])
    with pytest.raises(TypeError, match=r"weighted_sum: xs\[1\] must be a "
                       "floating-point array"):
        weighted_sum([a, np.zeros((2, 3), dtype=int)], [1.0, 1.0])
    with pytest.raises(TypeError, match=r"dtypes differ"):
        weighted_sum([a, _zeros(2, 3, dtype=np.float32)], [1.0, 1.0])


def test_concat_other_errors():
    with pytest.raises(ValueError, match=r"concat: only axis=1.*axis=0"):
        concat([_zeros(1, 1, 2, 2)] * 2, axis=0)
    with pytest.raises(ValueError, match=r"concat: xs is empty"):
        concat([])
    with pytest.raises(TypeError, match=r"xs\[0\] is float64.*xs\[1\] is "
                       r"float32"):
        concat([_zeros(1, 1, 2, 2), _zeros(1, 1, 2, 2, dtype=np.float32)])
    with pytest.raises(TypeError, match=r"concat: xs\[1\].*floating"):
        concat([_zeros(1, 1, 2, 2), np.zeros((1, 1, 2, 2), dtype=int)])


def test_channel_slice_errors():
    with pytest.raises(ValueError, match=r"channel_slice: channels 2:2.*"
                       + esc("(1, 4, 2, 2)")):
        channel_slice(_zeros(1, 4, 2, 2), 2, 2)
    with pytest.raises(ValueError, match=r"channel_slice: channels 1:5"):
        channel_slice(_zeros(1, 4, 2, 2), 1, 5)
    with pytest.raises(ValueError, match=r"channel_slice: start must be >= 0"):
        channel_slice(_zeros(1, 4, 2, 2), -1, 2)


# ==================================================================== loss

def test_loss_targets_out_of_range():
    with pytest.raises(ValueError, match=r"targets contain class 3 but "
                       r"scores have only 3 classes \(0\.\.2\)"):
        softmax_cross_entropy(_zeros(2, 3, 2, 2),
                              np.array([[[0, 1], [2, 3]], [[0, 0], [0, 0]]]))


def test_loss_float_targets():
    with pytest.raises(TypeError, match=r"targets must be an integer array"
                       r".*float64"):
        softmax_cross_entropy(_zeros(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"targets must be an integer array"
                       r".*list"):
        softmax_cross_entropy(_zeros(2, 3), [0, 1])


def test_loss_targets_shape_mismatch():
    with pytest.raises(ValueError, match=r"targets have shape "
                       + esc("(2, 4, 5)") + r", expected "
                       + esc("(2, 4, 4)") + r".*" + esc("(2, 3, 4, 4)")):
        softmax_cross_entropy(_zeros(2, 3, 4, 4),
                              np.zeros((2, 4, 5), dtype=int))
    with pytest.raises(ValueError, match=r"targets have shape "
                       + esc("(3,)") + r", expected " + esc("(2,)")):
        softmax_cross_entropy(_zeros(2, 3), np.zeros(3, dtype=int))


def test_loss_scores_errors():
    with pytest.raises(ValueError, match=r"scores must have shape \(N, K, "
                       r"\.\.\.\), got " + esc("(5,)")):
        softmax_cross_entropy(_zeros(5), np.zeros(5, dtype=int))
    with pytest.raises(TypeError, match=r"scores must be a floating-point"):
        softmax_cross_entropy(np.zeros((2, 3), dtype=int),
                              np.zeros(2, dtype=int))


def test_loss_class_weight_errors():
    scores, targets = _zeros(2, 3), np.array([0, 2])
    with pytest.raises(ValueError, match=r"class_weight has shape "
                       + esc("(4,)") + r", expected " + esc("(3,)")):
        softmax_cross_entropy(scores, targets, _zeros(4))
    with pytest.raises(TypeError, match=r"scores is float64.*class_weight "
                       r"is float32"):
        softmax_cross_entropy(scores, targets, _zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match=r"class_weight.*floating"):
        softmax_cross_entropy(scores, targets, np.ones(3, dtype=int))
    # A negative weight could drive the loss to -inf.
    with pytest.raises(ValueError, match=r"class_weight must be non-negative "
                       r"\(and not NaN\), got \[-1.0, 1.0, 1.0\]"):
        softmax_cross_entropy(scores, targets, np.array([-1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="class_weight must be non-negative"):
        softmax_cross_entropy(scores, targets, np.array([np.nan, 1.0, 1.0]))


def test_loss_soft_target_errors():
    scores, targets = _zeros(2, 3), np.array([0, 2])
    with pytest.raises(ValueError, match=r"soft_targets have shape "
                       + esc("(2, 4)") + r", expected .*" + esc("(2, 3)")):
        softmax_cross_entropy(scores, targets, soft_targets=_zeros(2, 4))
    with pytest.raises(TypeError, match=r"scores is float64.*soft_targets "
                       r"is float32"):
        softmax_cross_entropy(scores, targets,
                              soft_targets=_zeros(2, 3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"soft_weight must be in \[0, 1\], "
                       r"got 1.5"):
        softmax_cross_entropy(scores, targets, soft_targets=_zeros(2, 3),
                              soft_weight=1.5)


def test_errors_are_raised_for_variables_too():
    with pytest.raises(ValueError, match=r"conv2d: x has 2 channels"):
        conv2d(Variable(_zeros(1, 2, 4, 4), requires_grad=True),
               Variable(_zeros(1, 3, 2, 2), requires_grad=True))
    with pytest.raises(TypeError, match=r"tanh: x.*floating"):
        tanh(Variable(np.arange(3)))
