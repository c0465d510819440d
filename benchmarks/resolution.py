"""The paper's Table 5: prediction time and pixel accuracy against output
resolution, for shift-and-stitch and for the dense pass.

Takes a fitted model (``--model``: a file of ``skrcnn train`` or of
``benchmarks/stanford.py --save-model``, or a joblib file of a fitted
segmenter; not a pipeline with other steps, whose preprocessing the
network passes timed here would skip; without it, a model is
trained here on the canonical fold for ``--train-minutes``) and the
canonical Stanford fold's test images (``--n-images`` of them: full
resolution shift-and-stitch is 64 network passes per image). For output
resolution 1, 1/2, 1/4 and 1/8 and both inference methods it reports the
prediction time per image and the pixel accuracy; at equal resolution the
two methods must give the same labels (the script exits with status 1 when
their probabilities differ by more than 1e-4 anywhere).

Usage::

    python benchmarks/resolution.py --model rcnn2.joblib --n-images 20
"""

import argparse
import json
import sys
import time

import numpy as np
from sklearn.base import clone

from skrcnn._cli_io import InputError, load_model
from skrcnn.architecture import instance_stride
from skrcnn.backend import resolve_device
from skrcnn.metrics import pixel_accuracy
from skrcnn.model_selection import canonical_stanford_split

from _protocol import (add_training_arguments, check_output_file,
                       make_model, parse_training_args, train_for)
from _stanford_data import load_stanford

RESOLUTIONS = (1.0, 0.5, 0.25, 0.125)
# float32 scores of the same network through two orders of summation.
GAP_TOLERANCE = 1e-4


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--model", help="fitted model file ('skrcnn train' "
                        "or joblib)")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--n-images", type=int, default=20)
    parser.add_argument("--data-home")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default="resolution_results.json")
    args = parser.parse_args(argv)
    if args.n_images < 1:
        parser.error(f"--n-images must be at least 1, got {args.n_images}")
    if not args.model and args.train_minutes <= 0:
        parser.error("--train-minutes must be > 0 (or give --model)")
    try:
        resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    check_output_file(parser, "--json", args.json, "resolution_results.json")
    model = None
    if args.model:
        try:
            loaded, model = load_model(args.model)[:2]
        except InputError as exc:
            parser.error(f"--model {exc}")
        if loaded is not model:
            parser.error(f"--model {args.model}: a pipeline; this benchmark "
                         "times the segmenter's own passes, give a bare one")

    data = load_stanford(args.data_home, parser)
    train, test = canonical_stanford_split(data.filenames)
    X_test = [data.images[i] for i in test[:args.n_images]]
    y_test = [data.labels[i] for i in test[:args.n_images]]
    if model is None:
        # The shared training options at their defaults (dense 8x8 crops,
        # Adam 1e-3, seed 0), on the requested device.
        training = argparse.ArgumentParser()
        add_training_arguments(training)
        defaults = parse_training_args(training, ["--device", args.device])
        model = make_model("rcnn2", 3, defaults)
        train_for(model, [data.images[i] for i in train],
                  [data.labels[i] for i in train], args.train_minutes * 60,
                  np.arange(len(data.class_names)), label="rcnn2 P=3")
    print(f"{model.n_instances} instances, {len(X_test)} test images of the "
          f"canonical fold", flush=True)
    rows = []
    print("| resolution | method | passes | s / image | pixel accuracy |")
    print("|---|---|---|---|---|")
    total_stride = instance_stride(model.layers_) ** model.n_instances
    disagreements = []
    for resolution in RESOLUTIONS:
        probabilities = {}
        for method in ("shift", "dense"):
            tuned = clone(model).set_params(output_resolution=resolution,
                                            inference=method,
                                            device=args.device)
            tuned.__dict__.update({k: v for k, v in model.__dict__.items()
                                   if k.endswith("_")})
            start = time.perf_counter()
            proba = tuned.predict_proba(X_test)
            seconds = (time.perf_counter() - start) / len(X_test)
            predicted = [tuned.classes_[p.argmax(-1)] for p in proba]
            accuracy = pixel_accuracy(y_test, predicted)
            probabilities[method] = proba
            k = round(1 / resolution)
            passes = max(1, total_stride // k) ** 2 if method == "shift" \
                else 1
            rows.append({"resolution": resolution, "method": method,
                         "passes": passes, "s_per_image": seconds,
                         "pixel_accuracy": accuracy})
            print(f"| 1/{k} | {method} | {passes} | {seconds:.3f} | "
                  f"{100 * accuracy:.2f}% |", flush=True)
        gap = max(float(np.abs(a - b).max()) for a, b in
                  zip(probabilities["shift"], probabilities["dense"]))
        rows[-1]["max_probability_gap_vs_shift"] = gap
        if gap > GAP_TOLERANCE:
            disagreements.append((resolution, gap))
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    for resolution, gap in disagreements:
        print(f"FAIL: at resolution {resolution:g}, shift-and-stitch and the "
              f"dense pass differ by {gap:.2e} in a probability (tolerance "
              f"{GAP_TOLERANCE:g})")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
