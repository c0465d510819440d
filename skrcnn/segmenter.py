"""The scikit-learn estimator: :class:`RecurrentCNNSegmenter`."""

import copy
import inspect
import math
import numbers
import sys
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state

from ._allocator import retain_freed_memory
from ._parallel import parallel_cpu
from ._validation import (check_bool, check_choice, check_class_weight_spec,
                          check_classes, check_images, check_label_maps,
                          check_positive_int, check_real, check_scale_range,
                          check_teacher_proba, check_test_time_scales,
                          resolve_class_weight)
from .architecture import (CLASSES, _positive_int, instance_stride,
                           patch_size, resolve_layers)
from .autograd import Variable
from .backend import array_module, gpu_available, resolve_device, to_numpy
from .inference import (INFERENCE_METHODS, image_scores, minimum_pass_bytes,
                        softmax, upsample)
from .network import RecurrentNetwork
from .preprocessing import (resize_image, scaled_shape,
                            standardize_image)
from .superpixels import check_superpixels, segment_means_chw, segments_of
from .training import (SOLVERS, ImageSet, accumulate_loss, centre_crop,
                       centre_frames, dense_example, make_params,
                       WeightAverage, sample_crops, sample_patches,
                       zero_grads)

SAMPLINGS = ("dense", "patch")
SCHEDULES = ("staged", "random", "fixed")
INSTANCE_LOSSES = ("last", "all")
DTYPE = np.float32


