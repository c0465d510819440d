"""RecurrentCNNSegmenter in scikit-learn's workflow tools: cross-validation
(by image, with the skrcnn scorers), grid search in one process and in
worker processes, the ImageStandardizer pipeline, pickle / joblib round
trips and seeding. The bar everywhere: the same data and seed give identical
floats, whichever tool ran the fits.

The network is tiny (tests/scenes.py's SMALL, two epochs on 20x24 images),
so a fit takes a few hundredths of a second; the whole file runs in seconds
plus one start of joblib's worker processes.
"""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import (GridSearchCV, KFold, cross_val_predict,
                                     cross_val_score, cross_validate)
from sklearn.pipeline import make_pipeline

from scenes import SMALL, colour_scenes
from skrcnn import ImageStandardizer, RecurrentCNNSegmenter
from skrcnn.metrics import (SCORERS, get_scorer, mean_class_accuracy,
                            mean_iou, pixel_accuracy, pixel_accuracy_scorer)
from skrcnn.model_selection import ImageKFold

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

# A second explicit architecture for the grid: one convolution, no pooling.
FLAT = (("conv", 6, 3), ("tanh",), ("conv", "classes", 1))
METRICS = {"pixel_accuracy": pixel_accuracy,
           "mean_class_accuracy": mean_class_accuracy,
           "mean_iou": mean_iou}


def segmenter(**params):
    defaults = dict(architecture=SMALL, n_instances=1, max_iter=2,
                    learning_rate=1e-2, random_state=0, crop_size=None)
    return RecurrentCNNSegmenter(**{**defaults, **params})


def pipeline(**params):
    return make_pipeline(ImageStandardizer(), segmenter(**params))


def grid(model):
    prefix = "recurrentcnnsegmenter__" if hasattr(model, "steps") else ""
    return {prefix + "n_instances": [1, 2],
            prefix + "architecture": [SMALL, FLAT]}


MODELS = {"estimator": segmenter, "pipeline": pipeline}


@pytest.fixture(scope="module")
def data():
    return colour_scenes(18)


@pytest.fixture(scope="module")
def mixed_data():
    """A list of images of three sizes (the images are not one array)."""
    X, y = colour_scenes(12)
    crops = [(20, 24), (17, 21), (14, 24)]
    images, maps = [], []
    for index, (image, labels) in enumerate(zip(X, y)):
        rows, cols = crops[index % 3]
        images.append(image[:rows, :cols])
        maps.append(labels[:rows, :cols])
    return images, maps


def take(seq, indices):
    return seq[indices] if isinstance(seq, np.ndarray) else [
        seq[i] for i in indices]


def manual_fold_scores(model, X, y, folds, score):
    """``score(fitted, X_test, y_test)`` of a fresh clone per fold."""
    return np.array([
        score(clone(model).fit(take(X, train), take(y, train)),
              take(X, test), take(y, test))
        for train, test in folds])


# ==================================================== cross-validation

@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("cv", ["int", "ImageKFold"])
def test_cross_val_score_equals_a_manual_loop(data, model, cv):
    X, y = data
    model = MODELS[model]()
    # An int cv means KFold for a non-classifier: scikit-learn must not try
    # to stratify on label maps.
    cv, folds = ((3, KFold(3).split(X)) if cv == "int"
                 else (ImageKFold(3), ImageKFold(3).split(X)))
    scores = cross_val_score(model, X, y, cv=cv, error_score="raise")
    expected = manual_fold_scores(model, X, y, folds,
                                  lambda m, X, y: m.score(X, y))
    np.testing.assert_array_equal(scores, expected)
    assert np.all(scores > 0.5)


def test_cross_val_predict_gives_each_image_its_out_of_fold_labels(data):
    X, y = data
    cv = ImageKFold(3, random_state=2)
    predictions = cross_val_predict(segmenter(), X, y, cv=cv)
    assert predictions.shape == y.shape
    for train, test in cv.split(X):
        fold_model = segmenter().fit(X[train], y[train])
        np.testing.assert_array_equal(predictions[test],
                                      fold_model.predict(X[test]))


def test_cross_val_score_on_a_list_of_images_of_several_sizes(mixed_data):
    X, y = mixed_data
    cv = ImageKFold(3, random_state=1)
    scores = cross_val_score(segmenter(), X, y, cv=cv, error_score="raise")
    expected = manual_fold_scores(segmenter(), X, y, cv.split(X),
                                  lambda m, X, y: m.score(X, y))
    np.testing.assert_array_equal(scores, expected)
    predictions = segmenter().fit(X, y).predict(X)
    assert [p.shape for p in predictions] == [m.shape for m in y]


def test_skrcnn_scorers_single_and_multi_metric(data):
    X, y = data
    model, cv = segmenter(n_instances=2), ImageKFold(3)
    folds = list(cv.split(X))
    # Single metric: the scorer gives the estimator's own score (pixel
    # accuracy), to the last bit.
    single = cross_val_score(model, X, y, cv=cv, error_score="raise",
                             scoring=pixel_accuracy_scorer)
    default = cross_val_score(model, X, y, cv=cv, error_score="raise")
    np.testing.assert_array_equal(single, default)
    # Multi-metric: every metric of the same fitted fold models.
    names = sorted(SCORERS)
    results = cross_validate(model, X, y, cv=cv, error_score="raise",
                             scoring=get_scorer(names))
    predictions = [clone(model).fit(X[train], y[train]).predict(X[test])
                   for train, test in folds]
    for name in names:
        expected = [METRICS[name](y[test], predicted)
                    for (_, test), predicted in zip(folds, predictions)]
        np.testing.assert_array_equal(results[f"test_{name}"], expected)
    np.testing.assert_array_equal(results["test_pixel_accuracy"], single)


