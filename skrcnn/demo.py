"""``skrcnn demo``: the README's main job, on built-in synthetic scenes.

Trains a :class:`~skrcnn.RecurrentCNNSegmenter` (rcnn2 geometry, narrower
layers so it runs in about a minute on a laptop CPU) on
:func:`~skrcnn.datasets.make_scenes`, where sky and water look the same and
only the layout tells them apart. It reports held-out scores after each
recurrent instance (the same weights run 1, 2, 3 times) beside the
majority-class baseline, and writes a picture in the style of the paper's
Fig. 5: image, ground truth, and the labelling after each instance.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .architecture import patch_size, resolve_layers
from .datasets import make_scenes
from .metrics import mean_class_accuracy, mean_iou, pixel_accuracy
from .segmenter import RecurrentCNNSegmenter

# One colour per make_scenes class: sky, water, mountain, grass, tree,
# building (unknown pixels stay black).
PALETTE = np.array([[0.55, 0.75, 1.0], [0.1, 0.3, 0.8], [0.55, 0.45, 0.4],
                    [0.5, 0.85, 0.3], [0.1, 0.45, 0.1], [0.85, 0.3, 0.2]])


def colour_labels(labels, palette=PALETTE):
    """An RGB uint8 picture of a label map (unknown, i.e. < 0, is black).

    Colours are indexed by label value, so a class keeps its colour in every
    picture whichever classes it shares the picture with.
    """
    labels = np.asarray(labels)
    table = np.vstack([np.round(np.asarray(palette) * 255), [[0, 0, 0]]])
    return table[np.where(labels < 0, len(table) - 1, labels)].astype(np.uint8)


def figure_panel(images, truths, predictions, scale=3, gap=4,
                 palette=PALETTE):
    """Rows of [image | truth | instance 1 | ... | instance P] as one image.

    Parameters
    ----------
    images : list of (H, W, 3) uint8
    truths : list of (H, W) label maps
    predictions : list over instances of lists of (H, W) label maps
    palette : array of shape (n_classes, 3)
        RGB in [0, 1] per label value.
    """
    rows = []
    for k, (image, truth) in enumerate(zip(images, truths)):
        tiles = [np.asarray(image, np.uint8), colour_labels(truth, palette)]
        tiles += [colour_labels(per_instance[k], palette)
                  for per_instance in predictions]
        tiles = [np.kron(t, np.ones((scale, scale, 1), np.uint8))
                 for t in tiles]
        spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
        row = [spacer]
        for tile in tiles:
            row += [tile, spacer]
        rows.append(np.concatenate(row, axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate([rows[-1]] + rows, axis=0)


def run_demo(n_images=120, epochs=6, n_instances=3, seed=0,
             output="skrcnn-demo.png", image_shape=(64, 64), verbose=1,
             sink=print):
    """Train on synthetic scenes, report held-out scores, save a figure.

    Parameters
    ----------
    n_images : int, default=120
        Scenes generated; a quarter are held out.
    epochs : int, default=6
    n_instances : int, default=3
    seed : int, default=0
    output : str or None, default="skrcnn-demo.png"
        Where to write the Fig. 5-style PNG (None: no picture).
    verbose : int, default=1
        Per-epoch training lines when > 0.
    sink : callable, default=print
        Receives the report lines.

    Returns
    -------
    dict
        ``"instances"``: per number of instances, the held-out pixel
        accuracy, average per-class accuracy and mean IoU; ``"majority"``:
        the majority-class pixel accuracy; ``"fit_seconds"``.
    """
    X, y = make_scenes(n_images, image_shape=image_shape, random_state=seed,
                       return_X_y=True)
    n_test = max(1, n_images // 4)
    X_train, y_train, X_test, y_test = (X[n_test:], y[n_test:], X[:n_test],
                                        y[:n_test])
    model = RecurrentCNNSegmenter(
        architecture="rcnn2", hidden_sizes=(16, 32), n_instances=n_instances,
        crop_size=None,
        instance_schedule="random", max_iter=epochs, random_state=seed,
        verbose=verbose)
    contexts = "/".join(str(patch_size(resolve_layers("rcnn2"), p))
                        for p in range(1, n_instances + 1))
    sink(f"training rcnn2 ({n_instances} instances, context {contexts} "
         f"pixels) on {len(X_train)} synthetic scenes of "
         f"{image_shape[0]}x{image_shape[1]}, {epochs} epochs")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    known = y_test[y_test >= 0]
    majority = float(np.bincount(known).max() / known.size)
    results, predictions = {}, []
    sink(f"held-out scores on {n_test} scenes (majority class: pixel "
         f"accuracy {majority:.3f}):")
    for p in range(1, n_instances + 1):
        predicted = model.predict(X_test, n_instances=p)
        predictions.append(predicted)
        scores = {"pixel_accuracy": pixel_accuracy(y_test, predicted),
                  "mean_class_accuracy": mean_class_accuracy(y_test, predicted),
                  "mean_iou": mean_iou(y_test, predicted)}
        results[p] = scores
        sink(f"  after instance {p}: pixel accuracy "
             f"{scores['pixel_accuracy']:.3f}, class average "
             f"{scores['mean_class_accuracy']:.3f}, mean IoU "
             f"{scores['mean_iou']:.3f}")
    if output:
        from skimage.io import imsave
        shown = slice(0, min(4, n_test))
        panel = figure_panel(X_test[shown], y_test[shown],
                             [p[shown] for p in predictions])
        imsave(output, panel, check_contrast=False)
        sink(f"wrote {output}: image | truth | after instance 1.."
             f"{n_instances}; colours: sky light blue, water dark blue, "
             "mountain brown, grass light green, tree dark green, building "
             "red")
    sink(f"training took {fit_seconds:.1f} s")
    return {"instances": results, "majority": majority,
            "fit_seconds": fit_seconds}

