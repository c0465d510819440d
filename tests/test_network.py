"""Geometry of the paper's networks and the three ways of running them.

The dense (dilated) pass and the strided pass used by shift-and-stitch must
give exactly the scores of evaluating the network on the patch around each
pixel, and the recurrent network's shared weights must get exact gradients.
"""

import numpy as np
import pytest

from gradcheck import check_gradients
from skrcnn import Variable, no_grad
from skrcnn.architecture import (instance_output_size, instance_stride,
                                 patch_size, resolve_layers, rgb_crop_offset)
from skrcnn.functions import channel_slice
from skrcnn.network import RecurrentNetwork, rgb_offsets, strided_input_size

TINY = (("conv", 4, 3), ("pool", 2), ("tanh",), ("conv", "classes", 2))


def test_patch_sizes_follow_the_paper():
    rcnn2, rcnn1 = resolve_layers("rcnn2"), resolve_layers("rcnn1")
    assert [patch_size(rcnn2, p) for p in (1, 2, 3)] == [23, 67, 155]
    assert [patch_size(rcnn1, p) for p in (1, 2)] == [25, 121]
    assert patch_size(resolve_layers("plain"), 1) == 133
    assert (instance_stride(rcnn2), instance_stride(rcnn1),
            instance_stride(resolve_layers("plain"))) == (2, 4, 16)
    # Eq. 1 forwards undoes Eq. 1 backwards.
    for p in (1, 2, 3):
        assert instance_output_size(rcnn2, patch_size(rcnn2, p)) == (
            patch_size(rcnn2, p - 1) if p > 1 else 1)


def test_rgb_offsets_match_the_reference_alignment():
    rcnn2 = resolve_layers("rcnn2")
    assert rgb_offsets(rcnn2, 1) == []
    assert rgb_offsets(rcnn2, 2) == [5]         # 67 -> 33 pooled -> 23
    assert rgb_offsets(rcnn2, 3) == [5, 8]      # 155 -> 77 -> 67, 38 -> 23
    assert rgb_crop_offset(38, 23) == 8


@pytest.mark.parametrize("bad,message", [
    ("rcnn3", r"architecture must be one of \['plain', 'rcnn1', 'rcnn2'\]"),
    (3, "architecture must be a name or a sequence of layer specs, got 3"),
    ((), "the layer list is empty"),
    ((("pool", 2),), r"the last layer must be \('conv', 'classes', kernel\)"),
    ((("conv", 4, 3),), "the last layer must be"),
    ((("conv", 4, 0), ("conv", "classes", 1)),
     r"layer 0 is \('conv', 4, 0\)"),
    ((("pool", 2), ("conv", "classes", 1)),
     r"the first layer must be a convolution, got \('pool', 2\)"),
    ((("conv", "classes", 3), ("conv", "classes", 1)),
     "only the last convolution may output 'classes'"),
    ((("conv", 4, 3), ("relu",), ("conv", "classes", 1)),
     r"layer 1 is \('relu',\)")])
def test_malformed_architectures_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        resolve_layers(bad)


def test_numpy_integer_sizes_become_python_ints():
    """Sizes from NumPy (e.g. a grid of np.arange values) are accepted and
    stored as ints: code that tells sizes from "classes" by type (the
    inference memory estimate did) sees them."""
    layers = resolve_layers((("conv", np.int64(12), np.int32(3)),
                             ("pool", np.uint8(2)), ("tanh",),
                             ("conv", "classes", np.int64(1))))
    assert layers == (("conv", 12, 3), ("pool", 2), ("tanh",),
                      ("conv", "classes", 1))
    assert all(type(v) is int for layer in layers for v in layer[1:]
               if v != "classes")


def _network(layers, n_classes=3, seed=0, dtype=np.float64):
    return RecurrentNetwork.initialise(layers, n_classes,
                                       np.random.RandomState(seed),
                                       dtype=dtype)


