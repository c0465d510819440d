"""Training examples and updates: patches and dense examples must present
exactly the pixels and targets they claim, and the loss over groups run with
different numbers of instances must have exact gradients."""

import numpy as np
import pytest

from gradcheck import assert_gradients_match_objective
from skrcnn import Variable, no_grad
from skrcnn.architecture import patch_size
from skrcnn.network import RecurrentNetwork
from skrcnn.preprocessing import standardize_image
from skrcnn.training import (SGD, Adam, ImageSet, accumulate_loss,
                             centre_crop, centre_frames, dense_example,
                             instance_targets, sample_crops, sample_patches)

TINY = (("conv", 4, 3), ("pool", 2), ("tanh",), ("conv", "classes", 2))


def _image_set(seed=0, shapes=((9, 12), (14, 7))):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, shape + (3,)).astype(np.uint8)
              for shape in shapes]
    targets = [rng.integers(-1, 3, shape) for shape in shapes]
    return ImageSet(images, targets)


def _reference_patch(image, row, col, side):
    """Standardise the whole image, zero-pad it, cut the centred patch."""
    values = image.astype(np.float64)
    values = (values - values.mean()) / values.std()
    before = (side - 1) // 2
    padded = np.zeros((values.shape[0] + side, values.shape[1] + side, 3))
    padded[before:before + values.shape[0], before:before + values.shape[1]] = values
    return padded[row:row + side, col:col + side].transpose(2, 0, 1)


@pytest.mark.parametrize("side", [1, 4, 7, 23])
def test_patches_are_centred_standardised_and_zero_padded(side):
    images = _image_set()
    rng = np.random.RandomState(0)
    patches, targets = sample_patches(images, 40, side, rng,
                                      dtype=np.float64)
    assert patches.shape == (40, 3, side, side)
    assert (targets >= 0).all()
    # Replay the draws to know which pixel each patch is centred on.
    replay = np.random.RandomState(0)
    chosen = images.usable[replay.randint(len(images.usable), size=40)]
    for k, index in enumerate(chosen):
        labelled = images.labelled[index]
        flat = labelled[replay.randint(labelled.size)]
        row, col = divmod(int(flat), images.images[index].shape[1])
        assert targets[k] == images.targets[index][row, col]
        np.testing.assert_allclose(
            patches[k], _reference_patch(images.images[index], row, col, side),
            atol=1e-12)


@pytest.mark.parametrize("magnitude", [1.0, 255.0, 1e200, 1e304])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_standardises_bit_for_bit_as_prediction(magnitude, dtype):
    """The pixels training sees are exactly those prediction sees, also for
    values whose sum or squares overflow (finite, so accepted: scaled down
    first, not all zeros from an infinite deviation, nor NaN)."""
    rng = np.random.default_rng(0)
    images = [rng.random((6, 5, 3)) * magnitude,
              rng.integers(0, 256, (7, 4, 3)).astype(np.uint8),
              np.full((2, 3, 3), 9.0), np.full((3, 2, 3), 0.1),
              # 1/std rounds so that multiplying by it misses one of these
              # pixels by an ulp in float32 (dividing does not).
              np.array([80.50029237453802, 80.79407897364938,
                        51.5325561042142, 28.58013800881416,
                        5.393070238165643, 38.33688807855182,
                        40.84732054199986, 4.5275193902445166,
                        4.875771072716805, 99.91761150650714,
                        65.23691115879878, 57.01121043129326]).reshape(
                            2, 2, 3)]
    images_set = ImageSet(images, [np.zeros(i.shape[:2], int) for i in images])
    for index, image in enumerate(images):
        expected = standardize_image(image, dtype).transpose(2, 0, 1)
        np.testing.assert_array_equal(images_set.standardized(index, dtype),
                                      expected)
    patches, _ = sample_patches(images_set, 3, 5, np.random.RandomState(0),
                                dtype=np.float64)
    assert np.isfinite(patches).all() and np.abs(patches).max() > 0.5


