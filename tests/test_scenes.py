"""make_scenes: determinism, shapes, and that sky vs water needs context."""

import re
import time

import numpy as np
import pytest
from scipy.ndimage import maximum_filter
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from skrcnn.datasets import make_scenes

SKY, WATER, MOUNTAIN, GRASS, TREE, BUILDING = range(6)


def test_same_seed_gives_byte_identical_scenes():
    a = make_scenes(n_samples=8, image_shape=(40, 56), random_state=3)
    b = make_scenes(n_samples=8, image_shape=(40, 56), random_state=3)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert np.array_equal(a.horizons, b.horizons)


def test_different_seeds_give_different_scenes():
    a = make_scenes(n_samples=4, random_state=0)
    b = make_scenes(n_samples=4, random_state=1)
    assert not np.array_equal(a.images, b.images)
    assert not np.array_equal(a.labels, b.labels)
    # Scenes within one call differ from each other too.
    assert not np.array_equal(a.images[0], a.images[1])


def test_random_state_instances_are_accepted():
    from_rs = make_scenes(3, random_state=np.random.RandomState(5))
    again = make_scenes(3, random_state=np.random.RandomState(5))
    assert np.array_equal(from_rs.images, again.images)
    from_gen = make_scenes(3, random_state=np.random.default_rng(5))
    assert from_gen.images.shape == (3, 64, 64, 3)


def test_shapes_dtypes_and_bunch():
    scenes = make_scenes(n_samples=5, image_shape=(48, 80), random_state=0)
    assert scenes.images.shape == (5, 48, 80, 3)
    assert scenes.images.dtype == np.uint8
    assert scenes.labels.shape == (5, 48, 80)
    assert scenes.labels.dtype == np.int64
    assert scenes.horizons.shape == (5,)
    assert scenes.class_names == ["sky", "water", "mountain", "grass",
                                  "tree", "building"]
    assert scenes.labels.min() >= -1
    assert scenes.labels.max() < len(scenes.class_names)
    assert "sky" in scenes.DESCR and "context_scale" in scenes.DESCR


def test_return_X_y_matches_bunch():
    images, labels = make_scenes(6, random_state=2, return_X_y=True)
    scenes = make_scenes(6, random_state=2)
    assert np.array_equal(images, scenes.images)
    assert np.array_equal(labels, scenes.labels)


def test_every_class_appears_over_a_batch():
    labels = make_scenes(n_samples=30, random_state=0).labels
    counts = np.bincount(labels.ravel(), minlength=6)
    assert np.all(counts > 0), counts
    # Sky and water are large regions, not slivers.
    assert counts[SKY] / labels.size > 0.1
    assert counts[WATER] / labels.size > 0.05


def test_no_unknown_pixels_by_default():
    assert make_scenes(10, random_state=0).labels.min() >= 0


