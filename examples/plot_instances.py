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
    add_data_arguments(
        parser, scenes=dict(n_images=90, n_test=30, epochs=6),
        stanford=dict(n_images=80, n_test=8, epochs=8))
    args = parser.parse_args(argv)
    check_output(parser, args.output)
    return args


def main(argv=None, sink=print):
    """Run the example; returns the scores and what was written."""
    args = parse_args(argv)
    start = time.perf_counter()
    data = load_data(args)
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
    fit_seconds = time.perf_counter() - fit_start

    X_test, y_test = data["X_test"], data["y_test"]
    predictions, scores = [], {}
    for p in range(1, N_INSTANCES + 1):
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
        [f"instance {p} ({c} px)" for p, c in zip(range(1, 4), contexts)],
        data["class_names"], data["palette"], notes=notes, sink=sink,
        suptitle="rCNN: the same weights run 1, 2, 3 times "
        f"({epochs} epoch{'s' if epochs > 1 else ''} on "
        f"{len(data['X_train'])} images)")
    seconds = time.perf_counter() - start
    sink(f"wrote {args.output} ({how}); training {fit_seconds:.1f} s, "
         f"total {seconds:.1f} s")
    return {"scores": scores, "output": args.output, "drawn_with": how,
            "fit_seconds": fit_seconds, "seconds": seconds}


if __name__ == "__main__":
    main()
