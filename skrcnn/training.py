"""Training examples and weight updates for the recurrent network.

Two ways to turn labelled images into examples, both scoring a pixel with
the patch centred on it (zero padding, the image mean, past the borders):

- :func:`sample_patches` (the paper): patches around random labelled pixels
  of random training images, one target per patch.
- :func:`dense_example` (beyond the paper): a whole image through the
  strided network, with a target at every output position; a random shift
  in ``[0, S)`` per axis makes every pixel reachable. Neighbouring patches
  share their computation, so each labelled output costs a fraction of a
  patch.

Images are kept as the user gave them and standardised on the fly (one mean
and deviation per image), so training never holds a padded float copy of
the whole dataset.

For knowledge distillation an :class:`ImageSet` may also carry soft targets
(a teacher's class probabilities per pixel): every sampler then returns the
soft targets of exactly the positions it returns labels for, and
:func:`accumulate_loss` mixes them into the targets.
"""

import numpy as np

from .architecture import instance_output_size, instance_stride, patch_size
from .autograd import Variable
from .functions import softmax_cross_entropy, weighted_sum
from .preprocessing import (apply_standardization, resample_bilinear,
                            resize_image, resize_labels, scaled_shape,
                            standardization)


class ImageSet:
    """Training images, their class-index targets and labelled pixels.

    Parameters
    ----------
    images : list of ndarray (H, W, 3)
        Not copied and never modified.
    targets : list of ndarray (H, W) of int
        Class indices ``0..N-1``; negative = unknown (never a target).
    soft_targets : list of ndarray (H, W, N), optional
        A class distribution per pixel (a teacher's probabilities, for
        knowledge distillation). When given, the samplers return the soft
        targets of the positions they return hard targets for. Not copied.
    """

    def __init__(self, images, targets, soft_targets=None):
        self.images = images
        self.targets = targets
        self.soft_targets = soft_targets
        # The statistics prediction uses (standardize_image), applied the
        # same way: training sees prediction's pixels, bit for bit.
        self.statistics = [standardization(image) for image in images]
        self.labelled = [np.flatnonzero(t.ravel() >= 0) for t in targets]
        self.usable = np.array([i for i, idx in enumerate(self.labelled)
                                if idx.size])

    def __len__(self):
        return len(self.images)

    def rescaled(self, index, factor):
        """Image ``index`` and its targets resized by ``factor``, as a
        one-image set (its own mean and deviation, as a photograph taken
        at that scale would have).

        The image is interpolated bilinearly (anti-aliased when shrunk),
        the targets by nearest neighbour, both to the same shape, so every
        label stays on the pixels it names. Soft targets are interpolated
        bilinearly too (an interpolated distribution is still one), but
        only at the pixels a sampler asks for (see :class:`_Resized`).
        """
        image, targets = self.images[index], self.targets[index]
        shape = scaled_shape(targets.shape, factor)
        image = resize_image(image, shape)
        targets = resize_labels(targets, shape)
        soft = None
        if self.soft_targets is not None:
            soft = [_Resized(self.soft_targets[index], shape)]
        return ImageSet([image], [targets], soft)

    def soft_at(self, index, rows, cols):
        """Soft targets of pixels ``rows x cols`` (1-D integer arrays inside
        image ``index``), shape (len(rows), len(cols), N)."""
        soft = self.soft_targets[index]
        if isinstance(soft, _Resized):
            return soft.at(rows, cols)
        return soft[np.ix_(rows, cols)]

    def standardized(self, index, dtype=np.float32):
        """Image ``index`` as a standardised (3, H, W) array."""
        scaled = apply_standardization(self.images[index],
                                       self.statistics[index])
        return np.ascontiguousarray(scaled.transpose(2, 0, 1), dtype=dtype)


class _Resized:
    """A soft-target map resized to ``shape``, interpolated bilinearly
    where it is read (with :func:`resize_image`'s pixel-centre mapping,
    without its anti-aliasing): a sampler reads a few dozen of the resized
    pixels, and resizing a whole map of N classes costs several times an
    image's resizing."""

    def __init__(self, source, shape):
        self.source = source
        self.shape = tuple(shape) + source.shape[2:]

    def at(self, rows, cols):
        return resample_bilinear(self.source, rows, cols, self.shape[:2])