class RecurrentCNNSegmenter(BaseEstimator):
    """Recurrent convolutional scene parser (Pinheiro & Collobert).

    One convolutional network is applied ``n_instances`` times with shared
    weights; each instance sees the previous instance's class scores beside
    the RGB image downscaled to the same grid, so context grows with the
    number of instances while the number of weights does not.

    The training defaults (dense sampling on batches of 16 crops of 8x8
    strided outputs, Adam at 1e-3) were the fastest to a given test
    accuracy among those measured by ``benchmarks/sampling.py`` on the
    canonical Stanford fold (2 instances, 1200 CPU seconds each; measured
    2026-12-02, benchmarks/RESULTS.md): 8x8-output crops reached 57.6%
    test pixel accuracy in 188 CPU seconds and 61.9% in 547, the paper's
    patch sampling in 242 and 1026, whole-image dense sampling (one image a
    step) in 639 and (one epoch past the budget) 1257; the best levels
    reached within the budget were 64.9%, 62.2% and 60.7%.

    Parameters
    ----------
    architecture : {"rcnn2", "rcnn1", "plain"} or tuple of layer specs, \
            default="rcnn2"
        The instance network: a preset of the paper or layers such as
        ``(("conv", 25, 8), ("pool", 2), ("tanh",), ("conv", "classes", 1))``
        (see :mod:`skrcnn.architecture`).
    hidden_sizes : tuple of int, optional
        Output channels of the hidden convolutions, replacing the preset's
        (rcnn2: ``(25, 50)``).
    n_instances : int, default=3
        Number of recurrent instances P used to predict.
    instance_schedule : {"staged", "random", "fixed"}, default="staged"
        How many instances run in training. ``"staged"`` (the paper's
        rCNN2): the first ``max_iter // 2`` epochs with P - 1 instances,
        then P (counting the epochs of earlier ``warm_start`` fits and
        ``partial_fit`` calls; once P instances were trained, training
        stays at P). ``"random"`` (the paper's rCNN1): 1..P drawn per example
        (with dense sampling, one draw per step: per batch of crops, or per
        image). ``"fixed"``: always P.
    instance_loss : {"last", "all"}, default="last"
        Which instances' scores the training loss covers. ``"last"`` (the
        paper): only the final instance's. ``"all"``: the mean of every
        instance's mean loss, each instance's outputs scored against the
        labels of their own patch centres (with dense sampling the earlier
        instances have far more outputs than the last, at no extra
        network work). Every instance then labels the scene on its own
        and the next one corrects it, as the paper's rCNN1 training
        intends, in one pass.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the training loss (a weighted mean over
        labelled pixels). None (the paper): every pixel counts the same,
        which favours pixel accuracy. ``"balanced"``: each class weighs
        ``n_pixels / (n_classes * its_pixels)`` over the labelled pixels of
        ``y`` given to ``fit``, trading pixel accuracy for average
        per-class accuracy (rare classes are learnt). A dict ``{label:
        weight}`` sets chosen weights (others 1; labels absent from ``y``
        are ignored when every class of ``y`` has one); ``partial_fit`` takes
        only None or a dict, since balanced weights would change with
        every call's images. The validation score of early stopping is
        pixel accuracy either way.
    sampling : {"dense", "patch"}, default="dense"
        ``"patch"`` is the paper's training on patches around random
        labelled pixels; ``"dense"`` sends crops (see ``crop_size``) or
        whole images through the strided network and takes the loss at
        every labelled output: the same per-pixel loss with the work of
        overlapping patches shared.
    crop_size : int or None, default=8
        With ``sampling="dense"``: train on ``batch_size`` random crops a
        step, each giving ``crop_size x crop_size`` strided outputs (placed
        so one output falls on a random labelled pixel), and count
        ``patches_per_epoch`` crops as an epoch. None: whole images, one a
        step, each with a random shift in ``[0, S)`` per axis, and every
        training image once an epoch.
    solver : {"adam", "sgd"}, default="adam"
    learning_rate : float, default=1e-3
        Adam's (or SGD's) step size. For rcnn2 trained for half an hour or
        more on Stanford Background, 3e-4 measured better (74.0% against
        72.1% pixel accuracy after 30 minutes, benchmarks/RESULTS.md).
    momentum : float, default=0.9
        Momentum of ``solver="sgd"``.
    weight_averaging : float in (0, 1), optional
        Predict with an exponential moving average of the weights over the
        updates, with this decay per update (e.g. 0.999: about the last
        1000 updates count), instead of the last update's weights (Polyak
        averaging; scikit-learn's ``SGDClassifier(average=...)`` does the
        same for linear models). Training itself follows the unaveraged
        weights; ``warm_start`` and ``partial_fit`` go on from them and
        from the average. Early stopping scores (and restores) the
        average. Changing the decay starts a new average. None (the
        paper): the last weights.
    batch_size : int, default=16
        Patches (``sampling="patch"``) or crops (``sampling="dense"`` with
        a ``crop_size``) per step.
    patches_per_epoch : int, default=4096
        Patches (or crops, see ``crop_size``) making one epoch.
    max_iter : int, default=10
        Epochs: ``patches_per_epoch`` patches or crops each, or passes over
        the training images (dense sampling with ``crop_size=None``).
    horizontal_flip : bool, default=False
        Augment the training data: mirror each patch, crop or image
        left-right (with its labels) with probability 1/2. Scenes are
        left-right symmetric in distribution, so this doubles the data the
        network sees without changing what it should learn.
    scale_range : (float, float), optional
        Augment the training data by scale: before each crop, patch or
        whole image is taken, its image is resized (bilinear, labels by
        nearest neighbour) by a factor drawn log-uniformly in
        ``(low, high)``, e.g. ``(0.8, 1.25)``. The paper trains without
        such distortions and notes they are known to improve generalisation
        by a few points. None: no resizing.
    distillation_weight : float in [0, 1], default=0.5
        When ``fit`` or ``partial_fit`` is given ``teacher_proba`` (another
        model's class probabilities for the training images, e.g. those of
        a plain network: knowledge distillation, not in the paper), the
        target of every labelled pixel becomes ``(1 - distillation_weight)
        * onehot(label) + distillation_weight * teacher_proba``: the
        teacher's share. Unused without ``teacher_proba``.
    output_resolution : float, default=1.0
        ``1/k`` labels every k-th pixel per axis and interpolates the class
        probabilities in between (the paper's Table 5 trade-off).
    inference : {"dense", "shift"}, default="dense"
        ``"shift"`` is the paper's shift-and-stitch (S x S strided passes
        at full resolution); ``"dense"`` gives the same scores in one
        dilated pass.
    test_time_flip : bool, default=False
        Also label the left-right mirror of each image and average the two
        class probability maps (the mirror's flipped back): labellings
        become exactly mirror-symmetric and a little more accurate (+0.3-0.4
        points of pixel accuracy for rcnn2 on Stanford Background,
        benchmarks/RESULTS.md), for twice the prediction time. The paper:
        False.
    test_time_scales : sequence of float, optional
        Label each image resized by each of these factors (bilinear,
        anti-aliased when shrinking; standardised again) and average the
        class probability maps, each interpolated back to the image's size;
        the image at its own size counts only when 1 is in the list,
        e.g. ``(0.75, 1, 1.25)``: a little more accurate
        (benchmarks/RESULTS.md), for the sum of the factors squared times
        the prediction time. Combines with
        ``test_time_flip`` (every scale is mirrored too). None: the image
        at its own size only, as in the paper.
    superpixels : {None, "felzenszwalb"} or callable, default=None
        None (the paper): each pixel keeps its own class probabilities.
        ``"felzenszwalb"``: they are averaged over Felzenszwalb-Huttenlocher
        segments of the image at three scales
        (:func:`skrcnn.superpixels.felzenszwalb_segmentations`, about 0.3 s
        per 320 x 240 image), so each segment is labelled as a whole:
        +1.4 points of pixel and +1.2 of average per-class accuracy for
        rcnn2 over the 5 Stanford Background folds
        (benchmarks/RESULTS.md). A callable ``image -> (H, W) integer
        segment map`` (or a list of them) uses your own segments. Applied
        after the test-time averaging; not in the paper, whose point is a
        labelling without superpixels.
    device : {"auto", "cpu", "gpu"}, default="auto"
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training images (split by
        image) and stop when their pixel accuracy (on every
        ``stride ** n_instances``-th pixel of each side, one strided pass an
        image: an unbiased sample) stops improving; the best weights are
        restored. Only epochs with all ``n_instances`` instances count (not
        the first stage of the staged schedule). A ``warm_start`` fit on as
        many images holds out the same ones and keeps the best weights
        across fits: the
        fitted weights, scored again as this fit scores, compete with the
        new epochs. ``partial_fit`` (and a fit without early stopping)
        trains on every image, so the next early-stopping fit draws a new
        split.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
        Epochs without an improvement of at least ``tol`` (validation score,
        or training loss without early stopping) before stopping.
    tol : float, default=1e-4
    warm_start : bool, default=False
        Continue from the fitted weights on the next ``fit``.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, sampling and the validation split: the same seed on
        the same device, with the same number of CPU threads and the same
        L2 cache size (which fix how the work is cut, and so the order of
        floating-point sums), gives the same model, bit for bit. A
        RandomState instance is copied by ``fit``, not advanced: fitting
        twice gives the same model (as a seed does).
    verbose : int, default=0
        Print one line per epoch (loss, validation score, elapsed time).
    max_inference_bytes : int, default=805306368
        Estimated activation memory of one inference pass before it is cut
        into bands of rows (results are the same). A labelling that would
        need more even in the thinnest bands (the padded image and one
        output row's activations; e.g. many instances of a network with a
        large stride, whose context patch is thousands of pixels wide) is
        refused with a ValueError before any work. An estimate, not a cap:
        the peak can be a few times this on small budgets, and the
        convolutions' own temporaries (at most 512 MiB over all threads,
        kept for reuse between calls) come on top. Every band recomputes
        the context of the rows at its edges, so a larger budget is
        faster on large images: one 900x1200 image with rcnn2 and 3
        instances, in a fresh process, took 13.0 / 9.0 / 6.7 s at 256 MiB
        / the default / 2 GiB, its peak memory 0.8 / 1.35 / 1.5 GB above
        the process's (warm, 768 MiB in two bands against 2 GiB in one:
        6.8 against 5.7 s). A band that runs out of memory anyway (on a
        GPU shared with other programs, say) is computed again in bands
        half as tall, with a warning.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Sorted non-negative labels seen in training.
    n_classes_ : int
    class_weight_ : ndarray of shape (n_classes,) or None
        The loss weight of each class in ``classes_`` used by the last
        ``fit`` or ``partial_fit`` (None without ``class_weight``).
    layers_ : tuple
        The instance network's layer specs.
    patch_size_ : int
        Side of the context patch of one prediction with ``n_instances``.
    coefs_ : list of ndarray
        Convolution weights (out, in, k, k), NumPy: the averaged ones with
        ``weight_averaging``.
    intercepts_ : list of ndarray
        Convolution biases, NumPy (averaged likewise).
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float or None
        Validation pixel accuracy per epoch (early stopping only; on the
        pixels of one strided pass, see ``early_stopping``). Epochs of
        ``partial_fit`` have none; an epoch whose scoring Ctrl-C
        interrupted has NaN.
    best_validation_score_ : float or None
        The validation score of the fitted weights (the best of the final
        stage), None when the last training ran without early stopping.
    n_iter_ : int
        Epochs run.
    t_ : int
        Weight updates made.

    Examples
    --------
    >>> from skrcnn import RecurrentCNNSegmenter
    >>> from skrcnn.datasets import make_scenes
    >>> X, y = make_scenes(40, random_state=0, return_X_y=True)
    >>> model = RecurrentCNNSegmenter(max_iter=2, patches_per_epoch=64,
    ...                               random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2, 64, 64)
    """

    def __init__(self, architecture="rcnn2", hidden_sizes=None, n_instances=3,
                 instance_schedule="staged", instance_loss="last",
                 class_weight=None, sampling="dense", crop_size=8,
                 solver="adam", learning_rate=1e-3, momentum=0.9,
                 batch_size=16, patches_per_epoch=4096, max_iter=10,
                 horizontal_flip=False, scale_range=None,
                 distillation_weight=0.5, output_resolution=1.0,
                 inference="dense", test_time_flip=False,
                 test_time_scales=None, superpixels=None, device="auto",
                 early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=5, tol=1e-4,
                 warm_start=False, random_state=None, verbose=0,
                 max_inference_bytes=768 * 2 ** 20, weight_averaging=None):
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.n_instances = n_instances
        self.instance_schedule = instance_schedule
        self.instance_loss = instance_loss
        self.class_weight = class_weight
        self.sampling = sampling
        self.crop_size = crop_size
        self.solver = solver
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_averaging = weight_averaging
        self.batch_size = batch_size
        self.patches_per_epoch = patches_per_epoch
        self.max_iter = max_iter
        self.horizontal_flip = horizontal_flip
        self.scale_range = scale_range
        self.distillation_weight = distillation_weight
        self.output_resolution = output_resolution
        self.inference = inference
        self.test_time_flip = test_time_flip
        self.test_time_scales = test_time_scales
        self.superpixels = superpixels
        self.device = device
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.max_inference_bytes = max_inference_bytes

    # ------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------
    def _layers(self):
        layers = resolve_layers(self.architecture)
        if self.hidden_sizes is None:
            return layers
        hidden = [i for i, layer in enumerate(layers)
                  if layer[0] == "conv" and layer[1] != CLASSES]
        sizes = self.hidden_sizes
        if (not isinstance(sizes, (tuple, list)) or len(sizes) != len(hidden)
                or not all(_positive_int(s) for s in sizes)):
            raise ValueError(
                f"hidden_sizes must be {len(hidden)} positive integers (one "
                f"per hidden convolution of {self.architecture!r}), got "
                f"{sizes!r}")
        layers = list(layers)
        for index, size in zip(hidden, sizes):
            layers[index] = ("conv", int(size), layers[index][2])
        return tuple(layers)

    def _check_params(self):
        check_positive_int("n_instances", self.n_instances)
        check_choice("instance_schedule", self.instance_schedule, SCHEDULES)
        check_choice("instance_loss", self.instance_loss, INSTANCE_LOSSES)
        check_class_weight_spec(self.class_weight)
        check_choice("sampling", self.sampling, SAMPLINGS)
        if self.crop_size is not None:
            check_positive_int("crop_size", self.crop_size)
        check_choice("solver", self.solver, tuple(SOLVERS))
        check_real("learning_rate", self.learning_rate, 0, low_open=True)
        check_real("momentum", self.momentum, 0, 1, high_open=True)
        if self.weight_averaging is not None:
            check_real("weight_averaging", self.weight_averaging, 0, 1,
                       low_open=True, high_open=True)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("patches_per_epoch", self.patches_per_epoch)
        check_positive_int("max_iter", self.max_iter)
        for name in ("horizontal_flip", "early_stopping", "warm_start"):
            check_bool(name, getattr(self, name))
        check_scale_range(self.scale_range)
        check_real("distillation_weight", self.distillation_weight, 0, 1)
        check_real("validation_fraction", self.validation_fraction, 0, 1,
                   low_open=True, high_open=True)
        check_positive_int("n_iter_no_change", self.n_iter_no_change)
        check_real("tol", self.tol, 0)
        if not isinstance(self.verbose, (bool, numbers.Integral)) or \
                self.verbose < 0:
            raise ValueError(f"verbose must be a non-negative integer, got "
                             f"{self.verbose!r}")
        self._check_inference_params()
        return self._layers()

    def _check_inference_params(self):
        """Check the prediction parameters; return the output step and the
        test-time scales."""
        check_choice("inference", self.inference, INFERENCE_METHODS)
        check_bool("test_time_flip", self.test_time_flip)
        scales = check_test_time_scales(self.test_time_scales)
        check_superpixels(self.superpixels)
        check_positive_int("max_inference_bytes", self.max_inference_bytes)
        return _resolution_step(self.output_resolution), scales

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------
    def fit(self, X, y, teacher_proba=None):
        """Train on labelled images.

        Parameters
        ----------
        X : sequence of (H, W, 3) images or ndarray (n, H, W, 3)
            uint8 or float RGB; sizes may differ, each side at least the
            network's total stride to the power ``n_instances`` (8 for
            rcnn2 with 3 instances, 16 for plain with 1).
        y : sequence of (H, W) int label maps or ndarray (n, H, W)
            Negative labels are unknown and ignored.
        teacher_proba : sequence of (H, W, n_classes) arrays, optional
            Class probabilities of another model for these images (in the
            order of the sorted labels of ``y``), e.g.
            ``teacher.predict_proba(X)``: mixed into the targets by
            ``distillation_weight`` (knowledge distillation). Only the last
            instance's scores are trained on them
            (``instance_loss="last"``). Not copied; float16 halves their
            memory.

        Returns
        -------
        self
        """
        layers = self._check_params()
        reset = not (self.warm_start and hasattr(self, "coefs_"))
        if not reset:
            self._check_same_architecture(layers)
        images, targets, classes = self._validate_data(X, y, layers, reset)
        soft = self._validate_teacher_proba(teacher_proba, images, classes)
        class_weight = resolve_class_weight(self.class_weight, classes,
                                            targets)
        state = self._start(layers, classes, reset, class_weight)
        train, validation = self._split(images, targets, state, soft, reset)
        with retain_freed_memory(), parallel_cpu():
            self._run(state, train, validation, self.max_iter)
        return self

    def partial_fit(self, X, y, classes=None, teacher_proba=None):
        """One more epoch on the given images.

        Parameters
        ----------
        X, y : see :meth:`fit`
        classes : array-like of int, optional
            Every label of the problem; needed on the first call when the
            first ``y`` does not show them all. Must match ``classes_``
            afterwards.
        teacher_proba : see :meth:`fit`

        Returns
        -------
        self
        """
        layers = self._check_params()
        if isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: "
                "the weights would change with every call's images. Pass a "
                "dict instead, e.g. from sklearn.utils.class_weight."
                "compute_class_weight('balanced', classes=..., y=...) on the "
                "labelled pixels of the whole training set")
        first = not hasattr(self, "coefs_")
        if not first:
            self._check_same_architecture(layers)
        if classes is not None:
            classes = check_classes(classes)
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes.tolist()} differs from "
                                 f"the fitted classes_="
                                 f"{self.classes_.tolist()}")
        images, targets, classes = self._validate_data(
            X, y, layers, first, classes if first else self.classes_)
        soft = self._validate_teacher_proba(teacher_proba, images, classes)
        class_weight = resolve_class_weight(self.class_weight, classes,
                                            targets)
        state = self._start(layers, classes, first, class_weight)
        with retain_freed_memory(), parallel_cpu():
            self._run(state, ImageSet(images, targets, soft), None, 1)
        return self

    def _validate_teacher_proba(self, teacher_proba, images, classes):
        if teacher_proba is None:
            return None
        if self.instance_loss != "last":
            raise ValueError("teacher_proba trains the last instance's "
                             "scores only; use instance_loss='last', got "
                             f"instance_loss={self.instance_loss!r}")
        return check_teacher_proba(teacher_proba, images, len(classes))

    def _validate_data(self, X, y, layers, reset, classes=None):
        stride = instance_stride(layers)
        reason = (f"the total stride of n_instances={self.n_instances} "
                  f"instances, {stride} ** {self.n_instances}")
        if self.n_instances > 1 and stride ** self.n_instances > 1024:
            reason += ("; a network with this much pooling is meant for "
                       "n_instances=1, as the paper's plain network")
        images, _ = check_images(X, min_size=stride ** self.n_instances,
                                 min_size_reason=reason)
        label_maps = check_label_maps(y, images)
        if not any((labels >= 0).any() for labels in label_maps):
            raise ValueError("y: every label is negative (unknown); at "
                             "least one labelled pixel is needed")
        if classes is None:
            if reset:
                classes = np.unique(np.concatenate(
                    [np.unique(labels[labels >= 0]) for labels in label_maps]))
            else:
                classes = self.classes_
        targets = []
        for index, labels in enumerate(label_maps):
            known = labels >= 0
            found = np.unique(labels[known])
            unknown = np.setdiff1d(found, classes)
            if unknown.size:
                raise ValueError(f"y[{index}] holds labels "
                                 f"{unknown.tolist()} that are not in "
                                 f"classes_ {classes.tolist()}")
            mapped = np.full(labels.shape, -1, dtype=np.int64)
            mapped[known] = np.searchsorted(classes, labels[known])
            targets.append(mapped)
        return images, targets, classes

    def _start(self, layers, classes, reset, class_weight):
        """Training state: a private copy of everything a run changes, so a
        failed call leaves the fitted model as it was."""
        device = resolve_device(self.device)
        xp = array_module(device)
        if reset:
            random_state = check_random_state(self.random_state)
            if isinstance(self.random_state, np.random.RandomState):
                random_state = copy.deepcopy(random_state)
            network = RecurrentNetwork.initialise(layers, len(classes),
                                                  random_state, xp, DTYPE)
            history = _History()
            solver_state = None
        else:
            self._check_same_architecture(layers)
            random_state = copy.deepcopy(self._random_state)
            # Training goes on from the unaveraged weights, when coefs_
            # holds an average of them.
            weights = getattr(self, "_training_weights", None)
            network = RecurrentNetwork(layers, len(classes), make_params(
                weights if weights is not None else
                _interleave(self.coefs_, self.intercepts_), xp, DTYPE))
            # Models saved before the largest instance count was recorded
            # load with 0: their schedule goes on by epoch count, as before.
            history = _History(self.loss_curve_, self.validation_scores_,
                               self.best_validation_score_,
                               self.n_iter_, self.t_,
                               getattr(self, "_max_instances_trained", 0))
            solver_state = self._solver_state
        solver = SOLVERS[self.solver](self.learning_rate)
        if self.solver == "sgd":
            solver.momentum = self.momentum
        if solver_state is not None and solver_state[0] == self.solver:
            # Copies: the solver updates its moments in place, and the fitted
            # state may be read-only (joblib.load(mmap_mode="r")).
            solver.state = _map_arrays(solver_state[1], xp.array)
        return _State(device, xp, network, solver, random_state, history,
                      classes, class_weight,
                      self._weight_average(reset, xp),
                      None if reset else getattr(self, "_validation_split",
                                                 None))

    def _check_same_architecture(self, layers):
        if tuple(self.layers_) != tuple(layers):
            raise ValueError(
                f"the architecture changed since the model was fitted "
                f"({self.layers_} -> {layers}); fit without warm_start")

    def _weight_average(self, reset, xp):
        """The running average of this run: None without
        ``weight_averaging``; the fitted one (copied) when training goes on
        with the same decay; else a new one."""
        if self.weight_averaging is None:
            return None
        decay = float(self.weight_averaging)
        saved = None if reset else getattr(self, "_averaged", None)
        if saved is None or saved[0] != decay:
            return WeightAverage(decay)
        return WeightAverage(decay, [xp.array(a) for a in saved[1]],
                             saved[2])

    def _split(self, images, targets, state, soft=None, reset=True):
        """Training and held-out images. A warm-started fit on as many
        images holds out the same ones as the fit it continues (so training
        goes on as one run, and the best validation score stays comparable);
        a new split forgets the earlier best score."""
        if not self.early_stopping:
            return ImageSet(images, targets, soft), None
        usable = [i for i, t in enumerate(targets) if (t >= 0).any()]
        if len(usable) < 2:
            raise ValueError("early_stopping needs at least 2 images with "
                             f"labelled pixels, got {len(usable)}")
        saved = None if reset else getattr(self, "_validation_split", None)
        if (saved is not None and saved[0] == len(images)
                and saved[1] == self.validation_fraction):
            val = list(saved[2])
        else:
            n_val = min(len(usable) - 1, max(1, int(round(
                self.validation_fraction * len(usable)))))
            order = state.random_state.permutation(len(usable))
            val = sorted(usable[i] for i in order[:n_val])
            state.history.best_validation_score = None
        state.validation_split = (len(images), self.validation_fraction,
                                  tuple(val))
        train = sorted(set(range(len(images))) - set(val))
        pick = lambda seq, idx: [seq[i] for i in idx]  # noqa: E731
        return (ImageSet(pick(images, train), pick(targets, train),
                         None if soft is None else pick(soft, train)),
                ImageSet(pick(images, val), pick(targets, val)))

    def _run(self, state, train, validation, n_epochs):
        history, start = state.history, time.perf_counter()
        no_improvement, best_params = 0, None
        best_loss = min(history.loss_curve, default=np.inf)
        converged = False
        try:
            if validation is not None and \
                    history.best_validation_score is not None:
                # Going on from a fit that kept its best weights: they are
                # the ones to come back to unless this run beats them. They
                # are scored again, as this fit scores (n_instances or
                # weight_averaging may have changed since).
                history.best_validation_score = self._validation_score(
                    state, validation)
                best_params = _snapshot(state)
            for _ in range(n_epochs):
                n_used = self._instances_this_epoch(history)
                loss = self._epoch(state, train, n_used)
                history.loss_curve.append(loss)
                history.n_iter += 1
                history.max_instances = max(history.max_instances, n_used)
                line = f"Iteration {history.n_iter}, loss = {loss:.5f}"
                final_stage = n_used == self.n_instances
                if validation is not None:
                    try:
                        score = self._validation_score(state, validation)
                    except KeyboardInterrupt:
                        # One score per epoch, even for the one not scored.
                        history.validation_scores.append(float("nan"))
                        raise
                    history.validation_scores.append(score)
                    line += f", validation pixel accuracy = {score:.4f}"
                    best = history.best_validation_score
                    if final_stage and (best is None or score > best + self.tol):
                        history.best_validation_score = score
                        best_params = _snapshot(state)
                        no_improvement = 0
                    elif final_stage:
                        no_improvement += 1
                elif final_stage:
                    if loss > best_loss - self.tol:
                        no_improvement += 1
                    else:
                        no_improvement = 0
                    best_loss = min(best_loss, loss)
                if self.verbose:
                    elapsed = time.perf_counter() - start
                    print(f"{line}, {elapsed:.1f} s", file=sys.stdout,
                          flush=True)
                # A one-epoch run (partial_fit) has nothing left to stop.
                if no_improvement >= self.n_iter_no_change and n_epochs > 1:
                    converged = True
                    if self.verbose:
                        print(f"No improvement of at least tol={self.tol} "
                              f"for {self.n_iter_no_change} epochs: "
                              "stopping.", flush=True)
                    break
        except KeyboardInterrupt:
            kept = ("the weights reached so far" if best_params is None else
                    "the weights of its best validation score")
            warnings.warn(f"training interrupted after {history.n_iter} "
                          f"epochs; the model keeps {kept}", UserWarning,
                          stacklevel=3)
            converged = True
        if best_params is not None:
            _restore(state, best_params)
        if validation is None:
            # Trained without held-out images (partial_fit, or a fit without
            # early stopping): an earlier best score no longer describes the
            # weights, and its held-out images may have been trained on.
            history.best_validation_score = None
            state.validation_split = None
        if not converged and n_epochs > 1:
            advice = ("raise max_iter or n_iter_no_change"
                      if self.early_stopping else
                      "raise max_iter or use early_stopping")
            warnings.warn(f"stochastic training reached max_iter="
                          f"{self.max_iter} epochs before converging; "
                          f"{advice}", ConvergenceWarning, stacklevel=3)
        self._commit(state)

    def _instances_this_epoch(self, history):
        P = self.n_instances
        # Training that goes on (warm_start, partial_fit) after P instances
        # were trained never drops back to the P - 1 stage.
        if self.instance_schedule == "staged" and P > 1 and \
                history.max_instances < P and \
                history.n_iter < self.max_iter // 2:
            return P - 1
        return P

    def _epoch(self, state, train, n_used):
        network, xp, rng = state.network, state.xp, state.random_state
        layers, stride = network.layers, network.stride
        random_count = self.instance_schedule == "random"
        # Label frames instead of last-instance targets when every
        # instance is trained (the random draws are the same either way).
        frames = self.instance_loss == "all"
        loss_sum, weight_sum = None, 0
        whole_images = self.sampling == "dense" and self.crop_size is None
        if whole_images:
            steps = [[i] for i in rng.permutation(train.usable)]
        else:
            n_steps = math.ceil(self.patches_per_epoch / self.batch_size)
            steps = [min(self.batch_size,
                         self.patches_per_epoch - k * self.batch_size)
                     for k in range(n_steps)]
        for step in steps:
            if self.sampling == "dense":
                p = rng.randint(1, n_used + 1) if random_count else n_used
                # (rgb, targets) or, with a teacher, (rgb, targets, soft).
                if whole_images:
                    example = dense_example(
                        train, step[0], patch_size(layers, p), stride ** p,
                        rng, DTYPE, flip=self.horizontal_flip, frames=frames,
                        scale_range=self.scale_range)
                else:
                    example = sample_crops(
                        train, step, patch_size(layers, p), stride ** p,
                        self.crop_size, rng, DTYPE,
                        flip=self.horizontal_flip, frames=frames,
                        scale_range=self.scale_range)
                groups = [(p, *example)]
            else:
                side = patch_size(layers, n_used)
                patches, *labels = sample_patches(
                    train, step, side, rng, DTYPE, flip=self.horizontal_flip,
                    scale_range=self.scale_range)
                if random_count:
                    counts = rng.randint(1, n_used + 1, size=step)
                    groups = [(p, centre_crop(patches[counts == p],
                                              patch_size(layers, p)),
                               *(a[counts == p] for a in labels))
                              for p in range(1, n_used + 1)
                              if (counts == p).any()]
                else:
                    groups = [(n_used, patches, *labels)]
                if frames:
                    groups = [(p, rgb, centre_frames(t, rgb.shape[-1]))
                              for p, rgb, t in groups]
            zero_grads(network.params)
            loss, count = accumulate_loss(
                network, groups, xp, every_instance=frames,
                class_weight=state.class_weight,
                soft_weight=self.distillation_weight)
            if loss is None:
                continue
            state.solver.step(network.params)
            if state.average is not None:
                state.average.update(network.params)
            state.history.t += 1
            part = loss * count
            loss_sum = part if loss_sum is None else loss_sum + part
            weight_sum += count
        if loss_sum is None:  # every target had class weight 0
            return float("nan")
        # One device-to-host transfer per epoch, for the progress figure.
        return float(to_numpy(loss_sum)) / weight_sum

    def _validation_score(self, state, validation):
        """Pixel accuracy on the held-out images, of the weights predict
        would use."""
        network, xp = state.predicting_network(), state.xp
        step = network.stride ** self.n_instances
        correct = total = 0
        for index in range(len(validation)):
            image = xp.asarray(validation.standardized(index, DTYPE))
            scores, rows, cols = image_scores(
                network, image, self.n_instances, step=step, method="dense",
                max_bytes=self.max_inference_bytes)
            guess = to_numpy(scores.argmax(axis=0))
            truth = validation.targets[index][np.ix_(rows, cols)]
            known = truth >= 0
            correct += int((guess[known] == truth[known]).sum())
            total += int(known.sum())
        return correct / max(total, 1)

    def _commit(self, state):
        """Publish the run's results as fitted attributes, all at once."""
        # Every device-to-host copy first, so that a failing one leaves the
        # fitted attributes as they were.
        params = [to_numpy(p.data) for p in state.network.params]
        average = state.average
        averaged = None if average is None else average.weights()
        if averaged is None:
            # coefs_ are the training weights themselves.
            published, training_weights, averaged_state = params, None, None
        else:
            published = [to_numpy(a) for a in averaged]
            training_weights = params
            averaged_state = (average.decay,
                              [to_numpy(a) for a in average.sums],
                              average.count)
        solver_state = (self.solver, None if state.solver.state is None
                        else _map_arrays(state.solver.state, to_numpy))
        history = state.history
        self.classes_ = state.classes
        self.n_classes_ = len(state.classes)
        self.class_weight_ = state.class_weight
        self.layers_ = state.network.layers
        self.coefs_, self.intercepts_ = published[0::2], published[1::2]
        self._training_weights = training_weights
        self._averaged = averaged_state
        self.loss_curve_ = list(history.loss_curve)
        self.validation_scores_ = (list(history.validation_scores)
                                   if self.early_stopping else None)
        self.best_validation_score_ = history.best_validation_score
        self.n_iter_ = history.n_iter
        self.t_ = history.t
        self._max_instances_trained = history.max_instances
        self._validation_split = state.validation_split
        self.n_features_in_ = 3
        self._random_state = state.random_state
        self._solver_state = solver_state

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def predict_proba(self, X, n_instances=None):
        """Class probabilities of every pixel.

        Parameters
        ----------
        X : sequence of (H, W, 3) images or ndarray (n, H, W, 3)
        n_instances : int, optional
            Instances to run (default: ``n_instances``); fewer shows the
            earlier instances' guesses, as in the paper's Fig. 5.

        Returns
        -------
        list of ndarray (H, W, n_classes), or ndarray (n, H, W, n_classes)
            when ``X`` was an array.
        """
        out, was_array = self._map_images(X, n_instances, _probabilities_hwc)
        return np.stack(out) if was_array else out

    def predict(self, X, n_instances=None):
        """Label every pixel.

        Parameters
        ----------
        X : sequence of (H, W, 3) images or ndarray (n, H, W, 3)
        n_instances : int, optional
            See :meth:`predict_proba`.

        Returns
        -------
        list of ndarray (H, W), or ndarray (n, H, W) when ``X`` was an
        array; values are from ``classes_``.
        """
        out, was_array = self._map_images(
            X, n_instances, lambda p: self.classes_[to_numpy(p.argmax(0))])
        return np.stack(out) if was_array else out

    def score(self, X, y, sample_weight=None):
        """Pixel accuracy over the pixels with a non-negative label.

        Parameters
        ----------
        X : sequence of images
        y : sequence of (H, W) label maps
        sample_weight : array-like of shape (n_images,), optional
            A weight per image, given to each of its labelled pixels.

        Returns
        -------
        float
        """
        self._check_fitted()
        images, _ = check_images(X)
        label_maps = check_label_maps(y, images)
        weights = np.ones(len(images))
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != (len(images),) or not (
                    np.isfinite(weights).all() and (weights >= 0).all()):
                raise ValueError(
                    f"sample_weight must hold one finite weight >= 0 per "
                    f"image ({len(images)}), got shape {weights.shape}")
        predictions = self.predict(images)
        correct = total = 0
        for truth, guess, weight in zip(label_maps, predictions, weights):
            known = truth >= 0
            correct += weight * int((guess[known] == truth[known]).sum())
            total += weight * int(known.sum())
        if total == 0:
            raise ValueError("y: every label is negative (unknown), or every "
                             "weight 0; nothing to score")
        return float(correct / total)

    def _map_images(self, X, n_instances, finish):
        self._check_fitted()
        step, scales = self._check_inference_params()
        if n_instances is None:
            n_instances = self.n_instances
        check_positive_int("n_instances", n_instances)
        images, was_array = check_images(X)
        network, xp = self._network()
        self._check_pass_memory(network, images, n_instances, scales)
        # A callable's segment maps are taken up front, so one that does
        # not fit its image is reported before the network passes; the
        # built-in ones (which fit) are made as each image comes.
        segments = ([segments_of(self.superpixels, image, index)
                     for index, image in enumerate(images)]
                    if callable(self.superpixels) else None)
        out = []
        with retain_freed_memory(), parallel_cpu():
            for index, image in enumerate(images):
                maps = [self._scaled_probabilities(network, xp, image, scale,
                                                   n_instances, step)
                        for scale in scales]
                probabilities = (maps[0] if len(maps) == 1
                                 else sum(maps) / len(maps))
                if self.superpixels is not None:
                    probabilities = segment_means_chw(
                        to_numpy(probabilities),
                        segments[index] if segments is not None else
                        segments_of(self.superpixels, image, index))
                out.append(finish(probabilities))
        return out, was_array

    def _check_pass_memory(self, network, images, n_instances, scales):
        """Refuse, before any work, a labelling whose thinnest bands would
        still need more than ``max_inference_bytes`` (e.g. a context patch
        of many instances, thousands of pixels wide)."""
        for index, image in enumerate(images):
            for scale in scales:
                height, width = scaled_shape(image.shape[:2], scale)
                need = minimum_pass_bytes(network, height, width, n_instances)
                if need <= self.max_inference_bytes:
                    continue
                side = network.patch_size(n_instances)
                at = "" if scale == 1 else f" at test-time scale {scale}"
                raise ValueError(
                    f"X[{index}]: labelling this {image.shape[0]}x"
                    f"{image.shape[1]} image{at} with n_instances="
                    f"{n_instances} (a {side}x{side}-pixel context patch) "
                    f"needs at least {_mebibytes(need)} of activations, "
                    f"over max_inference_bytes={self.max_inference_bytes} "
                    f"({_mebibytes(self.max_inference_bytes)}); use "
                    "fewer instances or smaller images, or raise "
                    "max_inference_bytes")

    def _scaled_probabilities(self, network, xp, image, scale, n_instances,
                              step):
        """(n_classes, H, W) probabilities of ``image`` labelled at
        ``scale`` times its size (and its mirror with ``test_time_flip``),
        brought back to its own size."""
        shape = image.shape[:2]
        if scale != 1:
            image = resize_image(image, scaled_shape(shape, scale))
        standardized = xp.asarray(standardize_image(image, DTYPE)
                                  .transpose(2, 0, 1))
        probabilities = self._image_probabilities(
            network, xp, standardized, n_instances, step)
        if self.test_time_flip:
            mirrored = self._image_probabilities(
                network, xp, standardized[:, :, ::-1], n_instances, step)
            probabilities = (probabilities + mirrored[:, :, ::-1]) / 2
        if scale != 1:
            back = resize_image(to_numpy(probabilities).transpose(1, 2, 0),
                                shape)
            probabilities = xp.asarray(back.transpose(2, 0, 1), dtype=DTYPE)
        return probabilities

    def _image_probabilities(self, network, xp, standardized, n_instances,
                             step):
        """(n_classes, H, W) probabilities of one standardised image."""
        scores, rows, cols = image_scores(
            network, xp.ascontiguousarray(standardized), n_instances,
            step=step, method=self.inference,
            max_bytes=self.max_inference_bytes)
        return upsample(softmax(scores), rows, cols,
                        *standardized.shape[1:])

    def _network(self):
        """The network of ``coefs_`` and ``intercepts_`` as they are now.

        Built afresh for every call (the weights are small), so weights
        assigned or edited after a prediction are the ones used next."""
        xp = array_module(self._prediction_device())
        network = RecurrentNetwork(
            self.layers_, self.n_classes_,
            make_params(_interleave(self.coefs_, self.intercepts_), xp,
                        DTYPE))
        return network, xp

    def _prediction_device(self):
        """Where to predict: a model fitted with ``device="gpu"`` and loaded
        on a machine without one predicts on the CPU (with a warning)
        rather than failing: its weights are NumPy arrays anyway."""
        if self.device == "gpu" and not gpu_available():
            warnings.warn("device='gpu' but no usable GPU here: predicting "
                          "on the CPU", UserWarning, stacklevel=4)
            return "cpu"
        return resolve_device(self.device)

    @property
    def patch_size_(self):
        """Side of the context patch of one prediction with the current
        ``n_instances`` (it follows ``set_params(n_instances=...)``)."""
        self._check_fitted()  # NotFittedError is an AttributeError too
        return patch_size(self.layers_, self.n_instances)

    def _check_fitted(self):
        if not hasattr(self, "coefs_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; "
                "call fit before predict, predict_proba or score")

    def __setstate__(self, state):
        # Models saved before a parameter existed load with its default,
        # which is the behaviour they were trained with.
        defaults = {name: parameter.default for name, parameter
                    in inspect.signature(type(self)).parameters.items()
                    if name not in state}
        # Saved as an attribute before it was computed on demand.
        state = {k: v for k, v in state.items() if k != "patch_size_"}
        super().__setstate__({**defaults, **state})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.non_deterministic = _resolve_device_safe(self.device) == "gpu"
        return tags


