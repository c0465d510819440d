"""The fused convolution + max pooling against the loop references, the two
operations run in turn, numerical gradients and the plain network."""

import numpy as np
import pytest

import reference_ops as ref
from gradcheck import check_gradients
from op_cases import conv_case_arrays
import skrcnn.functions.conv_pool as conv_pool
import skrcnn.network as network_module
from skrcnn.architecture import resolve_layers
from skrcnn.autograd import Variable
from skrcnn.functions import conv2d, max_pool2d
from skrcnn.functions.conv_pool import (ConvolutionMaxPooling2D,
                                        conv_max_pool2d, fusion_pays_off)
from skrcnn.network import RecurrentNetwork
from skrcnn.training import accumulate_loss, zero_grads

# (n, c, h, w, o, kh, kw, pool): square and non-square kernels and windows,
# convolution outputs the windows tile exactly and ones with rows and
# columns left over, one window and many.
CASES = [
    (2, 3, 29, 31, 7, 6, 5, (4, 4)),
    (3, 5, 20, 17, 4, 3, 4, (3, 4)),
    (1, 2, 13, 13, 3, 6, 6, (8, 8)),
    (2, 3, 45, 40, 5, 6, 6, (8, 8)),
    (1, 1, 12, 30, 2, 2, 7, (5, 3)),
]


def _fused_and_gradients(x, weight, bias, grad_y, pool):
    variables = [Variable(a.copy(), requires_grad=True)
                 for a in (x, weight, bias)]
    out = ConvolutionMaxPooling2D(pool)(*variables)
    out.backward(grad_y)
    return out.data, [v.grad for v in variables]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_and_gradients_match_the_loop_references(case):
    x, weight, bias = conv_case_arrays(case)
    pool = case[-1]
    conv = ref.conv2d_forward(x, weight, bias)
    expected, _ = ref.max_pool2d_forward(conv, pool)
    rng = np.random.default_rng(1)
    grad_y = rng.standard_normal(expected.shape)
    got, (grad_x, grad_w, grad_b) = _fused_and_gradients(
        x, weight, bias, grad_y, pool)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # Random inputs have no ties: the winners are the references' winners.
    grad_conv = ref.max_pool2d_backward(conv, grad_y, pool)
    expected_x, expected_w, expected_b = ref.conv2d_backward(x, weight,
                                                             grad_conv)
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_w, expected_w, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_b, expected_b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES[:3], ids=str)
def test_numerical_gradients(case):
    x, weight, bias = conv_case_arrays(case)
    pool = case[-1]
    check_gradients(lambda a, w, b: ConvolutionMaxPooling2D(pool)(a, w, b),
                    [x, weight, bias])


def test_float32_agrees_with_the_two_operations_in_turn():
    case = (4, 3, 133, 133, 25, 6, 6, (8, 8))  # the plain network's layer
    x, weight, bias = conv_case_arrays(case, np.float32)
    grad_y = np.random.default_rng(2).standard_normal(
        (4, 25, 16, 16)).astype(np.float32)
    got, grads = _fused_and_gradients(x, weight, bias, grad_y, (8, 8))
    variables = [Variable(a.copy(), requires_grad=True)
                 for a in (x, weight, bias)]
    out = max_pool2d(conv2d(*variables), 8)
    out.backward(grad_y)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, out.data, rtol=0,
                               atol=1e-6 * np.abs(out.data).max())
    for fused, separate in zip(grads, (v.grad for v in variables)):
        assert fused.dtype == np.float32
        np.testing.assert_allclose(fused, separate, rtol=0,
                                   atol=2e-6 * np.abs(separate).max())


