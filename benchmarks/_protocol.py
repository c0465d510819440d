"""Shared pieces of the paper benchmarks: training on a time budget,
scoring a test set, and writing the result tables (JSON + Markdown)."""

import argparse
import copy
import json
import math
import os
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skrcnn import RecurrentCNNSegmenter
from skrcnn._cli_io import InputError, check_writable_file, load_model
from skrcnn.backend import resolve_device
from skrcnn._validation import resolve_class_weight
from skrcnn.metrics import confusion_matrix, scores_from_confusion
from skrcnn.superpixels import (average_over_segments,
                                felzenszwalb_segmentations)


def rate_factor(fraction, lr_schedule="step", decay_last=0.0,
                decay_factor=0.1):
    """Learning-rate multiplier at ``fraction`` of a stage's budget.

    ``"step"``: 1, then ``decay_factor`` for the last ``decay_last`` of the
    budget. ``"cosine"``: half a cosine from 1 down to 0, floored at
    ``decay_factor ** 2``.
    """
    if lr_schedule == "cosine":
        return max(decay_factor ** 2,
                   0.5 * (1 + math.cos(math.pi * min(fraction, 1.0))))
    if decay_last and fraction >= 1 - decay_last:
        return decay_factor
    return 1.0


def train_for(model, X, y, seconds, classes, log=print, label="",
              decay_last=0.0, decay_factor=0.1, lr_schedule="step",
              checkpoint=None, teacher_proba=None):
    """``partial_fit`` epochs until ``seconds`` of training have passed.

    The budget is checked between epochs, so the last epoch may overrun it;
    the time actually spent is returned (training only: evaluation at
    checkpoints is not counted). The learning rate follows
    :func:`rate_factor` (a step decay by default: at a constant rate the
    per-epoch test accuracy swings by a few points), taken at the middle of
    each epoch as the previous epoch's length predicts it.
    ``checkpoint(seconds_spent)`` is called after every epoch, to record an
    accuracy-versus-time curve. ``teacher_proba`` goes to every
    ``partial_fit`` (knowledge distillation). Ctrl-C ends the stage early
    (the estimator keeps the weights reached), so the model is still scored
    and saved.
    """
    spent, last_epoch = 0.0, 0.0
    rate = model.learning_rate
    while spent < seconds:
        # Where the middle of this epoch will fall, if it lasts as long as
        # the last one: the step decay then covers its share of the budget
        # even when epochs are long.
        fraction = (spent + last_epoch / 2) / seconds
        model.set_params(learning_rate=rate * rate_factor(
            fraction, lr_schedule, decay_last, decay_factor))
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.partial_fit(X, y, classes=classes,
                              teacher_proba=teacher_proba)
        interrupted = _reissue(caught)
        last_epoch = time.perf_counter() - start
        spent += last_epoch
        log(f"  {label} epoch {model.n_iter_}: loss {model.loss_curve_[-1]:.4f}"
            f" lr {model.learning_rate:g}"
            f" ({spent / 60:.1f} of {seconds / 60:.1f} min)")
        if interrupted:
            log(f"  {label}: interrupted, ending this stage after "
                f"{spent / 60:.1f} min")
            break
        if checkpoint is not None:
            checkpoint(spent)
    model.set_params(learning_rate=rate)
    return spent


def _reissue(caught):
    """Warn again what one ``partial_fit`` warned, except the
    ConvergenceWarning every budgeted epoch gives; True if it reported a
    Ctrl-C (the estimator then keeps its weights and warns instead of
    raising, so the stage must end here)."""
    interrupted = False
    for record in caught:
        if issubclass(record.category, ConvergenceWarning):
            continue
        interrupted |= str(record.message).startswith("training interrupted")
        warnings.warn_explicit(record.message, record.category,
                               record.filename, record.lineno)
    return interrupted


