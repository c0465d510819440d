"""The paper's 5-fold Stanford Background table from models trained one
fold at a time.

A full 5-fold run of rcnn2 at the length that reaches the paper's accuracy
takes many hours of CPU per fold, more than one working session. So
``benchmarks/stanford.py --fold K --save-model ... [--resume ...]`` trains
each paper fold in parts, and this script scores the saved models together:
each on its own fold's test images at full resolution (dense pass; with
``--test-time-flip`` / ``--test-time-scales`` also averaged over mirrored /
resized images, and with ``--superpixels`` over image segments, as extra
rows), and prints and writes (JSON + Markdown) the
per-fold rows and their mean over the folds (how 5-fold figures are
reported; the pooled confusion matrix's scores go to the JSON too), beside
REFERENCE.md's bars. Each model's fold and training time come from the
``.json`` sidecar ``--save-model`` wrote beside it. Fewer than 5 models
give a partial table, titled with the number of folds.

A model of REFERENCE.md's canonical fold (``stanford.py --canonical``)
stands in for paper fold 0: the two splits share 142 of their 143 test
images, but the paper fold (which keeps byte-identical images together)
tests on 6000348, an image the canonical model trained on, and on its
duplicate 6000257. Such a model is scored on paper fold 0's test images
less every image that is, or is byte-identical to, one of its training
images (141 images), and the table says so.

Usage::

    python benchmarks/stanford_folds.py fold0.joblib fold1.joblib \\
        fold2.joblib fold3.joblib fold4.joblib --test-time-flip \\
        --test-time-scales 0.75 1 1.25
"""

import argparse
import json
import os
import sys
import time

import joblib
import numpy as np

from skrcnn.model_selection import (canonical_stanford_split,
                                    stanford_duplicate_groups,
                                    stanford_folds)

from _protocol import (add_superpixels_argument, check_output_file,
                       markdown_table, scored_rows, summarise, write_outputs)
from _stanford_data import load_stanford
from stanford import REFERENCES, split_name

# The sidecar's split name of each paper fold, as stanford.py writes it.
PAPER_FOLDS = {split_name(False, fold): fold for fold in range(5)}


def fold_of_sidecar(path):
    """(paper fold, whether it is the canonical split, sidecar dict) of a
    ``stanford.py --save-model`` file; ValueError naming the problem."""
    sidecar = path + ".json"
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if not os.path.exists(sidecar):
        raise ValueError(f"{path}: {sidecar} (its fold and training time, "
                         f"written by stanford.py --save-model) is missing")
    with open(sidecar) as f:
        saved = json.load(f)
    split = saved.get("split")
    if split == split_name(True, 0):
        return 0, True, saved
    if split in PAPER_FOLDS:
        return PAPER_FOLDS[split], False, saved
    raise ValueError(f"{path}: not trained on one whole paper fold "
                     f"({sidecar} says split {split!r}; a --n-train or "
                     f"--n-test run cannot be scored here)")


def scored_test_images(filenames, fold, canonical):
    """Indices of paper fold ``fold``'s test images a model may be scored
    on: all of them, or for a model of the canonical split (fold 0) those
    neither in nor byte-identical to one of its training images."""
    test = stanford_folds(filenames)[fold][1]
    if not canonical:
        return test
    groups = stanford_duplicate_groups(filenames)
    seen = set(groups[canonical_stanford_split(filenames)[0]])
    return np.array([i for i in test if groups[i] not in seen], dtype=int)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="--save-model files of stanford.py --fold K "
                             "(or --canonical for fold 0), one per fold")
    parser.add_argument("--test-time-flip", action="store_true",
                        help="also score the mirror-averaged labellings")
    parser.add_argument("--test-time-scales", type=float, nargs="+",
                        metavar="S",
                        help="also score labellings averaged over the images "
                             "resized by these factors, e.g. 0.75 1 1.25")
    add_superpixels_argument(parser)
    parser.add_argument("--n-test", type=int,
                        help="score only the first N test images of a fold "
                             "(quick runs)")
    parser.add_argument("--data-home")
    parser.add_argument("--output", default="stanford_folds_results",
                        help="path stem of the .json and .md outputs")
    args = parser.parse_args(argv)

    folds = {}
    for path in args.models:
        try:
            fold, canonical, saved = fold_of_sidecar(path)
        except ValueError as exc:
            parser.error(str(exc))
        if fold in folds:
            parser.error(f"{path}: fold {fold} is given twice (also "
                         f"{folds[fold][0]})")
        folds[fold] = (path, canonical, saved)
    if args.test_time_scales and min(args.test_time_scales) <= 0:
        parser.error(f"--test-time-scales must be positive, got "
                     f"{args.test_time_scales}")
    if args.n_test is not None and args.n_test < 1:
        parser.error(f"--n-test must be at least 1, got {args.n_test}")
    check_output_file(parser, "--output", args.output + ".json")

    data = load_stanford(args.data_home, parser)
    classes = np.arange(len(data.class_names))
    rows, notes, start = [], [], time.perf_counter()
    for fold in sorted(folds):
        path, canonical, saved = folds[fold]
        test = scored_test_images(data.filenames, fold,
                                  canonical)[:args.n_test]
        model = joblib.load(path)
        X = [data.images[i] for i in test]
        y = [data.labels[i] for i in test]
        print(f"fold {fold}: {path}, {len(test)} test images", flush=True)
        row = {"fold": fold, "model": f"rcnn2, {model.n_instances} "
               f"instances", "file": path, "split": saved["split"],
               "test_images": len(test), "train_s": float(saved["train_s"]),
               "epochs": model.n_iter_}
        rows.extend(scored_rows(model, row, X, y, classes, args, print))
        if canonical:
            notes.append(f"Fold {fold} is scored with the canonical-fold "
                         f"model {path} on {len(test)} of the paper fold's "
                         f"test images (without those in, or byte-identical "
                         f"to one in, its training images).")

    title = (f"Stanford Background, {len(folds)} of the 5 paper folds "
             f"(fold{'s' if len(folds) > 1 else ''} "
             f"{', '.join(map(str, sorted(folds)))}), models trained fold "
             f"by fold; training time: the mean per fold")
    summary = summarise(rows)
    markdown = markdown_table(summary, REFERENCES, title)
    markdown += ("\n#### Per fold\n\n| fold | model | test images | training "
                 "| pixel acc. | class avg. | mean IoU |\n"
                 "|---|---|---|---|---|---|---|\n")
    for row in rows:
        markdown += (f"| {row['fold']} | {row['model']} | "
                     f"{row['test_images']} | {row['train_s'] / 60:.1f} min | "
                     f"{100 * row['pixel_accuracy']:.1f}% | "
                     f"{100 * row['mean_class_accuracy']:.1f}% | "
                     f"{100 * row['mean_iou']:.1f}% |\n")
    if notes:
        markdown += "\n" + "\n".join(notes) + "\n"
    print("\n" + markdown)
    write_outputs(args.output, {"args": vars(args), "rows": rows,
                                "summary": summary,
                                "wall_s": time.perf_counter() - start,
                                "cpu_count": os.cpu_count()}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
