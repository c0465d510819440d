"""The recurrent convolutional network: one set of weights, P instances.

Instance 1 sees N zero score planes and the RGB input; instance p sees the
N score planes of instance p-1 and the RGB input average-pooled down to
instance p-1's output grid, cropped at a fixed centred offset. The offsets
come from the geometry of a training patch (rcnn2: 5 for 33->23 and 77->67,
8 for 38->23) and are the same in every mode, which is what makes the three
ways of running the network agree exactly:

- :meth:`RecurrentNetwork.forward` on a training patch gives one score per
  class (a 1x1 map);
- the same call on a larger image of a valid size (see
  :func:`strided_input_size`) gives the strided score map used by
  shift-and-stitch;
- :meth:`RecurrentNetwork.forward` with ``dense=True`` gives the scores of
  every patch position in one dilated ("a trous") pass: every pool becomes
  stride 1 and every later layer is dilated by the product of the pool
  strides before it.

Instance 1's zero planes contribute nothing to its first convolution, so it
runs on the RGB planes alone with the matching slice of the weights: the
same result for a fraction of the work.
"""

import numpy as np

from .architecture import (CLASSES, instance_output_size, instance_stride,
                           patch_size, rgb_crop_offset)
from .autograd import Variable
from .functions import (avg_pool2d, channel_slice, concat, conv2d, crop,
                        max_pool2d, tanh)

N_COLOURS = 3


def strided_input_size(layers, n_instances, n_outputs):
    """Input side that yields ``n_outputs`` strided outputs per axis."""
    stride = instance_stride(layers) ** n_instances
    return patch_size(layers, n_instances) + stride * (n_outputs - 1)


def rgb_offsets(layers, n_instances):
    """Crop offsets (in the pooled RGB grid) for instances 2..P."""
    stride = instance_stride(layers)
    sizes = [patch_size(layers, n_instances)]  # input side of each instance
    for _ in range(n_instances - 1):
        sizes.append(instance_output_size(layers, sizes[-1]))
    offsets, pooled = [], sizes[0]
    for target in sizes[1:]:
        pooled //= stride
        offsets.append(rgb_crop_offset(pooled, target))
    return offsets


class RecurrentNetwork:
    """Weights of one instance network and their recurrent application.

    Parameters
    ----------
    layers : tuple of layer specs
        See :mod:`skrcnn.architecture`.
    n_classes : int
        Number of score planes N.
    params : list of Variable
        ``[W1, b1, W2, b2, ...]``, one weight (O, C, k, k) and bias (O,) per
        convolution; the first convolution takes ``N + 3`` input planes.
    """

    def __init__(self, layers, n_classes, params):
        self.layers = layers
        self.n_classes = n_classes
        self.params = params
        self.stride = instance_stride(layers)

    @classmethod
    def initialise(cls, layers, n_classes, random_state, xp=np,
                   dtype=np.float32):
        """Random weights, uniform in +-1/sqrt(fan_in) as in Torch7."""
        params, channels = [], n_classes + N_COLOURS
        for layer in layers:
            if layer[0] != "conv":
                continue
            out = n_classes if layer[1] == CLASSES else layer[1]
            shape = (out, channels, layer[2], layer[2])
            bound = 1.0 / np.sqrt(channels * layer[2] * layer[2])
            for size in (shape, (out,)):
                values = random_state.uniform(-bound, bound, size=size)
                params.append(Variable(xp.asarray(values, dtype=dtype),
                                       requires_grad=True))
            channels = out
        return cls(layers, n_classes, params)

    def patch_size(self, n_instances):
        """Context patch side for one output with ``n_instances``."""
        return patch_size(self.layers, n_instances)

    def _instance(self, x, dilation, dense, first):
        weights = iter(self.params)
        h = x
        for index, layer in enumerate(self.layers):
            if layer[0] == "conv":
                weight, bias = next(weights), next(weights)
                if first and index == 0:
                    weight = channel_slice(weight, self.n_classes,
                                           self.n_classes + N_COLOURS)
                h = conv2d(h, weight, bias, dilation=dilation if dense else 1)
            elif layer[0] == "pool":
                if dense:
                    h = max_pool2d(h, layer[1], stride=1, dilation=dilation)
                    dilation *= layer[1]
                else:
                    h = max_pool2d(h, layer[1])
            else:
                h = tanh(h)
        return h, dilation

    def forward(self, rgb, n_instances, dense=False, return_all=False):
        """Apply ``n_instances`` instances to RGB input.

        Parameters
        ----------
        rgb : ndarray of shape (B, 3, H, W)
            Normalised RGB patches or (padded) images.
        n_instances : int
        dense : bool, default=False
            Run the dilated pass: output (i, j) is the score of the patch
            whose top-left corner is input pixel (i, j).
        return_all : bool, default=False
            Return the list of every instance's scores instead of the last.

        Returns
        -------
        Variable of shape (B, N, H', W'), or a list of them
        """
        if rgb.shape[1] != N_COLOURS:
            raise ValueError(f"rgb must have {N_COLOURS} channels, got shape "
                             f"{tuple(rgb.shape)}")
        offsets = rgb_offsets(self.layers, n_instances)
        scores, dilation = self._instance(rgb, 1, dense, first=True)
        outputs = [scores]
        pooled, spacing = rgb, 1
        for offset in offsets:
            if dense:
                pooled = avg_pool2d(pooled, self.stride, stride=1,
                                    dilation=spacing)
            else:
                pooled = avg_pool2d(pooled, self.stride)
            spacing *= self.stride
            shift = offset * spacing if dense else offset
            height, width = scores.shape[2:]
            if (shift + height > pooled.shape[2]
                    or shift + width > pooled.shape[3]):
                raise ValueError(
                    f"input of shape {tuple(rgb.shape)} is not a valid size "
                    f"for a strided pass of {n_instances} instances; use "
                    "strided_input_size() to choose one")
            context = crop(pooled, shift, shift, height, width)
            scores, dilation = self._instance(concat([scores, context]),
                                              dilation, dense, first=False)
            outputs.append(scores)
        return outputs if return_all else outputs[-1]
