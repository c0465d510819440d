"""Choosing hyper-parameters with GridSearchCV, by image, on three metrics.

Cross-validation must split by image (the pixels of one image are strongly
correlated), which :class:`skrcnn.model_selection.ImageKFold` does; the
scene-parsing metrics come as scorers from :func:`skrcnn.metrics.get_scorer`
(with several, ``predict`` runs once per fold for all of them). The search
is refitted on the paper's headline metric, the average per-class accuracy,
and the refitted model is scored on held-out images.

With matplotlib the picture is a bar chart of the mean cross-validated
scores of each candidate; without it, the best model's labelling of
held-out images.

    python examples/grid_search.py             # about 1 min on 2 CPU cores
    python examples/grid_search.py --n-jobs 2  # folds in 2 processes
    python examples/grid_search.py --stanford  # Stanford, half size
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import (add_data_arguments, at_least, check_output,  # noqa: E402
                     load_data, matplotlib_figure, n_jobs, resolve,
                     save_panel)

from skrcnn import RecurrentCNNSegmenter  # noqa: E402
from skrcnn.metrics import (get_scorer, mean_class_accuracy,  # noqa: E402
                            mean_iou, pixel_accuracy)
from skrcnn.model_selection import ImageKFold  # noqa: E402

METRICS = ["pixel_accuracy", "mean_class_accuracy", "mean_iou"]
LABELS = {"pixel_accuracy": "pixel accuracy",
          "mean_class_accuracy": "class-average accuracy",
          "mean_iou": "mean IoU"}
REFIT = "mean_class_accuracy"
PARAM_GRID = {"n_instances": [1, 2], "learning_rate": [1e-3, 3e-3]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="GridSearchCV over n_instances and learning_rate with "
        "by-image folds and three scene-parsing metrics.")
    parser.add_argument("--output", default="grid_search.png",
                        help="PNG to write (default: %(default)s)")
    parser.add_argument("--n-jobs", type=n_jobs, default=None,
                        help="GridSearchCV's n_jobs (default: one process)")
    parser.add_argument("--folds", type=at_least(2), default=3,
                        help="ImageKFold splits (default: %(default)s)")
    add_data_arguments(
        parser, scenes=dict(n_images=36, n_test=12, epochs=3),
        stanford=dict(n_images=30, n_test=8, epochs=3))
    args = parser.parse_args(argv)
    check_output(parser, args.output)
    return args


def candidate_name(params):
    return (f"P={params['n_instances']}, "
            f"lr={params['learning_rate']:g}")


def results_table(cv_results):
    """cv_results_ as text: one line per candidate, mean (std) per metric."""
    header = (f"{'candidate':<20}" + "".join(f"{m:>22}" for m in METRICS)
              + f"{'fit s':>8}{'rank':>6}")
    lines = [header, "-" * len(header)]
    for k, params in enumerate(cv_results["params"]):
        cells = "".join(
            f"{cv_results[f'mean_test_{m}'][k]:>14.3f} "
            f"({cv_results[f'std_test_{m}'][k]:.3f})" for m in METRICS)
        lines.append(f"{candidate_name(params):<20}{cells}"
                     f"{cv_results['mean_fit_time'][k]:>8.1f}"
                     f"{cv_results[f'rank_test_{REFIT}'][k]:>6}")
    return "\n".join(lines)


def bar_chart(path, cv_results, n_folds, title):
    """Mean cross-validated score of each candidate, metric by metric."""
    Figure = matplotlib_figure()
    names = [candidate_name(p).replace(", ", "\n")
             for p in cv_results["params"]]
    best = int(np.argmin(cv_results[f"rank_test_{REFIT}"]))
    figure = Figure(figsize=(1.6 * len(names) + 2.5, 4.2), dpi=100,
                    layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(names))
    width = 0.8 / len(METRICS)
    for j, metric in enumerate(METRICS):
        ax.bar(x + (j - (len(METRICS) - 1) / 2) * width,
               cv_results[f"mean_test_{metric}"], width,
               yerr=cv_results[f"std_test_{metric}"], capsize=3,
               label=LABELS[metric])
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.get_xticklabels()[best].set_fontweight("bold")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"mean over {n_folds} folds (error bar: std)")
    ax.set_title(f"{title}\nbold: best {LABELS[REFIT]}, the refitted one",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    figure.savefig(path, format="png")


def main(argv=None, sink=print):
    """Run the example; returns the search and the held-out scores."""
    args = parse_args(argv)
    start = time.perf_counter()
    data = load_data(args)
    epochs = resolve(args, "epochs")
    base = RecurrentCNNSegmenter(
        architecture="rcnn2", hidden_sizes=(16, 32), crop_size=None,
        instance_schedule="random", max_iter=epochs, random_state=args.seed)
    search = GridSearchCV(base, PARAM_GRID, scoring=get_scorer(METRICS),
                          refit=REFIT, cv=ImageKFold(args.folds),
                          n_jobs=args.n_jobs)
    n_candidates = int(np.prod([len(v) for v in PARAM_GRID.values()]))
    sink(f"grid search: {n_candidates} candidates x {args.folds} folds "
         f"(+ 1 refit) on {data['name']}, {epochs} epochs each")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(data["X_train"], data["y_train"])
    search_seconds = time.perf_counter() - start

    results = search.cv_results_
    sink(results_table(results))
    sink(f"best by {REFIT}: {candidate_name(search.best_params_)} "
         f"(cross-validated {search.best_score_:.3f})")
    X_test, y_test = data["X_test"], data["y_test"]
    predicted = search.predict(X_test)
    held_out = {"pixel_accuracy": pixel_accuracy(y_test, predicted),
                "mean_class_accuracy": mean_class_accuracy(y_test, predicted),
                "mean_iou": mean_iou(y_test, predicted)}
    sink("refitted on all training images, on "
         f"{len(X_test)} held-out images: " + ", ".join(
             f"{m} {v:.3f}" for m, v in held_out.items()))

    title = (f"GridSearchCV, ImageKFold({args.folds}), {epochs} epoch"
             f"{'s' if epochs > 1 else ''} on {len(data['X_train'])} images")
    if matplotlib_figure() is not None:
        bar_chart(args.output, results, args.folds, title)
        how = "matplotlib"
    else:
        shown = list(range(min(4, len(X_test))))
        how = save_panel(
            args.output, [X_test[k] for k in shown],
            [y_test[k] for k in shown], [[predicted[k] for k in shown]],
            [f"best ({candidate_name(search.best_params_)})"],
            data["class_names"], data["palette"], sink=sink)
    seconds = time.perf_counter() - start
    sink(f"wrote {args.output} ({how}); search {search_seconds:.1f} s, "
         f"total {seconds:.1f} s")
    return {"search": search, "held_out": held_out, "output": args.output,
            "drawn_with": how, "seconds": seconds}


if __name__ == "__main__":
    main()