def _resolve_device_safe(device):
    try:
        return resolve_device(device)
    except ValueError:
        return "cpu"


def _probabilities_hwc(probabilities):
    return np.ascontiguousarray(to_numpy(probabilities).transpose(1, 2, 0))


def _resolution_step(resolution):
    """``k`` for an output resolution of ``1/k``."""
    ok = isinstance(resolution, numbers.Real) and not isinstance(
        resolution, bool) and 0 < resolution <= 1
    step = round(1 / resolution) if ok else 0
    if not ok or abs(1 / step - resolution) > 1e-9:
        raise ValueError(f"output_resolution must be 1/k for a positive "
                         f"integer k (1, 0.5, 0.25, ...), got {resolution!r}")
    return step


def _interleave(coefs, intercepts):
    out = []
    for w, b in zip(coefs, intercepts):
        out += [w, b]
    return out


def _map_arrays(tree, function):
    if isinstance(tree, dict):
        return {k: _map_arrays(v, function) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_map_arrays(v, function) for v in tree]
    if hasattr(tree, "shape"):
        return function(tree)
    return tree


def _mebibytes(count):
    """A byte count for people: '12 MiB', or '1000 bytes' under 1 MiB."""
    value = count / 2 ** 20
    return f"{value:.0f} MiB" if value >= 1 else f"{int(count)} bytes"