def sample_patches(image_set, n_patches, side, random_state,
                   dtype=np.float32, flip=False, scale_range=None):
    """Patches centred on random labelled pixels of random images.

    An image is drawn uniformly among those with a labelled pixel, then one
    of its labelled pixels uniformly. With ``flip``, each patch is then
    mirrored left-right with probability 1/2 (cut from the mirrored image,
    so it stays centred on its pixel whatever the parity of ``side``).
    With ``scale_range=(low, high)``, each patch is cut from its image
    resized by a factor drawn log-uniformly in that range (drawn before
    the pixel; see :meth:`ImageSet.rescaled`).

    Returns
    -------
    patches : ndarray of shape (n_patches, 3, side, side)
    targets : ndarray of shape (n_patches,) of int64
    soft_targets : ndarray of shape (n_patches, N)
        Only when ``image_set`` has soft targets: those of the targets.
    """
    images = image_set.usable[random_state.randint(len(image_set.usable),
                                                   size=n_patches)]
    patches = np.zeros((n_patches, 3, side, side), dtype=dtype)
    targets = np.empty(n_patches, dtype=np.int64)
    soft = _soft_buffer(image_set, (n_patches,), dtype)
    before = (side - 1) // 2
    for k, index in enumerate(images):
        source, index = _source(image_set, index, random_state, scale_range)
        row, col = _random_labelled_pixel(source, index, random_state)
        targets[k] = source.targets[index][row, col]
        if soft is not None:
            soft[k] = source.soft_at(index, [row], [col])[0, 0]
        mirror = flip and random_state.rand() < 0.5
        if mirror:
            col = source.images[index].shape[1] - 1 - col
        _cut(source, index, row - before, col - before, patches[k], mirror)
    return (patches, targets) if soft is None else (patches, targets, soft)


def sample_crops(image_set, n_crops, side, stride, outputs, random_state,
                 dtype=np.float32, flip=False, frames=False,
                 scale_range=None):
    """Crops for a strided pass with ``outputs x outputs`` outputs each.

    Dense sampling on crops: each crop is placed so that one of its output
    positions (drawn uniformly) lands on a random labelled pixel of a random
    image, so every pixel is reachable at every alignment; its targets are
    the pixels ``stride`` apart from there (-1 outside the image). With
    ``flip``, each crop is then taken from the left-right mirrored image
    (and labels) with probability 1/2; with ``scale_range``, from its image
    resized as in :func:`sample_patches`. The random draws do not depend on
    ``frames``.

    Returns
    -------
    crops : ndarray of shape (n_crops, 3, side + stride*(outputs-1), ...)
    targets : ndarray of shape (n_crops, outputs, outputs) of int64
        Or, with ``frames=True``, the label of every crop pixel, shape
        (n_crops, E, E) like the crops (-1 outside the image): see
        :func:`instance_targets`.
    soft_targets : ndarray of shape (n_crops, N, outputs, outputs)
        Only when ``image_set`` has soft targets (and not with ``frames``):
        those of the targets, 0 outside the image.
    """
    if frames and image_set.soft_targets is not None:
        raise ValueError("soft targets are for the last instance's outputs "
                         "only, not for label frames")
    images = image_set.usable[random_state.randint(len(image_set.usable),
                                                   size=n_crops)]
    extent = side + stride * (outputs - 1)
    crops = np.zeros((n_crops, 3, extent, extent), dtype=dtype)
    # Label frames replace the targets (see the Returns section).
    targets = np.full((n_crops, extent, extent) if frames
                      else (n_crops, outputs, outputs), -1, dtype=np.int64)
    soft = _soft_buffer(image_set, (n_crops, outputs, outputs), dtype)
    before = (side - 1) // 2
    for k, index in enumerate(images):
        source, index = _source(image_set, index, random_state, scale_range)
        row, col = _random_labelled_pixel(source, index, random_state)
        a, b = random_state.randint(outputs, size=2)
        labels = source.targets[index]
        mirror = flip and random_state.rand() < 0.5
        if mirror:  # the same pixel, in the mirrored image's coordinates
            labels = labels[:, ::-1]
            col = labels.shape[1] - 1 - col
        top, left = row - stride * a, col - stride * b  # output (0, 0)
        _cut(source, index, top - before, left - before, crops[k], mirror)
        if frames:
            _cut_labels(labels, top - before, left - before, targets[k])
            continue
        rows = top + stride * np.arange(outputs)
        cols = left + stride * np.arange(outputs)
        inside_r = (rows >= 0) & (rows < labels.shape[0])
        inside_c = (cols >= 0) & (cols < labels.shape[1])
        targets[k][np.ix_(inside_r, inside_c)] = labels[
            np.ix_(rows[inside_r], cols[inside_c])]
        if soft is not None:
            width = labels.shape[1]
            unmirrored = (width - 1 - cols if mirror else cols)[inside_c]
            soft[k][np.ix_(inside_r, inside_c)] = source.soft_at(
                index, rows[inside_r], unmirrored)
    if soft is None:
        return crops, targets
    return crops, targets, np.ascontiguousarray(soft.transpose(0, 3, 1, 2))