class Curve:
    """Test scores at training-time checkpoints (every ``minutes``).

    Called after each epoch with the training seconds of the current stage;
    scores the model whenever another ``minutes`` of training (counted over
    all stages, from ``offset``) have passed since the last point, then
    calls ``on_point(model, total_seconds, points)`` if given (to save the
    model, so that a run cut short keeps its last checkpoint).
    """

    def __init__(self, model, X, y, labels, minutes, log=print,
                 on_point=None):
        self.model, self.X, self.y, self.labels = model, X, y, labels
        self.every = minutes * 60
        self.log = log
        self.on_point = on_point
        self.offset = 0.0
        self.points = []
        # The rate of the last epoch trained: training ends a stage by
        # putting the base rate back before its last point is added.
        self.last_rate = None

    def __call__(self, stage_seconds):
        self.last_rate = self.model.learning_rate
        total = self.offset + stage_seconds
        last = self.points[-1]["train_s"] if self.points else 0.0
        if self.every and total - last >= self.every:
            self.add(total)

    def add(self, total):
        self.add_scores(total, evaluate(self.model, self.X, self.y,
                                        self.labels))

    def add_scores(self, total, scores):
        """A point of ``scores`` already computed at ``total`` seconds
        (none if the last point is there already)."""
        if self.points and self.points[-1]["train_s"] >= total:
            return
        self.points.append({"train_s": total,
                            "instances": self.model.n_instances,
                            "epochs": self.model.n_iter_,
                            "learning_rate": (self.model.learning_rate
                                              if self.last_rate is None
                                              else self.last_rate),
                            **{k: scores[k] for k in (
                                "pixel_accuracy", "mean_class_accuracy",
                                "mean_iou")}})
        self.log(f"  curve: {total / 60:.1f} min, "
                 f"{self.model.n_instances} instances: pixel "
                 f"{100 * scores['pixel_accuracy']:.1f}%, class "
                 f"{100 * scores['mean_class_accuracy']:.1f}%")
        if self.on_point is not None:
            self.on_point(self.model, total, list(self.points))

    def markdown(self):
        lines = ["| training | instances | epochs | learning rate | "
                 "pixel acc. | class avg. | mean IoU |",
                 "|---|---|---|---|---|---|---|"]
        for p in self.points:
            lines.append(
                f"| {p['train_s'] / 60:.1f} min | {p['instances']} | "
                f"{p['epochs']} | {p['learning_rate']:g} | "
                f"{100 * p['pixel_accuracy']:.1f}% | "
                f"{100 * p['mean_class_accuracy']:.1f}% | "
                f"{100 * p['mean_iou']:.1f}% |")
        return "\n".join(lines) + "\n"


def evaluate(model, X, y, labels):
    """Full-resolution scores of ``model`` on a test set, and timing."""
    start = time.perf_counter()
    predicted = model.predict(X)
    seconds = time.perf_counter() - start
    return _scores(confusion_matrix(y, predicted, labels=labels),
                   seconds / len(X))


def evaluate_with_superpixels(model, X, y, labels):
    """Scores of ``model``'s labelling, and of the same class probabilities
    averaged over Felzenszwalb segmentations (what
    ``superpixels="felzenszwalb"`` gives, tests/test_superpixels.py), from
    one pass over the images, one at a time to bound the memory: a pair
    of :func:`evaluate`-like dicts. The second's time per image includes
    the segmentation."""
    plain = np.zeros((len(labels), len(labels)), dtype=np.int64)
    voted = np.zeros_like(plain)
    pass_s = segment_s = 0.0
    for image, truth in zip(X, y):
        start = time.perf_counter()
        proba = model.predict_proba([image])[0]
        middle = time.perf_counter()
        averaged = average_over_segments(proba,
                                         felzenszwalb_segmentations(image))
        segment_s += time.perf_counter() - middle
        pass_s += middle - start
        for confusion, p in ((plain, proba), (voted, averaged)):
            confusion += confusion_matrix(
                [truth], [model.classes_[p.argmax(-1)]], labels=labels)
    return tuple(_scores(confusion, seconds / len(X)) for confusion, seconds
                 in ((plain, pass_s), (voted, pass_s + segment_s)))


def _scores(confusion, seconds_per_image):
    scores = scores_from_confusion(confusion)
    return {**{name: scores[name] for name in (
                "pixel_accuracy", "mean_class_accuracy", "mean_iou")},
            "predict_s_per_image": seconds_per_image,
            "confusion": confusion.tolist()}