@pytest.mark.parametrize("side", [4, 7])
def test_flipped_patches_are_cut_from_the_mirrored_image(side):
    images = _image_set(seed=3)
    patches, targets = sample_patches(images, 40, side,
                                      np.random.RandomState(2),
                                      dtype=np.float64, flip=True)
    replay = np.random.RandomState(2)
    chosen = images.usable[replay.randint(len(images.usable), size=40)]
    mirrored = 0
    for k, index in enumerate(chosen):
        labelled = images.labelled[index]
        flat = labelled[replay.randint(labelled.size)]
        image = images.images[index]
        row, col = divmod(int(flat), image.shape[1])
        assert targets[k] == images.targets[index][row, col]
        unflipped = _reference_patch(image, row, col, side)
        if replay.rand() < 0.5:
            mirrored += 1
            expected = _reference_patch(image[:, ::-1], row,
                                        image.shape[1] - 1 - col, side)
            if side % 2:  # an odd patch mirrors about its centre pixel
                np.testing.assert_allclose(expected, unflipped[..., ::-1])
        else:
            expected = unflipped
        np.testing.assert_allclose(patches[k], expected, atol=1e-12)
    assert 0 < mirrored < 40


def test_patches_never_target_unknown_pixels_or_unlabelled_images():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (6, 6, 3)) for _ in range(3)]
    targets = [np.full((6, 6), -1), np.full((6, 6), -1), np.full((6, 6), -1)]
    targets[1][2, 3] = 2
    image_set = ImageSet(images, targets)
    np.testing.assert_array_equal(image_set.usable, [1])
    patches, labels = sample_patches(image_set, 30, 3, np.random.RandomState(0))
    assert (labels == 2).all()
    expected = _reference_patch(images[1], 2, 3, 3)
    np.testing.assert_allclose(patches[0], expected, atol=1e-6)


def test_centre_crop_keeps_the_centre_pixel():
    patches = np.arange(2 * 3 * 67 * 67, dtype=float).reshape(2, 3, 67, 67)
    small = centre_crop(patches, 23)
    assert small.shape == (2, 3, 23, 23)
    assert small[0, 0, 11, 11] == patches[0, 0, 33, 33]


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("n_instances", [1, 2])
def test_dense_example_outputs_score_the_claimed_pixels(n_instances, flip):
    """Outputs are the patch scores of the pixels they claim; flipped
    examples are those of the left-right mirrored image and labels."""
    images = _image_set(seed=2, shapes=((13, 21),))
    net = RecurrentNetwork.initialise(TINY, 3, np.random.RandomState(0),
                                      dtype=np.float64)
    side, stride = patch_size(TINY, n_instances), 2 ** n_instances
    rng = np.random.RandomState(5)
    seen, mirrored = set(), 0
    for _ in range(10):
        state = rng.get_state()
        rgb, targets = dense_example(images, 0, side, stride, rng, np.float64,
                                     flip=flip)
        replay = np.random.RandomState()
        replay.set_state(state)
        dy, dx = replay.randint(stride), replay.randint(stride)
        seen.add((dy, dx))
        image, labels = images.images[0], images.targets[0]
        if flip and replay.rand() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
            mirrored += 1
        with no_grad():
            scores = net.forward(rgb, n_instances).data
        assert scores.shape[2:] == targets.shape[1:]
        for a, b in [(0, 0), (targets.shape[1] - 1, targets.shape[2] - 1)]:
            row, col = dy + stride * a, dx + stride * b
            assert targets[0, a, b] == labels[row, col]
            patch = _reference_patch(image, row, col, side)
            with no_grad():
                single = net.forward(patch[None], n_instances).data
            np.testing.assert_allclose(scores[0, :, a, b], single[0, :, 0, 0],
                                       atol=1e-12)
    assert len(seen) > 1  # the shift really is random
    assert (0 < mirrored < 10) if flip else mirrored == 0


@pytest.mark.parametrize("class_weight", [None, [0.5, 3.0, 1.25],
                                          [0.0, 2.0, 1.0]])