def _soft_buffer(image_set, shape, dtype):
    """Zeros for the soft targets of ``shape`` positions (classes last),
    or None when ``image_set`` has none."""
    if image_set.soft_targets is None:
        return None
    n_classes = image_set.soft_targets[0].shape[-1]
    return np.zeros(shape + (n_classes,), dtype=dtype)


def draw_scale(random_state, scale_range):
    """A resizing factor, log-uniform in ``scale_range`` (so a range like
    ``(0.8, 1.25)`` shrinks as often as it enlarges)."""
    low, high = scale_range
    return float(np.exp(random_state.uniform(np.log(low), np.log(high))))


def _source(image_set, index, random_state, scale_range):
    """The set and index to take an example of image ``index`` from: the
    image itself, or (with ``scale_range``) a rescaled copy of it. A copy
    shrunk so far that no labelled pixel survives falls back to the
    original."""
    if scale_range is None:
        return image_set, index
    scaled = image_set.rescaled(index, draw_scale(random_state,
                                                  scale_range))
    return (scaled, 0) if scaled.usable.size else (image_set, index)


def _random_labelled_pixel(image_set, index, random_state):
    labelled = image_set.labelled[index]
    flat = labelled[random_state.randint(labelled.size)]
    return divmod(int(flat), image_set.images[index].shape[1])


def _overlap(top, left, window_shape, image_shape):
    """Where a window with top-left corner ``(top, left)`` in image
    coordinates meets the image: ``(image_rows, image_cols),
    (window_rows, window_cols)`` slices, or None if they don't meet."""
    r0, c0 = max(top, 0), max(left, 0)
    r1 = min(top + window_shape[0], image_shape[0])
    c1 = min(left + window_shape[1], image_shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    return ((slice(r0, r1), slice(c0, c1)),
            (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left)))


def _cut(image_set, index, top, left, out, mirror=False):
    """Standardised pixels of image ``index`` (left-right mirrored if
    ``mirror``) whose top-left corner is ``(top, left)`` into ``out``
    (3, h, w); outside the image stays 0."""
    image = image_set.images[index]
    if mirror:
        image = image[:, ::-1]
    overlap = _overlap(top, left, out.shape[1:], image.shape[:2])
    if overlap is None:
        return
    (rows, cols), (out_rows, out_cols) = overlap
    window = apply_standardization(image[rows, cols],
                                   image_set.statistics[index])
    out[:, out_rows, out_cols] = window.transpose(2, 0, 1)