def scored_rows(model, row, X, y, labels, args, log=None):
    """``row`` (a dict without scores) scored on ``(X, y)`` as a list of
    rows: its own first, then, with ``--superpixels``, the same labelling
    averaged over Felzenszwalb segments (from the same pass over the
    images); with ``--test-time-flip``, the mirror-averaged labelling;
    with ``--test-time-scales``, the scale-averaged one (mirrored too with
    ``--test-time-flip``), each with its superpixel row. For a model with
    ``weight_averaging``, all of it again with its last (unaveraged)
    training weights, so the two compare on one training run. Each row
    goes to ``log`` as soon as it is scored (the augmented passes are
    long). The model is left as it was, since training may go on."""
    variants = [("", {})]
    if args.test_time_flip:
        variants.append(("test-time flip", dict(test_time_flip=True)))
    if args.test_time_scales:
        scales = tuple(args.test_time_scales)
        listed = "scales " + "/".join(f"{s:g}" for s in scales)
        name = (f"test-time flip, {listed}" if args.test_time_flip
                else f"test-time {listed}")
        variants.append((name, dict(test_time_flip=args.test_time_flip,
                                    test_time_scales=scales)))
    before = {name: model.get_params()[name]
              for name in ("test_time_flip", "test_time_scales")}
    superpixels = getattr(args, "superpixels", False)
    rows = []

    def add(suffixes, scores):
        named = ", ".join([row["model"], *filter(None, suffixes)])
        rows.append({**row, "model": named, **scores})
        if log is not None:
            log_row(rows[-1], log)

    for name, params in variants:
        model.set_params(**params)
        try:
            if superpixels:
                # One pass gives both rows.
                scores, voted = evaluate_with_superpixels(model, X, y,
                                                          labels)
                add([name], scores)
                add([name, "superpixels"], voted)
            else:
                add([name], evaluate(model, X, y, labels))
        finally:
            model.set_params(**before)
    last = unaveraged(model)
    if last is not None:
        rows += scored_rows(
            last, {**row, "model": f"{row['model']}, last weights (not "
                   f"averaged)"}, X, y, labels, args, log)
    return rows


def unaveraged(model):
    """A shallow copy of ``model`` that predicts with its last training
    weights instead of their running average (None without one)."""
    weights = getattr(model, "_training_weights", None)
    if weights is None:
        return None
    last = copy.copy(model)
    last.coefs_, last.intercepts_ = weights[0::2], weights[1::2]
    last._training_weights = last._averaged = None
    return last


def training_params(args, given=None):
    """The estimator parameters the command line sets (each named as its
    option's destination); with ``given``, only those of the options given
    (a set of destinations, see :func:`given_options`)."""
    params = dict(sampling=args.sampling, crop_size=args.crop_size,
                  instance_loss=args.instance_loss,
                  horizontal_flip=args.horizontal_flip,
                  scale_range=(tuple(args.scale_range) if args.scale_range
                               else None),
                  solver=args.solver, momentum=args.momentum,
                  distillation_weight=args.distillation_weight,
                  weight_averaging=args.weight_averaging,
                  learning_rate=args.learning_rate,
                  batch_size=args.batch_size,
                  patches_per_epoch=args.patches_per_epoch, device=args.device)
    if given is None:
        return params
    return {name: value for name, value in params.items() if name in given}


def given_options(parser, argv):
    """Destinations of the options on the command line ``argv`` (whatever
    their value, a default one included)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


def class_weights(args, y, classes):
    """``--class-weight`` as the estimator's ``class_weight``: a dict from
    the fold's training labels (the benchmark trains with ``partial_fit``,
    which takes no ``"balanced"``). ``sqrt`` softens the balanced weights
    to their square roots."""
    if args.class_weight == "none":
        return None
    # The labels of the benchmark datasets are the class indices 0..K-1.
    weights = resolve_class_weight("balanced", classes, y)
    if args.class_weight == "sqrt":
        weights = np.sqrt(weights)
    return {int(c): float(w) for c, w in zip(classes, weights)}


def make_model(architecture, n_instances, args, hidden_sizes=None):
    """The benchmark's estimator: Adam, dense sampling unless asked."""
    return RecurrentCNNSegmenter(
        architecture=architecture, hidden_sizes=hidden_sizes,
        n_instances=n_instances, instance_schedule="fixed",
        random_state=args.seed, **training_params(args))


