"""Scene-parsing metrics: hand-computed cases, scikit-learn as an independent
reference, unknown pixels, image sizes, errors, and the scorers inside
scikit-learn's model-selection tools.

The small nearest-mean-colour segmenter defined here (a stand-in for
RecurrentCNNSegmenter with the same predict / classes_ / score contract) is
also used by test_model_selection.py and test_preprocessing.py.
"""

import re

import numpy as np
import pytest
import sklearn.metrics
from sklearn.base import clone
from sklearn.model_selection import (GridSearchCV, KFold, cross_val_score,
                                     cross_validate)

from skrcnn.metrics import (SCORERS, confusion_matrix, get_scorer,
                            mean_class_accuracy, mean_class_accuracy_scorer,
                            mean_iou, mean_iou_scorer, per_class_accuracy,
                            per_class_iou, pixel_accuracy,
                            pixel_accuracy_scorer, scores_from_confusion)
from skrcnn.model_selection import ImageKFold

from dummies import (ClassifierSegmenter, CountingSegmenter,
                     MeanColourSegmenter, colour_pixel_scenes as make_scenes)

def valid_pixels(y_true, y_pred):
    true = np.concatenate([np.ravel(t) for t in y_true])
    pred = np.concatenate([np.ravel(p) for p in y_pred])
    keep = true >= 0
    return true[keep], pred[keep]


# ============================================ hand-computed small case

Y_TRUE = [np.array([[0, 0, 1], [1, 2, -1]]), np.array([[2, 2], [0, -1]])]
Y_PRED = [np.array([[0, 1, 1], [1, 0, 2]]), np.array([[2, 1], [0, 0]])]
# valid (true, pred) pairs: (0,0) (0,1) (1,1) (1,1) (2,0) | (2,2) (2,1) (0,0)
CM = np.array([[2, 1, 0],
               [0, 2, 0],
               [1, 1, 1]])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(cm, CM)
    assert cm.dtype == np.int64


def test_scores_by_hand():
    assert pixel_accuracy(Y_TRUE, Y_PRED) == pytest.approx(5 / 8)
    np.testing.assert_allclose(per_class_accuracy(Y_TRUE, Y_PRED),
                               [2 / 3, 1, 1 / 3])
    assert mean_class_accuracy(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    # IoU = TP / (row + column - TP)
    np.testing.assert_allclose(per_class_iou(Y_TRUE, Y_PRED),
                               [2 / 4, 2 / 4, 1 / 3])
    assert mean_iou(Y_TRUE, Y_PRED) == pytest.approx(4 / 9)
    for score in (pixel_accuracy, mean_class_accuracy, mean_iou):
        assert type(score(Y_TRUE, Y_PRED)) is float


def test_scores_from_confusion_match_functions():
    scores = scores_from_confusion(CM)
    assert scores["pixel_accuracy"] == pixel_accuracy(Y_TRUE, Y_PRED)
    assert scores["mean_class_accuracy"] == mean_class_accuracy(Y_TRUE,
                                                                Y_PRED)
    assert scores["mean_iou"] == mean_iou(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(scores["per_class_iou"],
                                  per_class_iou(Y_TRUE, Y_PRED))
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.zeros((2, 3)))
    # A negative count would give a pixel accuracy of 2 here.
    with pytest.raises(ValueError, match="non-negative finite pixel counts, "
                       "got minimum -1"):
        scores_from_confusion([[1, -1], [0, 1]])
    with pytest.raises(ValueError, match="non-negative finite"):
        scores_from_confusion([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(TypeError, match="pixel counts, got dtype <U1"):
        scores_from_confusion([["1", "0"], ["0", "1"]])


def test_class_only_predicted_and_unused_labels():
    y_true = [np.array([[0, 0], [0, 1]])]
    y_pred = [np.array([[0, 3], [0, 1]])]
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred),
                                  [[2, 0, 1], [0, 1, 0], [0, 0, 0]])
    # recall of class 3 is undefined: left out of the class average
    np.testing.assert_allclose(per_class_accuracy(y_true, y_pred),
                               [2 / 3, 1, np.nan])
    assert mean_class_accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # class 3 has a non-zero union and IoU 0: it counts
    assert mean_iou(y_true, y_pred) == pytest.approx((2 / 3 + 1 + 0) / 3)
    # an unused class (2) listed in labels changes no mean
    labels = [0, 1, 2, 3]
    np.testing.assert_allclose(per_class_iou(y_true, y_pred, labels),
                               [2 / 3, 1, np.nan, 0])
    assert mean_iou(y_true, y_pred, labels) == mean_iou(y_true, y_pred)
    assert (mean_class_accuracy(y_true, y_pred, labels)
            == mean_class_accuracy(y_true, y_pred))


def test_labels_order_is_respected():
    cm = confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 0, 1])
    np.testing.assert_array_equal(cm, CM[[2, 0, 1]][:, [2, 0, 1]])
    cm = confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2, 5])
    np.testing.assert_array_equal(cm[:3, :3], CM)
    assert cm[3].sum() == cm[:, 3].sum() == 0


