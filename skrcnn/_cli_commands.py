"""``skrcnn train``, ``skrcnn predict`` and ``skrcnn evaluate``.

Each command takes the parsed arguments and a ``say`` function (print, or
nothing with ``-q``); problems with the user's input raise
:class:`~skrcnn._cli_io.InputError`, which ``skrcnn.cli`` turns into one
line on stderr and exit status 2.
"""

import contextlib
import io
import json
import math
import os
import re
import sys
import time
import warnings

import numpy as np

from ._allocator import retain_freed_memory
from ._parallel import available_threads, parallel_cpu
from ._cli_io import (OUTPUT_SUFFIXES, InputError, Progress, check_pictures,
                      check_outputs_spare_inputs, check_unique_stems,
                      check_writable_file, class_name,
                      collect_images, drop_predict_outputs, list_images,
                      load_model, name_files, overlay, pair_labels,
                      read_image, read_label_map, save_model, stem,
                      write_label_png, write_rgb_png)
from .datasets import DataNotFoundError

DATASETS = ("scenes", "stanford", "sift-flow")
FOLDS = ("train", "test", "all")
#: Synthetic scenes: the train fold is make_scenes(n, random_state=0), the
#: test fold make_scenes(n, random_state=1); n defaults to this.
SCENES_DEFAULT_N = 120
SCENES_SEEDS = {"train": 0, "test": 1}
#: --n-images draws its subset with this seed, independent of --seed, so
#: that train and evaluate pick the same images.
SUBSET_SEED = 0


class Data:
    """Images and label maps with the names that error messages use."""

    def __init__(self, images, labels, image_names, label_names,
                 class_names, description, source):
        self.images, self.labels = images, labels
        self.image_names, self.label_names = image_names, label_names
        self.class_names, self.description = class_names, description
        self.source = source  # {"dataset": ..., "fold": ...} or folders


# ------------------------------------------------------------------- data

def load_data(args, default_fold, quiet, say=print):
    """The images selected by ``--dataset`` or ``--images/--labels``
    (without the outputs of an earlier 'skrcnn predict', noted by
    ``say``)."""
    fold = args.fold or default_fold
    if args.dataset is not None:
        if args.images is not None or args.labels is not None:
            raise InputError("give either --dataset or --images and "
                             "--labels, not both")
        # The loaders announce slow first loads on stderr; -q hushes them.
        hush = contextlib.redirect_stderr(io.StringIO()) if quiet else \
            contextlib.nullcontext()
        with hush:
            try:
                return _load_dataset(args.dataset, fold, args.data_home,
                                     args.n_images)
            except DataNotFoundError as exc:  # say it the command line's way
                raise InputError(str(exc).replace(
                    "pass data_home=", "pass --data-home")) from None
    if args.images is None or args.labels is None:
        raise InputError("give --dataset NAME, or both --images FOLDER and "
                         "--labels FOLDER")
    if args.fold is not None:
        raise InputError("--fold applies to --dataset only")
    return _load_folders(args.images, args.labels, args.n_images, say)


def _subset(n_total, n_images):
    if n_images is None or n_images >= n_total:
        return np.arange(n_total)
    rng = np.random.RandomState(SUBSET_SEED)
    return np.sort(rng.choice(n_total, n_images, replace=False))


def _load_dataset(name, fold, data_home, n_images):
    if name == "scenes":
        from .datasets import make_scenes

        n = n_images or SCENES_DEFAULT_N
        images, labels, names = [], [], []
        for part in (("train", "test") if fold == "all" else (fold,)):
            bunch = make_scenes(n, random_state=SCENES_SEEDS[part])
            images += list(bunch.images)
            labels += list(bunch.labels)
            names += [f"{part} scene {i}" for i in range(n)]
        return Data(images, labels, names, names, bunch.class_names,
                    f"{_count(len(images), 'synthetic scene')} ({fold} "
                    "fold)",
                    {"dataset": name, "fold": fold})
    if name == "stanford":
        from .datasets import load_stanford_background
        from .model_selection import canonical_stanford_split

        bunch = load_stanford_background(data_home=data_home)
        if fold == "all":
            chosen = np.arange(len(bunch.images))
        else:
            train, test = canonical_stanford_split(bunch.filenames)
            chosen = train if fold == "train" else test
        title = "Stanford Background"
    else:
        from .datasets import load_sift_flow

        bunch = load_sift_flow(data_home=data_home)
        chosen = {"train": bunch.train_indices, "test": bunch.test_indices,
                  "all": np.arange(len(bunch.images))}[fold]
        title = "SIFT Flow"
    chosen = np.asarray(chosen)[_subset(len(chosen), n_images)]
    names = [f"{title} image {bunch.filenames[i]}" for i in chosen]
    return Data([bunch.images[i] for i in chosen],
                [bunch.labels[i] for i in chosen], names, names,
                bunch.class_names,
                f"{_count(len(chosen), title + ' image')} ({fold} fold)",
                {"dataset": name, "fold": fold})