class _History:
    def __init__(self, loss_curve=(), validation_scores=None,
                 best_validation_score=None, n_iter=0, t=0, max_instances=0):
        self.loss_curve = list(loss_curve)
        self.validation_scores = list(validation_scores or [])
        # The fitted best, not the best of ``validation_scores``: those also
        # hold epochs of earlier stages (fewer instances), which never count.
        self.best_validation_score = best_validation_score
        self.n_iter = n_iter
        self.t = t
        # The most instances any epoch has trained.
        self.max_instances = max_instances


def _snapshot(state):
    """What training changes in ``state``'s weights: copies of the
    weights, and the running average's sums and count (kept as they are:
    :meth:`WeightAverage.update` replaces the sums, never changes them)."""
    params = [p.data.copy() for p in state.network.params]
    average = state.average
    return params, None if average is None else (average.sums, average.count)


def _restore(state, snapshot):
    params, averaged = snapshot
    for p, best in zip(state.network.params, params):
        p.data = best
    if averaged is not None:
        state.average.sums, state.average.count = averaged


class _State:
    def __init__(self, device, xp, network, solver, random_state, history,
                 classes, class_weight, average=None, validation_split=None):
        self.device = device
        self.xp = xp
        self.network = network
        self.solver = solver
        self.random_state = random_state
        self.history = history
        self.classes = classes
        self.class_weight = class_weight
        self.average = average
        # (n_images, validation_fraction, held-out indices) of early
        # stopping, kept across warm starts and partial_fit.
        self.validation_split = validation_split

    def predicting_network(self):
        """The network with the weights prediction uses: the running
        average's when there is one, else the trained ones."""
        averaged = None if self.average is None else self.average.weights()
        if averaged is None:
            return self.network
        return RecurrentNetwork(self.network.layers, self.network.n_classes,
                                [Variable(a) for a in averaged])