@pytest.mark.parametrize("n_instances", [1, 2, 3])
def test_dense_and_strided_passes_equal_per_patch_evaluation(n_instances):
    layers = resolve_layers("rcnn2")
    net = _network(layers, n_classes=4)
    rng = np.random.default_rng(n_instances)
    side = patch_size(layers, n_instances)
    stride = instance_stride(layers) ** n_instances
    n_out = 2 if n_instances == 3 else 3
    size = strided_input_size(layers, n_instances, n_out)
    # Large enough for every shifted strided crop below; odd, non-square.
    height, width = size + stride + 3, size + stride
    image = rng.standard_normal((1, 3, height, width))
    rows, cols = height - side + 1, width - side + 1
    with no_grad():
        dense = net.forward(image, n_instances, dense=True).data
        assert dense.shape == (1, 4, rows, cols)
        corners = [(0, 0), (0, cols - 1), (rows - 1, 0), (rows - 1, cols - 1)]
        for i, j in corners + [tuple(rng.integers(0, (rows, cols)))
                               for _ in range(4)]:
            patch = image[:, :, i:i + side, j:j + side]
            single = net.forward(patch, n_instances).data
            assert single.shape == (1, 4, 1, 1)
            np.testing.assert_allclose(single[0, :, 0, 0], dense[0, :, i, j],
                                       rtol=0, atol=1e-12)
        # Strided passes on shifted crops interleave into the dense map.
        for a, b in [(0, 0), (stride - 1, 1), (1, stride - 1),
                     (stride, stride)]:
            strided = net.forward(image[:, :, a:a + size, b:b + size],
                                  n_instances).data
            assert strided.shape == (1, 4, n_out, n_out)
            np.testing.assert_allclose(
                strided[0], dense[0, :, a:a + stride * n_out:stride,
                                  b:b + stride * n_out:stride],
                rtol=0, atol=1e-12)


def test_float32_dense_pass_matches_patches_to_float_precision():
    layers = resolve_layers("rcnn2")
    net = _network(layers, n_classes=8, dtype=np.float32)
    image = np.random.default_rng(5).standard_normal(
        (1, 3, 160, 158)).astype(np.float32)
    with no_grad():
        dense = net.forward(image, 3, dense=True).data
        for i, j in [(0, 0), (5, 3), (2, 1)]:
            single = net.forward(image[:, :, i:i + 155, j:j + 155], 3).data
            np.testing.assert_allclose(single[0, :, 0, 0], dense[0, :, i, j],
                                       atol=1e-5)


def test_non_rgb_input_is_a_clear_error():
    net = _network(resolve_layers("rcnn2"))
    with pytest.raises(ValueError, match="3 channels"):
        net.forward(np.zeros((1, 4, 67, 67)), 2)


@pytest.mark.parametrize("n_instances", [1, 2, 3])
def test_shared_weight_gradients_of_the_recurrent_network(n_instances):
    net = _network(TINY, n_classes=2, seed=3)
    side = patch_size(TINY, n_instances)
    rgb = np.random.default_rng(7).standard_normal((2, 3, side + 2, side + 1))

    def scores(*params):
        net.params = list(params)
        return net.forward(rgb, n_instances)

    initial = [p.data for p in net.params]
    check_gradients(scores, initial, seed=n_instances, atol=1e-7, rtol=1e-5)


def test_plain_network_gradients_match_numerical():
    # The plain network's 8x8 and 2x2 pools (the 8x8 one scatters its
    # gradient to the window winners) inside the whole network, on a batch
    # of two 133x133 patches and a slightly larger image.
    layers = (("conv", 3, 6), ("pool", 8), ("tanh",), ("conv", 4, 3),
              ("pool", 2), ("tanh",), ("conv", "classes", 7))  # plain, narrow
    net = _network(layers, n_classes=2, seed=5)
    for shape in [(2, 3, 133, 133), (1, 3, 141, 150)]:
        rgb = np.random.default_rng(9).standard_normal(shape)

        def scores(*params):
            net.params = list(params)
            return net.forward(rgb, 1)

        check_gradients(scores, [p.data for p in net.params], atol=1e-7,
                        rtol=1e-5)