def _cut_labels(labels, top, left, out):
    """``labels`` (already mirrored if need be) whose top-left corner is
    ``(top, left)`` into ``out`` (h, w); outside the image stays as is."""
    overlap = _overlap(top, left, out.shape, labels.shape)
    if overlap is not None:
        (rows, cols), (out_rows, out_cols) = overlap
        out[out_rows, out_cols] = labels[rows, cols]


def centre_frames(targets, side):
    """Label frames of ``side x side`` patches that know only their centre
    pixel's target (-1 elsewhere), for :func:`instance_targets`."""
    frames = np.full((len(targets), side, side), -1, dtype=np.int64)
    centre = (side - 1) // 2
    frames[:, centre, centre] = targets
    return frames


def instance_targets(frames, layers, n_instances):
    """Targets of every instance's outputs in one recurrent pass.

    In a strided pass over an input whose pixel labels are ``frames``,
    output ``(i, j)`` of instance ``q`` scores the ``patch_size(layers, q)``
    patch with top-left corner ``(s**q * i, s**q * j)`` (``s`` the instance
    stride; each instance takes the previous score maps whole), so its
    target is the label of that patch's centre pixel.

    Parameters
    ----------
    frames : ndarray of shape (B, H, W) of int
        Label of every input pixel, -1 where unknown or outside the image.
    layers : tuple of layer specs
    n_instances : int

    Returns
    -------
    list of ndarray of shape (B, rows_q, cols_q)
        For instances 1..n_instances, sized like their score maps.
    """
    stride = instance_stride(layers)
    rows, cols = frames.shape[1:]
    targets = []
    for q in range(1, n_instances + 1):
        rows = instance_output_size(layers, rows)
        cols = instance_output_size(layers, cols)
        if not rows or not cols:
            raise ValueError(f"label frames of shape {frames.shape} are too "
                             f"small for {n_instances} instances")
        centre, step = (patch_size(layers, q) - 1) // 2, stride ** q
        targets.append(np.ascontiguousarray(
            frames[:, centre::step, centre::step][:, :rows, :cols]))
    return targets


def centre_crop(patches, side):
    """The centred ``side x side`` sub-patches (same centre pixel)."""
    full = patches.shape[-1]
    start = (full - 1) // 2 - (side - 1) // 2
    return patches[:, :, start:start + side, start:start + side]


def dense_example(image_set, index, side, stride, random_state,
                  dtype=np.float32, flip=False, frames=False,
                  scale_range=None):
    """A whole image prepared for one strided pass.

    Parameters
    ----------
    side : int
        Patch side of the network pass.
    stride : int
        Its total stride S.
    flip : bool, default=False
        Mirror the image and its labels left-right with probability 1/2
        (drawn after the shift).
    scale_range : (float, float), optional
        Resize the image first, as in :func:`sample_patches` (the factor is
        drawn before the shift).

    Returns
    -------
    rgb : ndarray of shape (1, 3, side + S*(m-1), side + S*(n-1))
        The padded image, shifted by a random ``(dy, dx)`` in ``[0, S)``.
    targets : ndarray of shape (1, m, n)
        The targets of pixels ``(dy + S*a, dx + S*b)`` (of the mirrored
        image when flipped). With ``frames=True``, instead the label of
        every pixel of ``rgb`` (-1 in the padding), shape (1, H', W'): see
        :func:`instance_targets`.
    soft_targets : ndarray of shape (1, N, m, n)
        Only when ``image_set`` has soft targets (and not with ``frames``):
        those of the targets.
    """
    if frames and image_set.soft_targets is not None:
        raise ValueError("soft targets are for the last instance's outputs "
                         "only, not for label frames")
    image_set, index = _source(image_set, index, random_state, scale_range)
    image = image_set.standardized(index, dtype)
    labels = image_set.targets[index]
    _, height, width = image.shape
    dy = random_state.randint(min(stride, height))
    dx = random_state.randint(min(stride, width))
    mirror = flip and random_state.rand() < 0.5
    if mirror:
        image, labels = image[:, :, ::-1], labels[:, ::-1]
    targets = labels[dy::stride, dx::stride]
    rows, cols = targets.shape
    before = (side - 1) // 2
    rgb = np.zeros((1, 3, side + stride * (rows - 1),
                    side + stride * (cols - 1)), dtype=dtype)
    # Image pixel (y, x) sits at (y + before - dy, x + before - dx) in rgb,
    # i.e. rgb is the window whose top-left corner is (dy - before, ...).
    top, left = dy - before, dx - before
    (rows, cols), (out_rows, out_cols) = _overlap(top, left, rgb.shape[2:],
                                                  (height, width))
    rgb[0, :, out_rows, out_cols] = image[:, rows, cols]
    if frames:
        label_frame = np.full(rgb.shape[2:], -1, dtype=np.int64)
        _cut_labels(labels, top, left, label_frame)
        return rgb, label_frame[None]
    targets = np.ascontiguousarray(targets)[None]
    if image_set.soft_targets is None:
        return rgb, targets
    cols = np.arange(dx, width, stride)
    soft = image_set.soft_at(index, np.arange(dy, height, stride),
                             width - 1 - cols if mirror else cols)
    return rgb, targets, np.ascontiguousarray(soft.transpose(2, 0, 1),
                                              dtype=dtype)[None]


