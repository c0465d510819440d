"""scikit-learn conformance of RecurrentCNNSegmenter and ImageStandardizer.

Both take images, not tabular data, so ``parametrize_with_checks`` yields
nothing for them. The checks that need no data are called directly from
sklearn.utils.estimator_checks; the two that fit on tabular data ("fit does
not change the parameters", "fit only adds attributes ending in _") are
rewritten here on images, with scikit-learn's own rules
(check_estimators_overwrite_params, check_dont_overwrite_parameters).
"""

import copy

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from scenes import SMALL, colour_scenes
from skrcnn import ImageStandardizer, RecurrentCNNSegmenter
from skrcnn.architecture import patch_size

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

DATA_FREE_CHECKS = [
    "check_parameters_default_constructible",
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
    # Also data-free, from scikit-learn's API checks:
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]

ESTIMATORS = {
    "RecurrentCNNSegmenter": RecurrentCNNSegmenter(),
    "RecurrentCNNSegmenter-configured": RecurrentCNNSegmenter(
        architecture=SMALL, hidden_sizes=(4, 5), n_instances=2,
        random_state=0),
    "ImageStandardizer": ImageStandardizer(),
    "ImageStandardizer-float64": ImageStandardizer(dtype="float64"),
}


@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
@pytest.mark.parametrize("key", sorted(ESTIMATORS))
def test_data_free_sklearn_checks(key, check):
    estimator = ESTIMATORS[key]
    getattr(estimator_checks, check)(type(estimator).__name__,
                                     clone(estimator))


@pytest.mark.parametrize("key", sorted(ESTIMATORS))
def test_tags_declare_non_tabular_input(key):
    estimator = ESTIMATORS[key]
    assert estimator.__sklearn_tags__().input_tags.two_d_array is False
    assert get_tags(estimator).input_tags.two_d_array is False


# ---------------------------------------------------- image versions

def segmenter(**params):
    defaults = dict(architecture=SMALL, n_instances=1, max_iter=2,
                    learning_rate=1e-2, random_state=0, crop_size=None)
    return RecurrentCNNSegmenter(**{**defaults, **params})


FITTING_CASES = {
    "small": lambda: segmenter(),
    # Mutable containers as parameters: fit must not touch them.
    "lists": lambda: segmenter(
        architecture=[["conv", 8, 3], ["pool", 2], ["tanh"],
                      ["conv", 8, 2], ["tanh"], ["conv", "classes", 1]],
        hidden_sizes=[4, 5], n_instances=2),
    "patch-random": lambda: segmenter(
        sampling="patch", patches_per_epoch=64, batch_size=8, n_instances=2,
        instance_schedule="random"),
    "early-stopping-sgd": lambda: segmenter(
        early_stopping=True, validation_fraction=0.3, solver="sgd",
        n_iter_no_change=1),
    "warm-start-shift": lambda: segmenter(
        warm_start=True, inference="shift", output_resolution=0.5,
        n_instances=2),
    "standardizer": lambda: ImageStandardizer(),
    "standardizer-float64": lambda: ImageStandardizer(dtype="float64"),
}


@pytest.fixture(scope="module")
def images():
    return colour_scenes(6)


def same(a, b):
    """Deep equality of parameter values: types, containers, arrays."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and np.isnan(a):
        return np.isnan(b)
    return a == b


def calls(estimator, X, y):
    """What a user does with a fitted estimator, in order."""
    yield "fit", lambda: estimator.fit(X, y)
    if hasattr(estimator, "partial_fit"):
        yield "partial_fit", lambda: estimator.partial_fit(X[:3], y[:3])
        yield "predict", lambda: estimator.predict(X[:2])
        yield "predict_proba", lambda: estimator.predict_proba(X[:2])
        yield "score", lambda: estimator.score(X, y)
        yield "fit again", lambda: estimator.fit(X, y)
    else:
        yield "transform", lambda: estimator.transform(X[:2])
        yield "fit_transform", lambda: estimator.fit_transform(X, y)


@pytest.mark.parametrize("case", sorted(FITTING_CASES))
def test_fit_does_not_change_parameters(images, case):
    """check_estimators_overwrite_params on images: get_params() after fit
    (and partial_fit, predict, score) equals a deep copy taken before, by
    value and by joblib.hash (which sees inside containers and arrays)."""
    X, y = images
    estimator = FITTING_CASES[case]()
    before = copy.deepcopy(estimator.get_params())
    before_hash = joblib.hash(before)
    for name, call in calls(estimator, X, y):
        call()
        after = estimator.get_params()
        assert after.keys() == before.keys()
        changed = [key for key in before if not same(before[key], after[key])]
        assert not changed, f"{name} changed the parameters {changed}"
        assert joblib.hash(after) == before_hash, f"{name} mutated a parameter"


@pytest.mark.parametrize("case", sorted(FITTING_CASES))
def test_fit_only_adds_attributes_ending_in_underscore(images, case):
    """check_dont_overwrite_parameters on images: every public attribute a
    call adds ends in '_' (private ones, starting with '_', are allowed),
    and the public attributes set in __init__ are the very same objects
    afterwards."""
    X, y = images
    estimator = FITTING_CASES[case]()
    initial = dict(vars(estimator))
    public = [key for key in initial
              if not (key.startswith("_") or key.endswith("_"))]
    assert sorted(public) == sorted(estimator.get_params(deep=False))
    for name, call in calls(estimator, X, y):
        call()
        added = set(vars(estimator)) - set(initial)
        bad = sorted(key for key in added
                     if not (key.startswith("_") or key.endswith("_")))
        assert not bad, f"{name} added public attributes {bad}"
        replaced = [key for key in public
                    if vars(estimator)[key] is not initial[key]]
        assert not replaced, f"{name} replaced the attributes {replaced}"


def test_fit_adds_the_documented_attributes(images):
    X, y = images
    estimator = segmenter()
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    before = set(vars(estimator))
    assert estimator.fit(X, y) is estimator
    check_is_fitted(estimator)
    added = {key for key in set(vars(estimator)) - before
             if not key.startswith("_")}
    assert added == {"classes_", "n_classes_", "class_weight_", "layers_",
                     "coefs_", "intercepts_", "loss_curve_",
                     "validation_scores_", "best_validation_score_",
                     "n_iter_", "t_", "n_features_in_"}
    # Computed from layers_ and the current n_instances.
    assert estimator.patch_size_ == patch_size(estimator.layers_,
                                               estimator.n_instances)


def test_standardizer_fit_returns_self_and_needs_no_fit(images):
    X, y = images
    standardizer = ImageStandardizer()
    check_is_fitted(standardizer)  # requires_fit is False: no error
    standardizer.transform(X[:1])
    assert standardizer.fit(X, y) is standardizer
    assert standardizer.n_features_in_ == 3


@pytest.mark.parametrize("case", ["small", "standardizer"])
def test_read_only_images(images, case):
    """check_readonly_memmap_input on images: joblib hands large arrays to
    worker processes as read-only memory maps."""
    X, y = images
    writable = FITTING_CASES[case]().fit(X, y)
    X_ro, y_ro = X.copy(), y.copy()
    X_ro.flags.writeable = y_ro.flags.writeable = False
    read_only = FITTING_CASES[case]().fit(X_ro, y_ro)
    if hasattr(writable, "predict"):
        np.testing.assert_array_equal(read_only.predict_proba(X_ro),
                                      writable.predict_proba(X))
    else:
        np.testing.assert_array_equal(read_only.transform(X_ro),
                                      writable.transform(X))
