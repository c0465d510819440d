"""Soft targets (knowledge distillation): the samplers must return the
teacher's distribution of exactly the pixels whose labels they return, and
the loss over soft targets must have exact gradients."""

import numpy as np
import pytest

from dummies import FixedScaleDraws
from gradcheck import assert_gradients_match_objective
from skrcnn import Variable, no_grad
from skrcnn.network import RecurrentNetwork
from skrcnn.training import (ImageSet, accumulate_loss, dense_example,
                             sample_crops, sample_patches)

TINY = (("conv", 4, 3), ("pool", 2), ("tanh",), ("conv", "classes", 2))
N_CLASSES = 3


def _onehot(labels, n_classes=N_CLASSES):
    """One-hot maps of ``labels`` (zeros where the label is unknown)."""
    return (labels[..., None] == np.arange(n_classes)).astype(np.float64)


def _soft_set(seed=0, shapes=((9, 12), (14, 7))):
    """Images whose soft targets are the one-hot maps of their labels, so
    every returned soft target must be the one-hot of its hard target."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, shape + (3,)).astype(np.uint8)
              for shape in shapes]
    targets = [rng.integers(-1, N_CLASSES, shape) for shape in shapes]
    return ImageSet(images, targets, [_onehot(t) for t in targets])


def _without_soft(image_set):
    return ImageSet(image_set.images, image_set.targets)


def _replay(sampler, image_set, seed):
    """The sampler's output with and without soft targets, same seed."""
    with_soft = sampler(image_set, np.random.RandomState(seed))
    without = sampler(_without_soft(image_set), np.random.RandomState(seed))
    return with_soft, without


SAMPLERS = {
    "crops": lambda s, rng, **kw: sample_crops(s, 6, 7, 2, 3, rng,
                                               np.float64, **kw),
    "patches": lambda s, rng, **kw: sample_patches(s, 6, 9, rng, np.float64,
                                                   **kw),
    "whole image": lambda s, rng, **kw: dense_example(s, 1, 7, 2, rng,
                                                      np.float64, **kw),
}


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_soft_targets_belong_to_the_returned_targets(sampler, flip):
    image_set = _soft_set(seed=3)
    for seed in range(4):
        (inputs, targets, soft), (inputs_ref, targets_ref) = _replay(
            lambda s, rng: SAMPLERS[sampler](s, rng, flip=flip), image_set,
            seed)
        # The same draws as without soft targets ...
        np.testing.assert_array_equal(inputs, inputs_ref)
        np.testing.assert_array_equal(targets, targets_ref)
        # ... and the one-hot of each returned target, classes on axis 1
        # (zeros where the target is unknown or outside the image).
        expected = np.moveaxis(_onehot(targets), -1, 1)
        assert soft.shape == expected.shape
        np.testing.assert_array_equal(soft, expected)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_soft_targets_of_a_resized_image(sampler):
    # A distribution constant over the image stays that distribution when
    # the image is resized (bilinear interpolation averages it with itself).
    rng = np.random.default_rng(5)
    shape = (16, 20)
    images = [rng.integers(0, 256, shape + (3,)).astype(np.uint8)
              for _ in range(2)]
    labels = [rng.integers(0, N_CLASSES, shape) for _ in range(2)]
    constant = np.array([0.2, 0.5, 0.3])
    image_set = ImageSet(images, labels, 2 * [
        np.broadcast_to(constant, shape + (N_CLASSES,))])
    for seed in range(3):
        _, targets, soft = SAMPLERS[sampler](
            image_set, np.random.RandomState(seed), scale_range=(0.7, 1.6),
            flip=True)
        soft = np.moveaxis(soft, 1, -1)
        np.testing.assert_allclose(soft[targets >= 0], np.broadcast_to(
            constant, soft[targets >= 0].shape), rtol=1e-12)
        np.testing.assert_array_equal(soft[targets < 0], 0)


