"""What each recurrent instance adds (the paper's Fig. 5).

Trains a :class:`~skrcnn.RecurrentCNNSegmenter` (the rcnn2 geometry with
narrower layers, 3 instances, 1 to 3 instances drawn per training image as
in the paper's rCNN1) and draws held-out images beside their ground truth
and the labelling after instance 1, 2 and 3: the same weights, run once,
twice, three times, seeing 23, 67 and 155 pixels of context.

In the synthetic scenes sky and water look identical; only the layout (sky
above the mountains, water below) tells them apart, so instance 1 confuses
them where the later instances do not.

    python examples/plot_instances.py             # about 1 min on 2 CPU cores
    python examples/plot_instances.py --stanford  # Stanford, half size: ~2 min
    python examples/plot_instances.py --stanford --scale 1 --n-images 40 \
        --epochs 4                                # full resolution: ~3 min

With ``--model`` it trains nothing and draws a model trained before, e.g.
the repository's canonical-fold checkpoint (hours of training; full
resolution, so ``--scale`` defaults to 1)::

    python examples/plot_instances.py --stanford \
        --model benchmarks/checkpoints/rcnn2_stanford_fold0_nocw.joblib
"""

import argparse
import os
import sys
import time
import warnings

from sklearn.exceptions import ConvergenceWarning

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import (add_data_arguments, at_least, check_output,  # noqa: E402
                     load_data, resolve, save_panel)

import joblib  # noqa: E402

from skrcnn import RecurrentCNNSegmenter  # noqa: E402
from skrcnn.architecture import patch_size, resolve_layers  # noqa: E402
from skrcnn.metrics import (mean_class_accuracy, mean_iou,  # noqa: E402
                            pixel_accuracy)

N_INSTANCES = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a recurrent CNN and draw image | truth | "
        "prediction after instance 1, 2, 3 (the paper's Fig. 5).")
    parser.add_argument("--output", default="plot_instances.png",
                        help="PNG to write (default: %(default)s)")
    parser.add_argument("--n-show", type=at_least(1), default=4,
                        help="held-out images drawn (default: %(default)s)")
    parser.add_argument(
        "--model", default=None,
        help="draw this fitted model (a joblib file holding a "
        "RecurrentCNNSegmenter or a pipeline ending in one, or a 'skrcnn "
        "train' model file) instead of training one; with --stanford, a "
        "model trained on the canonical fold's training images (the "
        "pictures are of its test images), and --scale defaults to 1")
    add_data_arguments(
        parser, scenes=dict(n_images=90, n_test=30, epochs=6),
        stanford=dict(n_images=80, n_test=8, epochs=8))
    args = parser.parse_args(argv)
    check_output(parser, args.output)
    args.fitted = None
    if args.model is not None:
        for option in ("epochs", "n_images"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')}: not with "
                             "--model (the model is trained already)")
        args.fitted = load_fitted(parser, args.model)
        if args.scale is None:
            args.scale = 1.0
    return args


def load_fitted(parser, path):
    """``(model, segmenter)`` from a model file, or a usage error."""
    if not os.path.isfile(path):
        parser.error(f"--model {path}: no such file")
    try:
        loaded = joblib.load(path)
    except Exception as exc:  # unpickling foreign data raises any type
        parser.error(f"--model {path}: not a model file "
                     f"({type(exc).__name__}: {exc})")
    if isinstance(loaded, dict) and "model" in loaded:  # 'skrcnn train'
        loaded = loaded["model"]
    steps = getattr(loaded, "steps", None)
    segmenter = steps[-1][1] if isinstance(steps, list) and steps else loaded
    if not isinstance(segmenter, RecurrentCNNSegmenter):
        parser.error(f"--model {path}: holds a {type(segmenter).__name__}, "
                     "not a RecurrentCNNSegmenter")
    if not hasattr(segmenter, "coefs_"):
        parser.error(f"--model {path}: the model in it was never fitted")
    return loaded, segmenter


