"""The FFT correlation of inference passes against the loop reference, the
GEMM scheme and the patch it must score like."""

import numpy as np
import pytest

import reference_ops as ref
from gradcheck import check_gradients
from op_cases import conv_case_arrays
import skrcnn.functions._spectral as spectral
from skrcnn import no_grad
from skrcnn.architecture import resolve_layers
from skrcnn.autograd import Variable
from skrcnn.functions import conv2d
from skrcnn.inference import image_scores
from skrcnn.network import RecurrentNetwork

# (n, c, h, w, o, kh, kw, dilation): square and non-square kernels, equal
# and unequal dilations, odd sizes, outputs of one tile and of several
# (MAX_TRANSFORM is 48), phases of unequal sizes.
CASES = [
    (1, 2, 9, 11, 3, 3, 3, (1, 1)),
    (2, 3, 20, 17, 4, 5, 2, (2, 3)),
    (1, 4, 41, 37, 2, 8, 8, (4, 4)),
    (1, 1, 150, 90, 2, 3, 4, (1, 1)),
    (1, 3, 140, 157, 5, 8, 8, (2, 2)),
    (2, 2, 75, 80, 3, 2, 7, (3, 1)),
    (1, 2, 7, 7, 1, 1, 1, (5, 2)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_correlation_matches_the_loop_reference(case):
    x, weight, bias = conv_case_arrays(case)
    dilation = case[-1]
    expected = ref.conv2d_forward(x, weight, bias, dilation=dilation)
    got = spectral.correlate(x, weight, bias, dilation)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    no_bias = spectral.correlate(x, weight, None, dilation)
    np.testing.assert_allclose(no_bias, expected - bias[:, None, None],
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES[2:5], ids=str)
def test_float32_correlation_is_within_rounding(case):
    x, weight, bias = conv_case_arrays(case)
    expected = ref.conv2d_forward(x, weight, bias, dilation=case[-1])
    got = spectral.correlate(*(a.astype(np.float32) for a in
                               (x, weight, bias)), case[-1])
    assert got.dtype == np.float32
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * scale)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_chunks_and_threads_cover_every_tile_once(n_threads, threads,
                                                  monkeypatch):
    # Chunks of one row of tiles each, shared over the threads: any tile
    # computed twice or never would show in the comparison.
    threads(n_threads)
    monkeypatch.setattr(spectral, "CHUNK_BYTES", 1)
    monkeypatch.setattr(spectral, "MAX_TRANSFORM", 16)
    case = (2, 3, 70, 61, 4, 4, 3, (2, 3))
    x, weight, bias = conv_case_arrays(case)
    expected = ref.conv2d_forward(x, weight, bias, dilation=case[-1])
    np.testing.assert_allclose(spectral.correlate(x, weight, bias, case[-1]),
                               expected, rtol=1e-10, atol=1e-10)


def test_input_is_not_modified():
    x, weight, bias = conv_case_arrays(CASES[4])
    copies = [a.copy() for a in (x, weight, bias)]
    spectral.correlate(x, weight, bias, (2, 2))
    for original, copy in zip((x, weight, bias), copies):
        np.testing.assert_array_equal(original, copy)


def test_pays_off_only_for_wide_layers_on_many_tiles():
    wide, rgb = (50, 25, 8, 8), (25, 3, 8, 8)
    assert spectral.pays_off((1, 25, 386, 466), wide, (1, 1), (2, 2))
    assert spectral.pays_off((16, 25, 74, 74), wide, (1, 1), (1, 1))
    # One training patch's map is 4 tiles; the RGB layer has too few
    # channels; strided convolutions are not handled.
    assert not spectral.pays_off((1, 25, 74, 74), wide, (1, 1), (1, 1))
    assert not spectral.pays_off((1, 3, 394, 474), rgb, (1, 1), (1, 1))
    assert not spectral.pays_off((1, 25, 386, 466), wide, (2, 2), (1, 1))


def _spy_correlate(monkeypatch):
    calls = []
    original = spectral.correlate

    def spy(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(spectral, "correlate", spy)
    return calls


def test_conv2d_takes_the_fft_forward_and_backward(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 25, 120, 130)).astype(np.float32)
    weight = (rng.standard_normal((50, 25, 8, 8)) / 40).astype(np.float32)
    bias = rng.standard_normal(50).astype(np.float32)
    grad_y = rng.standard_normal((2, 50, 106, 116)).astype(np.float32)
    calls = _spy_correlate(monkeypatch)

    def run():
        variables = [Variable(a, requires_grad=True)
                     for a in (x, weight, bias)]
        y = conv2d(*variables, dilation=2)
        y.backward(grad_y)
        return [y.data] + [v.grad for v in variables]

    fast = run()
    assert calls == [x.shape]
    monkeypatch.setattr(spectral, "pays_off", lambda *args: False)
    gemm = run()
    assert len(calls) == 1
    for name, a, b in zip(("y", "grad_x", "grad_w", "grad_b"), fast, gemm):
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * scale,
                                   err_msg=name)


