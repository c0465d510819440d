"""``class_weight``: per-class weights of the training loss.

References: scikit-learn's ``compute_class_weight`` for the balanced
weights, the unweighted model for all-ones weights, and a scene with a rare
class that only weighting teaches the network to find.
"""

import warnings

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from scenes import SMALL, colour_scenes
from skrcnn import RecurrentCNNSegmenter
from skrcnn.metrics import mean_class_accuracy, per_class_accuracy


def rare_scenes(n, shape=(24, 24), seed=0):
    """Grey noise (0) with one 3x3 square (1), a little brighter: 1.6% of
    the pixels, and not obvious pixel by pixel."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(n):
        label = np.zeros(shape, dtype=np.int64)
        r, c = rng.integers(0, shape[0] - 3, size=2)
        label[r:r + 3, c:c + 3] = 1
        image = rng.normal(120, 30, shape + (3,))
        image[label == 1] += 30
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        labels.append(label)
    return np.stack(images), np.stack(labels)


def _fit(X, y, **params):
    model = RecurrentCNNSegmenter(**{**dict(
        architecture=SMALL, n_instances=1, crop_size=None, max_iter=4,
        random_state=0), **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def test_balanced_weights_are_scikit_learns_over_labelled_pixels():
    X, y = colour_scenes(4, shape=(20, 24))
    # Non-contiguous labels, unknown pixels, and a skewed class mix.
    y = np.choose(y, [2, 5, 9])
    y[0, :6] = -1
    y[1, 4:] = 9
    model = _fit(X, y, class_weight="balanced", max_iter=1)
    labelled = y[y >= 0]
    expected = compute_class_weight("balanced", classes=np.array([2, 5, 9]),
                                    y=labelled)
    np.testing.assert_allclose(model.class_weight_, expected, rtol=1e-12)


def test_a_dict_sets_the_named_classes_and_leaves_the_others_at_one():
    X, y = colour_scenes(4, shape=(20, 24))
    y = np.choose(y, [2, 5, 9])
    model = _fit(X, y, class_weight={9: 4.0, np.int64(2): 0.5}, max_iter=1)
    np.testing.assert_array_equal(model.class_weight_, [0.5, 1.0, 4.0])
    assert _fit(X, y, max_iter=1).class_weight_ is None


def test_a_dict_for_the_whole_data_set_fits_a_fold_that_lacks_a_class():
    """As scikit-learn's class_weight: labels y lacks are ignored when
    every class of y has a weight (one dict over all of a data set's
    classes, fitted on a cross-validation fold); not otherwise."""
    from sklearn.model_selection import cross_val_score
    X, y = colour_scenes(4, shape=(20, 24))
    y = np.choose(y, [2, 5, 9])
    weights = {2: 0.5, 5: 1.5, 9: 4.0, 7: 3.0}
    model = _fit(X, y, class_weight=weights, max_iter=1)
    np.testing.assert_array_equal(model.class_weight_, [0.5, 1.5, 4.0])
    with pytest.raises(ValueError, match=r"weight for label 7, which is "
                       r"not one of the classes \[2, 5, 9\] \(other labels "
                       r"are allowed only when every class has a weight"):
        _fit(X, y, class_weight={2: 0.5, 7: 3.0}, max_iter=1)
    y_fold = np.where(y == 5, 2, y)  # a fold without class 5
    model = RecurrentCNNSegmenter(architecture=SMALL, n_instances=1,
                                  crop_size=None, max_iter=1, random_state=0,
                                  class_weight={2: 1.0, 5: 1.0, 9: 1.0})
    scores = cross_val_score(model, X, y_fold,
                             cv=[(np.arange(3), np.arange(3, 4))],
                             error_score="raise")
    assert np.isfinite(scores).all()


def test_weights_of_one_train_the_same_model_as_no_weights():
    X, y = colour_scenes(6, shape=(20, 24))
    plain = _fit(X, y, n_instances=2, crop_size=4, batch_size=4,
                 patches_per_epoch=8, max_iter=2)
    ones = _fit(X, y, n_instances=2, crop_size=4, batch_size=4,
                patches_per_epoch=8, max_iter=2,
                class_weight={0: 1.0, 1: 1.0, 2: 1.0})
    for a, b in zip(plain.coefs_ + plain.intercepts_,
                    ones.coefs_ + ones.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert plain.loss_curve_ == pytest.approx(ones.loss_curve_, rel=1e-6)


def test_the_loss_curve_is_the_weighted_mean_loss():
    """With every weight doubled the weighted mean, and so the training,
    is unchanged."""
    X, y = colour_scenes(6, shape=(20, 24))
    base = _fit(X, y, max_iter=1)
    doubled = _fit(X, y, max_iter=1, class_weight={0: 2.0, 1: 2.0, 2: 2.0})
    assert doubled.loss_curve_ == pytest.approx(base.loss_curve_, rel=1e-5)
    np.testing.assert_allclose(doubled.coefs_[0], base.coefs_[0], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_balanced_weights_find_a_rare_class(seed):
    X, y = rare_scenes(24)
    X_test, y_test = rare_scenes(24, seed=1)
    scores = {}
    for weights in (None, "balanced"):
        predicted = _fit(X, y, class_weight=weights,
                         random_state=seed).predict(X_test)
        scores[weights] = (per_class_accuracy(y_test, predicted)[1],
                           mean_class_accuracy(y_test, predicted))
    unweighted, balanced = scores[None], scores["balanced"]
    # The unweighted loss is lowest by calling everything background.
    assert unweighted[0] < 0.2
    assert balanced[0] > 0.6
    assert balanced[1] > unweighted[1] + 0.2


def test_partial_fit_takes_a_dict():
    X, y = colour_scenes(4, shape=(20, 24))
    model = RecurrentCNNSegmenter(architecture=SMALL, n_instances=1,
                                  crop_size=None, random_state=0,
                                  class_weight={1: 3.0})
    model.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_array_equal(model.class_weight_, [1.0, 3.0, 1.0])
    model.set_params(class_weight=None).partial_fit(X, y)
    assert model.class_weight_ is None and model.n_iter_ == 2


def test_same_random_state_gives_the_same_weighted_model():
    X, y = colour_scenes(6, shape=(20, 24))
    a = _fit(X, y, class_weight="balanced", max_iter=2)
    b = _fit(X, y, class_weight="balanced", max_iter=2)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)
