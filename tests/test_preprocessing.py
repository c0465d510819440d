"""Per-image standardisation: the numbers, the types in and out, the
transformer in scikit-learn pipelines, and errors naming the image."""

import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skrcnn.metrics import pixel_accuracy
from skrcnn.model_selection import ImageKFold
from skrcnn.preprocessing import (ImageStandardizer, resample_bilinear,
                                  resize_image, resize_labels,
                                  standardize_image)
from dummies import MeanColourSegmenter, colour_pixel_scenes as make_scenes


def esc(text):
    return re.escape(text)


# ================================================================ numbers

def test_standardize_by_hand():
    image = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    mean = 2.5
    std = np.sqrt(sum((v - mean) ** 2 for v in range(6)) / 6)  # population
    expected = (np.arange(6).reshape(1, 2, 3) - mean) / std
    out = standardize_image(image)
    assert out.dtype == np.float32 and out.shape == (1, 2, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    out64 = standardize_image(image, np.float64)
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out64, expected, rtol=1e-13)


def test_huge_pixel_values_standardize_as_their_scaled_image():
    """Values whose squares overflow float64 (finite, so accepted) give the
    standardisation of the same image scaled down, not NaN."""
    image = np.random.default_rng(0).random((5, 6, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        huge = standardize_image(image * 1e300, np.float64)
    np.testing.assert_allclose(huge, standardize_image(image, np.float64),
                               rtol=1e-12, atol=1e-12)


def test_zero_mean_unit_variance_over_all_channels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (13, 17, 3)).astype(np.uint8)
    image[..., 0] //= 4  # channels with different means stay different
    out = standardize_image(image, np.float64)
    assert abs(out.mean()) < 1e-12
    assert out.std() == pytest.approx(1.0, rel=1e-12)
    assert out[..., 0].mean() < out[..., 1].mean()  # one mean per image


def test_constant_image_becomes_zeros():
    # 0.1 and 123.456: constants whose float64 mean rounds off the constant
    # (they became all +1 or all -1).
    for image in (np.full((4, 5, 3), 7, np.uint8), np.zeros((1, 1, 3)),
                  np.full((2, 2, 3), -3.5), np.full((7, 7, 3), 0.1),
                  np.full((31, 17, 3), 0.1), np.full((7, 7, 3), 123.456),
                  np.full((240, 320, 3), 77 / 255.0)):
        out = standardize_image(image)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, np.zeros(image.shape))


def test_uint8_and_float_inputs_agree():
    image = np.random.default_rng(1).integers(0, 256, (6, 7, 3))
    expected = standardize_image(image.astype(np.uint8), np.float64)
    for dtype in (np.float32, np.float64, np.int64, np.uint16):
        np.testing.assert_allclose(
            standardize_image(image.astype(dtype), np.float64), expected,
            rtol=1e-12, atol=1e-12)
    # scale and offset do not matter
    np.testing.assert_allclose(
        standardize_image(image / 255.0 * 3 - 1, np.float64), expected,
        atol=1e-12)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_input_not_modified(dtype):
    image = np.random.default_rng(2).integers(0, 256, (5, 4, 3)).astype(dtype)
    before = image.copy()
    for out_dtype in (np.float32, np.float64):
        out = standardize_image(image, out_dtype)
        assert not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)
    images = [image, image[:3]]
    ImageStandardizer(dtype="float64").fit_transform(images)
    np.testing.assert_array_equal(image, before)


def test_idempotent_up_to_rounding():
    images, _ = make_scenes(4)
    once = ImageStandardizer().transform(images)
    twice = ImageStandardizer().transform(once)
    for a, b in zip(once, twice):
        np.testing.assert_allclose(a, b, atol=1e-6)
    once = ImageStandardizer(dtype="float64").transform(images)
    twice = ImageStandardizer(dtype="float64").transform(once)
    for a, b in zip(once, twice):
        np.testing.assert_allclose(a, b, atol=1e-13)


# ================================================================ transformer

def test_list_in_list_out_with_different_sizes():
    images, _ = make_scenes(5)
    out = ImageStandardizer().fit_transform(images)
    assert isinstance(out, list) and len(out) == 5
    for image, result in zip(images, out):
        assert result.shape == image.shape and result.dtype == np.float32
        np.testing.assert_array_equal(result, standardize_image(image))


def test_array_in_array_out():
    images, _ = make_scenes(4, sizes=[(6, 5)])
    X = np.stack(images)
    for dtype in ("float32", "float64"):
        out = ImageStandardizer(dtype=dtype).fit(X).transform(X)
        assert isinstance(out, np.ndarray)
        assert out.shape == X.shape and out.dtype == np.dtype(dtype)
        for k in range(4):
            np.testing.assert_array_equal(out[k],
                                          standardize_image(X[k], dtype))


def test_stateless_transformer():
    images, _ = make_scenes(3)
    scaler = ImageStandardizer()
    assert scaler.fit(images) is scaler
    # no fitted state is needed: transform works on a fresh instance
    other, _ = make_scenes(2, seed=5)
    for a, b in zip(ImageStandardizer().transform(other),
                    scaler.transform(other)):
        np.testing.assert_array_equal(a, b)
    if hasattr(scaler, "__sklearn_tags__"):  # scikit-learn >= 1.6
        assert scaler.__sklearn_tags__().requires_fit is False