def _without_predict_outputs(paths, say):
    """``paths`` less the outputs of an earlier 'skrcnn predict', with a
    note when there were some."""
    kept, dropped = drop_predict_outputs(paths)
    if dropped:
        more = ", ..." if len(dropped) > 1 else ""
        say(f"skipping {_count(len(dropped), 'file')} that an earlier "
            f"'skrcnn predict' wrote ({os.path.basename(dropped[0])}{more})")
    return kept


def _load_folders(images_folder, labels_folder, n_images, say):
    image_paths = _without_predict_outputs(list_images(images_folder), say)
    if os.path.abspath(images_folder) == os.path.abspath(labels_folder):
        # One folder for both: beside a.jpg, a.png is a.jpg's label map.
        stems = [stem(p) for p in image_paths]
        image_paths = [p for p, s in zip(image_paths, stems)
                       if not (p.lower().endswith(".png")
                               and stems.count(s) > 1)]
    label_paths = pair_labels(image_paths, labels_folder)
    chosen = _subset(len(image_paths), n_images)
    image_paths = [image_paths[i] for i in chosen]
    label_paths = [label_paths[i] for i in chosen]
    images, labels = [], []
    for image_path, label_path in zip(image_paths, label_paths):
        image = read_image(image_path)
        label_map = read_label_map(label_path)
        if label_map.shape != image.shape[:2]:
            raise InputError(
                f"{label_path}: label map is {label_map.shape[0]}x"
                f"{label_map.shape[1]} (rows x columns) but its image "
                f"{image_path} is {image.shape[0]}x{image.shape[1]}")
        images.append(image)
        labels.append(label_map)
    return Data(images, labels, image_paths, label_paths, None,
                f"{_count(len(images), 'image')} from {images_folder}",
                {"images": os.path.abspath(images_folder),
                 "labels": os.path.abspath(labels_folder)})


def _count(n, noun):
    """``1 image``, ``2 images``, ``3 classes``."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun}{'es' if noun.endswith('s') else 's'}"


def _translated(exc, data):
    """The estimator's message with image indices replaced by names."""
    return InputError(name_files(str(exc), data.image_names,
                                 data.label_names))


# ------------------------------------------------------------------ train

#: The weights and sampling of 'skrcnn train' are seeded by default, so
#: that the same command trains the same model.
SEED_DEFAULT = 0
#: The argparse destination of every estimator parameter that a training
#: option gives as it is; its option is ``--`` + the destination with
#: dashes (``n_iter_no_change`` <- ``--patience``).
_TRAINING_OPTIONS = {
    "architecture": "architecture", "hidden_sizes": "hidden_sizes",
    "n_instances": "instances", "instance_schedule": "schedule",
    "instance_loss": "instance_loss", "sampling": "sampling",
    "solver": "solver", "learning_rate": "learning_rate",
    "weight_averaging": "weight_averaging", "batch_size": "batch_size",
    "patches_per_epoch": "patches_per_epoch", "max_iter": "epochs",
    "device": "device", "horizontal_flip": "horizontal_flip",
    "distillation_weight": "distillation_weight",
    "early_stopping": "early_stopping",
    "validation_fraction": "validation_fraction",
    "n_iter_no_change": "patience", "random_state": "seed"}
#: The same for the options converted on the way (training) and the
#: inference options of predict and evaluate.
_DESTINATIONS = {**_TRAINING_OPTIONS, "class_weight": "class_weight",
                 "crop_size": "crop_size", "scale_range": "scale_range",
                 "output_resolution": "resolution", "inference": "inference",
                 "test_time_flip": "test_time_flip",
                 "test_time_scales": "test_time_scales",
                 "superpixels": "superpixels"}
