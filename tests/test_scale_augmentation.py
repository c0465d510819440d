"""Scale augmentation (``scale_range``): images are resized with their
labels kept on the pixels they name, factors are log-uniform in the range,
and every sampler takes its example from the resized image."""

import numpy as np
import pytest
from skimage.transform import resize

from skrcnn import RecurrentCNNSegmenter
from skrcnn.training import (ImageSet, dense_example, draw_scale,
                             sample_crops, sample_patches)

from dummies import FixedScaleDraws
from scenes import colour_scenes


def _ramp_set(height=40, width=50):
    """Channel 0 = column, channel 1 = row; labels = column // 4 (every
    pixel labelled), so positions can be read back from values. Sides
    times the tested factors are whole, so the factors are exact."""
    rows, cols = np.mgrid[:height, :width].astype(np.float64)
    image = np.stack([cols, rows, np.zeros_like(rows)], axis=-1)
    return ImageSet([image], [(np.arange(width) // 4)[None].repeat(height, 0)])


@pytest.mark.parametrize("factor", [2.0, 0.8])
def test_rescaled_image_and_labels_follow_the_pixel_centres(factor):
    scaled = _ramp_set().rescaled(0, factor)
    image, labels = scaled.images[0], scaled.targets[0]
    assert image.shape == (round(40 * factor), round(50 * factor), 3)
    assert labels.shape == image.shape[:2]
    # Output pixel c covers input coordinate (c + 0.5) / f - 0.5 (pixel
    # centres): a linear ramp stays linear away from the borders, where
    # bilinear interpolation (and anti-aliasing) only ever averages it.
    cols = np.arange(image.shape[1])
    inner = slice(3, -3)
    np.testing.assert_allclose(image[10, inner, 0],
                               ((cols + 0.5) / factor - 0.5)[inner],
                               atol=1e-6)
    rows = np.arange(image.shape[0])
    np.testing.assert_allclose(image[inner, 10, 1],
                               ((rows + 0.5) / factor - 0.5)[inner],
                               atol=1e-6)
    # Nearest neighbour: the label of the input pixel holding the centre.
    np.testing.assert_array_equal(
        labels, np.floor((cols + 0.5) / factor).astype(int)[None]
        .repeat(image.shape[0], 0) // 4)
    assert labels.dtype == _ramp_set().targets[0].dtype


def test_rescaled_set_standardises_with_its_own_statistics():
    scaled = _ramp_set().rescaled(0, 0.8)
    standardized = scaled.standardized(0, np.float64)
    np.testing.assert_allclose(standardized.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(standardized.std(), 1, atol=1e-12)


def test_scales_are_log_uniform_in_the_range():
    rng = np.random.RandomState(0)
    factors = np.array([draw_scale(rng, (0.5, 2.0)) for _ in range(4000)])
    assert factors.min() >= 0.5 and factors.max() <= 2.0
    # Log-uniform on [1/2, 2]: as many shrink as enlarge, a quarter each
    # below 1/sqrt(2) and above sqrt(2).
    assert abs(np.mean(factors < 1) - 0.5) < 0.03
    assert abs(np.mean(factors < 2 ** -0.5) - 0.25) < 0.03
    assert abs(np.mean(factors > 2 ** 0.5) - 0.25) < 0.03
    assert draw_scale(rng, (1.3, 1.3)) == pytest.approx(1.3)


def _colour_set():
    X, y = colour_scenes(3, seed=2)
    return ImageSet(list(X), list(y))


def _resized_set(image_set, factor):
    """The reference: every image resized by the test itself."""
    images, targets = [], []
    for image, labels in zip(image_set.images, image_set.targets):
        shape = (round(labels.shape[0] * factor),
                 round(labels.shape[1] * factor))
        images.append(resize(image.astype(np.float64), shape + (3,), order=1,
                             anti_aliasing=factor < 1, preserve_range=True))
        targets.append(resize(labels, shape, order=0, anti_aliasing=False,
                              preserve_range=True).astype(labels.dtype))
    return ImageSet(images, targets)


SAMPLERS = {
    "crops": lambda s, rng, **kw: sample_crops(s, 4, 7, 2, 3, rng,
                                               np.float64, **kw),
    "crop frames": lambda s, rng, **kw: sample_crops(
        s, 4, 7, 2, 3, rng, np.float64, frames=True, **kw),
    "patches": lambda s, rng, **kw: sample_patches(s, 4, 9, rng,
                                                   np.float64, **kw),
    "whole image": lambda s, rng, **kw: dense_example(s, 1, 7, 2, rng,
                                                      np.float64, **kw),
    "whole image frames": lambda s, rng, **kw: dense_example(
        s, 2, 7, 2, rng, np.float64, frames=True, **kw),
}


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("factor", [0.8, 1.5])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_samplers_cut_from_the_resized_image(sampler, factor, flip):
    image_set = _colour_set()
    reference_set = _resized_set(image_set, factor)
    for seed in range(4):
        got = SAMPLERS[sampler](image_set, FixedScaleDraws(seed),
                                flip=flip, scale_range=(factor, factor))
        expected = SAMPLERS[sampler](reference_set,
                                     np.random.RandomState(seed), flip=flip)
        assert got[0].shape == expected[0].shape
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, atol=1e-9)


def test_a_shrink_that_loses_every_label_falls_back_to_the_original():
    image = np.random.default_rng(0).random((20, 20, 3))
    labels = np.full((20, 20), -1)
    labels[2, 2] = 2  # a 2x2 shrink keeps pixels (5|15, 5|15) only
    image_set = ImageSet([image], [labels])
    assert image_set.rescaled(0, 0.1).usable.size == 0
    patches, targets = sample_patches(image_set, 3, 5, np.random.RandomState(0),
                                      np.float64, scale_range=(0.1, 0.1))
    np.testing.assert_array_equal(targets, [2, 2, 2])
    # Cut from the original image, around its only labelled pixel.
    expected, _ = sample_patches(image_set, 3, 5, np.random.RandomState(0),
                                 np.float64)
    np.testing.assert_allclose(patches, expected, atol=1e-12)


@pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_with_scale_range_leaves_the_data_alone_and_changes_the_model(
        monkeypatch):
    from skrcnn.training import ImageSet
    X, y = colour_scenes(6, seed=4)
    X_before, y_before = X.copy(), y.copy()
    params = dict(architecture=(("conv", 4, 3), ("pool", 2), ("tanh",),
                                ("conv", "classes", 1)),
                  n_instances=2, max_iter=2, patches_per_epoch=32,
                  crop_size=2, random_state=0)
    factors = []
    original = ImageSet.rescaled

    def recording(self, index, factor):
        factors.append(factor)
        return original(self, index, factor)
    monkeypatch.setattr(ImageSet, "rescaled", recording)
    plain = RecurrentCNNSegmenter(**params).fit(X, y)
    assert factors == []
    scaled = RecurrentCNNSegmenter(scale_range=(0.7, 1.4), **params).fit(X, y)
    # Every training example came from a copy resized by a factor drawn
    # from the range (log-uniform, so both sides of 1 turn up).
    assert len(factors) >= 16
    assert min(factors) >= 0.7 and max(factors) <= 1.4
    assert min(factors) < 0.95 and max(factors) > 1.05
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert not np.array_equal(plain.coefs_[0], scaled.coefs_[0])
    assert scaled.predict(X).shape == y.shape