def test_in_pipeline_with_clone_and_params():
    images, maps = make_scenes(12)
    pipe = make_pipeline(ImageStandardizer(), MeanColourSegmenter())
    params = pipe.get_params()
    assert params["imagestandardizer__dtype"] == "float32"
    assert params["meancoloursegmenter__bias"] == 0.0
    copy = clone(pipe)
    assert copy.get_params()["imagestandardizer__dtype"] == "float32"
    copy.set_params(imagestandardizer__dtype="float64")
    assert pipe.get_params()["imagestandardizer__dtype"] == "float32"
    pipe.fit(images, maps)
    predicted = pipe.predict(images)
    assert isinstance(predicted, list)
    assert [p.shape for p in predicted] == [m.shape for m in maps]
    assert pipe.score(images, maps) == pixel_accuracy(maps, predicted)
    assert pipe.score(images, maps) > 0.5
    scores = cross_val_score(copy, images, maps, cv=ImageKFold(3),
                             error_score="raise")
    assert scores.shape == (3,) and np.all(scores > 0.5)


# ================================================================ errors

def test_errors_name_the_image():
    good = np.zeros((4, 4, 3), np.uint8)
    scaler = ImageStandardizer()
    with pytest.raises(ValueError, match=esc("X[1] has shape (4, 4); "
                                             "expected (H, W, 3)")):
        scaler.transform([good, np.zeros((4, 4))])
    with pytest.raises(ValueError, match=esc("X[2] has shape (4, 4, 4)")):
        scaler.fit([good, good, np.zeros((4, 4, 4))])
    bad = np.zeros((4, 4, 3))
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=esc("X[1] contains NaN")):
        scaler.fit_transform([good, bad])
    with pytest.raises(TypeError, match=esc("X[0] has dtype bool")):
        scaler.transform([np.zeros((4, 4, 3), bool)])
    with pytest.raises(ValueError, match=esc("for a single image, use "
                                             "[image]")):
        scaler.transform(good)
    with pytest.raises(ValueError, match="empty"):
        scaler.transform([])
    with pytest.raises(TypeError, match="sequence of images"):
        scaler.transform(None)


def test_bad_dtype_parameter():
    images, _ = make_scenes(2)
    for method in ("fit", "transform"):
        with pytest.raises(ValueError, match="dtype must be 'float32' or "
                           "'float64', got 'float16'"):
            getattr(ImageStandardizer(dtype="float16"), method)(images)


def test_set_output_accepts_the_default_only():
    images = make_scenes(2)[0]
    pipeline = make_pipeline(ImageStandardizer(), MeanColourSegmenter())
    assert pipeline.set_output(transform="default") is pipeline
    with pytest.raises(ValueError, match=r"outputs images, not tables: "
                       r"set_output\(transform='pandas'\)"):
        ImageStandardizer().set_output(transform="pandas")
    out = ImageStandardizer().set_output(transform="default").transform(
        images)
    assert np.allclose(np.mean(out[0]), 0, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 4, 4), (4, 4), (3, 4, 4)])
def test_standardize_image_refuses_what_is_not_rgb(shape):
    with pytest.raises(ValueError, match=r"standardize_image: image has "
                       r"shape \(" + ", ".join(map(str, shape))):
        standardize_image(np.zeros(shape))


@pytest.mark.parametrize("in_shape", [(23, 31), (23, 31, 3), (17, 12, 8),
                                      (9, 14, 2, 3)])
@pytest.mark.parametrize("out_shape", [(37, 45), (11, 20), (23, 9), (1, 1)])
def test_resize_image_is_scikit_images_bilinear_resize(in_shape, out_shape):
    # Any trailing axes (RGB, class maps, more), enlarging and shrinking
    # (anti-aliased), against scikit-image itself.
    from skimage.transform import resize

    image = np.random.default_rng(len(in_shape)).random(in_shape) * 255
    expected = resize(image, out_shape + in_shape[2:], order=1,
                      anti_aliasing=any(o < i for o, i in
                                        zip(out_shape, in_shape)),
                      preserve_range=True)
    ours = resize_image(image, out_shape)
    assert ours.shape == expected.shape and ours.dtype == np.float64
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)
    # Asking for some pixels only gives those pixels of the whole resize
    # (without the anti-aliasing, which resize_image applies first).
    rows, cols = np.array([0, out_shape[0] - 1, out_shape[0] // 2]), \
        np.array([out_shape[1] // 3, 0, out_shape[1] - 1, 0])
    whole = resample_bilinear(image, np.arange(out_shape[0]),
                              np.arange(out_shape[1]), out_shape)
    np.testing.assert_array_equal(
        resample_bilinear(image, rows, cols, out_shape),
        whole[np.ix_(rows, cols)])


def test_resize_labels_is_scikit_images_nearest_resize():
    # Every pair of sizes up to 40 -> 60, including the output pixels whose
    # centre falls exactly halfway between two input pixels (an even size
    # to an odd one), against scikit-image itself.
    from skimage.transform import resize

    rng = np.random.default_rng(3)
    for height in range(1, 41, 3):
        labels = rng.integers(-1, 8, (height, 2 * height + 1))
        for new_height in range(1, 61, 2):
            shape = (new_height, max(1, 3 * new_height // 2))
            expected = resize(labels, shape, order=0, anti_aliasing=False,
                              preserve_range=True).astype(labels.dtype)
            ours = resize_labels(labels, shape)
            assert ours.dtype == labels.dtype
            np.testing.assert_array_equal(ours, expected,
                                          err_msg=f"{labels.shape} -> {shape}")
    assert resize_labels(labels, shape).flags.writeable