def rows_for_fold(fold, X_train, y_train, X_test, y_test, n_classes, args,
                  plain_hidden=(25, 50), log=print, resumed=None,
                  on_checkpoint=None):
    """Table rows of one fold: rcnn2 with 2 then 3 instances (one model,
    the paper's staged training: the third instance is added to the trained
    two-instance network and training continues) and the plain network.

    ``resumed`` is (model, seconds it was trained, its curve points): that
    rcnn2 model then trains on at its number of instances for the whole
    budget instead of the two stages, and its row and curve count the
    earlier training time too. ``on_checkpoint`` is passed to the
    :class:`Curve` as its ``on_point``.

    Returns the rows, the rcnn2 model (None with ``args.no_rcnn2``) and its
    accuracy-versus-time :class:`Curve` (empty unless
    ``args.curve_minutes``).
    """
    classes = np.arange(n_classes)
    rows = []
    budget = args.train_minutes * 60
    decay = {"decay_last": args.decay_last, "decay_factor": args.decay_factor,
             "lr_schedule": args.lr_schedule}
    weights = class_weights(args, y_train, classes)
    if resumed is not None and "class_weight" not in getattr(
            args, "given", {"class_weight"}):
        weights = resumed[0].class_weight  # as the model was trained
    teacher_proba = None
    if args.teacher is not None:
        # A bare estimator or pipeline, or a model file of 'skrcnn train'.
        teacher = load_model(args.teacher)[0]
        teacher_proba = teacher_probabilities(teacher, X_train, log)
    if resumed is not None:
        rcnn2, previous_s, previous_points = resumed
    else:
        rcnn2 = None if args.no_rcnn2 else make_model(
            "rcnn2", 2, args, hidden_sizes=args.rcnn2_hidden_sizes)
    if rcnn2 is not None:
        rcnn2.set_params(class_weight=weights)
    curve = Curve(rcnn2, X_test, y_test, classes, args.curve_minutes, log,
                  on_point=on_checkpoint)

    def train_rcnn2(seconds, earlier_s):
        """Train rcnn2 at its instances for ``seconds`` more, after
        ``earlier_s`` of training; score it as a row. Returns the total."""
        curve.offset = earlier_s
        spent = earlier_s + train_for(
            rcnn2, X_train, y_train, seconds, classes, log,
            f"rcnn2 P={rcnn2.n_instances}", checkpoint=curve,
            teacher_proba=teacher_proba, **decay)
        scored = scored_rows(
            rcnn2, {"fold": fold,
                    "model": f"rcnn2, {rcnn2.n_instances} instances",
                    "train_s": spent, "epochs": rcnn2.n_iter_},
            X_test, y_test, classes, args, log)
        rows.extend(scored)
        if args.curve_minutes:
            # The stage's last (decayed) model ends its part of the curve.
            curve.add_scores(spent, scored[0])
        return spent

    def train_plain():
        plain = make_model("plain", 1, args, hidden_sizes=plain_hidden)
        plain.set_params(class_weight=weights)
        spent = train_for(plain, X_train, y_train, budget, classes, log,
                          "plain", **decay)
        rows.extend(scored_rows(
            plain, {"fold": fold, "model": "plain", "train_s": spent,
                    "epochs": plain.n_iter_},
            X_test, y_test, classes, args, log))
        return plain

    if args.distil_from_plain:
        # The teacher first: rcnn2 learns from its probabilities.
        teacher_proba = teacher_probabilities(train_plain(), X_train, log)
    if resumed is not None:
        curve.points = list(previous_points)
        train_rcnn2(budget, previous_s)
    elif rcnn2 is not None:
        spent = train_rcnn2(budget / 2, 0.0)
        rcnn2.set_params(n_instances=3)
        train_rcnn2(budget / 2, spent)
    if not args.no_plain and not args.distil_from_plain:
        train_plain()
    return rows, rcnn2, curve


#: Test-time augmentation of a teacher's probabilities (flips and scales
#: label the test images of Stanford Background 0.5-1 point better).
TEACHER_AUGMENTATION = dict(test_time_flip=True,
                            test_time_scales=(0.75, 1.0, 1.25))


def teacher_probabilities(teacher, X, log=print):
    """A teacher model's class probabilities for the training images, with
    :data:`TEACHER_AUGMENTATION`, as float16 (half the memory; the
    estimator accepts them as they are)."""
    start = time.perf_counter()
    before = {name: teacher.get_params()[name]
              for name in TEACHER_AUGMENTATION}
    teacher.set_params(**TEACHER_AUGMENTATION)
    try:
        proba = [p.astype(np.float16) for p in teacher.predict_proba(X)]
    finally:
        teacher.set_params(**before)
    log(f"  teacher: probabilities of {len(X)} training images in "
        f"{time.perf_counter() - start:.0f} s")
    return proba


