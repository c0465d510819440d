"""The paper's Stanford Background protocol (Table 3 rows), on a time budget.

5-fold cross-validation, 572 train / 143 test images per fold
(``skrcnn.model_selection.stanford_folds``: names sorted, seeded, the three
byte-identical image pairs kept in one fold), or ``--canonical`` for
REFERENCE.md's canonical fold 0 (the fold the PyTorch and scikit-image
figures were measured on). Per fold it trains

* rcnn2 with 2 instances for half of ``--train-minutes``, scores it, then
  adds the third instance (shared weights, the paper's staged training) and
  trains for the other half, and scores it again;
* the plain network (Stanford sizes) for ``--train-minutes`` (first, with
  ``--distil-from-plain``: rcnn2 then trains on its probabilities too);

and scores each on the fold's test images at full resolution (dense pass;
with ``--test-time-flip`` also averaged with the mirrored images' labellings,
with ``--test-time-scales`` over the images resized by those factors, as
extra rows):
pixel accuracy, average per-class accuracy, mean IoU, training time and
prediction time per image. It prints and writes (JSON + Markdown) the table
beside REFERENCE.md's accuracy bars, its PyTorch 30-minute figure and
scikit-image's trainable segmenter.

``--fold K`` runs paper fold K alone. ``--save-model`` keeps the rcnn2
model of the last fold run (the canonical fold's with ``--canonical``), with a
``.json`` beside it holding its training time and accuracy curve (saved at
every ``--curve-minutes`` checkpoint too, so a run that is killed keeps
its last one; one taken in the 2-instance stage resumes with 2 instances);
``--resume`` trains such a model on for another ``--train-minutes`` (its
instances unchanged), so a long CPU training can be run in several parts
and reported as one curve. Ctrl-C ends the current training stage early:
the model is still scored, and saved with ``--save-model``.

Usage::

    python benchmarks/stanford.py --canonical --train-minutes 30
    # rcnn2 alone, with the best options measured so far (README):
    python benchmarks/stanford.py --canonical --no-plain --train-minutes 30 \
        --horizontal-flip --learning-rate 3e-4
    python benchmarks/stanford.py --folds 5 --train-minutes 60   # full protocol
    python benchmarks/stanford.py --canonical --no-plain --train-minutes 100 \
        --save-model rcnn2.joblib
    python benchmarks/stanford.py --canonical --no-plain --train-minutes 60 \
        --resume rcnn2.joblib --save-model rcnn2.joblib          # 160 min
    # the 5-fold protocol one fold and one part at a time, then scored
    # together (benchmarks/stanford_folds.py):
    python benchmarks/stanford.py --fold 1 --no-plain --train-minutes 60 \
        --save-model fold1.joblib
    python benchmarks/stanford.py --fold 1 --no-plain --train-minutes 60 \
        --resume fold1.joblib --save-model fold1.joblib
    # ... predicting with a moving average of the weights (and scored with
    # the last weights too, as extra rows):
    python benchmarks/stanford.py --canonical --no-plain --train-minutes 60 \
        --resume rcnn2.joblib --weight-averaging 0.999 --save-model rcnn2.joblib
    # ... then on with 100 instead of 50 units in conv 2:
    python benchmarks/stanford.py --canonical --no-plain --train-minutes 60 \
        --resume rcnn2.joblib --widen 25 100 --save-model rcnn2-wide.joblib
    # knowledge distillation: the plain network trained first, rcnn2 then
    # learns from its probabilities as well as from the labels:
    python benchmarks/stanford.py --canonical --distil-from-plain
    # ... or from a saved teacher of the canonical fold, into a resumed rcnn2:
    python benchmarks/stanford.py --canonical --no-plain --train-minutes 60 \
        --resume rcnn2.joblib --teacher plain.joblib --save-model rcnn2.joblib
"""

import argparse
import json
import os
import sys
import time

import joblib

from skrcnn.model_selection import canonical_stanford_split, stanford_folds

from _protocol import (add_training_arguments, parse_training_args, report,
                       rows_for_fold, training_params)
from _stanford_data import load_stanford
from _widen import widen