def test_unknown_band_marks_only_class_boundaries():
    plain = make_scenes(10, random_state=4).labels
    banded = make_scenes(10, random_state=4, unknown_band=1).labels
    unknown = banded == -1
    assert 0.005 < unknown.mean() < 0.3
    # Away from the band the labels are untouched ...
    assert np.array_equal(banded[~unknown], plain[~unknown])
    # ... and every unknown pixel has a different class in its 3x3 window.
    for image_labels, image_unknown in zip(plain, unknown):
        rows, cols = np.nonzero(image_unknown)
        for r, c in zip(rows[:200], cols[:200]):
            window = image_labels[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
            assert np.unique(window).size > 1


def _pixels(scenes, label):
    return scenes.images[scenes.labels == label].astype(np.float64)


def test_sky_and_water_colours_are_statistically_identical():
    scenes = make_scenes(n_samples=300, image_shape=(48, 48), random_state=0)
    sky, water = _pixels(scenes, SKY), _pixels(scenes, WATER)
    assert len(sky) > 50_000 and len(water) > 20_000
    assert np.allclose(sky.mean(0), water.mean(0), atol=3.0)
    assert np.allclose(sky.std(0), water.std(0), rtol=0.05)
    # Positive control: the same statistics do tell grass from tree.
    grass, tree = _pixels(scenes, GRASS), _pixels(scenes, TREE)
    assert np.abs(grass.mean(0) - tree.mean(0)).max() > 30


def _windows(scenes, classes, half, n_per_class, rng):
    """Raw RGB windows around pixels whose window holds one class only."""
    features, targets = [], []
    size = 2 * half + 1
    for cls in classes:
        pure = []
        for index, labels in enumerate(scenes.labels):
            mixed = maximum_filter((labels != cls).astype(np.uint8), size,
                                   mode="constant", cval=1)
            rows, cols = np.nonzero(mixed == 0)
            pure += [(index, r, c) for r, c in zip(rows, cols)]
        picks = rng.choice(len(pure), n_per_class, replace=False)
        for i in picks:
            index, r, c = pure[i]
            patch = scenes.images[index, r - half:r + half + 1,
                                  c - half:c + half + 1]
            features.append(patch.ravel() / 255.0)
            targets.append(cls)
    return np.array(features), np.array(targets)


def test_local_windows_cannot_tell_sky_from_water_but_layout_can():
    rng = np.random.default_rng(0)
    scenes = make_scenes(n_samples=150, image_shape=(64, 64), random_state=1)
    model = LogisticRegression(max_iter=2000)

    X, y = _windows(scenes, [SKY, WATER], 2, 1500, rng)
    chance = cross_val_score(model, X, y, cv=3).mean()
    assert 0.42 < chance < 0.58, chance

    # Positive control: the same classifier on the same window size
    # separates two classes that do differ locally.
    X, y = _windows(scenes, [GRASS, TREE], 2, 1500, rng)
    assert cross_val_score(model, X, y, cv=3).mean() > 0.95

    # The layout rule separates sky from water without a single error.
    rows = np.arange(64)[None, :, None]
    above = rows < scenes.horizons[:, None, None]
    above = np.broadcast_to(above, scenes.labels.shape)
    assert np.all(above[scenes.labels == SKY])
    assert not np.any(above[scenes.labels == WATER])


def _share(mask_stack, where):
    return mask_stack[where].mean()


def test_context_scale_sets_how_far_the_cue_is():
    scenes = make_scenes(n_samples=60, image_shape=(96, 96), random_state=0,
                         context_scale=16)
    labels = scenes.labels
    sky_or_water = (labels == SKY) | (labels == WATER)

    def window_stack(mask, size):
        return np.stack([maximum_filter(m.astype(np.uint8), size,
                                        mode="constant", cval=0) > 0
                         for m in mask])

    # An 8-ish pixel receptive field (9x9 window) sees nothing but sky or
    # water around most sky and water pixels: no way to tell them apart.
    other = ~sky_or_water
    assert _share(~window_stack(other, 9), sky_or_water) > 0.5
    # A 45x45 one sees something else around every pixel, and the mountains
    # (the cue between sky and water) around nearly all of them.
    assert _share(~window_stack(other, 45), sky_or_water) < 0.001
    assert _share(window_stack(labels == MOUNTAIN, 45), sky_or_water) > 0.95


def test_distance_to_horizon_grows_with_context_scale():
    def mean_distance(scale):
        scenes = make_scenes(40, (128, 128), random_state=0,
                             context_scale=scale)
        rows = np.arange(128)[None, :, None]
        distance = np.abs(rows - scenes.horizons[:, None, None])
        distance = np.broadcast_to(distance, scenes.labels.shape)
        return distance[(scenes.labels == SKY)
                        | (scenes.labels == WATER)].mean()

    small, large = mean_distance(8), mean_distance(24)
    assert 2.0 < large / small < 4.0, (small, large)
    assert 3 < small < 10


def test_default_context_scale_is_a_quarter_of_the_height():
    default = make_scenes(4, (120, 64), random_state=0)
    explicit = make_scenes(4, (120, 64), random_state=0, context_scale=30)
    assert np.array_equal(default.labels, explicit.labels)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=2.5), "n_samples"),
    (dict(image_shape=(16, 64)), "image_shape"),
    (dict(image_shape=64), "image_shape"),
    (dict(image_shape=(64, 64, 3)), "image_shape"),
    (dict(context_scale=2), "context_scale"),
    (dict(context_scale=float("nan")), "context_scale"),
    (dict(context_scale="big"), "context_scale"),
    (dict(context_scale=40), "context_scale"),
    (dict(unknown_band=-1), "unknown_band"),
    (dict(unknown_band=True), "unknown_band"),
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_scenes(**kwargs)


@pytest.mark.parametrize("height", [31, 64, 100])
def test_too_large_context_scale_suggests_a_fitting_one(height):
    with pytest.raises(ValueError, match=r"context_scale <= [\d.]+") as info:
        make_scenes(1, image_shape=(height, 32), context_scale=height)
    suggested = float(re.search(r"context_scale <= ([\d.]+)",
                                str(info.value)).group(1))
    make_scenes(1, image_shape=(height, 32), context_scale=suggested)


def test_fast():
    start = time.perf_counter()
    make_scenes(n_samples=100, image_shape=(64, 64), random_state=0)
    assert time.perf_counter() - start < 1.0
