"""RecurrentCNNSegmenter: learning, context, determinism, the training loop's
controls, the output formats and the inference modes."""

import pickle
import types
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from scenes import SMALL, colour_scenes, horizon_scenes
from skrcnn.inference import image_scores
from skrcnn.network import RecurrentNetwork
from skrcnn.preprocessing import standardize_image
from skrcnn.segmenter import RecurrentCNNSegmenter


def _model(**params):
    defaults = dict(architecture=SMALL, n_instances=1, max_iter=3,
                    learning_rate=1e-2, random_state=0, crop_size=None)
    defaults.update(params)
    return RecurrentCNNSegmenter(**defaults)


@pytest.fixture(scope="module")
def colour_data():
    return colour_scenes(30), colour_scenes(12, seed=1)


@pytest.fixture(scope="module")
def fitted(colour_data):
    (X, y), _ = colour_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _model(n_instances=2, max_iter=4).fit(X, y)


def _pixel_accuracy(truth, guess):
    known = truth >= 0
    return (truth[known] == guess[known]).mean()


@pytest.mark.parametrize("sampling", ["dense", "patch"])
def test_training_lowers_the_loss_and_beats_the_majority(colour_data,
                                                         sampling):
    (X, y), (X_test, y_test) = colour_data
    model = _model(sampling=sampling, max_iter=4, patches_per_epoch=1024)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    majority = np.bincount(y_test.ravel()).max() / y_test.size
    accuracy = _pixel_accuracy(y_test, model.predict(X_test))
    assert accuracy > majority + 0.3
    assert accuracy > 0.9