def log_row(row, log=print):
    log(f"fold {row['fold']} {row['model']}: pixel "
        f"{100 * row['pixel_accuracy']:.1f}%, class average "
        f"{100 * row['mean_class_accuracy']:.1f}%, mean IoU "
        f"{100 * row['mean_iou']:.1f}%, trained {row['train_s'] / 60:.1f} "
        f"min, predict {row['predict_s_per_image']:.2f} s/image")


def summarise(rows):
    """Per model: the mean of the folds' scores and times (how 5-fold
    figures are usually reported), and under ``pooled`` the scores of all
    folds' test pixels together (the summed confusion matrices)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        pooled = scores_from_confusion(np.sum(
            [np.asarray(r["confusion"]) for r in mine], axis=0))
        out.append({"model": model, "folds": len(mine), **{
            key: float(np.mean([r[key] for r in mine]))
            for key in ("pixel_accuracy", "mean_class_accuracy", "mean_iou",
                        "train_s", "predict_s_per_image")},
            "pooled": {key: float(pooled[key]) for key in (
                "pixel_accuracy", "mean_class_accuracy", "mean_iou")}})
    return out


def markdown_table(summary, references, title):
    lines = [f"### {title}", "",
             "| model | folds | pixel acc. | class avg. | mean IoU | "
             "training | predict / image |",
             "|---|---|---|---|---|---|---|"]
    for row in summary:
        lines.append(
            f"| skrcnn {row['model']} | {row['folds']} | "
            f"{100 * row['pixel_accuracy']:.1f}% | "
            f"{100 * row['mean_class_accuracy']:.1f}% | "
            f"{100 * row['mean_iou']:.1f}% | "
            f"{row['train_s'] / 60:.1f} min | "
            f"{row['predict_s_per_image']:.2f} s |")
    for name, figures in references:
        cells = [figures.get(k, "") for k in ("pixel", "class", "iou",
                                              "train", "predict")]
        lines.append(f"| {name} | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(path_stem, payload, markdown):
    with open(path_stem + ".json", "w") as f:
        json.dump(payload, f, indent=2)
    with open(path_stem + ".md", "w") as f:
        f.write(markdown)


def add_training_arguments(parser):
    """The training options the paper benchmarks share."""
    parser.add_argument("--train-minutes", type=float, default=30.0,
                        help="training budget per model (and fold)")
    parser.add_argument("--sampling", default="dense",
                        choices=("dense", "patch"))
    parser.add_argument("--crop-size", type=int, default=8,
                        help="dense sampling on crops of this many outputs "
                             "per side; 0 for whole images")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--solver", default="adam", choices=("adam", "sgd"),
                        help="the estimator's solver (the paper: plain SGD, "
                             "here with --momentum)")
    parser.add_argument("--momentum", type=float, default=0.9,
                        help="momentum of --solver sgd (0: the paper's plain "
                             "SGD)")
    parser.add_argument("--weight-averaging", type=float, metavar="DECAY",
                        help="predict with a moving average of the weights "
                             "over the updates with this decay, e.g. 0.999 "
                             "(the paper: the last weights)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patches-per-epoch", type=int, default=4096)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instance-loss", default="last",
                        choices=("last", "all"),
                        help="train the last instance's scores (the paper) "
                             "or every instance's")
    parser.add_argument("--class-weight", default="none",
                        choices=("none", "balanced", "sqrt"),
                        help="weigh the loss per class: balanced = inverse "
                             "pixel frequency in the fold's training labels, "
                             "sqrt = its square root (the paper: none)")
    parser.add_argument("--horizontal-flip",
                        action=argparse.BooleanOptionalAction, default=False,
                        help="train on left-right mirrored crops half the "
                             "time")
    parser.add_argument("--scale-range", type=float, nargs=2,
                        metavar=("LOW", "HIGH"),
                        help="train on crops of images resized by a factor "
                             "drawn log-uniformly in [LOW, HIGH] (the "
                             "paper: none)")
    parser.add_argument("--no-scale-range", dest="scale_range",
                        action="store_const", const=None,
                        help="train on images at their own size (turns off "
                             "a --resume model's --scale-range)")
    parser.add_argument("--rcnn2-hidden-sizes", type=int, nargs=2,
                        metavar=("NHU1", "NHU2"),
                        help="widths of rcnn2's two hidden convolutions "
                             "(the paper: 25 50)")
    parser.add_argument("--test-time-flip", action="store_true",
                        help="also score every model with its labellings "
                             "averaged with those of the mirrored images "
                             "(extra rows)")
    parser.add_argument("--test-time-scales", type=float, nargs="+",
                        metavar="S",
                        help="also score every model with its labellings "
                             "averaged over the images resized by these "
                             "factors, e.g. 0.75 1 1.25 (extra rows; "
                             "mirrored too with --test-time-flip)")
    add_superpixels_argument(parser)
    parser.add_argument("--no-plain", action="store_true",
                        help="skip the plain network")
    parser.add_argument("--distil-from-plain", action="store_true",
                        help="train the plain network first and distil it "
                             "into rcnn2: its probabilities (with test-time "
                             "flips and scales 0.75 / 1 / 1.25) become part "
                             "of rcnn2's targets (not in the paper)")
    parser.add_argument("--teacher", metavar="MODEL",
                        help="distil into rcnn2 from this joblib file of a "
                             "fitted estimator (trained on the same training "
                             "images only), as --distil-from-plain does")
    parser.add_argument("--distillation-weight", type=float, default=0.5,
                        help="share of the teacher's probabilities in "
                             "rcnn2's targets")
    parser.add_argument("--no-rcnn2", action="store_true",
                        help="skip the rcnn2 models (train the plain network "
                             "only)")
    parser.add_argument("--decay-last", type=float, default=0.25,
                        help="fraction of each training stage run at a "
                             "decayed learning rate (0: constant rate)")
    parser.add_argument("--decay-factor", type=float, default=0.1)
    parser.add_argument("--lr-schedule", default="step",
                        choices=("step", "cosine"),
                        help="step: x decay-factor for the last decay-last "
                             "of each stage; cosine: half a cosine from the "
                             "learning rate to 0 over each stage (floored "
                             "at decay-factor squared)")
    parser.add_argument("--curve-minutes", type=float, default=0.0,
                        help="score rcnn2 on the test images after every "
                             "this many minutes of training (an "
                             "accuracy-versus-time curve; not counted as "
                             "training time)")


def add_superpixels_argument(parser):
    parser.add_argument("--superpixels", action="store_true",
                        help="also score every labelling with its class "
                             "probabilities averaged over Felzenszwalb "
                             "segments (the estimator's "
                             "superpixels='felzenszwalb'; not in the "
                             "paper; extra rows)")


def parse_training_args(parser, argv):
    args = parser.parse_args(argv)
    if args.no_plain and args.no_rcnn2:
        parser.error("--no-plain and --no-rcnn2 leave no model to train")
    if args.distil_from_plain and (args.no_plain or args.no_rcnn2
                                   or args.teacher):
        parser.error("--distil-from-plain trains the plain network and "
                     "rcnn2: not with --no-plain, --no-rcnn2 or --teacher")
    if args.teacher and args.no_rcnn2:
        parser.error("--teacher distils into rcnn2: not with --no-rcnn2")
    if (args.teacher or args.distil_from_plain) and \
            args.instance_loss != "last":
        parser.error("distillation trains the last instance's scores only: "
                     "not with --instance-loss all")
    if args.teacher and not os.path.isfile(args.teacher):
        parser.error(f"--teacher {args.teacher}: no such file")
    checks = [("--train-minutes", args.train_minutes > 0, "> 0"),
              ("--decay-last", 0 <= args.decay_last < 1, "in [0, 1)"),
              ("--decay-factor", 0 < args.decay_factor <= 1, "in (0, 1]"),
              ("--curve-minutes", args.curve_minutes >= 0, ">= 0"),
              ("--crop-size", args.crop_size >= 0, ">= 0"),
              ("--batch-size", args.batch_size >= 1, ">= 1"),
              ("--patches-per-epoch", args.patches_per_epoch >= 1, ">= 1"),
              ("--learning-rate", args.learning_rate > 0, "> 0"),
              ("--distillation-weight", 0 <= args.distillation_weight <= 1,
               "in [0, 1]")]
    for flag, ok, expected in checks:
        if not ok:
            value = getattr(args, flag[2:].replace("-", "_"))
            parser.error(f"{flag} must be {expected}, got {value:g}")
    args.crop_size = args.crop_size or None  # 0 means whole images
    args.given = sorted(given_options(parser, argv))  # JSON-able
    _check_before_training(parser, args)
    return args


def _check_before_training(parser, args):
    """Usage errors for what would otherwise fail after hours of training:
    the models' parameters, the device, the output files."""
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    models = [make_model("rcnn2", 2, args,
                         hidden_sizes=args.rcnn2_hidden_sizes),
              make_model("plain", 1, args)]
    try:
        for model in models:
            model.set_params(test_time_flip=args.test_time_flip,
                             test_time_scales=args.test_time_scales)
            model._check_params()
        resolve_device(args.device)
    except ValueError as exc:
        parser.error(_option_message(str(exc)))
    for flag, path in (("--output", getattr(args, "output", None)),
                       ("--save-model", getattr(args, "save_model", None))):
        if path is not None:
            check_output_file(parser, flag,
                              path + ".json" if flag == "--output" else path)


