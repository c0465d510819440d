"""Whole-image inference must score every pixel exactly as the patch centred
on it: per-pixel patch evaluation is the reference for shift-and-stitch and
the dense pass, at full and reduced output resolution."""

import weakref

import numpy as np
import pytest

from skrcnn import no_grad
from skrcnn.architecture import resolve_layers
from skrcnn.inference import (image_scores, label_positions, pad_for_patches,
                              pass_scores, softmax, upsample)
from skrcnn.network import RecurrentNetwork

TINY = (("conv", 4, 3), ("pool", 2), ("tanh",), ("conv", "classes", 2))


def _network(architecture, n_classes=3, seed=0, dtype=np.float32):
    return RecurrentNetwork.initialise(resolve_layers(architecture), n_classes,
                                       np.random.RandomState(seed),
                                       dtype=dtype)


def _patch_scores(net, image, n_instances, pixels):
    """Reference: cut the zero-padded patch centred on each pixel and run
    the network on it alone (a 1x1 output)."""
    side = net.patch_size(n_instances)
    top = (side - 1) // 2
    _, height, width = image.shape
    padded = np.zeros((3, height + side - 1, width + side - 1), image.dtype)
    padded[:, top:top + height, top:top + width] = image
    out = []
    with no_grad():
        for i, j in pixels:
            patch = padded[None, :, i:i + side, j:j + side]
            out.append(net.forward(patch, n_instances).data[0, :, 0, 0])
    return np.array(out)


def _test_pixels(height, width, rng, n_random=6):
    corners = [(0, 0), (0, width - 1), (height - 1, 0),
               (height - 1, width - 1), (height // 2, 0), (0, width // 2)]
    return corners + [tuple(rng.integers(0, (height, width)))
                      for _ in range(n_random)]


@pytest.mark.parametrize("n_instances", [1, 2, 3])
def test_shift_and_dense_equal_patch_evaluation(n_instances):
    net = _network("rcnn2", n_classes=4, seed=n_instances)
    rng = np.random.default_rng(n_instances)
    image = rng.standard_normal((3, 19, 26)).astype(np.float32)  # odd, wide
    pixels = _test_pixels(19, 26, rng)
    reference = _patch_scores(net, image, n_instances, pixels)
    for method in ("dense", "shift"):
        scores, rows, cols = image_scores(net, image, n_instances,
                                          method=method)
        assert scores.shape == (4, 19, 26)
        np.testing.assert_array_equal(rows, np.arange(19))
        got = np.array([scores[:, i, j] for i, j in pixels])
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5,
                                   err_msg=method)


def test_plain_network_shift_and_dense_equal_patch_evaluation():
    # The plain network's strided passes (patches, shift-and-stitch) fuse
    # its first convolution with the 8x8 pool; the dense pass does not.
    net = _network("plain", n_classes=4, seed=7)
    rng = np.random.default_rng(7)
    image = rng.standard_normal((3, 17, 22)).astype(np.float32)
    pixels = _test_pixels(17, 22, rng)
    reference = _patch_scores(net, image, 1, pixels)
    for method in ("dense", "shift"):
        scores, _, _ = image_scores(net, image, 1, method=method)
        got = np.array([scores[:, i, j] for i, j in pixels])
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5,
                                   err_msg=method)


@pytest.mark.parametrize("architecture,n_instances", [("rcnn2", 3),
                                                       ("rcnn1", 2),
                                                       (TINY, 3)])
@pytest.mark.parametrize("step", [2, 4, 8])
def test_reduced_resolution_matches_full_resolution(architecture, n_instances,
                                                    step):
    net = _network(architecture, seed=step)
    rng = np.random.default_rng(step)
    image = rng.standard_normal((3, 23, 30)).astype(np.float32)
    full, _, _ = image_scores(net, image, n_instances, method="dense")
    for method in ("dense", "shift"):
        scores, rows, cols = image_scores(net, image, n_instances, step=step,
                                          method=method)
        np.testing.assert_array_equal(rows, label_positions(23, step))
        np.testing.assert_array_equal(cols, label_positions(30, step))
        assert rows[0] == (step - 1) // 2 and np.all(np.diff(rows) == step)
        np.testing.assert_allclose(scores, full[:, rows][:, :, cols], rtol=0,
                                   atol=1e-5, err_msg=method)


def test_shift_and_stitch_runs_one_pass_per_needed_shift(monkeypatch):
    import skrcnn.inference as inference
    calls = []
    original = inference.pass_scores

    def counting(*args, **kwargs):
        calls.append(args[4:6])
        return original(*args, **kwargs)

    monkeypatch.setattr(inference, "pass_scores", counting)
    net = _network("rcnn2")
    image = np.zeros((3, 20, 20), np.float32)
    for step, passes in [(1, 64), (2, 16), (4, 4), (8, 1), (16, 1)]:
        calls.clear()
        image_scores(net, image, 3, step=step, method="shift")
        assert len(calls) == passes, step
        assert len(set(calls)) == passes


def test_row_bands_give_the_same_scores():
    net = _network("rcnn2", seed=3)
    image = np.random.default_rng(3).standard_normal((3, 30, 21)).astype(
        np.float32)
    padded = pad_for_patches(image, net.patch_size(2))
    whole = pass_scores(net, padded, 2, 1, 0, 0, 30, 21)
    banded = pass_scores(net, padded, 2, 1, 0, 0, 30, 21, max_bytes=1)
    np.testing.assert_allclose(banded, whole, rtol=0, atol=1e-6)
    strided = pass_scores(net, padded, 2, 4, 1, 2, 8, 5, max_bytes=1)
    np.testing.assert_allclose(strided, whole[:, 1::4, 2::4], rtol=0,
                               atol=1e-5)