def test_dense_pass_gradients_match_numerical():
    net = _network(TINY, n_classes=2, seed=4)
    rgb = np.random.default_rng(8).standard_normal((1, 3, 20, 19))

    def scores(*params):
        net.params = list(params)
        return net.forward(rgb, 2, dense=True)

    check_gradients(scores, [p.data for p in net.params], atol=1e-7,
                    rtol=1e-5)


def test_first_instance_ignores_zero_planes_exactly():
    # Instance 1 runs on the RGB slice of W1; with explicit zero planes
    # concatenated, the full W1 must give the same scores.
    from skrcnn.functions import concat, conv2d
    net = _network(TINY, n_classes=2, seed=5)
    rgb = np.random.default_rng(9).standard_normal((2, 3, 9, 9))
    zeros = np.zeros((2, 2, 9, 9))
    w1, b1 = net.params[0].data, net.params[1].data
    full = conv2d(concat([zeros, rgb]), w1, b1).data
    sliced = conv2d(rgb, channel_slice(w1, 2, 5), b1).data
    np.testing.assert_allclose(full, sliced, rtol=1e-12, atol=1e-12)


def test_channel_slice_forward_and_gradient():
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 4))
    out = channel_slice(Variable(x), 1, 4).data
    np.testing.assert_array_equal(out, x[:, 1:4])
    check_gradients(lambda v: channel_slice(v, 1, 4), [x])
    with pytest.raises(ValueError, match="channels 3:7"):
        channel_slice(x, 3, 7)


def test_initialisation_is_deterministic_and_shaped():
    layers = resolve_layers("rcnn2")
    a, b = _network(layers, 8, seed=1), _network(layers, 8, seed=1)
    shapes = [p.shape for p in a.params]
    assert shapes == [(25, 11, 8, 8), (25,), (50, 25, 8, 8), (50,),
                      (8, 50, 1, 1), (8,)]
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("architecture,n_instances", [
    ("rcnn2", 3), ("rcnn1", 2), (TINY, 3)])
def test_partly_strided_passes_subsample_the_dense_pass(architecture,
                                                        n_instances):
    """A pass with output stride q scores every q-th patch position: it must
    equal the dense map subsampled by q, on an input of exactly
    ``patch + q * (m - 1)`` pixels per axis giving m outputs."""
    layers = resolve_layers(architecture)
    net = _network(layers, n_classes=3, seed=4)
    side = patch_size(layers, n_instances)
    strides = net.output_strides(n_instances)
    assert strides[0] == 1
    assert strides[-1] == instance_stride(layers) ** n_instances
    rng = np.random.default_rng(5)
    image = rng.standard_normal((1, 3, side + 17, side + 10))
    with no_grad():
        dense = net.forward(image, n_instances, dense=True).data
        for q in strides:
            rows = (image.shape[2] - side) // q + 1
            cols = (image.shape[3] - side) // q + 1
            exact = image[:, :, :side + q * (rows - 1), :side + q * (cols - 1)]
            out = net.forward(exact, n_instances, output_stride=q).data
            assert out.shape == (1, 3, rows, cols)
            np.testing.assert_allclose(out, dense[:, :, ::q, ::q], rtol=0,
                                       atol=1e-12)


def test_output_stride_must_come_from_the_pools():
    net = _network(resolve_layers("rcnn2"))
    assert net.output_strides(3) == [1, 2, 4, 8]
    assert _network(resolve_layers("plain")).output_strides(1) == [1, 8, 16]
    with pytest.raises(ValueError, match=r"output_stride must be one of \[1, 2, 4\]"):
        net.forward(np.zeros((1, 3, 67, 67)), 2, output_stride=3)


@pytest.mark.parametrize("count", [0, -1, 1.0, True])
def test_forward_refuses_an_instance_count_below_one_or_not_an_integer(count):
    network = RecurrentNetwork.initialise(TINY, 2, np.random.RandomState(0))
    with pytest.raises(ValueError, match=f"n_instances must be an integer "
                                         f">= 1, got {count!r}"):
        network.forward(np.zeros((1, 3, 9, 9)), count)