# ================================================ independent reference

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    sizes = [(5, 9), (13, 4), (1, 1), (8, 8)]
    y_true = [rng.integers(-2, 6, size) for size in sizes]
    # predictions may hold anything at unknown pixels, even negatives
    y_pred = [np.where(t >= 0, rng.integers(0, 7, t.shape), -5)
              for t in y_true]
    true, pred = valid_pixels(y_true, y_pred)
    labels = np.union1d(true, pred)
    expected = sklearn.metrics.confusion_matrix(true, pred, labels=labels)
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), expected)
    shuffled = rng.permutation(np.arange(9))
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, labels=shuffled),
        sklearn.metrics.confusion_matrix(true, pred, labels=shuffled))
    assert pixel_accuracy(y_true, y_pred) == pytest.approx(
        sklearn.metrics.accuracy_score(true, pred))
    assert mean_class_accuracy(y_true, y_pred) == pytest.approx(
        sklearn.metrics.recall_score(true, pred, labels=np.unique(true),
                                     average="macro"))
    assert mean_iou(y_true, y_pred) == pytest.approx(
        sklearn.metrics.jaccard_score(true, pred, labels=labels,
                                      average="macro"))


def test_large_and_sparse_label_values():
    y_true = [np.array([[70000, 3], [3, -1]])]
    y_pred = [np.array([[70000, 70000], [3, 9]])]
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred),
                                  [[1, 1], [0, 1]])
    with pytest.raises(ValueError, match=esc("y_pred[0] holds label 9")
                       + ".*" + esc("[70000, 3]")):
        confusion_matrix(y_true, [np.array([[70000, 3], [9, 9]])],
                         labels=[70000, 3])


# ============================================ unknown pixels, sizes, types

def test_unknown_pixels_are_ignored_whatever_predicted():
    y_true = [np.array([[0, -1], [-7, 1]])]
    base = confusion_matrix(y_true, [np.array([[0, 0], [0, 1]])])
    for pred in ([[0, 1], [1, 1]], [[0, -1], [99, 1]]):
        np.testing.assert_array_equal(
            confusion_matrix(y_true, [np.array(pred)]), base)
    assert pixel_accuracy(y_true, [np.array([[0, 5], [5, 1]])]) == 1.0


def test_all_unknown():
    y_true = [np.full((2, 2), -1)]
    y_pred = [np.zeros((2, 2), int)]
    assert confusion_matrix(y_true, y_pred).shape == (0, 0)
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, labels=[0, 1]), np.zeros((2, 2)))
    for score in (pixel_accuracy, mean_class_accuracy, mean_iou):
        with pytest.raises(ValueError, match="no labelled"):
            score(y_true, y_pred)


def test_list_and_array_inputs_agree():
    images, maps = make_scenes(6, sizes=[(5, 6)])
    preds = [np.where(m >= 0, (m + (i % 2)) % 3, 0)
             for i, m in enumerate(maps)]
    expected = confusion_matrix(maps, preds)
    np.testing.assert_array_equal(
        confusion_matrix(np.stack(maps), np.stack(preds)), expected)
    np.testing.assert_array_equal(
        confusion_matrix(np.stack(maps), preds), expected)
    np.testing.assert_array_equal(
        confusion_matrix([m.tolist() for m in maps],
                         [p.astype(np.uint8) for p in preds]), expected)
    np.testing.assert_array_equal(
        confusion_matrix(tuple(maps), [p.astype(float) for p in preds]),
        expected)


def test_inputs_not_modified():
    y_true = [t.copy() for t in Y_TRUE]
    y_pred = [p.copy() for p in Y_PRED]
    mean_iou(y_true, y_pred)
    for a, b in zip(y_true + y_pred, Y_TRUE + Y_PRED):
        np.testing.assert_array_equal(a, b)


# ================================================================ errors

def esc(text):
    return re.escape(text)


def test_error_count_mismatch():
    with pytest.raises(ValueError, match="y_true has 2 label maps but "
                       "y_pred has 1"):
        confusion_matrix(Y_TRUE, Y_PRED[:1])


def test_error_shape_mismatch_names_image():
    y_pred = [Y_PRED[0], np.zeros((2, 3), int)]
    with pytest.raises(ValueError, match=esc("y_pred[1] has shape (2, 3) "
                                             "but y_true[1] has shape "
                                             "(2, 2)")):
        pixel_accuracy(Y_TRUE, y_pred)