def test_ties_go_to_the_first_column_then_its_first_row():
    # A 1x1 kernel of weight 1 makes the convolution output the input, so
    # the input gradient marks each window's winner.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 3] = x[0, 0, 2, 1] = x[0, 0, 3, 1] = 5.0  # tied maxima
    x[0, 0, 1, 0] = 1.0
    weight = np.ones((1, 1, 1, 1))
    out, (grad_x, _, _) = _fused_and_gradients(x, weight, np.zeros(1),
                                               np.full((1, 1, 1, 1), 2.0),
                                               (4, 4))
    assert out[0, 0, 0, 0] == 5.0
    expected = np.zeros_like(x)
    expected[0, 0, 2, 1] = 2.0  # column 1 precedes column 3; row 2 row 3
    np.testing.assert_array_equal(grad_x, expected)


def test_constant_windows_give_the_weight_gradient_of_max_pool2d():
    # Zero padding makes whole windows tie at the bias; every tied position
    # sees the same (zero) patch, so the tie rule cannot change dW.
    x, weight, bias = conv_case_arrays(CASES[3])
    x[:, :, :20, :] = 0.0
    grad_y = np.random.default_rng(3).standard_normal((2, 5, 5, 4))
    _, (_, grad_w, grad_b) = _fused_and_gradients(x, weight, bias, grad_y,
                                                  (8, 8))
    variables = [Variable(a.copy(), requires_grad=True)
                 for a in (x, weight, bias)]
    max_pool2d(conv2d(*variables), 8).backward(grad_y)
    np.testing.assert_allclose(grad_w, variables[1].grad, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(grad_b, variables[2].grad, rtol=1e-10)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_threads_and_block_sizes_change_only_rounding(threads, monkeypatch,
                                                      n_threads):
    x, weight, bias = conv_case_arrays((5, 3, 45, 40, 5, 6, 6, None),
                                   np.float32)
    grad_y = np.ones((5, 5, 5, 4), dtype=np.float32)
    threads(1)
    baseline = _fused_and_gradients(x, weight, bias, grad_y, (8, 8))
    threads(n_threads)
    # One window row per piece and one image per gather block, then all
    # at once.
    for piece_bytes, gather_bytes in ((1, 1), (2 ** 30, 2 ** 30)):
        monkeypatch.setattr(conv_pool, "PIECE_BYTES", piece_bytes)
        monkeypatch.setattr(conv_pool, "GATHER_BYTES", gather_bytes)
        out, grads = _fused_and_gradients(x, weight, bias, grad_y, (8, 8))
        again = _fused_and_gradients(x, weight, bias, grad_y, (8, 8))
        for got, repeated, expected in zip([out] + grads,
                                           [again[0]] + again[1],
                                           [baseline[0]] + baseline[1]):
            np.testing.assert_array_equal(got, repeated)  # deterministic
            np.testing.assert_allclose(got, expected, rtol=0,
                                       atol=2e-6 * np.abs(expected).max())


def test_no_bias_and_inputs_left_untouched():
    x, weight, bias = conv_case_arrays(CASES[0])
    copies = [x.copy(), weight.copy()]
    out = conv_max_pool2d(x, weight, None, 4)
    expected, _ = ref.max_pool2d_forward(ref.conv2d_forward(x, weight), 4)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, copies[0])
    np.testing.assert_array_equal(weight, copies[1])


def test_dispatch_rule():
    plain_layer = ((16, 3, 133, 133), (25, 3, 6, 6))
    assert fusion_pays_off(*plain_layer, (8, 8), np)
    assert fusion_pays_off(*plain_layer, (6, 6), np)
    assert not fusion_pays_off(*plain_layer, (5, 5), np)
    assert not fusion_pays_off(*plain_layer, (2, 2), np)  # rCNN2's pools
    # A layer the FFT takes stays on it (rCNN2's 25 -> 50 in a batch).
    assert not fusion_pays_off((16, 25, 74, 74), (50, 25, 8, 8), (8, 8), np)
    calls = []
    original = ConvolutionMaxPooling2D.forward

    def spy(self, *arrays):
        calls.append(self.pool)
        return original(self, *arrays)

    x, weight, bias = conv_case_arrays(CASES[3])
    try:
        ConvolutionMaxPooling2D.forward = spy
        fused = conv_max_pool2d(x, weight, bias, 8)
        separate = conv_max_pool2d(x, weight, bias, 2)
    finally:
        ConvolutionMaxPooling2D.forward = original
    assert calls == [(8, 8)]
    expected, _ = ref.max_pool2d_forward(ref.conv2d_forward(x, weight, bias),
                                         2)
    np.testing.assert_allclose(separate.data, expected, rtol=1e-12,
                               atol=1e-12)
    assert fused.shape == (2, 5, 5, 4)