def accumulate_loss(network, groups, xp, every_instance=False,
                    class_weight=None, soft_weight=0.5):
    """Forward and backward over example groups that share the weights.

    Parameters
    ----------
    groups : list of (n_instances, rgb, targets[, soft_targets])
        Each group is run with its own number of instances. A group's
        optional ``soft_targets`` (shaped like its last instance's scores,
        or ``(n, N)`` for patches) mix into its targets as in
        :func:`~skrcnn.functions.softmax_cross_entropy`.
    every_instance : bool, default=False
        Train every instance's scores, not only the last's: ``targets`` is
        then each group's label frames (see :func:`instance_targets`) and a
        group's loss is the mean over its instances of their mean losses,
        so the earlier instances learn to label on their own and the later
        ones to correct them (the paper's rCNN1 idea, in one pass).
    class_weight : ndarray of shape (n_classes,), optional
        A weight per class index: each target's loss counts that many
        times, and means become weighted means ``sum(w * nll) / sum(w)``.
    soft_weight : float, default=0.5
        The share of the soft targets in the targets, for groups with some.

    Returns
    -------
    loss : array of shape () or None
        The mean loss over every labelled target of every group (each
        group's mean weighted by the total weight of its labelled targets
        of the last instance: their count without ``class_weight``);
        gradients of that mean are accumulated in the parameters'
        ``.grad``. None when no group has a labelled target.
    count : float
        That total weight of labelled last-instance targets, over all
        groups.
    """
    prepared = []
    for n_instances, rgb, targets, *soft in groups:
        if soft and every_instance:
            raise ValueError("soft targets are for the last instance's "
                             "outputs only, not with every_instance")
        if every_instance:
            per_instance = instance_targets(targets, network.layers,
                                            n_instances)
        elif targets.ndim == 1:  # patches: one 1x1 output each
            per_instance = [targets[:, None, None]]
        else:
            per_instance = [targets]
        if soft and soft[0].ndim == 2:  # patches: one 1x1 output each
            soft = [soft[0][:, :, None, None]]
        prepared.append((n_instances, rgb, per_instance,
                         soft[0] if soft else None))
    counts = [_target_weight(per_instance[-1], class_weight)
              for _, _, per_instance, _ in prepared]
    total = sum(counts) or 1
    weight = (None if class_weight is None else xp.asarray(
        class_weight, dtype=network.params[0].data.dtype))
    loss_sum = None
    for (n_instances, rgb, per_instance, soft), count in zip(prepared,
                                                             counts):
        if count == 0:
            continue
        outputs = network.forward(xp.asarray(rgb), n_instances,
                                  return_all=True)[-len(per_instance):]
        if soft is None:
            losses = [softmax_cross_entropy(scores, xp.asarray(targets),
                                            weight)
                      for scores, targets in zip(outputs, per_instance)]
        else:
            losses = [softmax_cross_entropy(
                outputs[0], xp.asarray(per_instance[0]), weight,
                soft_targets=xp.asarray(soft, dtype=outputs[0].dtype),
                soft_weight=soft_weight)]
        loss = losses[0] if len(losses) == 1 else weighted_sum(
            losses, [1.0 / len(losses)] * len(losses))
        share = count / total
        loss.backward(xp.asarray(share, dtype=loss.dtype))
        part = loss.data * share
        loss_sum = part if loss_sum is None else loss_sum + part
    return loss_sum, sum(counts)


