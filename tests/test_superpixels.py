"""Superpixel voting (``superpixels``): class probabilities averaged over
image segments, checked against a slow per-segment loop."""

import copy
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from skimage.segmentation import felzenszwalb

from scenes import colour_scenes, fitted_with_test_images
from skrcnn import RecurrentCNNSegmenter
from skrcnn.superpixels import (FELZENSZWALB_SCALES, average_over_segments,
                               felzenszwalb_segmentations,
                               felzenszwalb_segments)


@pytest.fixture(scope="module")
def fitted():
    return fitted_with_test_images()


def _with(fitted_model, **params):
    return copy.copy(fitted_model).set_params(**params)


def _slow_average(proba, segments):
    """Each segment's pixels set to their mean, one segment at a time (and
    for a list of segmentations, the mean of those)."""
    if isinstance(segments, list):
        return np.mean([_slow_average(proba, one) for one in segments], 0)
    out = np.empty_like(proba, dtype=np.float64)
    for number in np.unique(segments):
        inside = segments == number
        out[inside] = proba[inside].astype(np.float64).mean(axis=0)
    return out


def _random_proba(rng, shape, n_classes):
    scores = rng.normal(size=shape + (n_classes,))
    proba = np.exp(scores)
    return (proba / proba.sum(-1, keepdims=True)).astype(np.float32)


