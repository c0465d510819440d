"""Bad input to RecurrentCNNSegmenter: a clear error naming the image and the
problem, raised before any training starts."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from scenes import SMALL, colour_scenes
from skrcnn.segmenter import RecurrentCNNSegmenter


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if a bad call ever reaches the training loop."""
    def reached(*args, **kwargs):
        raise AssertionError("training started before the input was checked")
    monkeypatch.setattr(RecurrentCNNSegmenter, "_epoch", reached)


def _data():
    X, y = colour_scenes(3, shape=(12, 14))
    return list(X), list(y)


def _model(**params):
    defaults = dict(architecture=SMALL, n_instances=2, crop_size=None,
                    max_iter=1)
    return RecurrentCNNSegmenter(**{**defaults, **params})


@pytest.mark.parametrize("change,message", [
    (lambda X, y: (X, y[:2]), r"y has 2 label maps for 3 images"),
    (lambda X, y: (X, y[:1] + [y[1][:, :5]] + y[2:]),
     r"y\[1\] has shape \(12, 5\) but image 1 is \(12, 14\)"),
    (lambda X, y: (X[:2] + [X[2][..., :2]], y),
     r"X\[2\] has shape \(12, 14, 2\); expected \(H, W, 3\)"),
    (lambda X, y: ([X[0], np.where(X[1] > 100, np.nan, 1.0), X[2]], y),
     r"X\[1\] contains NaN or infinite"),
    (lambda X, y: ([X[0], X[1], np.full((12, 14, 3), np.inf)], y),
     r"X\[2\] contains NaN or infinite"),
    (lambda X, y: ([], []), r"X is empty"),
    (lambda X, y: (X, [np.full(l.shape, -1) for l in y]),
     r"every label is negative"),
    (lambda X, y: (X[:1] + [X[1][:3, :3]] + X[2:],
                   y[:1] + [y[1][:3, :3]] + y[2:]),
     r"X\[1\] is 3x3 pixels; images must be at least 4x4"),
    (lambda X, y: ([X[0].astype(str)] + X[1:], y), r"X\[0\] has dtype <U"),
    (lambda X, y: (X, [y[0].astype(np.float64) + 0.5] + y[1:]),
     r"y\[0\] holds non-integer labels"),
    (lambda X, y: (np.stack(X)[0], y), r"X is one array of shape"),
    # A label past int64 would wrap to a negative ("unknown") one.
    (lambda X, y: (X, y[:2] + [y[2].astype(np.uint64) + 2 ** 63]),
     r"y\[2\] holds the label 92233720368547758\d\d, outside the range"),
    (lambda X, y: (X, [y[0] - 1e30] + y[1:]),
     r"y\[0\] holds the label -1e\+30, outside the range"),
])
def test_bad_training_input_is_named(change, message, no_training):
    X, y = change(*_data())
    with pytest.raises((ValueError, TypeError), match=message):
        _model().fit(X, y)
    with pytest.raises((ValueError, TypeError), match=message):
        _model().partial_fit(X, y)


def test_plain_with_several_instances_says_why_images_are_too_small(
        no_training):
    X, y = _data()
    with pytest.raises(ValueError, match=(
            r"X\[0\] is \d+x\d+ pixels; images must be at least 4096x4096 "
            r"\(the total stride of n_instances=3 instances, 16 \*\* 3; "
            r".*meant for n_instances=1")):
        RecurrentCNNSegmenter(architecture="plain").fit(X, y)