#: Parameters that define the network: a resumed model keeps its own.
_FIXED_ON_RESUME = ("architecture", "hidden_sizes")


def _option(name):
    """The command-line option of estimator parameter ``name``."""
    return "--" + _DESTINATIONS[name].replace("_", "-")


def _parameter_error(exc):
    """An estimator's parameter error, in the command line's option names
    where the message starts with a parameter name."""
    message = str(exc)
    # Python syntax (use device='cpu') in the options' syntax first.
    for parameter in _DESTINATIONS:
        message = re.sub(rf"(?<![\w-]){parameter}='([^']*)'",
                         lambda m, p=parameter: f"{_option(p)} {m.group(1)}",
                         message)
    name = message.split(" ", 1)[0].split("=", 1)[0]
    if name in _DESTINATIONS:
        message = _option(name) + message[len(name):]
    return InputError(message)


def estimator_params(args):
    """The estimator parameters of the options given on the command line
    (an option left out is None in ``args`` and is not in the result)."""
    params = {name: getattr(args, destination)
              for name, destination in _TRAINING_OPTIONS.items()
              if getattr(args, destination) is not None}
    if (args.architecture == "plain" and args.instances is None
            and getattr(args, "resume", None) is None):
        # The paper's plain network is not recurrent; 3 instances of it
        # would need a 36037-pixel context. A resumed model keeps its own.
        params["n_instances"] = 1
    if args.class_weight is not None:
        params["class_weight"] = (None if args.class_weight == "none"
                                  else args.class_weight)
    if args.crop_size is not None:
        params["crop_size"] = args.crop_size or None  # 0: whole images
    if args.scale_range is not None:
        params["scale_range"] = tuple(args.scale_range)
    return params


def _new_model(params):
    from .segmenter import RecurrentCNNSegmenter

    return RecurrentCNNSegmenter(**{"random_state": SEED_DEFAULT, **params})


def _resumed_model(path, params):
    """The model of ``--resume`` with the given options applied: (model,
    segmenter, class names, training record)."""
    from sklearn.base import clone

    model, segmenter, class_names, training = load_model(path)
    for name in _FIXED_ON_RESUME:
        if name not in params:
            continue
        # Compared as layers: hidden_sizes=None and the sizes it stands for
        # are the same network.
        asked = clone(segmenter).set_params(**{name: params[name]})
        if asked._layers() != segmenter._layers():
            raise InputError(
                f"{_option(name)} {_option_text(params[name])}: the model in "
                f"{path} has {name}={segmenter.get_params()[name]!r}, and a "
                "resumed model keeps its network; leave the option out")
    seed = params.get("random_state")
    if seed is not None and seed != segmenter.random_state:
        # Training goes on with the random generator saved in the model:
        # a new seed would be recorded but never used.
        raise InputError(
            f"--seed {seed}: the model in {path} goes on with the random "
            f"generator it saved (seeded with {segmenter.random_state!r}); "
            "leave the option out")
    segmenter.set_params(**params, warm_start=True)
    return model, segmenter, class_names, training