REFERENCES = [
    ("bar (REFERENCE.md 5), 5-fold, 3 instances",
     {"pixel": ">= 80%", "class": ">= 70%"}),
    ("PyTorch rcnn2 dense, 30 min CPU, canonical fold, 3 inst.",
     {"pixel": "63.1%", "class": "47.5%", "iou": "35.7%", "train": "30 min",
      "predict": "0.70 s"}),
    ("PyTorch rcnn2 dense, 30 min CPU, canonical fold, 2 inst.",
     {"pixel": "58.6%", "class": "43.3%", "iou": "31.2%", "train": "30 min"}),
    ("scikit-image trainable segmenter (RF), canonical fold",
     {"pixel": "59.0%", "class": "48.7%", "iou": "37.2%", "train": "2.9 min",
      "predict": "0.41 s"}),
]


def split_name(canonical, fold):
    """How a sidecar names the split a model was trained on."""
    return "canonical fold 0" if canonical else f"fold {fold} of 5"


def save_resumable(path, model, train_s, points, split):
    """The model, and beside it its training time and curve points (for
    ``--resume``; ``split`` names the whole split it was trained on, as
    :func:`split_name` does, or is None for a subset, which cannot resume).

    Each file is written under a temporary name (same extension, so joblib
    compresses as the name asks) and then renamed, so a run killed while
    saving leaves whole files; the sidecar records the model's update
    count, so that :func:`load_resumable` notices a model renamed without
    its sidecar."""
    sidecar = {"split": split,
               "n_instances": model.n_instances, "updates": model.t_,
               "train_s": train_s, "curve": points}
    folder, name = os.path.split(path)
    model_part = os.path.join(folder, ".part." + name)
    sidecar_part = model_part + ".json"
    joblib.dump(model, model_part)
    with open(sidecar_part, "w") as f:
        json.dump(sidecar, f, indent=2)
    os.replace(model_part, path)
    os.replace(sidecar_part, path + ".json")