@pytest.mark.parametrize("factor", [0.7, 1.5])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_soft_targets_of_a_resized_image_are_interpolated_bilinearly(
        sampler, factor):
    """Against the maps resized beforehand by scikit-image (bilinear,
    pixel centres on pixel centres, no anti-aliasing)."""
    from skimage.transform import resize

    from skrcnn.preprocessing import resize_image, resize_labels, scaled_shape
    rng = np.random.default_rng(6)
    shapes = ((13, 17), (16, 11))
    images = [rng.integers(0, 256, shape + (3,)).astype(np.uint8)
              for shape in shapes]
    labels = [rng.integers(-1, N_CLASSES, shape) for shape in shapes]
    soft = [rng.dirichlet(np.ones(N_CLASSES), size=shape) for shape in shapes]
    resized = [scaled_shape(shape, factor) for shape in shapes]
    reference = ImageSet(
        [resize_image(i, shape) for i, shape in zip(images, resized)],
        [resize_labels(t, shape) for t, shape in zip(labels, resized)],
        [resize(p, shape + (N_CLASSES,), order=1, anti_aliasing=False,
                preserve_range=True) for p, shape in zip(soft, resized)])
    image_set = ImageSet(images, labels, soft)
    for seed in range(4):
        ours = SAMPLERS[sampler](image_set, FixedScaleDraws(seed),
                                 scale_range=(factor, factor), flip=True)
        theirs = SAMPLERS[sampler](reference, np.random.RandomState(seed),
                                   flip=True)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
        np.testing.assert_array_equal(ours[1], theirs[1])
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12,
                                   atol=1e-15)


def test_soft_targets_refuse_label_frames():
    image_set = _soft_set()
    with pytest.raises(ValueError, match="not for label frames"):
        sample_crops(image_set, 2, 7, 2, 3, np.random.RandomState(0),
                     frames=True)
    with pytest.raises(ValueError, match="not for label frames"):
        dense_example(image_set, 0, 7, 2, np.random.RandomState(0),
                      frames=True)