def check_output_file(parser, flag, path, example="results.json"):
    """A usage error, before any work, when ``path`` (the value of option
    ``flag``) cannot be written."""
    try:
        check_writable_file(path, example)
    except InputError as exc:
        parser.error(f"{flag}: {exc}")


def _option_message(message):
    """An estimator's message in the options' names: 'learning_rate must
    be ...' -> '--learning-rate must be ...'."""
    name = message.split(" ", 1)[0]
    if not name.isidentifier():
        return message
    option = {"hidden_sizes": "rcnn2_hidden_sizes"}.get(name, name)
    return "--" + option.replace("_", "-") + message[len(name):]


def report(args, rows, references, dataset, start, curves=()):
    """Summarise the rows, print the Markdown table, write JSON + Markdown.

    ``curves`` are (fold, :class:`Curve`) pairs; non-empty ones are added
    as accuracy-versus-training-time tables."""
    summary = summarise(rows)
    if args.lr_schedule == "cosine":
        decay = ", cosine learning-rate decay over each stage"
    elif args.decay_last:
        decay = (f", learning rate x{args.decay_factor:g} for the last "
                 f"{100 * args.decay_last:.0f}% of each stage")
    else:
        decay = ", constant learning rate"
    options = (", loss on every instance"
               if args.instance_loss == "all" else "")
    if args.class_weight != "none":
        options += f", {args.class_weight} class weights"
    if args.solver != "adam":
        options += f", {args.solver} (momentum {args.momentum:g})"
    if args.distil_from_plain or args.teacher:
        options += (f", rcnn2 distilled from "
                    f"{args.teacher or 'the plain network'} (weight "
                    f"{args.distillation_weight:g})")
    if args.scale_range:
        options += (f", scales {args.scale_range[0]:g}-"
                    f"{args.scale_range[1]:g}")
    if args.weight_averaging:
        options += f", weights averaged (decay {args.weight_averaging:g})"
    title = (f"{dataset}, {args.train_minutes} min per model, "
             f"{args.solver} at {args.learning_rate:g}, "
             f"{args.sampling} sampling (crops {args.crop_size})"
             f"{', horizontal flips' if args.horizontal_flip else ''}"
             f"{options}{decay}, "
             f"device {args.device}")
    if getattr(args, "resume", None):
        title += f", resuming {args.resume}"
    if getattr(args, "widen", None):
        title += f", widened to {args.widen[0]} / {args.widen[1]} units"
    markdown = markdown_table(summary, references, title)
    for fold, curve in curves:
        if curve.points:
            images = (f"the first {args.n_test} test images"
                      if getattr(args, "n_test", None) else "all test images")
            markdown += (f"\n#### rcnn2 accuracy versus training time, fold "
                         f"{fold} ({images}, full resolution)\n\n"
                         + curve.markdown())
    print("\n" + markdown)
    write_outputs(args.output, {"args": vars(args), "rows": rows,
                                "summary": summary,
                                "curves": {str(fold): curve.points
                                           for fold, curve in curves},
                                "wall_s": time.perf_counter() - start,
                                "cpu_count": os.cpu_count()}, markdown)
