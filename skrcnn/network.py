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
from .functions import (avg_pool2d, channel_slice, concat, conv2d,
                        conv_max_pool2d, crop, max_pool2d, tanh)
from ._validation import check_positive_int

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

    def output_strides(self, n_instances):
        """Output strides a pass of ``n_instances`` can produce directly.

        A pass with output stride ``q`` keeps the first pools strided (up to
        a total of ``q``) and dilates the rest, so ``q`` must be a product of
        a prefix of the pool sizes met along the instances: for rcnn2 with 3
        instances, 1 (dense), 2, 4 or 8 (the plain strided pass).
        """
        strides, total = [1], 1
        for _ in range(n_instances):
            for size in _pool_sizes(self.layers):
                total *= size
                strides.append(total)
        return strides

    def _instance(self, x, schedule, first):
        weights = iter(self.params)
        h = x
        fused_pool = False
        for index, layer in enumerate(self.layers):
            if fused_pool:  # done with the convolution before it
                fused_pool = False
            elif layer[0] == "conv":
                weight, bias = next(weights), next(weights)
                if first and index == 0:
                    weight = channel_slice(weight, self.n_classes,
                                           self.n_classes + N_COLOURS)
                following = self.layers[index + 1:index + 2]
                # A strided pool right after the convolution (undilated,
                # then): one call, fused where that pays (the plain
                # network's 8x8 pool; see ``functions.conv_pool``).
                fused_pool = (bool(following) and following[0][0] == "pool"
                              and schedule.strides(following[0][1]))
                if fused_pool:
                    size = following[0][1]
                    schedule.pool_strided(size)
                    h = conv_max_pool2d(h, weight, bias, size)
                else:
                    h = conv2d(h, weight, bias, dilation=schedule.dilation)
            elif layer[0] == "pool":
                h = schedule.pool(max_pool2d, h, layer[1])
            else:
                h = tanh(h)
        return h

    def forward(self, rgb, n_instances, dense=False, return_all=False,
                output_stride=None):
        """Apply ``n_instances`` instances to RGB input.

        Parameters
        ----------
        rgb : ndarray of shape (B, 3, H, W)
            Normalised RGB patches or (padded) images.
        n_instances : int
        dense : bool, default=False
            Run the dilated pass: output (i, j) is the score of the patch
            whose top-left corner is input pixel (i, j). Same as
            ``output_stride=1``.
        return_all : bool, default=False
            Return the list of every instance's scores instead of the last.
        output_stride : int, optional
            Output (i, j) scores the patch whose top-left corner is input
            pixel ``(q*i, q*j)``, with ``q`` one of :meth:`output_strides`.
            Defaults to the total stride (the plain strided pass), or 1 when
            ``dense``.

        Returns
        -------
        Variable of shape (B, N, H', W'), or a list of them
        """
        if rgb.shape[1] != N_COLOURS:
            raise ValueError(f"rgb must have {N_COLOURS} channels, got shape "
                             f"{tuple(rgb.shape)}")
        check_positive_int("n_instances", n_instances)
        strides = self.output_strides(n_instances)
        if output_stride is None:
            output_stride = 1 if dense else strides[-1]
        if output_stride not in strides:
            raise ValueError(f"output_stride must be one of {strides} for "
                             f"{n_instances} instances, got {output_stride!r}")
        offsets = rgb_offsets(self.layers, n_instances)
        scores_grid = _Schedule(output_stride)
        scores = self._instance(rgb, scores_grid, first=True)
        outputs = [scores]
        pooled, rgb_grid = rgb, _Schedule(output_stride)
        for offset in offsets:
            # The RGB follows the scores' pooling steps one for one, so it
            # lands on the same grid (nested block means are the block mean).
            for size in _pool_sizes(self.layers):
                pooled = rgb_grid.pool(avg_pool2d, pooled, size)
            shift = offset * rgb_grid.dilation
            height, width = scores.shape[2:]
            if (shift + height > pooled.shape[2]
                    or shift + width > pooled.shape[3]):
                raise ValueError(
                    f"input of shape {tuple(rgb.shape)} is not a valid size "
                    f"for a pass of {n_instances} instances; use "
                    "strided_input_size() to choose one")
            context = crop(pooled, shift, shift, height, width)
            scores = self._instance(concat([scores, context]), scores_grid,
                                    first=False)
            outputs.append(scores)
        return outputs if return_all else outputs[-1]


def _pool_sizes(layers):
    return [layer[1] for layer in layers if layer[0] == "pool"]


class _Schedule:
    """Where a pass stands: pools stay strided while the product of their
    sizes divides the output stride; after that they run at stride 1 and
    every later layer is dilated by the sizes skipped (the a-trous trick)."""

    def __init__(self, output_stride):
        self.remaining = output_stride
        self.dilation = 1

    def strides(self, size):
        """Whether the next pool, of ``size``, runs strided."""
        return self.dilation == 1 and self.remaining % size == 0

    def pool_strided(self, size):
        """Record a strided pool of ``size`` (see :meth:`strides`)."""
        self.remaining //= size

    def pool(self, pool_function, h, size):
        if self.strides(size):
            self.pool_strided(size)
            return pool_function(h, size)
        pooled = pool_function(h, size, stride=1, dilation=self.dilation)
        self.dilation *= size
        return pooled