def main(argv=None, sink=print):
    """Run the example; returns the scores and what was written."""
    args = parse_args(argv)
    start = time.perf_counter()
    data = load_data(args)
    if args.fitted is None:
        model, fit_seconds, about = _train(args, data, sink)
        segmenter, n_instances = model, N_INSTANCES
    else:
        model, segmenter = args.fitted
        _check_classes(args.model, segmenter, data)
        n_instances, fit_seconds = segmenter.n_instances, 0.0
        about = os.path.basename(args.model)
        sink(f"drawing {args.model} ({n_instances} instance"
             f"{'s' if n_instances != 1 else ''}) on {data['test_name']}")
    contexts = [patch_size(segmenter.layers_, p)
                for p in range(1, n_instances + 1)]

    X_test, y_test = data["X_test"], data["y_test"]
    predictions, scores = [], {}
    for p in range(1, n_instances + 1):
        predicted = model.predict(X_test, n_instances=p)
        predictions.append(predicted)
        scores[p] = {"pixel_accuracy": pixel_accuracy(y_test, predicted),
                     "mean_class_accuracy": mean_class_accuracy(y_test,
                                                                predicted),
                     "mean_iou": mean_iou(y_test, predicted)}
        sink(f"  after instance {p}: pixel accuracy "
             f"{scores[p]['pixel_accuracy']:.3f}, class average "
             f"{scores[p]['mean_class_accuracy']:.3f}, mean IoU "
             f"{scores[p]['mean_iou']:.3f} ({len(X_test)} held-out images)")

    shown = list(range(min(args.n_show, len(X_test))))
    notes = [[f"pixel acc. {pixel_accuracy([y_test[k]], [column[k]]):.2f}"
              for k in shown] for column in predictions]
    how = save_panel(
        args.output, [X_test[k] for k in shown], [y_test[k] for k in shown],
        [[column[k] for k in shown] for column in predictions],
        [f"instance {p} ({c} px)" for p, c in enumerate(contexts, 1)],
        data["class_names"], data["palette"], notes=notes, sink=sink,
        suptitle="rCNN: the same weights run "
        f"{', '.join(map(str, range(1, n_instances + 1)))} "
        f"time{'s' if n_instances > 1 else ''} ({about})")
    seconds = time.perf_counter() - start
    sink(f"wrote {args.output} ({how}); training {fit_seconds:.1f} s, "
         f"total {seconds:.1f} s")
    return {"scores": scores, "output": args.output, "drawn_with": how,
            "fit_seconds": fit_seconds, "seconds": seconds}


def _train(args, data, sink):
    """The example's own small rcnn2, fitted: ``(model, seconds, about)``."""
    epochs = resolve(args, "epochs")
    model = RecurrentCNNSegmenter(
        architecture="rcnn2", hidden_sizes=(16, 32), crop_size=None,
        n_instances=N_INSTANCES, instance_schedule="random", max_iter=epochs,
        random_state=args.seed,
        verbose=0 if args.quick else 1)
    contexts = [patch_size(resolve_layers("rcnn2"), p)
                for p in range(1, N_INSTANCES + 1)]
    sink(f"training rcnn2 ({N_INSTANCES} instances, context "
         f"{'/'.join(map(str, contexts))} pixels) on {data['name']}, "
         f"{epochs} epoch{'s' if epochs != 1 else ''}")
    fit_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data["X_train"], data["y_train"])
    about = (f"{epochs} epoch{'s' if epochs > 1 else ''} on "
             f"{len(data['X_train'])} images")
    return model, time.perf_counter() - fit_start, about


def _check_classes(path, segmenter, data):
    """Refuse a model whose classes are not the data's label values."""
    n_classes = len(data["class_names"])
    if not set(segmenter.classes_.tolist()) <= set(range(n_classes)):
        print(f"plot_instances.py: error: --model {path}: its classes "
              f"{segmenter.classes_.tolist()} are not label values of "
              f"{data['test_name']} (0..{n_classes - 1}: "
              f"{', '.join(data['class_names'])})", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