class _MemoryCap:
    """Wraps ``net.forward`` so that a pass over more than ``max_rows``
    input rows raises MemoryError, as a full GPU (CuPy's OutOfMemoryError
    is a MemoryError) or a capped process would; records every attempt,
    and checks that each new attempt starts with a failed one's arrays
    freed."""

    def __init__(self, net, max_rows):
        self.forward, self.max_rows, self.attempts = net.forward, max_rows, []
        self.failed_arrays = []
        net.forward = self

    def __call__(self, x, *args, **kwargs):
        assert all(ref() is None for ref in self.failed_arrays)
        self.attempts.append(x.shape[2])
        if x.shape[2] > self.max_rows:
            half_done = np.ones(x.shape)  # what a failed pass had made
            self.failed_arrays.append(weakref.ref(half_done))
            raise MemoryError("injected: out of memory")
        return self.forward(x, *args, **kwargs)


@pytest.mark.parametrize("output_stride, n_rows, attempts", [
    # Whole pass, then halved after each failure; once 4 rows fit, bands of
    # 4 to the end.
    (1, 37, [37, 18, 9] + [4] * 9 + [1]),
    (4, 9, [9, 4, 4, 1])])
def test_bands_that_run_out_of_memory_are_retried_half_as_tall(
        output_stride, n_rows, attempts):
    net = _network("rcnn2", seed=3)
    image = np.random.default_rng(4).standard_normal((3, 37, 21)).astype(
        np.float32)
    side = net.patch_size(2)
    padded = pad_for_patches(image, side)
    whole = pass_scores(net, padded, 2, output_stride, 0, 0, n_rows, 5)
    # Memory for the input of 5 output rows at most.
    cap = _MemoryCap(net, side + output_stride * 4)
    with pytest.warns(UserWarning, match="out of memory on a band of"):
        retried = pass_scores(net, padded, 2, output_stride, 0, 0, n_rows,
                              5)
    np.testing.assert_allclose(retried, whole, rtol=0, atol=1e-6)
    assert [(height - side) // output_stride + 1
            for height in cap.attempts] == attempts


def test_running_out_of_memory_on_one_row_is_an_error():
    net = _network("rcnn2", seed=3)
    image = np.zeros((3, 12, 10), np.float32)
    padded = pad_for_patches(image, net.patch_size(2))
    cap = _MemoryCap(net, 0)
    with pytest.warns(UserWarning, match="out of memory"), \
            pytest.raises(MemoryError, match="even one output row of a "
                          "78x76 padded image") as raised:
        pass_scores(net, padded, 2, 1, 0, 0, 12, 10)
    assert str(raised.value.__cause__) == "injected: out of memory"
    assert [(h - 67) + 1 for h in cap.attempts] == [12, 6, 3, 1]


def test_pad_centres_every_pixel():
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    padded = pad_for_patches(image, 4)         # 1 before, 2 after
    assert padded.shape == (2, 6, 6)
    np.testing.assert_array_equal(padded[:, 1:4, 1:4], image)
    assert padded.sum() == image.sum()


def test_label_positions_take_block_centres():
    np.testing.assert_array_equal(label_positions(10, 1), np.arange(10))
    np.testing.assert_array_equal(label_positions(10, 2), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(label_positions(10, 4), [1, 5, 9])
    np.testing.assert_array_equal(label_positions(10, 8), [3])
    np.testing.assert_array_equal(label_positions(2, 8), [1])


def test_upsample_interpolates_linearly_and_keeps_known_pixels():
    values = np.array([[[0.0, 4.0], [8.0, 12.0]]])   # known at rows/cols 1, 3
    out = upsample(values, np.array([1, 3]), np.array([1, 3]), 5, 4)
    expected_rows = np.array([[0, 4], [0, 4], [4, 8], [8, 12], [8, 12]])
    expected = np.array([[r[0], r[0], (r[0] + r[1]) / 2, r[1]]
                         for r in expected_rows])
    np.testing.assert_allclose(out[0], expected)
    same = np.ones((1, 3, 3))
    assert upsample(same, np.arange(3), np.arange(3), 3, 3) is same


def test_softmax_is_a_distribution():
    scores = np.random.default_rng(0).standard_normal((5, 4, 3)) * 50
    p = softmax(scores)
    np.testing.assert_allclose(p.sum(axis=0), 1.0)
    assert np.all(np.argmax(p, axis=0) == np.argmax(scores, axis=0))


def test_softmax_values():
    # softmax([0, log 3]) = [1/4, 3/4]; shifting every score changes nothing.
    np.testing.assert_allclose(softmax(np.array([0.0, np.log(3.0)])),
                               [0.25, 0.75], rtol=1e-12)
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0 + np.log(3)])),
                               [0.25, 0.75], rtol=1e-12)
    scores = np.random.default_rng(1).standard_normal((4, 2, 3))
    direct = np.exp(scores) / np.exp(scores).sum(axis=0)
    np.testing.assert_allclose(softmax(scores), direct, rtol=1e-12)
    np.testing.assert_allclose(softmax(scores.transpose(1, 0, 2), axis=1),
                               direct.transpose(1, 0, 2), rtol=1e-12)
