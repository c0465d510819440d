"""Dense sampling versus the paper's patch sampling: time to the same accuracy.

Modes: ``patch`` (the paper: 67x67 patches around random labelled pixels,
batches of 16), ``dense`` (whole images through the strided network, one a
step) and ``cropM`` (dense sampling on batches of crops with MxM strided
outputs each).

On REFERENCE.md's canonical Stanford Background fold (names sorted, KFold(5,
shuffle, random_state=0), fold 0: 572 train / 143 test), trains the same
network (rcnn2, ``--instances`` instances, Adam) once with each sampling
mode, epoch after epoch, alternating between the two so that machine noise
hits both alike. After every epoch it scores the test images (pixel accuracy
of one strided pass per image: every S-th pixel, an unbiased sample) and
records the CPU time spent training so far (process time, robust to other
load on the machine; wall time is reported too).

It prints the accuracy-versus-time curves and, for accuracy levels both
modes reach, how long each took and the speed-up of dense sampling.

Usage::

    python benchmarks/sampling.py [--minutes 10] [--instances 2]
        [--data-home DIR] [--json out.json]
"""

import argparse
import json
import sys
import time

import numpy as np

from skrcnn import RecurrentCNNSegmenter
from skrcnn.inference import image_scores
from skrcnn.model_selection import canonical_stanford_split
from skrcnn.preprocessing import standardize_image

from _protocol import check_output_file
from _stanford_data import load_stanford


def strided_accuracy(model, images, labels):
    """Pixel accuracy on every S-th pixel (one strided pass per image)."""
    network, _ = model._network()
    step = network.stride ** model.n_instances
    correct = total = 0
    for image, truth in zip(images, labels):
        x = np.ascontiguousarray(standardize_image(image).transpose(2, 0, 1))
        scores, rows, cols = image_scores(network, x, model.n_instances,
                                          step=step)
        guess = model.classes_[scores.argmax(0)]
        truth = truth[np.ix_(rows, cols)]
        known = truth >= 0
        correct += int((guess[known] == truth[known]).sum())
        total += int(known.sum())
    return correct / total


def make(mode, common):
    """The estimator of a mode name: patch, dense or cropM."""
    if mode.startswith("crop"):
        return RecurrentCNNSegmenter(sampling="dense",
                                     crop_size=int(mode[4:]), **common)
    # "dense" is whole images, one a step (crop_size=None): the estimator's
    # default crop_size became 8 after this mode was named.
    crop = {"crop_size": None} if mode == "dense" else {}
    return RecurrentCNNSegmenter(sampling=mode, **crop, **common)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="training CPU-time budget per mode, in minutes "
                             "of wall time on 2 cores (CPU seconds / 2)")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--patches-per-epoch", type=int, default=4096,
                        help="an epoch of the patch mode (an epoch of the "
                             "dense and crop modes is one pass over the "
                             "training images)")
    parser.add_argument("--modes", nargs="+", default=["dense", "patch"],
                        help="'patch', 'dense' (whole images) or 'cropM' "
                             "(dense sampling on batches of MxM-output crops)")
    parser.add_argument("--data-home", help="folder holding iccv09Data.tar.gz")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    bad = [m for m in args.modes if m not in ("dense", "patch") and not (
        m.startswith("crop") and m[4:].isdigit() and int(m[4:]) >= 1)]
    if bad:
        parser.error(f"--modes: {bad[0]!r} is not 'patch', 'dense' or "
                     "'cropM' (M >= 1)")
    if args.minutes <= 0:
        parser.error(f"--minutes must be > 0, got {args.minutes:g}")
    for flag, value in (("--instances", args.instances),
                        ("--batch-size", args.batch_size),
                        ("--patches-per-epoch", args.patches_per_epoch)):
        if value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be > 0, got "
                     f"{args.learning_rate:g}")
    if args.json is not None:
        check_output_file(parser, "--json", args.json, "sampling.json")

    data = load_stanford(args.data_home, parser)
    train, test = canonical_stanford_split(data.filenames)
    X_train = [data.images[i] for i in train]
    y_train = [data.labels[i] for i in train]
    X_test = [data.images[i] for i in test]
    y_test = [data.labels[i] for i in test]
    print(f"canonical fold: {len(train)} train / {len(test)} test images; "
          f"rcnn2, {args.instances} instances; modes {args.modes}",
          flush=True)

    common = dict(architecture="rcnn2", n_instances=args.instances,
                  instance_schedule="fixed", learning_rate=args.learning_rate,
                  batch_size=args.batch_size,
                  patches_per_epoch=args.patches_per_epoch, random_state=0)
    models = {mode: make(mode, common) for mode in args.modes}
    curves = {mode: [] for mode in models}
    spent = {mode: [0.0, 0.0] for mode in models}  # cpu, wall
    budget = args.minutes * 60 * 2  # CPU seconds on 2 cores
    classes = np.arange(8)
    while any(spent[m][0] < budget for m in models):
        for mode, model in models.items():
            if spent[mode][0] >= budget:
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            model.partial_fit(X_train, y_train, classes=classes)
            spent[mode][0] += time.process_time() - cpu
            spent[mode][1] += time.perf_counter() - wall
            accuracy = strided_accuracy(model, X_test, y_test)
            curves[mode].append({"epoch": model.n_iter_,
                                 "cpu_s": spent[mode][0],
                                 "wall_s": spent[mode][1],
                                 "loss": model.loss_curve_[-1],
                                 "test_pixel_accuracy": accuracy})
            print(f"{mode:>5} epoch {model.n_iter_:>3}: cpu {spent[mode][0]:7.0f} s"
                  f" wall {spent[mode][1]:6.0f} s loss {model.loss_curve_[-1]:.4f}"
                  f" test pixel accuracy {accuracy:.4f}", flush=True)

    print("\ntime to reach a test pixel accuracy (CPU seconds):")
    best = {m: max(p["test_pixel_accuracy"] for p in curves[m]) for m in curves}
    top = min(best.values())
    summary = []
    for level in np.round(np.linspace(0.4, top, 6), 3):
        reach = {}
        for mode in curves:
            hits = [p["cpu_s"] for p in curves[mode]
                    if p["test_pixel_accuracy"] >= level]
            reach[mode] = hits[0] if hits else None
        cells = ", ".join(f"{m} {'-' if s is None else f'{s:.0f}'} s"
                          for m, s in reach.items())
        print(f"  {level:.3f}: {cells}")
        summary.append({"accuracy": float(level), **reach})
    print("best test pixel accuracy: " + ", ".join(
        f"{m} {b:.4f}" for m, b in best.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "curves": curves,
                       "summary": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