def test_average_matches_a_slow_loop_for_any_integer_numbers():
    rng = np.random.default_rng(0)
    proba = _random_proba(rng, (9, 11), 4)
    # Negative, large and non-contiguous segment numbers.
    segments = rng.choice([-7, 0, 3, 1000, 2 ** 40], size=(9, 11))
    averaged = average_over_segments(proba, segments)
    assert averaged.dtype == proba.dtype and averaged.shape == proba.shape
    np.testing.assert_allclose(averaged, _slow_average(proba, segments),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(averaged.sum(-1), 1, atol=1e-6)


def test_average_over_several_segmentations_is_the_mean_of_each():
    rng = np.random.default_rng(3)
    proba = _random_proba(rng, (6, 7), 3)
    maps = [rng.integers(0, k, size=(6, 7)) for k in (2, 5, 40)]
    averaged = average_over_segments(proba, maps)
    np.testing.assert_allclose(averaged, _slow_average(proba, maps),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(averaged, np.mean(
        [average_over_segments(proba, one) for one in maps], 0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"segments\[1\] has shape"):
        average_over_segments(proba, [maps[0], maps[1][:3]])
    with pytest.raises(ValueError, match="an empty list"):
        average_over_segments(proba, [])


def test_average_of_one_segment_and_of_single_pixels():
    rng = np.random.default_rng(1)
    proba = _random_proba(rng, (5, 6), 3)
    whole = average_over_segments(proba, np.zeros((5, 6), dtype=np.int64))
    np.testing.assert_allclose(whole, np.broadcast_to(
        proba.astype(np.float64).mean((0, 1)), proba.shape), rtol=1e-6)
    own = average_over_segments(proba, np.arange(30).reshape(5, 6))
    np.testing.assert_array_equal(own, proba)


def test_average_does_not_modify_its_inputs():
    rng = np.random.default_rng(2)
    proba = _random_proba(rng, (4, 4), 3)
    segments = (np.arange(16) // 5).reshape(4, 4)
    before = proba.copy(), segments.copy()
    average_over_segments(proba, segments)
    np.testing.assert_array_equal(proba, before[0])
    np.testing.assert_array_equal(segments, before[1])


@pytest.mark.parametrize("segments, message", [
    (np.zeros((4, 5), dtype=int), r"shape \(4, 5\); expected \(4, 4\)"),
    (np.zeros((4, 4)), "dtype float64; segment numbers must be integers"),
    (np.zeros((4, 4), dtype=bool), "dtype bool"),
])
def test_average_names_a_bad_segment_map(segments, message):
    proba = np.full((4, 4, 2), 0.5)
    with pytest.raises(ValueError, match=message):
        average_over_segments(proba, segments)


def test_average_needs_a_class_axis():
    with pytest.raises(ValueError, match=r"shape \(4, 4\); expected "
                                         r"\(H, W, n_classes\)"):
        average_over_segments(np.zeros((4, 4)), np.zeros((4, 4), int))


def test_felzenszwalb_segments_do_not_depend_on_the_value_range():
    image = colour_scenes(1, shape=(40, 50), seed=3)[0][0]
    as_uint8 = np.clip(image * 255, 0, 255).astype(np.uint8)
    segments = felzenszwalb_segments(as_uint8)
    assert segments.shape == (40, 50)
    # Numbered 0..k-1, every number used.
    assert set(np.unique(segments)) == set(range(segments.max() + 1))
    for same in (as_uint8 / 255.0, as_uint8 * 3.0 + 10):
        np.testing.assert_array_equal(felzenszwalb_segments(same), segments)
    # scikit-image's own on the standardised image: the same segments.
    standardized = (as_uint8 - as_uint8.mean()) / as_uint8.std()
    np.testing.assert_array_equal(
        felzenszwalb(standardized, scale=400, sigma=0.8, min_size=20),
        segments)


def test_felzenszwalb_segmentations_go_from_fine_to_coarse():
    image = colour_scenes(1, shape=(60, 80), seed=4)[0][0]
    maps = felzenszwalb_segmentations(image)
    assert len(maps) == len(FELZENSZWALB_SCALES) == 3
    for scale, segments in zip(FELZENSZWALB_SCALES, maps):
        assert segments.dtype == np.int32
        np.testing.assert_array_equal(
            segments, felzenszwalb_segments(image, scale=scale))
    counts = [len(np.unique(segments)) for segments in maps]
    assert counts[0] >= counts[1] >= counts[2]


def test_felzenszwalb_segments_follow_the_regions():
    # A two-colour image splits where the colour changes, not elsewhere.
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    image[:, 20:] = (200, 40, 40)
    segments = felzenszwalb_segments(image)
    # The smoothing (sigma 0.8) leaves thin segments along the edge only.
    assert len(np.unique(segments[:, :17])) == 1
    assert len(np.unique(segments[:, 23:])) == 1
    assert not set(segments[:, :20].ravel()) & set(segments[:, 20:].ravel())


@pytest.mark.parametrize("extra", [{}, {"test_time_flip": True}])
def test_estimator_averages_its_own_probabilities(fitted, extra):
    model, X = fitted
    plain = _with(model, **extra).predict_proba(X)
    voted = _with(model, superpixels="felzenszwalb", **extra)
    proba, labels = voted.predict_proba(X), voted.predict(X)
    for image, p, q, label in zip(X, plain, proba, labels):
        expected = _slow_average(p, felzenszwalb_segmentations(image))
        np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(label, model.classes_[q.argmax(-1)])


def test_estimator_takes_a_callable(fitted):
    model, X = fitted

    def halves(image):
        segments = np.zeros(image.shape[:2], dtype=np.int32)
        segments[:, image.shape[1] // 2:] = 5
        return segments

    def halves_and_columns(image):
        return [halves(image), np.indices(image.shape[:2])[1]]

    plain = model.predict_proba(X)
    voted = _with(model, superpixels=halves)
    for image, p, q in zip(X, plain, voted.predict_proba(X)):
        np.testing.assert_allclose(q, _slow_average(p, halves(image)),
                                   rtol=1e-5, atol=1e-6)
        # One label per half.
        assert len(np.unique(q.argmax(-1)[:, :15])) == 1
    both = _with(model, superpixels=halves_and_columns).predict_proba(X)
    for image, p, q in zip(X, plain, both):
        np.testing.assert_allclose(
            q, _slow_average(p, halves_and_columns(image)), rtol=1e-5,
            atol=1e-6)
    assert 0 <= voted.score(X, [np.zeros((24, 30), int)] * len(X)) <= 1


def test_bad_segments_are_named_before_any_network_pass(fitted, monkeypatch):
    model, X = fitted
    calls = []
    original = RecurrentCNNSegmenter._scaled_probabilities

    def counting(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(RecurrentCNNSegmenter, "_scaled_probabilities",
                        counting)

    segmented = []

    def wrong_for_the_last(image):
        segmented.append(1)
        if len(segmented) == len(X):
            return np.zeros((3, 3), dtype=int)
        return np.zeros(image.shape[:2], dtype=int)

    voted = _with(model, superpixels=wrong_for_the_last)
    with pytest.raises(ValueError, match=r"superpixels of image 2 has shape "
                                         r"\(3, 3\); expected \(24, 30\)"):
        voted.predict(list(X))
    assert calls == []


@pytest.mark.parametrize("value", ["slic", 3, True])
def test_unknown_superpixels_are_refused(fitted, value):
    model, X = fitted
    with pytest.raises(ValueError, match="superpixels must be None, one of "
                                         r"\('felzenszwalb',\)"):
        _with(model, superpixels=value).predict(X)
    with pytest.raises(ValueError, match="superpixels must be"):
        clone(model).set_params(superpixels=value).fit(X, [np.zeros(
            (24, 30), int)] * len(X))


def test_a_model_saved_before_the_parameter_loads_without_it(fitted):
    model, X = fitted
    state = dict(model.__getstate__())
    del state["superpixels"]
    old = RecurrentCNNSegmenter.__new__(RecurrentCNNSegmenter)
    old.__setstate__(state)
    assert old.superpixels is None
    np.testing.assert_array_equal(old.predict(X), model.predict(X))
    assert pickle.loads(pickle.dumps(_with(
        model, superpixels="felzenszwalb"))).superpixels == "felzenszwalb"