def test_loss_over_groups_with_different_instance_counts_has_exact_gradient(
        class_weight):
    net = RecurrentNetwork.initialise(TINY, 3, np.random.RandomState(1),
                                      dtype=np.float64)
    rng = np.random.default_rng(3)
    groups = [(1, rng.standard_normal((3, 3, 6, 6)), np.array([0, 2, -1])),
              (2, rng.standard_normal((2, 3, 16, 16)), np.array([1, 0]))]
    weights = np.ones(3) if class_weight is None else np.array(class_weight)

    def objective(*params):
        # Independent composition: the (weighted) mean NLL over all
        # labelled examples.
        total, count = 0.0, 0.0
        for p, rgb, targets in groups:
            net.params = [Variable(a) for a in params]
            with no_grad():
                scores = net.forward(rgb, p).data[:, :, 0, 0]
            log_p = scores - np.log(np.exp(scores).sum(1, keepdims=True))
            for k, t in enumerate(targets):
                if t >= 0:
                    total -= weights[t] * log_p[k, t]
                    count += weights[t]
        return total / count

    params = [p.data.copy() for p in net.params]
    trained = [Variable(a.copy(), requires_grad=True) for a in params]
    net.params = trained
    weight_arg = None if class_weight is None else np.array(class_weight)
    loss, count = accumulate_loss(net, groups, np, class_weight=weight_arg)
    assert count == pytest.approx(weights[[0, 2, 1, 0]].sum())
    assert loss == pytest.approx(objective(*params), rel=1e-12)
    assert_gradients_match_objective(objective, params,
                                     [p.grad for p in trained])


def test_sgd_and_adam_follow_their_update_rules():
    w = Variable(np.array([1.0, -2.0]), requires_grad=True)
    w.grad = np.array([0.5, 1.0])
    sgd = SGD(0.1, momentum=0.9)
    sgd.step([w])
    np.testing.assert_allclose(w.data, [0.95, -2.1])
    sgd.step([w])  # velocity 0.9 * v - lr * g
    np.testing.assert_allclose(w.data, [0.95 - 0.095, -2.1 - 0.19])
    v = Variable(np.array([1.0]), requires_grad=True)
    adam = Adam(0.01)
    v.grad = np.array([3.0])
    adam.step([v])  # first Adam step moves by lr * sign(g)
    np.testing.assert_allclose(v.data, [0.99], atol=1e-7)