@pytest.mark.parametrize("arguments, message", [
    (((1, 3, 20, 20), (4, 2, 3, 3), 4), "3 channels"),
    (((1, 3, 20, 20), (4, 3, 3, 3), 32), "pool_size"),
    (((1, 3, 5, 20), (4, 3, 6, 3), 2), "vertical"),
])
def test_bad_shapes_raise_errors_naming_them(arguments, message):
    x_shape, w_shape, pool = arguments
    with pytest.raises(ValueError, match=message):
        conv_max_pool2d(np.zeros(x_shape), np.zeros(w_shape),
                        np.zeros(w_shape[0]), pool)


def test_bad_bias_and_dtypes_raise_conv2d_errors():
    x, weight = np.zeros((1, 3, 20, 20)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"bias has shape \(5,\)"):
        conv_max_pool2d(x, weight, np.zeros(5), 4)
    with pytest.raises(TypeError, match="dtypes differ"):
        conv_max_pool2d(x.astype(np.float32), weight, np.zeros(4), 4)
    with pytest.raises(ValueError, match="pool_size must be >= 1"):
        conv_max_pool2d(x, weight, None, 0)


def _plain_loss_and_gradients(patches, targets, fused, monkeypatch):
    if not fused:
        monkeypatch.setattr(network_module, "conv_max_pool2d",
                            lambda x, w, b, size: max_pool2d(conv2d(x, w, b),
                                                             size))
    network = RecurrentNetwork.initialise(resolve_layers("plain"), 4,
                                          np.random.RandomState(0),
                                          dtype=np.float64)
    zero_grads(network.params)
    loss = accumulate_loss(network, [(1, patches, targets)], np)
    return loss, [p.grad.copy() for p in network.params]


def test_plain_network_training_step_is_unchanged_by_fusion(monkeypatch):
    rng = np.random.default_rng(4)
    patches = rng.standard_normal((3, 3, 133, 133))
    targets = rng.integers(0, 4, 3)
    fused = _plain_loss_and_gradients(patches, targets, True, monkeypatch)
    separate = _plain_loss_and_gradients(patches, targets, False,
                                         monkeypatch)
    np.testing.assert_allclose(fused[0], separate[0], rtol=1e-12)
    for got, expected in zip(fused[1], separate[1]):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_recurrent_network_gradients_through_fused_layers():
    # With two instances the second one's fused first layer reads the first
    # one's scores, so its input gradient (routed to the winners, then the
    # convolution's input backward) is part of every weight's gradient.
    layers = (("conv", 3, 3), ("pool", 6), ("tanh",), ("conv", "classes", 2))
    network = RecurrentNetwork.initialise(layers, 2, np.random.RandomState(3),
                                          dtype=np.float64)
    rgb = np.random.default_rng(5).standard_normal((2, 3, 92, 92))
    wanted = []
    original = ConvolutionMaxPooling2D.backward

    def spy(self, grad_y):
        wanted.append(self.needs_input_grad[0])
        return original(self, grad_y)

    def scores(*params):
        network.params = list(params)
        return network.forward(rgb, 2)

    try:
        ConvolutionMaxPooling2D.backward = spy
        check_gradients(scores, [p.data for p in network.params], atol=1e-7,
                        rtol=1e-5)
    finally:
        ConvolutionMaxPooling2D.backward = original
    assert sorted(set(wanted)) == [False, True]