def _target_weight(targets, class_weight):
    """Number of labelled targets, or their total class weight."""
    known = targets[targets >= 0]
    if class_weight is None:
        return int(known.size)
    return float(np.asarray(class_weight)[known].sum())


class SGD:
    """Stochastic gradient descent with (optional) momentum.

    Parameters
    ----------
    learning_rate : float
    momentum : float
    """

    def __init__(self, learning_rate, momentum=0.0):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.state = None

    def step(self, params):
        if self.momentum == 0:
            for p in params:
                p.data -= self.learning_rate * p.grad
            return
        if self.state is None:
            self.state = [p.data * 0 for p in params]
        for p, velocity in zip(params, self.state):
            velocity *= self.momentum
            velocity -= self.learning_rate * p.grad
            p.data += velocity


class Adam:
    """Adam (Kingma & Ba) with the usual defaults for beta_1, beta_2, eps."""

    def __init__(self, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.state = None

    def step(self, params):
        if self.state is None:
            self.state = {"t": 0, "m": [p.data * 0 for p in params],
                          "v": [p.data * 0 for p in params]}
        state = self.state
        state["t"] += 1
        t = state["t"]
        # Bias corrections folded into the step size, as in the paper.
        step = self.learning_rate * np.sqrt(1 - self.beta_2 ** t) / (
            1 - self.beta_1 ** t)
        for p, m, v in zip(params, state["m"], state["v"]):
            m *= self.beta_1
            m += (1 - self.beta_1) * p.grad
            v *= self.beta_2
            v += (1 - self.beta_2) * p.grad * p.grad
            p.data -= float(step) * m / (v ** 0.5 + self.epsilon)


SOLVERS = {"sgd": SGD, "adam": Adam}


class WeightAverage:
    """Exponential moving average of the weights over the updates.

    After update ``n`` the average is ``sum_k (1 - d) d**(n - k) w_k``
    over the weights ``w_1..w_n`` reached by updates ``1..n``, divided by
    ``1 - d**n`` so that its weights sum to 1 from the first update (no
    pull towards the initial weights, as in Adam's bias correction).

    Parameters
    ----------
    decay : float in (0, 1)
        ``d``: the average spans about ``1 / (1 - d)`` updates.
    sums : list of arrays, optional
        The uncorrected sums of an earlier run, to go on from.
    count : int, default=0
        Updates those sums cover.
    """

    def __init__(self, decay, sums=None, count=0):
        self.decay = decay
        self.sums = sums
        self.count = count

    def update(self, params):
        """Fold in the weights ``params`` (Variables) just reached."""
        decay = self.decay
        if self.sums is None:
            self.sums = [p.data * 0 for p in params]
        # New arrays, swapped in with the count: a Ctrl-C mid-update leaves
        # the previous average whole.
        sums = [decay * total + (1 - decay) * p.data
                for total, p in zip(self.sums, params)]
        self.sums, self.count = sums, self.count + 1

    def weights(self):
        """The averaged weights (new arrays), or None before any update."""
        if not self.count:
            return None
        correction = 1 - self.decay ** self.count
        return [total / correction for total in self.sums]


def zero_grads(params):
    """Forget the gradients of the last step."""
    for p in params:
        p.zero_grad()


def make_params(arrays, xp, dtype):
    """Trainable Variables on ``xp`` from NumPy arrays (always copies)."""
    return [Variable(xp.array(a, dtype=dtype), requires_grad=True)
            for a in arrays]