def load_resumable(path, args, parser, split=split_name(True, 0)):
    """(model, training seconds, curve points) of a ``--save-model`` file
    of the whole ``split`` (a :func:`split_name`)."""
    sidecar = path + ".json"
    if not os.path.exists(sidecar):
        parser.error(f"--resume {path}: {sidecar} (its training time and "
                     f"curve, written by --save-model) is missing")
    with open(sidecar) as f:
        saved = json.load(f)
    if saved.get("split") != split:
        parser.error(f"--resume {path}: it was not trained on the whole "
                     f"{split} ({sidecar} says {saved.get('split')})")
    model = joblib.load(path)
    # Sidecars written before the update count was recorded have none.
    if saved.get("updates", model.t_) != model.t_:
        parser.error(f"--resume {path}: {sidecar} belongs to another save "
                     f"of it ({saved['updates']} updates, the model has "
                     f"{model.t_}); was a save cut short?")
    if model.architecture != "rcnn2":
        parser.error(f"--resume {path}: an rcnn2 model is needed, this one "
                     f"is {model.architecture!r}")
    # The options given on this command line (learning rate, flips, crops,
    # ...) apply from here; the others stay as the model was trained.
    model.set_params(**training_params(args, getattr(args, "given", None)))
    return model, float(saved["train_s"]), saved["curve"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canonical", action="store_true",
                        help="REFERENCE.md's canonical fold 0 only")
    parser.add_argument("--folds", type=int,
                        help="run the first K of the 5 folds (default: 5)")
    parser.add_argument("--fold", type=int, metavar="K",
                        help="run paper fold K (0-4) only: with "
                             "--save-model and --resume, a long 5-fold run "
                             "can go one fold and one part at a time "
                             "(benchmarks/stanford_folds.py scores the "
                             "saved models together)")
    add_training_arguments(parser)
    parser.add_argument("--n-train", type=int,
                        help="use only the first N training images of a fold "
                             "(quick runs)")
    parser.add_argument("--n-test", type=int,
                        help="score only the first N test images of a fold")
    parser.add_argument("--data-home")
    parser.add_argument("--output", default="stanford_results",
                        help="path stem of the .json and .md outputs")
    parser.add_argument("--save-model",
                        help="joblib file for the last fold's rcnn2 model "
                             "(and a .json of its training time and curve)")
    parser.add_argument("--resume", metavar="MODEL",
                        help="train this --save-model file of the canonical "
                             "fold (or of --fold K) on instead of a new "
                             "rcnn2")
    parser.add_argument("--widen", type=int, nargs=2, metavar=("NHU1", "NHU2"),
                        help="with --resume: first give the model this many "
                             "hidden units (new units start with zero "
                             "outgoing weights, so its labelling is "
                             "unchanged; benchmarks/_widen.py)")
    args = parse_training_args(parser, argv)
    if args.fold is not None:
        if args.canonical or args.folds is not None:
            parser.error("--fold runs one paper fold: not with --canonical "
                         "or --folds")
        if not 0 <= args.fold <= 4:
            parser.error(f"--fold must be 0 to 4, got {args.fold}")
    one_split = args.canonical or args.fold is not None
    resumed = None
    if args.resume:
        if not one_split or args.no_rcnn2 or args.n_train or args.n_test:
            parser.error("--resume continues the rcnn2 model of one whole "
                         "split: use it with --canonical or --fold K, "
                         "without --no-rcnn2, --n-train or --n-test")
        resumed = load_resumable(args.resume, args, parser,
                                 split_name(args.canonical, args.fold))
        if args.widen:
            model, *rest = resumed
            try:
                resumed = (widen(model, args.widen, args.seed), *rest)
            except ValueError as exc:
                parser.error(f"--widen: {exc}")
    elif args.widen:
        parser.error("--widen applies to a --resume model")
    if args.teacher and not one_split:
        parser.error("--teacher is a model of one split's training images: "
                     "use it with --canonical or --fold K "
                     "(--distil-from-plain trains one per fold)")

    if args.canonical and args.folds is not None:
        parser.error("--canonical runs the canonical fold only: not with "
                     "--folds")
    if args.folds is None:
        args.folds = 1 if args.canonical else 5
    if not 1 <= args.folds <= 5:
        parser.error(f"--folds must be 1 to 5, got {args.folds}")
    for flag, value in (("--n-train", args.n_train),
                        ("--n-test", args.n_test)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    if args.save_model and args.no_rcnn2:
        parser.error("--save-model keeps the rcnn2 model: not with "
                     "--no-rcnn2")
    if args.resume and args.rcnn2_hidden_sizes:
        parser.error("--rcnn2-hidden-sizes sets a new model's widths: use "
                     "--widen with --resume")

    data = load_stanford(args.data_home, parser)
    if args.canonical:
        folds = [(0, canonical_stanford_split(data.filenames))]
    elif args.fold is not None:
        folds = [(args.fold, stanford_folds(data.filenames)[args.fold])]
    else:
        folds = list(enumerate(stanford_folds(data.filenames)))[:args.folds]
    rows, curves, start = [], [], time.perf_counter()
    for index, (train, test) in folds:
        train, test = train[:args.n_train], test[:args.n_test]
        print(f"fold {index}: {len(train)} train / {len(test)} test images, "
              f"{args.train_minutes} min per model", flush=True)
        pick = lambda seq, idx: [seq[i] for i in idx]  # noqa: E731
        whole_fold = not (args.n_train or args.n_test)
        split = split_name(args.canonical, index) if whole_fold else None
        save = None
        if args.save_model:
            def save(model, train_s, points, split=split):
                save_resumable(args.save_model, model, train_s, points,
                               split)
        fold_rows, model, curve = rows_for_fold(
            index, pick(data.images, train), pick(data.labels, train),
            pick(data.images, test), pick(data.labels, test),
            len(data.class_names), args,
            log=lambda line: print(line, flush=True), resumed=resumed,
            on_checkpoint=save)
        rows += fold_rows
        curves.append((index, curve))
        if save is not None and model is not None:
            trained = [r for r in fold_rows if r["model"].startswith("rcnn2")]
            save(model, trained[-1]["train_s"], curve.points)
    if args.canonical:
        protocol = "canonical fold 0"
    elif args.fold is not None:
        protocol = f"paper fold {args.fold} of 5"
    else:
        protocol = f"{len(folds)} of the 5 paper folds"
    if args.n_train or args.n_test:
        protocol += (f" (subset: {args.n_train or 'all'} training / "
                     f"{args.n_test or 'all'} test images per fold)")
    report(args, rows, REFERENCES, f"Stanford Background, {protocol}", start,
           curves)
    return 0


if __name__ == "__main__":
    sys.exit(main())