@pytest.mark.parametrize("case", CASES[1:3] + CASES[5:6], ids=str)
def test_conv2d_gradcheck_through_the_fft(case, monkeypatch):
    # Numerical gradients of the whole op, with the FFT taken whatever the
    # size, and only the inputs asked for.
    monkeypatch.setattr(spectral, "pays_off", lambda *args: True)
    calls = _spy_correlate(monkeypatch)
    x, weight, bias = conv_case_arrays(case)
    dilation = case[-1]
    check_gradients(lambda a, w, b: conv2d(a, w, b, dilation=dilation),
                    [x, weight, bias], seed=4)
    check_gradients(lambda w: conv2d(x, w, dilation=dilation), [weight],
                    seed=5)
    assert calls


def test_dense_pass_with_the_fft_scores_like_patches_and_the_gemm(
        monkeypatch):
    net = RecurrentNetwork.initialise(resolve_layers("rcnn2"), 5,
                                      np.random.RandomState(3))
    image = np.random.default_rng(3).standard_normal(
        (3, 37, 45)).astype(np.float32)
    calls = _spy_correlate(monkeypatch)
    with_fft, _, _ = image_scores(net, image, 3, method="dense")
    # The wide layers on the largest maps (two here) took the FFT.
    assert len(calls) >= 2 and all(shape[1] in (11, 25) for shape in calls)
    monkeypatch.setattr(spectral, "pays_off", lambda *args: False)
    without, _, _ = image_scores(net, image, 3, method="dense")
    np.testing.assert_allclose(with_fft, without, rtol=0, atol=1e-5)
    # And like the patch centred on a corner pixel and an inner one.
    side = net.patch_size(3)
    padded = np.pad(image, ((0, 0), (side // 2,) * 2, (side // 2,) * 2))
    with no_grad():
        for i, j in [(0, 0), (20, 31)]:
            patch = padded[None, :, i:i + side, j:j + side]
            expected = net.forward(patch, 3).data[0, :, 0, 0]
            np.testing.assert_allclose(with_fft[:, i, j], expected, rtol=0,
                                       atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradients_match_the_loop_reference(case):
    x, weight, _ = conv_case_arrays(case)
    dilation = case[-1]
    y_shape = ref.conv2d_forward(x, weight, None, dilation=dilation).shape
    grad_y = np.random.default_rng(len(case)).standard_normal(y_shape)
    expected_x, expected_w = ref.conv2d_backward(x, weight, grad_y,
                                                 dilation=dilation)[:2]
    grad_x, grad_w = spectral.correlate_backward(x, weight, grad_y, dilation)
    assert grad_x.shape == x.shape and grad_w.shape == weight.shape
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_w, expected_w, rtol=1e-10, atol=1e-10)
    only_w = spectral.correlate_backward(x, weight, grad_y, dilation,
                                         need_x=False)
    only_x = spectral.correlate_backward(x, weight, grad_y, dilation,
                                         need_w=False)
    assert only_w[0] is None and only_x[1] is None
    np.testing.assert_array_equal(only_w[1], grad_w)
    np.testing.assert_array_equal(only_x[0], grad_x)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_gradients_over_chunks_and_threads(n_threads, threads, monkeypatch):
    # Overlapping tiles in different chunks and threads add their input
    # gradients where they overlap; the weight gradient sums every chunk.
    threads(n_threads)
    monkeypatch.setattr(spectral, "CHUNK_BYTES", 1)
    monkeypatch.setattr(spectral, "MAX_TRANSFORM", 16)
    case = (2, 3, 70, 61, 4, 4, 3, (2, 3))
    x, weight, _ = conv_case_arrays(case)
    grad_y = np.random.default_rng(5).standard_normal(
        ref.conv2d_forward(x, weight, None, dilation=case[-1]).shape)
    expected = ref.conv2d_backward(x, weight, grad_y, dilation=case[-1])[:2]
    got = spectral.correlate_backward(x, weight, grad_y, case[-1])
    for value, reference in zip(got, expected):
        np.testing.assert_allclose(value, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layout", ["flipped", "channels_last", "strided"])
def test_any_memory_layout(layout):
    # Views as the network hands them over (flipped for test-time flips,
    # transposed, every other column): the tiles are strided views of them.
    case = (2, 3, 40, 45, 4, 3, 3, (2, 1))
    x, weight, bias = conv_case_arrays(case)
    grad_y = np.random.default_rng(9).standard_normal(
        ref.conv2d_forward(x, weight, None, dilation=case[-1]).shape)
    if layout == "flipped":
        view = np.flip(np.ascontiguousarray(np.flip(x, -1)), -1)
        grad_view = np.flip(np.ascontiguousarray(np.flip(grad_y, -1)), -1)
    elif layout == "channels_last":
        view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        grad_view = np.ascontiguousarray(
            grad_y.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        wide = np.zeros(x.shape[:3] + (2 * x.shape[3],))
        wide[..., ::2] = x
        view = wide[..., ::2]
        grad_view = np.repeat(grad_y, 2, axis=-1)[..., ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(view, x)
    np.testing.assert_allclose(
        spectral.correlate(view, weight, bias, case[-1]),
        ref.conv2d_forward(x, weight, bias, dilation=case[-1]),
        rtol=1e-10, atol=1e-10)
    expected = ref.conv2d_backward(x, weight, grad_y, dilation=case[-1])[:2]
    got = spectral.correlate_backward(view, weight, grad_view, case[-1])
    for value, reference in zip(got, expected):
        np.testing.assert_allclose(value, reference, rtol=1e-10, atol=1e-10)