@pytest.mark.parametrize("soft_weight", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("class_weight", [None, [1.0, 3.0, 0.5]])
def test_accumulate_loss_with_soft_targets_has_exact_gradients(
        soft_weight, class_weight):
    """Groups of patches and of crops, run with different numbers of
    instances: the loss is the (weighted) mean over labelled outputs of the
    cross-entropy with (1 - a) onehot + a soft, computed independently."""
    net = RecurrentNetwork.initialise(TINY, N_CLASSES,
                                      np.random.RandomState(0),
                                      dtype=np.float64)
    rng = np.random.default_rng(1)

    def distributions(shape):
        p = rng.random(shape)
        return p / p.sum(axis=1, keepdims=True)

    groups = [(1, rng.standard_normal((3, 3, 6, 6)), np.array([0, 2, -1]),
               distributions((3, N_CLASSES))),
              (2, rng.standard_normal((2, 3, 20, 20)),
               np.array([[[1, -1], [0, 2]], [[2, 2], [-1, 1]]]),
               distributions((2, N_CLASSES, 2, 2)))]
    weights = (np.ones(N_CLASSES) if class_weight is None
               else np.array(class_weight))

    def objective(*params):
        total = count = 0.0
        for p, rgb, targets, soft in groups:
            net.params = [Variable(a) for a in params]
            with no_grad():
                scores = net.forward(rgb, p).data
            scores = scores.reshape(len(rgb), N_CLASSES, -1)
            log_q = scores - np.log(np.exp(scores).sum(1, keepdims=True))
            soft = soft.reshape(len(rgb), N_CLASSES, -1)
            for n, position in np.ndindex(len(rgb), log_q.shape[2]):
                t = targets.reshape(len(rgb), -1)[n, position]
                if t < 0:
                    continue
                nll = -(1 - soft_weight) * log_q[n, t, position] \
                    - soft_weight * (soft[n, :, position]
                                     * log_q[n, :, position]).sum()
                total += weights[t] * nll
                count += weights[t]
        return total / count

    params = [p.data.copy() for p in net.params]
    trained = [Variable(a.copy(), requires_grad=True) for a in params]
    net.params = trained
    loss, count = accumulate_loss(
        net, groups, np, soft_weight=soft_weight,
        class_weight=None if class_weight is None else weights)
    assert loss == pytest.approx(objective(*params), rel=1e-12)
    assert_gradients_match_objective(objective, params,
                                     [p.grad for p in trained], seed=2)


def test_accumulate_loss_refuses_soft_targets_for_every_instance():
    net = RecurrentNetwork.initialise(TINY, N_CLASSES,
                                      np.random.RandomState(0),
                                      dtype=np.float64)
    frames = np.zeros((1, 6, 6), dtype=np.int64)
    with pytest.raises(ValueError, match="last instance"):
        accumulate_loss(net, [(1, np.zeros((1, 3, 6, 6)), frames,
                               np.zeros((1, N_CLASSES, 2, 2)))], np,
                        every_instance=True)


# ------------------------------------------------------------- the estimator

def _scenes():
    from scenes import colour_scenes
    X, y = colour_scenes(6, shape=(20, 24), seed=1)
    y[0, :3, :4] = -1  # a few unknown pixels
    return X, y


def _segmenter(**params):
    from scenes import SMALL
    from skrcnn import RecurrentCNNSegmenter
    return RecurrentCNNSegmenter(**{**dict(
        architecture=SMALL, n_instances=2, max_iter=2, patches_per_epoch=48,
        batch_size=8, crop_size=3, random_state=0), **params})


def _label_proba(y, n_classes=N_CLASSES):
    """One-hot maps of the labels; uniform where the label is unknown."""
    proba = _onehot(y, n_classes).astype(np.float32)
    proba[y < 0] = 1.0 / n_classes
    return proba


def _same_weights(a, b, atol=1e-6):
    return all(np.allclose(c, d, rtol=0, atol=atol)
               for c, d in zip(a.coefs_ + a.intercepts_,
                               b.coefs_ + b.intercepts_))


@pytest.mark.parametrize("params", [
    # Not scale_range: resizing blends one-hot maps at class boundaries.
    dict(), dict(horizontal_flip=True),
    dict(sampling="patch", instance_schedule="random"),
    dict(crop_size=None, early_stopping=True, validation_fraction=0.3)],
    ids=["crops", "flipped", "patches", "whole images"])
def test_a_teacher_that_repeats_the_labels_changes_nothing(params):
    """Soft targets equal to the labels' one-hot maps make the mixed
    targets the hard ones: the same model as without a teacher."""
    import warnings
    X, y = _scenes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = _segmenter(**params).fit(X, y)
        taught = _segmenter(distillation_weight=0.7, **params).fit(
            X, y, teacher_proba=_label_proba(y))
    assert plain.loss_curve_ == pytest.approx(taught.loss_curve_, rel=1e-5)
    assert _same_weights(plain, taught)


def test_distillation_weight_zero_ignores_the_teacher():
    import warnings
    X, y = _scenes()
    rng = np.random.default_rng(0)
    noise = rng.random(y.shape + (N_CLASSES,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = _segmenter().fit(X, y)
        taught = _segmenter(distillation_weight=0.0).fit(
            X, y, teacher_proba=noise / noise.sum(-1, keepdims=True))
    assert _same_weights(plain, taught)


def test_the_teacher_s_labelling_is_learnt():
    """With distillation_weight=1 the labels only choose which pixels
    count: a teacher that swaps classes 0 and 1 everywhere is followed."""
    import warnings
    X, y = _scenes()
    swapped = np.where(y == 0, 1, np.where(y == 1, 0, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _segmenter(distillation_weight=1.0, max_iter=12,
                           learning_rate=3e-3).fit(
            X, y, teacher_proba=_label_proba(swapped))
    predicted = model.predict(X)
    known = y >= 0
    assert np.mean(predicted[known] == swapped[known]) > 0.8
    assert np.mean(predicted[known] == y[known]) < 0.5


def test_partial_fit_takes_teacher_proba_and_leaves_it_unmodified():
    X, y = _scenes()
    proba = _label_proba(y)
    before = proba.copy()
    plain = _segmenter().partial_fit(X, y)
    taught = _segmenter().partial_fit(X, y, teacher_proba=proba)
    assert _same_weights(plain, taught)
    np.testing.assert_array_equal(proba, before)
    assert taught.get_params()["distillation_weight"] == 0.5


def test_partial_fit_follows_the_teacher():
    """partial_fit trains on the teacher as fit does: a teacher that swaps
    classes 0 and 1, at distillation_weight=1, is what the model learns."""
    X, y = _scenes()
    swapped = np.where(y == 0, 1, np.where(y == 1, 0, y))
    teacher = _label_proba(swapped)
    model = _segmenter(distillation_weight=1.0, learning_rate=3e-3)
    for _ in range(12):
        model.partial_fit(X, y, classes=[0, 1, 2], teacher_proba=teacher)
    predicted = model.predict(X)
    known = y >= 0
    assert np.mean(predicted[known] == swapped[known]) > 0.8
    assert np.mean(predicted[known] == y[known]) < 0.5


@pytest.fixture
def no_training(monkeypatch):
    from skrcnn import RecurrentCNNSegmenter

    def reached(*args, **kwargs):
        raise AssertionError("training started before the input was checked")
    monkeypatch.setattr(RecurrentCNNSegmenter, "_epoch", reached)


@pytest.mark.parametrize("change,message", [
    (lambda p: p[:5], r"teacher_proba has 5 probability maps for 6 images"),
    (lambda p: list(p[:3]) + [p[3][:, :7]] + list(p[4:]),
     r"teacher_proba\[3\] has shape \(20, 7, 3\), expected \(20, 24, 3\)"),
    (lambda p: p[..., :2], r"teacher_proba\[0\] has shape \(20, 24, 2\), "
                           r"expected \(20, 24, 3\)"),
    (lambda p: np.where(np.arange(6)[:, None, None, None] == 2, -p, p),
     r"teacher_proba\[2\] holds negative or non-finite values"),
    (lambda p: np.where(np.arange(6)[:, None, None, None] == 4, np.nan, p),
     r"teacher_proba\[4\] holds negative or non-finite values"),
    (lambda p: p * np.where(np.arange(6)[:, None, None, None] == 1, 2, 1),
     r"teacher_proba\[1\] at pixel \(0, 0\) sums to 2 over the classes"),
])
def test_bad_teacher_proba_is_named_before_training(change, message,
                                                    no_training):
    X, y = _scenes()
    with pytest.raises(ValueError, match=message):
        _segmenter().fit(X, y, teacher_proba=change(_label_proba(y)))


def test_teacher_proba_errors_of_type_and_instance_loss(no_training):
    X, y = _scenes()
    with pytest.raises(TypeError, match=r"teacher_proba\[0\] has dtype "
                       r"int64; probabilities must be floats"):
        _segmenter().fit(X, y, teacher_proba=np.ones(y.shape + (3,), int))
    with pytest.raises(ValueError, match=r"instance_loss='last', got "
                       r"instance_loss='all'"):
        _segmenter(instance_loss="all").fit(X, y,
                                            teacher_proba=_label_proba(y))
    with pytest.raises(ValueError, match=r"distillation_weight"):
        _segmenter(distillation_weight=1.5).fit(X, y)


def test_a_failed_partial_fit_leaves_the_model_as_it_was():
    X, y = _scenes()
    model = _segmenter().partial_fit(X, y)
    weights = [w.copy() for w in model.coefs_]
    with pytest.raises(ValueError, match="teacher_proba"):
        model.partial_fit(X, y, teacher_proba=_label_proba(y)[:, :, :5])
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.coefs_))
    assert model.n_iter_ == 1