# ========================================================= grid search

SEARCHES = {
    "default-score": dict(cv=3),
    "multi-metric": dict(cv=ImageKFold(3), scoring=get_scorer(
        ["pixel_accuracy", "mean_iou"]), refit="mean_iou"),
}


def _search(model, n_jobs, X, y, **kwargs):
    return GridSearchCV(model, grid(model), n_jobs=n_jobs,
                        error_score="raise", **kwargs).fit(X, y)


def assert_same_search(a, b, X):
    """Identical scores, ranks, choice and refitted model."""
    keys = [k for k in a.cv_results_
            if k.startswith(("split", "mean_test_", "std_test_", "rank_"))]
    assert keys and keys == [k for k in b.cv_results_ if k in keys]
    for key in keys:
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key],
                                      err_msg=key)
    assert a.cv_results_["params"] == b.cv_results_["params"]
    assert a.best_params_ == b.best_params_
    assert a.best_index_ == b.best_index_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("search", sorted(SEARCHES))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_grid_search_in_worker_processes_equals_one_process(data, model,
                                                            search):
    """n_jobs=2 runs the fits in joblib's default (loky) worker processes."""
    X, y = data
    model = MODELS[model]()
    kwargs = SEARCHES[search]
    one = _search(model, 1, X, y, **kwargs)
    two = _search(model, 2, X, y, **kwargs)
    assert_same_search(one, two, X)
    # Candidates really differ, and the refit is a fresh fit of the winner.
    scores = one.cv_results_[
        "mean_test_score" if "scoring" not in kwargs
        else "mean_test_mean_iou"]
    assert np.unique(scores).size == scores.size
    refit = clone(model).set_params(**one.best_params_).fit(X, y)
    np.testing.assert_array_equal(one.predict_proba(X),
                                  refit.predict_proba(X))


def test_grid_search_scores_are_cross_val_scores(data):
    X, y = data
    model = segmenter()
    search = _search(model, 1, X, y, cv=ImageKFold(3))
    for index, params in enumerate(search.cv_results_["params"]):
        scores = cross_val_score(clone(model).set_params(**params), X, y,
                                 cv=ImageKFold(3), error_score="raise")
        assert search.cv_results_["mean_test_score"][index] == np.mean(scores)


# ============================================================ pipeline

def test_pipeline_predicts_as_the_bare_estimator(data):
    """The estimator standardises each image itself, so standardising first
    changes the input by float rounding only: same labels, same
    probabilities to rounding."""
    X, y = data
    X_train, y_train, X_test, y_test = X[:12], y[:12], X[12:], y[12:]
    bare = segmenter(n_instances=2).fit(X_train, y_train)
    piped = pipeline(n_instances=2).fit(X_train, y_train)
    np.testing.assert_array_equal(piped.predict(X_test),
                                  bare.predict(X_test))
    np.testing.assert_allclose(piped.predict_proba(X_test),
                               bare.predict_proba(X_test), atol=1e-5)
    assert piped.score(X_test, y_test) == bare.score(X_test, y_test)
    # Lists stay lists through the pipeline.
    as_list = piped.predict(list(X_test[:2]))
    assert isinstance(as_list, list)
    np.testing.assert_array_equal(np.stack(as_list), piped.predict(X_test[:2]))


# ========================================================= round trips

@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {"estimator": segmenter(n_instances=2).fit(X, y),
            "pipeline": pipeline(n_instances=2).fit(X, y),
            "search": _search(segmenter(), 1, X, y, cv=3)}


@pytest.mark.parametrize("name", ["estimator", "pipeline", "search"])
def test_pickle_and_joblib_round_trips_predict_identically(fitted, data,
                                                           tmp_path, name):
    X, _ = data
    model = fitted[name]
    expected = model.predict_proba(X)  # the predictor cache is now built
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    copies = [pickle.loads(pickle.dumps(model)), joblib.load(path),
              joblib.load(path, mmap_mode="r")]
    for copy in copies:
        assert type(copy) is type(model)
        np.testing.assert_array_equal(copy.predict_proba(X), expected)
        np.testing.assert_array_equal(copy.predict(X), model.predict(X))
        assert joblib.hash(clone(copy)) == joblib.hash(clone(model))


def test_loaded_model_refits_and_continues_like_the_original(fitted, data,
                                                             tmp_path):
    """A loaded model clones to the same configuration, and warm-starts from
    the same state, also when loaded memory-mapped (read-only arrays)."""
    X, y = data
    original = pickle.loads(pickle.dumps(fitted["estimator"]))
    joblib.dump(original, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    np.testing.assert_array_equal(clone(loaded).fit(X, y).predict_proba(X),
                                  clone(original).fit(X, y).predict_proba(X))
    for model in (original, loaded):
        model.set_params(warm_start=True, max_iter=1).fit(X, y)
        model.partial_fit(X[:4], y[:4])
    assert loaded.n_iter_ == original.n_iter_ == 4
    np.testing.assert_array_equal(loaded.predict_proba(X),
                                  original.predict_proba(X))


# ========================================================= determinism

@pytest.mark.parametrize("model", sorted(MODELS))
def test_same_random_state_gives_identical_predictions(data, model):
    X, y = data
    make = MODELS[model]
    first = make(n_instances=2, random_state=7).fit(X, y).predict_proba(X)
    second = make(n_instances=2, random_state=7).fit(X, y).predict_proba(X)
    other = make(n_instances=2, random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)