def _option_text(value):
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def train(args, say):
    from sklearn.exceptions import ConvergenceWarning

    from .backend import resolve_device

    check_writable_file(args.output)
    params = dict(estimator_params(args), verbose=0 if args.quiet else 1)
    earlier = []
    if args.resume is not None:
        model, segmenter, class_names, previous = _resumed_model(
            args.resume, params)
        # The record of every earlier training, so that evaluate notices
        # test images that any of them used.
        earlier = list(previous.pop("earlier", [])) + [previous]
        start_epochs = int(segmenter.n_iter_)
    else:
        model = segmenter = _new_model(params)
        class_names, start_epochs = None, 0
    if args.class_names is not None:
        class_names = args.class_names
    try:
        segmenter._check_params()
        device = resolve_device(segmenter.device)
    except ValueError as exc:
        raise _parameter_error(exc) from None
    # A bad teacher file fails before the data is read.
    teacher = None if args.teacher is None else load_model(args.teacher)
    if teacher is not None and segmenter.instance_loss != "last":
        raise InputError(f"--teacher trains the last instance's scores "
                         f"only; use --instance-loss last, not "
                         f"{segmenter.instance_loss}")
    data = load_data(args, "train", args.quiet, say)
    if class_names is None:
        class_names = data.class_names
    found = np.unique(np.concatenate([m[m >= 0].ravel() for m in
                                      data.labels] + [np.zeros(0, int)]))
    if args.class_names is not None and found.size and \
            found[-1] >= len(class_names):
        raise InputError(f"--class-names names {len(class_names)} classes "
                         f"(labels 0 to {len(class_names) - 1}), but the "
                         f"labels go up to {int(found[-1])}")
    fit_params, teacher_record = {}, None
    if teacher is not None:
        classes = segmenter.classes_ if args.resume is not None else found
        fit_params, teacher_record = _teacher_targets(
            args.teacher, teacher, model, classes, data, say, device)
    what = (f"resuming {args.resume} (after "
            f"{_count(start_epochs, 'epoch')}): " if args.resume else
            "training ")
    say(f"{what}{_architecture_name(segmenter)} "
        f"({_count(segmenter.n_instances, 'instance')}, "
        f"{segmenter.sampling} sampling) on {data.description}, "
        f"{_count(found.size, 'class')}, up to "
        f"{_count(segmenter.max_iter, 'epoch')}"
        f"{' more' if args.resume else ''}, on the "
        + ("GPU" if device == "gpu" else
           f"CPU ({_count(available_threads(), 'thread')})"))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(data.images, data.labels, **fit_params)
        except (ValueError, TypeError) as exc:
            raise _translated(exc, data) from None
    seconds = time.perf_counter() - start
    segmenter.set_params(verbose=0, warm_start=False)
    added = int(segmenter.n_iter_) - start_epochs
    training = dict(data.source, n_images=len(data.images), epochs=added,
                    seconds=round(seconds, 3))
    if teacher_record is not None:
        training["teacher"] = teacher_record
    if earlier:
        training["earlier"] = earlier
    save_model(args.output, model, class_names, training)
    loss = (f", final loss {segmenter.loss_curve_[-1]:.4f}"
            if segmenter.loss_curve_ else "")
    total = (f" ({segmenter.n_iter_} in all)" if args.resume else "")
    say(f"saved {args.output}: {_count(segmenter.n_classes_, 'class')}, "
        f"{_count(added, 'epoch')}{total} in {seconds:.1f} s{loss}")
    return 0


def _teacher_targets(path, loaded, model, classes, data, say,
                     student_device):
    """The fit parameters that hand ``model`` the class probabilities of
    the teacher (``loaded`` from ``path`` by :func:`load_model`) for the
    training images, and the record of the teacher's file and training
    (for evaluate's overlap note)."""
    teacher, teacher_segmenter, _, teacher_training = loaded
    if not np.array_equal(teacher_segmenter.classes_, classes):
        raise InputError(
            f"--teacher {path}: it labels classes "
            f"{teacher_segmenter.classes_.tolist()}, the model being trained "
            f"has {np.asarray(classes).tolist()}")
    say(f"labelling {_count(len(data.images), 'training image')} with the "
        f"teacher {path}")
    # The teacher labels where the student trains (it may have been saved
    # from a GPU machine).
    teacher_segmenter.set_params(device=student_device)
    try:
        proba = teacher.predict_proba(data.images)
    except (ValueError, TypeError) as exc:
        raise InputError(f"--teacher {path}: "
                         f"{_translated(exc, data)}") from None
    # float16 halves what the soft targets of a dataset hold in memory.
    proba = [p.astype(np.float16) for p in proba]
    steps = getattr(model, "steps", None)
    key = f"{steps[-1][0]}__teacher_proba" if steps else "teacher_proba"
    return {key: proba}, dict(teacher_training, file=path)


def _architecture_name(segmenter):
    architecture = segmenter.architecture
    return architecture if isinstance(architecture, str) else "custom layers"


# ---------------------------------------------------------------- predict