def test_adam_follows_kingma_and_ba_over_many_steps():
    """Five steps with changing gradients against the textbook algorithm
    (the first step alone is lr * sign(g) whatever the moments do)."""
    lr, beta_1, beta_2, eps = 0.01, 0.8, 0.95, 1e-8
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((5, 3))
    w = Variable(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    adam = Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps)
    expected, m, v = w.data.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        w.grad = g.copy()
        adam.step([w])
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g ** 2
        m_hat, v_hat = m / (1 - beta_1 ** t), v / (1 - beta_2 ** t)
        expected = expected - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(w.data, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("n_instances,outputs", [(1, 3), (2, 4)])
def test_crop_outputs_score_the_claimed_pixels(n_instances, outputs, flip):
    """A crop's strided outputs are the patch scores of pixels ``stride``
    apart, one of them a labelled pixel; targets are those pixels' labels
    (-1 outside the image). Flipped crops are those of the left-right
    mirrored image and labels, around the same labelled pixel."""
    images = _image_set(seed=4, shapes=((9, 12), (14, 7)))
    net = RecurrentNetwork.initialise(TINY, 3, np.random.RandomState(2),
                                      dtype=np.float64)
    side, stride = patch_size(TINY, n_instances), 2 ** n_instances
    rng = np.random.RandomState(1)
    state = rng.get_state()
    n_crops = 10
    crops, targets = sample_crops(images, n_crops, side, stride, outputs, rng,
                                  np.float64, flip=flip)
    assert crops.shape == (n_crops, 3, side + stride * (outputs - 1),
                           side + stride * (outputs - 1))
    assert targets.shape == (n_crops, outputs, outputs)
    with no_grad():
        scores = net.forward(crops, n_instances).data
    replay = np.random.RandomState()
    replay.set_state(state)
    chosen = images.usable[replay.randint(len(images.usable), size=n_crops)]
    outside = mirrored = 0
    for k, index in enumerate(chosen):
        labelled = images.labelled[index]
        flat = labelled[replay.randint(labelled.size)]
        image, labels = images.images[index], images.targets[index]
        row, col = divmod(int(flat), image.shape[1])
        a0, b0 = replay.randint(outputs, size=2)
        if flip and replay.rand() < 0.5:
            mirrored += 1
            image, labels = image[:, ::-1], labels[:, ::-1]
            col = image.shape[1] - 1 - col
        assert targets[k, a0, b0] == labels[row, col] >= 0
        for a in range(outputs):
            for b in range(outputs):
                r, c = row + stride * (a - a0), col + stride * (b - b0)
                if not (0 <= r < image.shape[0] and 0 <= c < image.shape[1]):
                    assert targets[k, a, b] == -1
                    outside += 1
                    continue
                assert targets[k, a, b] == labels[r, c]
                patch = _reference_patch(image, r, c, side)
                with no_grad():
                    single = net.forward(patch[None], n_instances).data
                np.testing.assert_allclose(scores[k, :, a, b],
                                           single[0, :, 0, 0], atol=1e-12)
    assert outside > 0  # the test reached the image borders
    assert (0 < mirrored < n_crops) if flip else mirrored == 0


# ============================================= every instance's loss

RCNN2_SMALL = (("conv", 3, 8), ("pool", 2), ("tanh",), ("conv", 4, 8),
               ("tanh",), ("conv", "classes", 1))


@pytest.mark.parametrize("layers,n_instances,extra",
                         [(RCNN2_SMALL, 3, (3, 10)), (RCNN2_SMALL, 2, (0, 5)),
                          (TINY, 3, (1, 0))])
def test_instance_targets_are_the_centres_of_each_instances_patches(
        layers, n_instances, extra):
    """Output (i, j) of instance q in one pass equals the q-instance
    evaluation of the patch centred on the pixel its target names (each
    frame pixel carries its own index as label, so the target says which
    pixel it is)."""
    net = RecurrentNetwork.initialise(layers, 3, np.random.RandomState(3),
                                      dtype=np.float64)
    stride = 2 ** n_instances
    side = patch_size(layers, n_instances) + stride * 2
    height, width = side + extra[0], side + extra[1]
    rgb = np.random.default_rng(4).standard_normal((2, 3, height, width))
    frames = np.arange(2 * height * width).reshape(2, height, width)
    with no_grad():
        outputs = [o.data for o in net.forward(rgb, n_instances,
                                               return_all=True)]
    targets = instance_targets(frames, layers, n_instances)
    assert len(targets) == n_instances
    rng = np.random.default_rng(5)
    for q, (scores, target) in enumerate(zip(outputs, targets), start=1):
        assert target.shape == (2,) + scores.shape[2:]
        q_side = patch_size(layers, q)
        centre = (q_side - 1) // 2
        corners = [(0, 0), (target.shape[1] - 1, target.shape[2] - 1)]
        picks = corners + [tuple(rng.integers(target.shape[1:]))
                           for _ in range(3)]
        for n in range(2):
            for i, j in picks:
                image, pixel = divmod(int(target[n, i, j]), height * width)
                row, col = divmod(pixel, width)
                assert image == n
                patch = rgb[n:n + 1, :, row - centre:row - centre + q_side,
                            col - centre:col - centre + q_side]
                assert patch.shape[2:] == (q_side, q_side)
                with no_grad():
                    single = net.forward(patch, q).data
                np.testing.assert_allclose(scores[n, :, i, j],
                                           single[0, :, 0, 0], atol=1e-12)


def test_instance_targets_reject_frames_too_small():
    with pytest.raises(ValueError, match=r"label frames of shape \(1, 40, "
                       r"40\) are too small for 3 instances"):
        instance_targets(np.zeros((1, 40, 40), dtype=int), RCNN2_SMALL, 3)


@pytest.mark.parametrize("flip", [False, True])
def test_label_frames_match_the_targets_and_draws(flip):
    """Asking for label frames changes neither the random draws nor the
    inputs, and the frames give back the last instance's targets."""
    images = _image_set(seed=6, shapes=((30, 41), (37, 25)))
    side, stride = patch_size(RCNN2_SMALL, 2), 4
    runs = {}
    for frames in (False, True):
        rng = np.random.RandomState(7)
        crops, out = sample_crops(images, 6, side, stride, 3, rng,
                                  np.float64, flip=flip, frames=frames)
        dense = dense_example(images, 1, side, stride, rng, np.float64,
                              flip=flip, frames=frames)
        runs[frames] = (crops, out, dense, rng.rand())
    crops, targets, (rgb, dense_targets), after = runs[False]
    crops_f, frames, (rgb_f, dense_frames), after_f = runs[True]
    assert after == after_f
    np.testing.assert_array_equal(crops, crops_f)
    np.testing.assert_array_equal(rgb, rgb_f)
    assert frames.shape == (6,) + crops.shape[2:]
    assert dense_frames.shape == (1,) + rgb.shape[2:]
    np.testing.assert_array_equal(
        instance_targets(frames, RCNN2_SMALL, 2)[-1], targets)
    np.testing.assert_array_equal(
        instance_targets(dense_frames, RCNN2_SMALL, 2)[-1], dense_targets)
    # Every label of the image shows up in its frame: only padding is -1.
    labels = images.targets[1]
    assert (dense_frames >= 0).sum() == (labels >= 0).sum()


def test_centre_frames_give_each_instance_the_patch_target():
    targets = np.array([2, 0, 1])
    side = patch_size(RCNN2_SMALL, 3)
    frames = centre_frames(targets, side)
    for per_instance in instance_targets(frames, RCNN2_SMALL, 3):
        known = per_instance >= 0
        assert known.sum(axis=(1, 2)).tolist() == [1, 1, 1]
        np.testing.assert_array_equal(per_instance[known], targets)
        middle = (per_instance.shape[1] - 1) // 2
        np.testing.assert_array_equal(per_instance[:, middle, middle],
                                      targets)


def test_every_instance_loss_is_the_mean_of_separate_instance_losses():
    """The loss and gradient over every instance equal those of separate
    passes with 1, 2 and 3 instances on the same input, each scored on its
    own outputs' targets, averaged (groups weighted by last-instance
    targets)."""
    net = RecurrentNetwork.initialise(RCNN2_SMALL, 3,
                                      np.random.RandomState(8),
                                      dtype=np.float64)
    rng = np.random.default_rng(9)
    side = patch_size(RCNN2_SMALL, 3) + 8
    groups = [(3, rng.standard_normal((2, 3, side, side + 8)),
               rng.integers(-1, 3, (2, side, side + 8))),
              (2, rng.standard_normal((1, 3, 80, 75)),
               rng.integers(-1, 3, (1, 80, 75)))]
    loss, count = accumulate_loss(net, groups, np, every_instance=True)
    grads = [p.grad.copy() for p in net.params]

    expected_loss = 0.0
    expected_grads = [np.zeros_like(g) for g in grads]
    per_group = [instance_targets(frames, RCNN2_SMALL, p)
                 for p, _, frames in groups]
    counts = [int((t[-1] >= 0).sum()) for t in per_group]
    assert count == sum(counts)
    for (p, rgb, _), targets, n in zip(groups, per_group, counts):
        for q in range(1, p + 1):
            single = [(q, rgb, targets[q - 1])]
            for param in net.params:
                param.zero_grad()
            part, _ = accumulate_loss(net, single, np)
            share = n / sum(counts) / p
            expected_loss += share * float(part)
            for e, param in zip(expected_grads, net.params):
                e += share * param.grad
    assert float(loss) == pytest.approx(expected_loss, rel=1e-12)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-14)
