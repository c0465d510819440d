"""Tiny synthetic scenes for estimator tests (a helper module).

Kept independent of :func:`skrcnn.datasets.make_scenes` so the estimator's
tests do not rest on the generator they would otherwise help validate.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skrcnn import RecurrentCNNSegmenter

# Small instance network: patches 6 / 16 / 36 for 1 / 2 / 3 instances.
SMALL = (("conv", 8, 3), ("pool", 2), ("tanh",), ("conv", 8, 2), ("tanh",),
         ("conv", "classes", 1))


def colour_scenes(n, shape=(20, 24), seed=0):
    """Rectangles of three noisy colours: labels are locally obvious."""
    rng = np.random.default_rng(seed)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])
    images, labels = [], []
    for _ in range(n):
        label = np.full(shape, rng.integers(0, 3), dtype=np.int64)
        for _ in range(3):
            r, c = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
            h, w = rng.integers(4, 10, size=2)
            label[r:r + h, c:c + w] = rng.integers(0, 3)
        image = colours[label] + rng.normal(0, 20, shape + (3,))
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        labels.append(label)
    return np.stack(images), np.stack(labels)


def fitted_with_test_images(shape=(24, 30)):
    """A small 2-instance model fitted on 20 colour scenes, and 3 other
    scenes to label (for the tests of prediction options)."""
    X, y = colour_scenes(20, shape=shape)
    model = RecurrentCNNSegmenter(architecture=SMALL, n_instances=2,
                                  max_iter=3, learning_rate=1e-2,
                                  crop_size=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, colour_scenes(3, shape=shape, seed=5)[0]


def horizon_scenes(n, shape=(36, 20), seed=0):
    """Sky (0) above a thin bright horizon (1), water (2) below.

    Sky and water have the same colour and noise, so a pixel far from the
    horizon and the image edges cannot be told from its neighbourhood: only
    context that reaches the horizon decides.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    height, width = shape
    for _ in range(n):
        horizon = rng.integers(height // 2 - 3, height // 2 + 3)
        label = np.full(shape, 2, dtype=np.int64)
        label[:horizon] = 0
        label[horizon:horizon + 2] = 1
        image = np.empty(shape + (3,))
        image[:] = rng.normal(120, 35, shape + (3,))
        image[horizon:horizon + 2] = rng.normal(240, 5, (2, width, 3))
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        labels.append(label)
    return np.stack(images), np.stack(labels)