def _prepare(args):
    model, segmenter, class_names, training = load_model(args.model)
    changes = {name: value for name, value in (
        ("output_resolution", args.resolution), ("inference", args.inference),
        ("test_time_flip", args.test_time_flip),
        ("test_time_scales", (tuple(args.test_time_scales)
                              if args.test_time_scales else None)),
        ("device", args.device))
        if value is not None}
    if args.superpixels is not None:
        changes["superpixels"] = "felzenszwalb" if args.superpixels else None
    segmenter.set_params(verbose=0, **changes)
    try:
        segmenter._check_inference_params()
        if args.device is not None:
            from .backend import resolve_device
            resolve_device(args.device)
    except ValueError as exc:
        raise _parameter_error(exc) from None
    return model, segmenter, class_names, training


def _predict_one(model, image, name, n_instances):
    kwargs = {} if n_instances is None else {"n_instances": n_instances}
    try:
        return model.predict([image], **kwargs)[0]
    except (ValueError, TypeError) as exc:
        raise InputError(name_files(str(exc), [name])) from None


def predict(args, say):
    model, _, _, _ = _prepare(args)
    if args.output_dir == "":
        raise InputError("--output-dir: an empty folder name")
    paths = _without_predict_outputs(collect_images(args.inputs), say)
    if not paths:
        raise InputError("no images to label: the inputs are all label "
                         "maps and overlays of an earlier 'skrcnn predict'")
    check_unique_stems(paths)
    check_outputs_spare_inputs(
        paths, args.output_dir,
        OUTPUT_SUFFIXES[:1] if args.no_overlay else OUTPUT_SUFFIXES)
    check_pictures(paths)
    if os.path.exists(args.output_dir) and not os.path.isdir(
            args.output_dir):
        raise InputError(f"{args.output_dir}: exists and is not a folder")
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{args.output_dir}: cannot create the folder "
                         f"({exc.strerror or exc})") from None
    start = time.perf_counter()
    # One allocator context for the whole loop, not one per image.
    with retain_freed_memory(), parallel_cpu(), Progress(
            "predict", len(paths),
            enabled=not args.quiet and len(paths) > 1) as bar:
        for done, path in enumerate(paths, 1):
            image = read_image(path)
            labels = _predict_one(model, image, path, args.instances)
            base = os.path.join(args.output_dir, stem(path))
            write_label_png(base + OUTPUT_SUFFIXES[0], labels)
            if not args.no_overlay:
                write_rgb_png(base + OUTPUT_SUFFIXES[1],
                              overlay(image, labels, args.alpha))
            bar.update(done, os.path.basename(path))
    what = "label maps" if args.no_overlay else "label maps and overlays"
    say(f"wrote {what} of {_count(len(paths), 'image')} to "
        f"{args.output_dir} in {time.perf_counter() - start:.1f} s")
    return 0


# --------------------------------------------------------------- evaluate

def _overlaps(training, source):
    """What a training (this one, one it resumed, or its teacher's) shares
    with the evaluated images, in words, or None: the same fold of the
    same dataset, or the same images folder."""
    # A teacher's training images reached the model through its targets.
    records = [training] + list(training.get("earlier", []))
    records += [r["teacher"] for r in records if "teacher" in r]
    for record in records:
        if "dataset" in source:
            if record.get("dataset") != source["dataset"]:
                continue
            folds = {record.get("fold"), source.get("fold")}
            if "all" in folds or len(folds) == 1:
                return (f"the {record.get('fold')} fold of "
                        f"{record.get('dataset')}")
        elif record.get("images") is not None and os.path.realpath(
                record["images"]) == os.path.realpath(source["images"]):
            return f"the images in {record['images']}"
    return None


