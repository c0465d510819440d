"""The paper's Table 5: prediction time and pixel accuracy against output
resolution, for shift-and-stitch and for the dense pass.

Takes a fitted model (``--model``, a joblib file such as the one
``benchmarks/stanford.py --save-model`` writes; without it, a model is
trained here on the canonical fold for ``--train-minutes``) and the
canonical Stanford fold's test images (``--n-images`` of them: full
resolution shift-and-stitch is 64 network passes per image). For output
resolution 1, 1/2, 1/4 and 1/8 and both inference methods it reports the
prediction time per image and the pixel accuracy; at equal resolution the
two methods must give the same labels (the script checks the scores agree).

Usage::

    python benchmarks/resolution.py --model rcnn2.joblib --n-images 20
"""

import argparse
import json
import sys
import time

import joblib
import numpy as np
from sklearn.base import clone

from skrcnn.architecture import instance_stride
from skrcnn.metrics import pixel_accuracy
from skrcnn.model_selection import canonical_stanford_split

from _protocol import make_model, train_for
from _stanford_data import load_stanford

RESOLUTIONS = (1.0, 0.5, 0.25, 0.125)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--model", help="fitted model (joblib)")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--n-images", type=int, default=20)
    parser.add_argument("--data-home")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default="resolution_results.json")
    args = parser.parse_args(argv)

    data = load_stanford(args.data_home)
    train, test = canonical_stanford_split(data.filenames)
    X_test = [data.images[i] for i in test[:args.n_images]]
    y_test = [data.labels[i] for i in test[:args.n_images]]
    if args.model:
        model = joblib.load(args.model)
    else:
        args.sampling, args.learning_rate, args.seed = "dense", 1e-3, 0
        args.crop_size, args.horizontal_flip = 8, False
        args.batch_size, args.patches_per_epoch = 16, 4096
        model = make_model("rcnn2", 3, args)
        train_for(model, [data.images[i] for i in train],
                  [data.labels[i] for i in train], args.train_minutes * 60,
                  np.arange(len(data.class_names)), label="rcnn2 P=3")
    print(f"{model.n_instances} instances, {len(X_test)} test images of the "
          f"canonical fold", flush=True)
    rows = []
    print("| resolution | method | passes | s / image | pixel accuracy |")
    print("|---|---|---|---|---|")
    total_stride = instance_stride(model.layers_) ** model.n_instances
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
        if gap > 1e-4:
            print(f"WARNING: shift and dense differ by {gap:.2e}")
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