def test_error_prediction_not_in_labels():
    y_pred = [Y_PRED[0], np.array([[2, 5], [0, 0]])]
    with pytest.raises(ValueError, match=esc("y_pred[1] holds label 5")
                       + r".*not in labels " + esc("[0, 1, 2]")):
        confusion_matrix(Y_TRUE, y_pred, labels=[0, 1, 2])
    with pytest.raises(ValueError, match=esc("y_true[0] holds label 2")
                       + r".*not in labels " + esc("[1, 0]")):
        confusion_matrix(Y_TRUE, Y_PRED, labels=[1, 0])


def test_error_negative_prediction_at_labelled_pixel():
    y_pred = [Y_PRED[0], np.array([[2, -1], [0, 0]])]
    with pytest.raises(ValueError, match=esc("y_pred[1] holds the negative "
                                             "label -1")):
        mean_iou(Y_TRUE, y_pred)


@pytest.mark.parametrize("y_pred, error, message", [
    ([np.zeros((2, 3), bool), np.zeros((2, 2), int)], TypeError,
     "y_pred[0] has dtype bool"),
    ([np.zeros((2, 3)), np.full((2, 2), 0.5)], ValueError,
     "y_pred[1] holds non-integer labels"),
    ([np.zeros((2, 3)), np.full((2, 2), np.nan)], ValueError,
     "y_pred[1] holds non-integer labels"),
    ([np.zeros((2, 3)), np.full((2, 2), 2 ** 63, np.uint64)], ValueError,
     "y_pred[1] holds the label 9223372036854775808, outside the range of "
     "64-bit integers"),
    ([np.zeros((2, 3)), np.full((2, 2), 1e30)], ValueError,
     "y_pred[1] holds the label 1e+30, outside the range"),
    ([np.zeros((2, 3)), np.zeros((2, 2, 1))], ValueError,
     "y_pred[1] has shape (2, 2, 1); expected an (H, W) label map"),
    (np.zeros((2, 3)), ValueError, "for a single map, use [y_pred]"),
    (np.zeros((2, 2, 3, 1)), ValueError, "got an array of shape"),
    (None, TypeError, "y_pred must be a sequence of label maps"),
    (5, TypeError, "y_pred must be a sequence of label maps"),
])
def test_error_bad_maps(y_pred, error, message):
    with pytest.raises(error, match=esc(message)):
        confusion_matrix(Y_TRUE, y_pred)


def test_error_empty():
    with pytest.raises(ValueError, match="empty"):
        confusion_matrix([], [])


@pytest.mark.parametrize("labels, error, message", [
    ([0, 1, 1], ValueError, "duplicates"),
    ([0, -1], ValueError, "non-negative"),
    ([], ValueError, "non-empty"),
    ([[0, 1]], ValueError, "1-D"),
    ([0.0, 1.0], TypeError, "integers"),
])
def test_error_bad_labels(labels, error, message):
    with pytest.raises(error, match=message):
        confusion_matrix(Y_TRUE, Y_PRED, labels=labels)


# ================================================================ scorers

def test_get_scorer():
    assert get_scorer("pixel_accuracy") is pixel_accuracy_scorer
    assert get_scorer("mean_class_accuracy") is mean_class_accuracy_scorer
    assert get_scorer("mean_iou") is mean_iou_scorer
    assert SCORERS == get_scorer(list(SCORERS))
    assert list(get_scorer(("mean_iou", "pixel_accuracy"))) == [
        "mean_iou", "pixel_accuracy"]
    for bad in ("accuracy", None, ["pixel_accuracy", "nope"]):
        with pytest.raises(ValueError, match="mean_class_accuracy"):
            get_scorer(bad)
    with pytest.raises(ValueError, match="twice"):
        get_scorer(["mean_iou", "mean_iou"])
    with pytest.raises(ValueError, match="empty"):
        get_scorer([])


def test_scorer_calls_metric_on_predictions():
    images, maps = make_scenes(8)
    model = MeanColourSegmenter().fit(images, maps)
    predicted = model.predict(images)
    for name, scorer in SCORERS.items():
        metric = {"pixel_accuracy": pixel_accuracy,
                  "mean_class_accuracy": mean_class_accuracy,
                  "mean_iou": mean_iou}[name]
        assert scorer(model, images, maps) == metric(maps, predicted)
    assert 0.5 < pixel_accuracy(maps, predicted) < 1  # a meaningful task


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("estimator", [MeanColourSegmenter(),
                                       ClassifierSegmenter()])
