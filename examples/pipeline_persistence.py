"""A pipeline, saved with joblib and loaded back.

``make_pipeline(ImageStandardizer(), RecurrentCNNSegmenter(...))`` is fitted,
written to disk with :func:`joblib.dump`, loaded back with
:func:`joblib.load`, and the loaded pipeline's labels and class
probabilities are checked to be identical to the original's. The fitted
weights are NumPy arrays, so a file saved here (or from a model trained on a
GPU) loads on any machine with skrcnn, GPU or not.

The picture shows held-out images, their truth and the loaded pipeline's
labelling.

    python examples/pipeline_persistence.py         # ~40 s on 2 CPU cores
    python examples/pipeline_persistence.py --model-path model.joblib
    python examples/pipeline_persistence.py --stanford     # half size
"""

import argparse
import os
import sys
import time
import warnings

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import (add_data_arguments, check_output,  # noqa: E402
                     load_data, resolve, save_panel)

from skrcnn import ImageStandardizer, RecurrentCNNSegmenter  # noqa: E402
from skrcnn.metrics import mean_class_accuracy, pixel_accuracy  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Fit an ImageStandardizer + RecurrentCNNSegmenter "
        "pipeline, save it with joblib, load it back, compare predictions.")
    parser.add_argument("--output", default="pipeline_persistence.png",
                        help="PNG to write (default: %(default)s)")
    parser.add_argument("--model-path", default=None,
                        help="where to save the pipeline (default: the "
                        "--output path with the suffix .joblib)")
    add_data_arguments(
        parser, scenes=dict(n_images=60, n_test=12, epochs=4),
        stanford=dict(n_images=60, n_test=8, epochs=6))
    args = parser.parse_args(argv)
    check_output(parser, args.output)
    if args.model_path:
        check_output(parser, args.model_path, "--model-path")
    return args


def main(argv=None, sink=print):
    """Run the example; returns the timings, the file size and the check."""
    args = parse_args(argv)
    start = time.perf_counter()
    data = load_data(args)
    epochs = resolve(args, "epochs")
    model_path = args.model_path or os.path.splitext(args.output)[0] + \
        ".joblib"
    pipeline = make_pipeline(
        ImageStandardizer(),
        RecurrentCNNSegmenter(architecture="rcnn2", hidden_sizes=(16, 32),
                              crop_size=None, n_instances=3,
                              instance_schedule="random", max_iter=epochs,
                              random_state=args.seed))
    sink(f"fitting {' + '.join(pipeline.named_steps)} on {data['name']}, "
         f"{epochs} epochs")
    timings = {}
    tick = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(data["X_train"], data["y_train"])
    timings["fit"] = time.perf_counter() - tick

    X_test, y_test = data["X_test"], data["y_test"]
    tick = time.perf_counter()
    labels = pipeline.predict(X_test)
    timings["predict"] = time.perf_counter() - tick
    proba = pipeline.predict_proba(X_test)

    tick = time.perf_counter()
    joblib.dump(pipeline, model_path)
    timings["dump"] = time.perf_counter() - tick
    size = os.path.getsize(model_path)
    tick = time.perf_counter()
    loaded = joblib.load(model_path)
    timings["load"] = time.perf_counter() - tick
    tick = time.perf_counter()
    loaded_labels = loaded.predict(X_test)
    timings["predict after loading"] = time.perf_counter() - tick
    loaded_proba = loaded.predict_proba(X_test)

    identical = (all(np.array_equal(a, b)
                     for a, b in zip(labels, loaded_labels))
                 and all(np.array_equal(a, b)
                         for a, b in zip(proba, loaded_proba)))
    sink(f"saved to {model_path}: {size / 1024:.1f} KiB")
    sink("timings: " + ", ".join(f"{k} {v:.3f} s"
                                 for k, v in timings.items()))
    sink(f"loaded pipeline gives identical labels and probabilities on "
         f"{len(X_test)} held-out images: {identical}")
    if not identical:
        raise RuntimeError("the loaded pipeline predicts differently")
    scores = {"pixel_accuracy": pixel_accuracy(y_test, loaded_labels),
              "mean_class_accuracy": mean_class_accuracy(y_test,
                                                         loaded_labels)}
    sink("held-out scores: " + ", ".join(f"{k} {v:.3f}"
                                         for k, v in scores.items()))

    shown = list(range(min(4, len(X_test))))
    how = save_panel(
        args.output, [X_test[k] for k in shown], [y_test[k] for k in shown],
        [[loaded_labels[k] for k in shown]], ["loaded pipeline"],
        data["class_names"], data["palette"], sink=sink,
        notes=[[f"pixel acc. "
                f"{pixel_accuracy([y_test[k]], [loaded_labels[k]]):.2f}"
                for k in shown]])
    seconds = time.perf_counter() - start
    sink(f"wrote {args.output} ({how}); total {seconds:.1f} s")
    return {"identical": identical, "model_path": model_path,
            "model_bytes": size, "timings": timings, "scores": scores,
            "output": args.output, "drawn_with": how, "seconds": seconds}


if __name__ == "__main__":
    main()