def test_more_instances_see_wider_context():
    """Sky and water look the same; only the horizon (out of reach of one
    instance's 6-pixel patch for most pixels) tells them apart."""
    X, y = horizon_scenes(60)
    X_test, y_test = horizon_scenes(30, seed=1)
    accuracy = {}
    for n_instances in (1, 3):
        model = _model(n_instances=n_instances, instance_schedule="fixed",
                       max_iter=8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        accuracy[n_instances] = model.score(X_test, y_test)
    assert accuracy[1] < 0.8
    assert accuracy[3] > 0.95
    assert accuracy[3] > accuracy[1] + 0.2


def test_loss_on_every_instance_trains_the_earlier_instances_to_label():
    """With instance_loss="all" each instance's own guess is trained: on the
    horizon scenes every further instance corrects the previous one, and
    instance 1 labels better than when only the last instance is trained."""
    X, y = horizon_scenes(60)
    X_test, y_test = horizon_scenes(30, seed=1)
    accuracy = {}
    for instance_loss in ("last", "all"):
        model = _model(n_instances=3, instance_schedule="fixed", max_iter=8,
                       instance_loss=instance_loss)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        accuracy[instance_loss] = [
            np.mean([_pixel_accuracy(truth, guess) for truth, guess in
                     zip(y_test, model.predict(X_test, n_instances=k))])
            for k in (1, 2, 3)]
    first, second, third = accuracy["all"]
    assert first + 0.1 < second < third - 0.05
    assert third > 0.95
    assert first > accuracy["last"][0] + 0.05


@pytest.mark.parametrize("params", [
    dict(), dict(sampling="patch", patches_per_epoch=128,
                 instance_schedule="random"),
    dict(early_stopping=True, solver="sgd"),
    dict(horizontal_flip=True),
    dict(crop_size=2, horizontal_flip=True, instance_loss="all"),
    dict(sampling="patch", patches_per_epoch=128, instance_loss="all"),
    dict(crop_size=2, scale_range=(0.7, 1.4), horizontal_flip=True),
    dict(scale_range=(0.8, 1.25)),
    dict(sampling="patch", patches_per_epoch=128, scale_range=(0.8, 1.25))])
def test_same_random_state_gives_the_same_model(colour_data, params):
    (X, y), _ = colour_data
    models = []
    for seed in (3, 3, 4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models.append(_model(n_instances=2, max_iter=2, random_state=seed,
                                 **params).fit(X, y))
    for a, b in zip(models[0].coefs_ + models[0].intercepts_,
                    models[1].coefs_ + models[1].intercepts_):
        np.testing.assert_array_equal(a, b)
    assert models[0].loss_curve_ == models[1].loss_curve_
    assert not np.array_equal(models[0].coefs_[0], models[2].coefs_[0])


def test_fitted_attributes(fitted, colour_data):
    (X, y), _ = colour_data
    assert list(fitted.classes_) == [0, 1, 2]
    assert fitted.n_classes_ == 3
    assert fitted.patch_size_ == 16
    assert fitted.n_iter_ == len(fitted.loss_curve_) == 4
    assert fitted.t_ == 4 * len(X)
    assert [w.shape for w in fitted.coefs_] == [(8, 6, 3, 3), (8, 8, 2, 2),
                                                (3, 8, 1, 1)]
    assert all(type(w) is np.ndarray and w.dtype == np.float32
               for w in fitted.coefs_ + fitted.intercepts_)
    assert fitted.validation_scores_ is None


def test_outputs_use_the_original_labels_and_container():
    X, y = colour_scenes(12)
    y = np.array([7, 3, 10])[y]
    y[:, 0, :] = -5  # unknown row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model(max_iter=3).fit(list(X), list(y))
    np.testing.assert_array_equal(model.classes_, [3, 7, 10])
    as_list = model.predict(list(X[:3]))
    as_array = model.predict(X[:3])
    assert isinstance(as_list, list) and as_array.shape == (3, 20, 24)
    np.testing.assert_array_equal(np.stack(as_list), as_array)
    assert set(np.unique(as_array)) <= {3, 7, 10}
    proba = model.predict_proba(X[:3])
    assert proba.shape == (3, 20, 24, 3)
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(model.classes_[proba.argmax(-1)], as_array)
    # Different image sizes come back as a list of their own shapes.
    mixed = model.predict([X[0], X[1][:13, :17]])
    assert [m.shape for m in mixed] == [(20, 24), (13, 17)]


def test_score_is_pixel_accuracy_over_known_labels(fitted, colour_data):
    _, (X, y) = colour_data
    y = y.copy()
    y[:, :5] = -1
    prediction = fitted.predict(X)
    known = y >= 0
    expected = (prediction[known] == y[known]).mean()
    assert fitted.score(X, y) == pytest.approx(expected)
    # Per-image weights (scikit-learn's sample_weight): each image's
    # labelled pixels count with its weight.
    weights = np.arange(len(X), dtype=float)
    correct = [(p[k] == t[k]).sum() for p, t, k in zip(prediction, y, known)]
    counts = [k.sum() for k in known]
    weighted = np.dot(weights, correct) / np.dot(weights, counts)
    assert fitted.score(X, y, sample_weight=weights) == pytest.approx(
        weighted)
    assert fitted.score(X, y, sample_weight=np.ones(len(X))) == \
        pytest.approx(expected)
    with pytest.raises(ValueError, match=r"sample_weight must hold one "
                       r"finite weight >= 0 per image \(12\), got shape "
                       r"\(2,\)"):
        fitted.score(X, y, sample_weight=[1.0, 2.0])


def _with_fitted_state(model, fitted):
    model.__dict__.update({k: v for k, v in fitted.__dict__.items()
                           if k.endswith("_") and not k.startswith("__")})
    return model


def _softmax_hwc(scores):
    probabilities = np.exp(scores - scores.max(0))
    return (probabilities / probabilities.sum(0)).transpose(1, 2, 0)


@pytest.mark.parametrize("resolution", [1.0, 0.5, 0.25])
def test_shift_and_stitch_and_dense_inference_agree(fitted, colour_data,
                                                    resolution, monkeypatch):
    import skrcnn.inference as inference
    _, (X, _) = colour_data
    dense = clone(fitted).set_params(output_resolution=resolution)
    shift = clone(fitted).set_params(output_resolution=resolution,
                                     inference="shift")
    for model in (dense, shift):
        _with_fitted_state(model, fitted)
    passes = []  # (output stride, top, left) of each full-image pass
    original = inference.pass_scores

    def recording(network, padded, n_instances, stride, top, left, *rest,
                  **kwargs):
        passes.append((stride, int(top), int(left)))
        return original(network, padded, n_instances, stride, top, left,
                        *rest, **kwargs)
    monkeypatch.setattr(inference, "pass_scores", recording)
    from_dense = dense.predict_proba(X[:1])
    dense_passes, passes[:] = list(passes), []
    from_shift = shift.predict_proba(X[:1])
    np.testing.assert_allclose(from_dense, from_shift, atol=1e-5)
    # SMALL with 2 instances has total stride 4: shift-and-stitch runs one
    # strided pass per labelled offset (every step-th pixel from the middle
    # of the first step x step block), the dense pass one dilated pass.
    step = round(1 / resolution)
    offsets = range((step - 1) // 2, 4, step)
    assert sorted(passes) == [(4, top, left) for top in offsets
                              for left in offsets]
    first = offsets[0]
    assert dense_passes == [(step, first, first)]


def test_reduced_resolution_keeps_the_labelled_pixels(fitted, colour_data):
    _, (X, _) = colour_data
    full = fitted.predict_proba(X[:1])[0]
    half = _with_fitted_state(clone(fitted).set_params(output_resolution=0.5),
                              fitted)
    reduced = half.predict_proba(X[:1])[0]
    np.testing.assert_allclose(reduced[::2, ::2], full[::2, ::2], atol=1e-5)
    assert not np.allclose(reduced, full, atol=1e-5)  # really interpolated


def test_predict_proba_of_fewer_instances(fitted, colour_data):
    """n_instances=1 gives the first instance's guess, scored like a one-
    instance network on the same weights."""
    _, (X, _) = colour_data
    network, _ = fitted._network()
    image = standardize_image(X[0]).transpose(2, 0, 1).copy()
    scores, _, _ = image_scores(network, image, 1)
    first = fitted.predict_proba(X[:1], n_instances=1)[0]
    np.testing.assert_allclose(first, _softmax_hwc(scores), atol=1e-6)


def test_prediction_that_runs_out_of_memory_goes_on_in_smaller_bands(
        fitted, colour_data, monkeypatch):
    _, (X_test, _) = colour_data
    expected = fitted.predict_proba(X_test[:2])
    side = fitted.patch_size_
    forward = RecurrentNetwork.forward

    def capped(network, x, *args, **kwargs):
        if x.shape[2] > side + 4:  # room for 5 output rows of a dense pass
            raise MemoryError("injected: out of memory")
        return forward(network, x, *args, **kwargs)

    monkeypatch.setattr(RecurrentNetwork, "forward", capped)
    with pytest.warns(UserWarning, match="out of memory on a band of"):
        retried = fitted.predict_proba(X_test[:2])
    np.testing.assert_allclose(retried, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_instances", [1, 2])
def test_test_time_flip_averages_the_mirror_image_labelling(
        fitted, colour_data, n_instances):
    """Each pixel's probabilities are the mean of the network's scores on
    the image and on its mirror at the mirrored pixel, each through its own
    softmax (computed here straight from the network)."""
    _, (X, _) = colour_data
    flipped = _with_fitted_state(
        clone(fitted).set_params(test_time_flip=True), fitted)
    network, _ = fitted._network()
    image = standardize_image(X[0]).transpose(2, 0, 1)
    direct = _softmax_hwc(image_scores(network, image.copy(),
                                       n_instances)[0])
    mirror = _softmax_hwc(image_scores(network, image[:, :, ::-1].copy(),
                                       n_instances)[0])[:, ::-1]
    expected = (direct + mirror) / 2
    np.testing.assert_allclose(
        flipped.predict_proba(X[:1], n_instances=n_instances)[0], expected,
        atol=1e-6)
    assert not np.allclose(direct, expected, atol=1e-3)  # the mirror counts
    assert np.array_equal(flipped.predict(X[:1], n_instances=n_instances)[0],
                          fitted.classes_[expected.argmax(-1)])


@pytest.mark.parametrize("params", [dict(), dict(inference="shift"),
                                    dict(output_resolution=0.5)])
def test_test_time_flip_makes_labellings_mirror_symmetric(
        fitted, colour_data, params):
    """Labelling the mirror of an image gives the mirror of its labelling
    (which the network alone does not)."""
    _, (X, _) = colour_data
    X = X[:2]
    mirrored_X = X[:, :, ::-1]
    plain = _with_fitted_state(clone(fitted).set_params(**params), fitted)
    flipped = _with_fitted_state(
        clone(fitted).set_params(test_time_flip=True, **params), fitted)
    before = X.copy()
    np.testing.assert_allclose(flipped.predict_proba(mirrored_X),
                               flipped.predict_proba(X)[:, :, ::-1],
                               atol=1e-6)
    assert not np.allclose(plain.predict_proba(mirrored_X),
                           plain.predict_proba(X)[:, :, ::-1], atol=1e-3)
    np.testing.assert_array_equal(X, before)


def test_partial_fit_runs_one_epoch_and_checks_classes(colour_data):
    (X, y), _ = colour_data
    model = _model()
    only_two = np.where(y == 2, 1, y)
    model.partial_fit(X[:5], only_two[:5], classes=[0, 1, 2])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.n_iter_ == 1
    model.partial_fit(X[5:10], y[5:10])
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    with pytest.raises(ValueError, match=r"classes=\[0, 1\] differs"):
        model.partial_fit(X[:2], y[:2], classes=[0, 1])
    # Whole-number floats are integers here, as they are in y; others not.
    model.partial_fit(X[:2], y[:2], classes=np.array([2.0, 0.0, 1.0]))
    assert model.n_iter_ == 3
    for bad_classes in ([0, 1.5, 2], [0, -1, 2], [0, 0, 1], [], [[0, 1]],
                        np.array([0, 1, 2 ** 63], np.uint64)):
        with pytest.raises(ValueError, match="classes must be distinct "
                                             "non-negative integers"):
            _model().partial_fit(X[:2], y[:2], classes=bad_classes)
    bad = y[:2].copy()
    bad[1, 0, 0] = 9
    with pytest.raises(ValueError, match=r"y\[1\] holds labels \[9\]"):
        model.partial_fit(X[:2], bad)
    assert model.n_iter_ == 3


def _instances_per_epoch(monkeypatch):
    """Record the instance count of every training epoch."""
    used = []
    epoch = RecurrentCNNSegmenter._epoch

    def recording(self, state, train, n_used):
        used.append(n_used)
        return epoch(self, state, train, n_used)
    monkeypatch.setattr(RecurrentCNNSegmenter, "_epoch", recording)
    return used


def test_staged_schedule_trains_p_minus_1_then_p_and_never_goes_back(
        colour_data, monkeypatch):
    """The paper's rCNN2 staging: the first max_iter // 2 epochs with P - 1
    instances, then P. Training that goes on (warm_start, partial_fit)
    continues the P - 1 stage only while P was never trained."""
    (X, y), _ = colour_data
    used = _instances_per_epoch(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # (n_iter_no_change: no early end, every epoch is recorded)
        model = _model(n_instances=3, max_iter=4,
                       n_iter_no_change=100).fit(X, y)
        assert used == [2, 2, 3, 3]
        used.clear()
        model.set_params(warm_start=True, max_iter=12).fit(X, y)
        assert used == [3] * 12  # not 2 again for epochs 5 and 6 of 12
        used.clear()
        model.partial_fit(X, y)
        assert used == [3]
        # Stopped inside the first stage, it goes on with it.
        used.clear()
        early = _model(n_instances=3, max_iter=4, n_iter_no_change=100)
        early.partial_fit(X, y)
        early.set_params(warm_start=True, max_iter=6).fit(X, y)
        assert used == [2] + [2, 2, 3, 3, 3, 3]
    # A model pickled before the count was recorded goes on by epoch count.
    state = dict(model.__getstate__())
    del state["_max_instances_trained"]
    old = RecurrentCNNSegmenter.__new__(RecurrentCNNSegmenter)
    old.__setstate__(state)
    used.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        old.set_params(max_iter=40).fit(X, y)
    # 17 epochs done: epochs 18-20 of max_iter=40 count as the first stage.
    assert used[:4] == [2, 2, 2, 3]


def test_weights_assigned_or_edited_after_a_prediction_are_used(
        colour_data):
    (X, y), (X_test, _) = colour_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = _model(random_state=0).fit(X, y)
        b = _model(random_state=1).fit(X, y)
    before = b.predict_proba(X_test[:2])
    b.coefs_ = [w.copy() for w in a.coefs_]
    b.intercepts_ = [w.copy() for w in a.intercepts_]
    np.testing.assert_array_equal(b.predict_proba(X_test[:2]),
                                  a.predict_proba(X_test[:2]))
    assert not np.allclose(before, a.predict_proba(X_test[:2]))
    # In place: a zero last layer scores every class alike.
    b.coefs_[-1][...] = 0
    b.intercepts_[-1][...] = 0
    np.testing.assert_allclose(b.predict_proba(X_test[:2]),
                               1 / b.n_classes_, rtol=1e-6)


def test_patch_size_follows_n_instances(fitted):
    from skrcnn.architecture import patch_size
    model = clone(fitted).set_params(n_instances=1)
    model.__dict__.update({k: v for k, v in vars(fitted).items()
                           if k.endswith("_")})
    for n in (1, 2, 3):
        model.set_params(n_instances=n)
        assert model.patch_size_ == patch_size(model.layers_, n)
    assert fitted.patch_size_ == patch_size(fitted.layers_, 2)
    assert not hasattr(clone(fitted), "patch_size_")


def test_an_object_array_of_images_is_a_sequence(fitted, colour_data):
    """A 1-D object array is the usual container of images of different
    sizes: it is read as a sequence (outputs come back as a list)."""
    _, (X, _) = colour_data
    images = [X[0], X[1][:15, :17]]
    holder = np.empty(2, dtype=object)
    holder[0], holder[1] = images
    out = fitted.predict(holder)
    assert isinstance(out, list)
    for got, expected in zip(out, fitted.predict(images)):
        np.testing.assert_array_equal(got, expected)


def test_warm_start_continues_training(colour_data):
    (X, y), _ = colour_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model(max_iter=2, warm_start=True).fit(X, y)
        first = [w.copy() for w in model.coefs_]
        model.fit(X, y)
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4
    assert not np.array_equal(first[0], model.coefs_[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold = _model(max_iter=2).fit(X, y)
        cold.fit(X, y)
    assert cold.n_iter_ == 2


def test_a_changed_architecture_is_named_before_the_images_are_checked(
        colour_data):
    """plain's stride 16 makes the small images too small; the error to
    see is the architecture change, not the image size."""
    (X, y), _ = colour_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model(max_iter=1, warm_start=True, n_instances=2).fit(X, y)
    model.set_params(architecture="plain")
    for call in (model.fit, model.partial_fit):
        with pytest.raises(ValueError, match="the architecture changed"):
            call(X, y)


def test_early_stopping_restores_the_best_weights(colour_data):
    (X, y), _ = colour_data
    # tol=1 can never be beaten: the first epoch stays best, training stops
    # after n_iter_no_change more, and the first epoch's weights come back.
    model = _model(early_stopping=True, tol=1.0, n_iter_no_change=2,
                   max_iter=10, validation_fraction=0.2).fit(X, y)
    assert model.n_iter_ == 3
    assert len(model.validation_scores_) == 3
    assert model.best_validation_score_ == model.validation_scores_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one_epoch = _model(early_stopping=True, max_iter=1,
                           validation_fraction=0.2).fit(X, y)
    for a, b in zip(model.coefs_, one_epoch.coefs_):
        np.testing.assert_array_equal(a, b)


def test_warm_started_early_stopping_keeps_its_held_out_images_and_best(
        colour_data, monkeypatch):
    """Warm fits hold out the same images as the fit they continue, and the
    weights kept after each fit are those of the best validation score so
    far (as scikit-learn's MLP with early_stopping and warm_start)."""
    (X, y), _ = colour_data
    held_out, scores = [], []
    original = RecurrentCNNSegmenter._validation_score

    def spy(self, state, validation):
        held_out.append(validation)
        scores.append(original(self, state, validation))
        return scores[-1]
    monkeypatch.setattr(RecurrentCNNSegmenter, "_validation_score", spy)
    model = _model(max_iter=1, warm_start=True, early_stopping=True,
                   validation_fraction=0.2, n_iter_no_change=50,
                   learning_rate=5e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(5):
            best_before = model.best_validation_score_ if k else None
            model.fit(X, y)
            # The weights held score the best score on the held-out images.
            held = types.SimpleNamespace(
                predicting_network=lambda: model._network()[0], xp=np)
            assert original(model, held, held_out[-1]) == \
                model.best_validation_score_
            if k:  # a warm fit first scores the weights it goes on from
                assert scores[-2] == best_before
    # One epoch each, and the warm fits' scoring of their starting weights.
    assert len(held_out) == 1 + 2 * 4
    first = np.stack(held_out[0].images)
    for validation in held_out[1:]:
        np.testing.assert_array_equal(np.stack(validation.images), first)
    assert model.best_validation_score_ == max(model.validation_scores_)


def test_warm_fit_competes_with_the_fitted_best_not_an_earlier_stage(
        colour_data, monkeypatch):
    """Scores of the staged schedule's P - 1 stage never count as best, on
    the first fit nor when training goes on: the warm fit's 0.6 beats the
    fitted best 0.5 although a 1-instance epoch once scored 0.9. (The warm
    fit first scores the weights it goes on from: the second 0.5.)"""
    (X, y), _ = colour_data
    scripted = iter([0.9, 0.5, 0.4, 0.5, 0.6, 0.55])
    monkeypatch.setattr(RecurrentCNNSegmenter, "_validation_score",
                        lambda self, state, validation: next(scripted))
    model = _model(n_instances=2, max_iter=3, warm_start=True,
                   early_stopping=True, validation_fraction=0.2,
                   n_iter_no_change=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        assert model.validation_scores_ == [0.9, 0.5, 0.4]
        assert model.best_validation_score_ == 0.5
        model.set_params(max_iter=2).fit(X, y)
    assert model.best_validation_score_ == 0.6
    # The weights kept are the 0.6 epoch's: one more warm epoch from them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = _model(n_instances=2, max_iter=3, warm_start=True,
                        early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=50)
        scripted = iter([0.9, 0.5, 0.4, 0.5, 0.6])
        replay.fit(X, y)
        replay.set_params(max_iter=1).fit(X, y)
    for a, b in zip(model.coefs_, replay.coefs_):
        np.testing.assert_array_equal(a, b)


def _warm_stopper(**params):
    """A warm-started model with early stopping that never stops early."""
    return _model(**{**dict(warm_start=True, early_stopping=True,
                            validation_fraction=0.2, n_iter_no_change=50),
                     **params})


def _scripted_scores(monkeypatch, scores, interrupt_at=None):
    """Validation scores taken from ``scores`` in turn; the
    ``interrupt_at``-th call raises KeyboardInterrupt (Ctrl-C while the
    held-out images are scored)."""
    scripted, calls = iter(scores), []

    def score(self, state, validation):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return next(scripted)
    monkeypatch.setattr(RecurrentCNNSegmenter, "_validation_score", score)


def test_partial_fit_forgets_the_best_validation_score(colour_data,
                                                       monkeypatch):
    """partial_fit trains on every image, the held-out ones too: the
    earlier best no longer describes the weights, and is not restored."""
    (X, y), _ = colour_data
    _scripted_scores(monkeypatch, [0.5, 0.7, 0.3])
    model = _warm_stopper(max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        assert model.best_validation_score_ == 0.7
        model.partial_fit(X, y)
        assert model.best_validation_score_ is None
        after_partial = [c.copy() for c in model.coefs_]
        model.set_params(max_iter=1).fit(X, y)  # new split, scored 0.3
    assert model.best_validation_score_ == 0.3
    assert model.n_iter_ == 4 and model.validation_scores_ == [0.5, 0.7, 0.3]
    assert not np.array_equal(model.coefs_[0], after_partial[0])


def test_warm_fit_with_more_instances_scores_its_start_again(colour_data,
                                                             monkeypatch):
    """The best of a 1-instance fit is no bar for a 2-instance one: the
    weights it goes on from are scored with 2 instances (0.2) and lose to
    its epoch (0.3), which is kept."""
    (X, y), _ = colour_data
    _scripted_scores(monkeypatch, [0.6, 0.2, 0.3])
    model = _warm_stopper(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        start = [c.copy() for c in model.coefs_]
        model.set_params(n_instances=2).fit(X, y)
    assert model.best_validation_score_ == 0.3
    assert not np.array_equal(model.coefs_[0], start[0])


def test_ctrl_c_while_scoring_keeps_the_history_aligned(colour_data,
                                                        monkeypatch):
    (X, y), _ = colour_data
    _scripted_scores(monkeypatch, [0.5, 0.4], interrupt_at=3)
    with pytest.warns(UserWarning, match="interrupted after 3 epochs; the "
                      "model keeps the weights of its best validation"):
        model = _model(max_iter=5, early_stopping=True,
                       validation_fraction=0.2, n_iter_no_change=50).fit(X, y)
    assert model.n_iter_ == len(model.loss_curve_) == 3
    assert model.validation_scores_[:2] == [0.5, 0.4]
    assert np.isnan(model.validation_scores_[2])
    assert model.best_validation_score_ == 0.5


def test_partial_fit_never_announces_a_stop(colour_data, capsys):
    (X, y), _ = colour_data
    model = _model(verbose=1, n_iter_no_change=1, tol=10.0)
    for _ in range(3):
        model.partial_fit(X, y, classes=np.unique(y[y >= 0]))
    out = capsys.readouterr().out
    assert out.count("Iteration") == 3 and "stopping" not in out


def test_verbose_prints_one_line_per_epoch(colour_data, capsys):
    (X, y), _ = colour_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _model(max_iter=2, verbose=1, early_stopping=True).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("Iteration 2, loss = ")
    assert "validation pixel accuracy" in lines[1] and lines[1].endswith(" s")


def test_ctrl_c_stops_cleanly_and_keeps_the_model(colour_data,
                                                  interrupt_epoch):
    (X, y), _ = colour_data
    interrupt_epoch(2)
    with pytest.warns(UserWarning, match="interrupted after 1 epochs"):
        model = _model(max_iter=5).fit(X, y)
    assert model.n_iter_ == 1
    assert model.predict(X[:1]).shape == (1, 20, 24)


def test_failed_fit_leaves_the_fitted_model_untouched(fitted, colour_data,
                                                      monkeypatch):
    (X, y), _ = colour_data
    model = pickle.loads(pickle.dumps(fitted))
    before = pickle.dumps(model.__dict__)

    def broken(self, *args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(RecurrentCNNSegmenter, "_epoch", broken)
    for warm_start in (False, True):
        model.set_params(warm_start=warm_start)
        with pytest.raises(RuntimeError, match="disk on fire"):
            model.fit(X, y)
        with pytest.raises(RuntimeError, match="disk on fire"):
            model.partial_fit(X, y)
    model.set_params(warm_start=False)
    assert pickle.dumps(model.__dict__) == before


def test_user_data_is_not_modified(colour_data):
    (X, y), _ = colour_data
    X_float = X.astype(np.float64)
    X_copy, y_copy = X_float.copy(), y.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model(max_iter=1).fit(X_float, y)
    model.predict(X_float)
    model.score(X_float, y)
    np.testing.assert_array_equal(X_float, X_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_model_pickled_before_a_parameter_existed_loads_with_its_default(
        fitted, colour_data):
    """A saved model lacking a later constructor parameter (here
    instance_loss) loads with that parameter's default, predicts the same
    and can be cloned and trained on."""
    _, (X, _) = colour_data
    state = dict(fitted.__getstate__())  # may be fitted.__dict__ itself
    del state["instance_loss"]
    old = RecurrentCNNSegmenter.__new__(RecurrentCNNSegmenter)
    old.__setstate__(state)
    assert old.get_params()["instance_loss"] == "last"
    np.testing.assert_array_equal(old.predict(X), fitted.predict(X))
    assert clone(old).get_params() == fitted.get_params()


def test_pickle_and_joblib_round_trips_predict_the_same(fitted, colour_data,
                                                        tmp_path):
    _, (X, _) = colour_data
    expected = fitted.predict_proba(X[:2])
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X[:2]), expected)
    joblib.dump(fitted, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X[:2]), expected)


def test_clone_and_params(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "coefs_")
    copy.set_params(architecture="rcnn1", hidden_sizes=(10, 20))
    assert copy.get_params()["hidden_sizes"] == (10, 20)


def test_hidden_sizes_replace_the_preset_widths():
    X, y = colour_scenes(4, shape=(16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = RecurrentCNNSegmenter(architecture="rcnn2", n_instances=1,
                                      hidden_sizes=(3, 5), max_iter=1,
                                      crop_size=None,
                                      random_state=0).fit(X, y)
    assert [w.shape for w in model.coefs_] == [(3, 6, 8, 8), (5, 3, 8, 8),
                                               (3, 5, 1, 1)]
    assert model.patch_size_ == 23


def test_model_for_gpu_predicts_on_cpu_where_there_is_none(fitted, colour_data,
                                                           monkeypatch):
    """A model fitted with device="gpu" and loaded on a machine without a
    GPU predicts on the CPU, with a warning, instead of failing."""
    import skrcnn.segmenter as segmenter
    monkeypatch.setattr(segmenter, "gpu_available", lambda: False)
    _, (X, _) = colour_data
    expected = fitted.predict(X[:2])
    model = pickle.loads(pickle.dumps(fitted)).set_params(device="gpu")
    with pytest.warns(UserWarning, match="predicting on the CPU"):
        np.testing.assert_array_equal(model.predict(X[:2]), expected)
    from skrcnn.backend import gpu_available
    if not gpu_available():  # training on a GPU that is not there fails
        with pytest.raises(ValueError, match="device='gpu' was requested"):
            model.fit(*colour_scenes(2))


def test_dense_sampling_on_crops_learns(colour_data):
    (X, y), (X_test, y_test) = colour_data
    model = _model(sampling="dense", crop_size=3, batch_size=8,
                   patches_per_epoch=256, max_iter=4)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    assert model.t_ == 4 * 32
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    assert model.score(X_test, y_test) > 0.9