def evaluate(args, say):
    from .metrics import confusion_matrix, scores_from_confusion

    model, segmenter, class_names, training = _prepare(args)
    if args.json is not None and args.json != "-":
        check_writable_file(args.json, example="scores.json")

    def note(message):  # on stderr: stdout may carry the JSON report
        if not args.quiet:
            print(f"skrcnn: note: {message}", file=sys.stderr)
    data = load_data(args, "test", args.quiet, note)
    if not data.images:
        raise InputError(f"{data.description}: no images to evaluate")
    if class_names is None:
        class_names = data.class_names
    elif data.class_names is not None:
        _note_other_names(class_names, data.class_names, note)
    overlap = _overlaps(training, data.source)
    if overlap is not None:
        note(f"the model was trained on {overlap}; these images overlap it")
    predictions = []
    start = time.perf_counter()
    with retain_freed_memory(), parallel_cpu(), Progress(
            "evaluate", len(data.images),
            enabled=not args.quiet and len(data.images) > 1) as bar:
        for done, (image, name) in enumerate(zip(data.images,
                                                 data.image_names), 1):
            predictions.append(_predict_one(model, image, name,
                                            args.instances))
            bar.update(done, os.path.basename(str(name)))
    seconds = time.perf_counter() - start
    present = np.concatenate([m[m >= 0].ravel() for m in data.labels])
    classes = np.union1d(np.asarray(segmenter.classes_, np.int64),
                         np.unique(present).astype(np.int64))
    try:
        cm = confusion_matrix(data.labels, predictions, labels=classes)
        scores = scores_from_confusion(cm)
    except ValueError as exc:
        raise _translated(exc, data) from None
    rows = []
    for k, value in enumerate(classes.tolist()):
        accuracy = scores["per_class_accuracy"][k]
        iou = scores["per_class_iou"][k]
        rows.append({"label": value, "name": class_name(class_names, value),
                     "pixels": int(cm[k].sum()),
                     "accuracy": None if math.isnan(accuracy)
                     else float(accuracy),
                     "iou": None if math.isnan(iou) else float(iou)})
    report = {"model": os.path.abspath(args.model),
              "data": data.description, "n_images": len(data.images),
              "n_instances": args.instances or segmenter.n_instances,
              "test_time_flip": segmenter.test_time_flip,
              "test_time_scales": (None if segmenter.test_time_scales is None
                                   else list(segmenter.test_time_scales)),
              "superpixels": _superpixels_name(segmenter.superpixels),
              "pixel_accuracy": scores["pixel_accuracy"],
              "mean_class_accuracy": scores["mean_class_accuracy"],
              "mean_iou": scores["mean_iou"], "classes": rows,
              "seconds": round(seconds, 3)}
    if args.json != "-":
        _print_report(report, print)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        try:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
        except OSError as exc:
            raise InputError(f"{args.json}: cannot write "
                             f"({exc.strerror or exc})") from None
    return 0


def _note_other_names(model_names, data_names, note):
    """Say so (by ``note``) when the model and the data name the same
    labels otherwise: a model of other classes scores nonsense against
    these labels."""
    shared = min(len(model_names), len(data_names))
    differ = [k for k in range(shared)
              if str(model_names[k]) != str(data_names[k])]
    if differ:
        k = differ[0]
        note(f"the model calls label {k} {model_names[k]!r} where the data "
             f"calls it {data_names[k]!r} ({len(differ)} of {shared} labels "
             "named otherwise); the report uses the model's names")


def _superpixels_name(superpixels):
    """The model's ``superpixels`` setting for the report: a method name,
    None, or "callable" for a function given in Python."""
    return superpixels if superpixels is None or isinstance(
        superpixels, str) else "callable"


def _print_report(report, out):
    """The scores are the command's result: printed even with -q."""
    averaging = (", averaged with the mirror" if report["test_time_flip"]
                 else "")
    if report["test_time_scales"]:
        averaging += ", averaged over scales " + " ".join(
            f"{scale:g}" for scale in report["test_time_scales"])
    if report["superpixels"]:
        averaging += f", averaged over {report['superpixels']} superpixels"
    out(f"{report['data']}, {_count(report['n_instances'], 'instance')}"
        f"{averaging}:")
    out(f"  pixel accuracy          {report['pixel_accuracy']:.4f}")
    out(f"  average class accuracy  {report['mean_class_accuracy']:.4f}")
    out(f"  mean IoU                {report['mean_iou']:.4f}")
    width = max([len(row["name"]) for row in report["classes"]] + [5])
    out(f"  {'label':>5}  {'class':<{width}}  {'pixels':>9}  "
        f"{'accuracy':>8}  {'IoU':>6}")
    for row in report["classes"]:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        iou = "-" if row["iou"] is None else f"{row['iou']:.4f}"
        out(f"  {row['label']:>5}  {row['name']:<{width}}  "
            f"{row['pixels']:>9}  {accuracy:>8}  {iou:>6}")
