"""Test-time scales (``test_time_scales``): each image is labelled at every
listed size and the class probabilities, brought back to the image's size,
are averaged."""

import copy

import numpy as np
import pytest
from skimage.transform import resize

from scenes import fitted_with_test_images


@pytest.fixture(scope="module")
def fitted():
    return fitted_with_test_images()


def _with(fitted_model, **params):
    """The fitted model with other prediction parameters (a shallow copy:
    set_params rebinds attributes of the copy only)."""
    return copy.copy(fitted_model).set_params(**params)


def _at_scale(model, image, scale):
    """Probabilities of ``image`` labelled at ``scale`` times its size,
    interpolated back (scikit-image's bilinear resize, called here)."""
    height, width = image.shape[:2]
    shape = (round(height * scale), round(width * scale))
    small = resize(image.astype(np.float64), shape + (3,), order=1,
                   anti_aliasing=scale < 1, preserve_range=True)
    probabilities = model.predict_proba([small])[0]
    return resize(probabilities, (height, width) + probabilities.shape[2:],
                  order=1, anti_aliasing=scale > 1)


@pytest.mark.parametrize("flip", [False, True])
def test_probabilities_are_the_mean_over_the_scales(fitted, flip):
    model, X = fitted
    single = _with(model, test_time_flip=flip)
    scales = (0.5, 1.0, 1.5)
    multi = _with(model, test_time_flip=flip, test_time_scales=scales)
    for image in X:
        expected = (single.predict_proba([image])[0]
                    + _at_scale(single, image, 0.5)
                    + _at_scale(single, image, 1.5)) / 3
        got = multi.predict_proba([image])[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        # The other sizes really count.
        assert not np.allclose(got, single.predict_proba([image])[0],
                               atol=1e-3)
        np.testing.assert_allclose(got.sum(-1), 1, atol=1e-5)
        assert np.array_equal(multi.predict([image])[0],
                              model.classes_[expected.argmax(-1)])


def test_scale_one_alone_is_the_plain_labelling(fitted):
    model, X = fitted
    np.testing.assert_array_equal(
        _with(model, test_time_scales=(1,)).predict_proba(X),
        model.predict_proba(X))
    np.testing.assert_array_equal(
        _with(model, test_time_scales=[1.0, 1.0]).predict_proba(X),
        model.predict_proba(X))


def test_order_of_the_scales_does_not_matter_and_arrays_stay_arrays(fitted):
    model, X = fitted
    before = X.copy()
    forward = _with(model, test_time_scales=(0.75, 1.25)).predict_proba(X)
    backward = _with(model, test_time_scales=(1.25, 0.75)).predict_proba(X)
    np.testing.assert_allclose(forward, backward, atol=1e-6)
    assert forward.shape == X.shape[:3] + (len(model.classes_),)
    np.testing.assert_array_equal(X, before)


def test_image_shrunk_to_a_few_pixels_still_labels_every_pixel(fitted):
    model, X = fitted
    out = _with(model, test_time_scales=(0.1, 1.0)).predict(list(X[:1]))
    assert out[0].shape == X.shape[1:3]
    assert set(np.unique(out[0])) <= set(model.classes_)


def test_bad_scales_set_after_fit_are_named_at_predict(fitted):
    model, X = fitted
    bad = _with(model, test_time_scales=(1.0, -0.5))
    with pytest.raises(ValueError, match=r"test_time_scales must be None or "
                       r"a non-empty sequence of real numbers > 0, got "
                       r"\(1.0, -0.5\)"):
        bad.predict(X)
