"""Differentiable operations on NCHW arrays, each a forward and a backward."""

from .activation import tanh
from .arithmetic import weighted_sum
from .array import channel_slice, concat, crop, pad
from .bias import bias_add
from .conv_pool import conv_max_pool2d
from .convolution import conv2d
from .loss import softmax_cross_entropy
from .pooling import avg_pool2d, max_pool2d

__all__ = ["avg_pool2d", "bias_add", "channel_slice", "concat", "conv2d",
           "conv_max_pool2d", "crop", "max_pool2d", "pad",
           "softmax_cross_entropy", "tanh", "weighted_sum"]