@pytest.mark.parametrize("params,message", [
    (dict(architecture="rcnn9"), "architecture must be one of"),
    (dict(n_instances=0), "n_instances must be an integer >= 1"),
    (dict(sampling="pixels"), "sampling must be one of"),
    (dict(instance_schedule="x"), "instance_schedule must be one of"),
    (dict(instance_loss="first"), "instance_loss must be one of"),
    (dict(solver="lbfgs"), "solver must be one of"),
    (dict(learning_rate=0), r"learning_rate must be a real number in \(0"),
    (dict(learning_rate=float("inf")), r"learning_rate must be a real number "
     r"in \(0, inf\), got inf"),
    (dict(momentum=1.0), "momentum must be"),
    (dict(weight_averaging=1.0), r"weight_averaging must be a real number "
     r"in \(0, 1\), got 1.0"),
    (dict(weight_averaging=0), r"weight_averaging must .* got 0"),
    (dict(weight_averaging=True), "weight_averaging must be"),
    (dict(weight_averaging="0.999"), "weight_averaging must be"),
    (dict(batch_size=0), "batch_size must be"),
    (dict(crop_size=0), "crop_size must be"),
    (dict(max_iter=2.5), "max_iter must be"),
    (dict(validation_fraction=1.0), "validation_fraction must be"),
    (dict(output_resolution=0.3), "output_resolution must be 1/k"),
    (dict(inference="fast"), "inference must be one of"),
    (dict(test_time_flip="yes"), "test_time_flip must be True or False"),
    (dict(device="tpu"), "device must be one of"),
    (dict(hidden_sizes=(4,)), r"hidden_sizes must be 2 positive integers"),
    (dict(hidden_sizes=(True, 2)), r"hidden_sizes must be 2 positive "
     r"integers .* got \(True, 2\)"),
    (dict(verbose=-1), "verbose must be"),
    (dict(horizontal_flip="yes"), "horizontal_flip must be True or False"),
    (dict(early_stopping=1), "early_stopping must be True or False"),
    (dict(scale_range=(1.25, 0.8)), r"scale_range must be None or a pair "
     r"\(low, high\) of real numbers with 0 < low <= high, got \(1.25, 0.8\)"),
    (dict(scale_range=(0, 1.2)), r"scale_range must be .* got \(0, 1.2\)"),
    (dict(scale_range=1.2), r"scale_range must be .* got 1.2"),
    (dict(scale_range=(0.8,)), r"scale_range must be .* got \(0.8,\)"),
    (dict(scale_range=(0.8, float("inf"))), "scale_range must be"),
    (dict(scale_range=("0.8", 1.2)), "scale_range must be"),
    (dict(scale_range=(True, 1.2)), "scale_range must be"),
    (dict(test_time_scales=()), r"test_time_scales must be None or a "
     r"non-empty sequence of real numbers > 0, got \(\)"),
    (dict(test_time_scales=(1.0, 0)), r"test_time_scales must .* got "
     r"\(1.0, 0\)"),
    (dict(test_time_scales=1.25), r"test_time_scales must .* got 1.25"),
    (dict(test_time_scales="1.25"), "test_time_scales must be"),
    (dict(test_time_scales=(1.0, float("nan"))), "test_time_scales must be"),
    (dict(warm_start="no"), "warm_start must be True or False"),
    (dict(class_weight="auto"),
     "class_weight must be None, 'balanced' or a dict"),
    (dict(class_weight=[1.0, 2.0, 3.0]),
     "class_weight must be None, 'balanced' or a dict"),
    (dict(class_weight={7: 2.0}),
     r"weight for label 7, which is not one of the classes \[0, 1, 2\]"),
    (dict(class_weight={"1": 2.0}), "weight for label '1'"),
    (dict(class_weight={1: -1.0}), r"class_weight\[1\] must be a real number"),
    (dict(class_weight={1: float("nan")}), r"class_weight\[1\] must be"),
    (dict(class_weight={0: 0, 1: 0, 2: 0}), "every class weight 0"),
])
def test_bad_parameters_are_named_at_fit(params, message, no_training):
    model = RecurrentCNNSegmenter(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        model.fit(*_data())


def test_predict_before_fit_is_not_fitted_error():
    X, y = _data()
    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(_model(), method)(X)
    with pytest.raises(NotFittedError):
        _model().score(X, y)


def test_early_stopping_needs_two_labelled_images(no_training):
    X, y = _data()
    with pytest.raises(ValueError, match="early_stopping needs at least 2"):
        _model(early_stopping=True).fit(X[:1], y[:1])


def test_bad_prediction_input_is_named():
    X, y = _data()
    model = _model(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    with pytest.raises(ValueError, match=r"X\[1\] has shape \(12, 14\)"):
        model.predict([X[0], X[1][..., 0]])
    with pytest.raises(ValueError, match=r"y\[0\] has shape"):
        model.score(X, [y[0][:3]] + y[1:])
    with pytest.raises(ValueError, match="n_instances must be"):
        model.predict(X, n_instances=0)
    model.set_params(output_resolution=2.0)
    with pytest.raises(ValueError, match="output_resolution"):
        model.predict(X)


def test_a_labelling_beyond_max_inference_bytes_is_refused_first(
        monkeypatch):
    """The thinnest bands of a pass (the padded image and one output row's
    activations) must fit in max_inference_bytes: many instances of a
    large-stride network, or a huge test-time scale, fail at once with the
    image, the instances and the budget named, before any labelling."""
    X, y = _data()
    model = _model(random_state=0, n_instances=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    expected = model.predict(X)

    def labelled(*args, **kwargs):
        raise AssertionError("labelling started before the check")
    monkeypatch.setattr(RecurrentCNNSegmenter, "_scaled_probabilities",
                        labelled)
    # SMALL has stride 2 and a 6-pixel first patch: 12 instances see a
    # patch of several thousand pixels, a pass of more than 768 MiB.
    with pytest.raises(ValueError, match=r"X\[0\]: labelling this 12x14 "
                       r"image with n_instances=12 \(a \d+x\d+-pixel "
                       r"context patch\) needs at least \d+ MiB of "
                       r"activations, over max_inference_bytes=805306368"):
        model.predict(X, n_instances=12)
    model.set_params(test_time_scales=(1, 4000))
    with pytest.raises(ValueError, match=r"X\[0\]: labelling this 12x14 "
                       r"image at test-time scale 4000.0 with n_instances=1"):
        model.predict(X)
    monkeypatch.undo()
    # The budget itself: the same labelling passes under a larger one.
    model.set_params(test_time_scales=None, max_inference_bytes=1000)
    with pytest.raises(ValueError, match="max_inference_bytes=1000"):
        model.predict(X)
    model.set_params(max_inference_bytes=10 ** 6)
    np.testing.assert_array_equal(model.predict(X), expected)


def test_balanced_class_weight_is_refused_by_partial_fit(no_training):
    X, y = _data()
    model = _model(class_weight="balanced")
    with pytest.raises(ValueError, match="'balanced' is not supported by "
                                         "partial_fit"):
        model.partial_fit(X, y)
    assert not hasattr(model, "coefs_")


def test_balanced_class_weight_needs_every_class_in_y():
    """With warm_start the classes are the fitted ones: a class missing
    from the new labels has no frequency to balance, and the fitted model
    stays as it was."""
    X, y = _data()
    model = _model(random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    before = [c.copy() for c in model.coefs_]
    only_some = [np.where(labels == 2, 0, labels) for labels in y]
    model.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match=r"classes \[2\] have no labelled "
                                         "pixel"):
        model.fit(X, only_some)
    for a, b in zip(before, model.coefs_):
        np.testing.assert_array_equal(a, b)
    assert model.class_weight_ is None


def test_patch_size_before_fit_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError
    model = RecurrentCNNSegmenter()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.patch_size_
    assert not hasattr(model, "patch_size_")