def test_cross_val_score_with_lists_of_different_sizes(estimator, n_classes):
    images, maps = make_scenes(12, n_classes=n_classes)
    assert len({m.shape for m in maps}) == 4
    scores = cross_val_score(estimator, images, maps, cv=3,
                             scoring=mean_iou_scorer, error_score="raise")
    # int cv: scikit-learn uses unshuffled KFold (never stratified: the
    # target type of a list of label maps is "unknown")
    expected = []
    for train, test in KFold(3).split(images):
        model = clone(estimator).fit([images[i] for i in train],
                                     [maps[i] for i in train])
        expected.append(mean_iou([maps[i] for i in test],
                                 model.predict([images[i] for i in test])))
    np.testing.assert_allclose(scores, expected)


def test_cross_val_score_with_arrays():
    images, maps = make_scenes(10, sizes=[(6, 7)])
    X, y = np.stack(images), np.stack(maps)
    from_arrays = cross_val_score(MeanColourSegmenter(), X, y,
                                  cv=ImageKFold(5), error_score="raise",
                                  scoring=pixel_accuracy_scorer)
    from_lists = cross_val_score(MeanColourSegmenter(), images, maps,
                                 cv=ImageKFold(5), error_score="raise",
                                 scoring=pixel_accuracy_scorer)
    np.testing.assert_allclose(from_arrays, from_lists)
    # default scoring = the estimator's score = pixel accuracy
    np.testing.assert_allclose(
        cross_val_score(MeanColourSegmenter(), X, y, cv=ImageKFold(5),
                        error_score="raise"), from_lists)


@pytest.mark.parametrize("scoring", [
    {"pixel": pixel_accuracy_scorer, "class": mean_class_accuracy_scorer,
     "iou": mean_iou_scorer},
    get_scorer(["pixel_accuracy", "mean_class_accuracy", "mean_iou"]),
])
def test_multimetric_cross_validate_predicts_once_per_fold(scoring):
    images, maps = make_scenes(12)
    CountingSegmenter.n_predict_calls = 0
    result = cross_validate(CountingSegmenter(), images, maps,
                            cv=ImageKFold(4), scoring=scoring,
                            error_score="raise")
    assert CountingSegmenter.n_predict_calls == 4
    for name, scorer in scoring.items():
        assert result[f"test_{name}"].shape == (4,)
        np.testing.assert_allclose(
            result[f"test_{name}"],
            cross_val_score(MeanColourSegmenter(), images, maps,
                            cv=ImageKFold(4), scoring=scorer,
                            error_score="raise"))
    CountingSegmenter.n_predict_calls = 0
    cross_validate(CountingSegmenter(), images, maps, cv=ImageKFold(4),
                   scoring=scoring, return_train_score=True,
                   error_score="raise")
    assert CountingSegmenter.n_predict_calls == 8  # train + test per fold


def test_grid_search_single_metric():
    images, maps = make_scenes(12)
    search = GridSearchCV(MeanColourSegmenter(), {"bias": [1e7, 0.0]},
                          scoring=mean_iou_scorer, cv=ImageKFold(3),
                          error_score="raise").fit(images, maps)
    assert search.best_params_ == {"bias": 0.0}
    assert search.cv_results_["mean_test_score"][0] < 0.5
    assert search.score(images, maps) == mean_iou(
        maps, search.best_estimator_.predict(images))


def test_grid_search_multimetric():
    images, maps = make_scenes(12)
    CountingSegmenter.n_predict_calls = 0
    search = GridSearchCV(CountingSegmenter(), {"bias": [0.0, 1e7]},
                          scoring=get_scorer(list(SCORERS)),
                          refit="mean_class_accuracy", cv=ImageKFold(3),
                          error_score="raise").fit(images, maps)
    assert CountingSegmenter.n_predict_calls == 2 * 3
    assert search.best_params_ == {"bias": 0.0}
    for name in SCORERS:
        assert search.cv_results_[f"mean_test_{name}"].shape == (2,)
    # everything labelled class 0: recalls 1, 0, 0
    assert search.cv_results_["mean_test_mean_class_accuracy"][1] \
        == pytest.approx(1 / 3)


def test_maps_of_different_sizes_in_an_object_array_are_accepted():
    """The usual container of maps of different sizes, as the estimator
    takes for y (cross_val_score with these scorers gave nan folds)."""
    truth = np.empty(2, dtype=object)
    truth[0], truth[1] = np.array([[0, 1], [1, -1]]), np.zeros((3, 3), int)
    guess = np.empty(2, dtype=object)
    guess[0], guess[1] = np.array([[0, 0], [1, 1]]), np.zeros((3, 3), int)
    # 9 + 2 of the 12 labelled pixels are right.
    assert pixel_accuracy(truth, guess) == pytest.approx(11 / 12)
    assert pixel_accuracy(list(truth), list(guess)) == pixel_accuracy(
        truth, guess)
