"""Tiny stand-in segmenters and pixel-colour scenes for the workflow tests,
and a stand-in random state for the sampler tests (a helper module): fast,
deterministic and independent of the network."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from skrcnn.metrics import pixel_accuracy

COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200],
                    [120, 120, 120]], dtype=float)
SIZES = [(6, 8), (5, 7), (8, 6), (7, 7)]


def colour_pixel_scenes(n_images=12, seed=0, n_classes=3, noise=70.0, sizes=SIZES):
    """Synthetic images of different sizes whose pixels are noisy class
    colours, with about 10% unknown (-1) pixels."""
    rng = np.random.default_rng(seed)
    images, maps = [], []
    for index in range(n_images):
        height, width = sizes[index % len(sizes)]
        labels = rng.integers(0, n_classes, size=(height, width))
        colour = COLOURS[labels] + noise * rng.standard_normal(
            (height, width, 3))
        labels[rng.random((height, width)) < 0.1] = -1
        images.append(np.clip(colour, 0, 255).astype(np.uint8))
        maps.append(labels)
    return images, maps


class MeanColourSegmenter(BaseEstimator):
    """Label each pixel with the class of the nearest mean training colour.

    ``bias`` is subtracted from the squared distance to the first class (a
    parameter for grid searches: a huge bias labels everything as class 0).
    """

    def __init__(self, bias=0.0):
        self.bias = bias

    def fit(self, X, y):
        colours = np.concatenate([np.asarray(image, float)[labels >= 0]
                                  for image, labels in zip(X, y)])
        labels = np.concatenate([np.asarray(labels)[np.asarray(labels) >= 0]
                                 for labels in y])
        self.classes_ = np.unique(labels)
        self.means_ = np.stack([colours[labels == c].mean(axis=0)
                                for c in self.classes_])
        return self

    def predict(self, X):
        out = []
        for image in X:
            image = np.asarray(image, float)
            distance = ((image[:, :, None, :] - self.means_) ** 2).sum(-1)
            distance[..., 0] -= self.bias
            out.append(self.classes_[distance.argmin(-1)])
        return np.stack(out) if isinstance(X, np.ndarray) else out

    def score(self, X, y):
        return pixel_accuracy(y, self.predict(X))


class CountingSegmenter(MeanColourSegmenter):
    """Counts predict calls over all clones (a class attribute)."""

    n_predict_calls = 0

    def predict(self, X):
        type(self).n_predict_calls += 1
        return super().predict(X)


class ClassifierSegmenter(ClassifierMixin, MeanColourSegmenter):
    """The same, tagged as a classifier (scikit-learn then treats int cv and
    response values differently)."""

    def score(self, X, y):
        return MeanColourSegmenter.score(self, X, y)


class FixedScaleDraws:
    """A RandomState whose ``uniform`` takes nothing from the stream: with
    a one-point ``scale_range`` the factor is known, so the other draws
    line up with a run on images resized beforehand."""

    def __init__(self, seed):
        self._rng = np.random.RandomState(seed)

    def uniform(self, low, high):
        assert low == high
        return low

    def __getattr__(self, name):
        return getattr(self._rng, name)
