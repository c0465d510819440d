"""A small end-to-end run of the engine: a convolutional scene labeller
trained from scratch on synthetic textured scenes.

It stands in for ``skrcnn demo`` until the RecurrentCNNSegmenter exists: it
exercises every operation of the engine (convolution, pooling, tanh, bias,
the loss with ignored pixels) in a real training loop and reports held-out
pixel accuracy against the majority-class baseline.
"""

import time

import numpy as np

from .autograd import Variable, no_grad
from .functions import conv2d, max_pool2d, softmax_cross_entropy, tanh

N_CLASSES = 3
SIZE = 48


def make_textured_scenes(n_images, rng):
    """Images of three textures with the same mean colour, and their labels.

    Class 0 is horizontal stripes, 1 vertical stripes, 2 fine noise: a pixel's
    class is told by its neighbourhood, not its colour. A few pixels are
    marked unknown (-1) as in real datasets.
    """
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    textures = [np.sin(yy * 1.3), np.sin(xx * 1.3), None]
    images = np.empty((n_images, 3, SIZE, SIZE), np.float32)
    labels = np.empty((n_images, SIZE, SIZE), np.int64)
    for k in range(n_images):
        label = np.full((SIZE, SIZE), rng.integers(N_CLASSES))
        for _ in range(3):
            top, left = rng.integers(0, SIZE - 12, size=2)
            height, width = rng.integers(12, 30, size=2)
            label[top:top + height, left:left + width] = rng.integers(N_CLASSES)
        pattern = np.empty((SIZE, SIZE))
        for c in range(N_CLASSES):
            texture = (textures[c] if textures[c] is not None
                       else rng.choice([-1.0, 1.0], size=(SIZE, SIZE)))
            pattern[label == c] = texture[label == c]
        colour = rng.uniform(-0.5, 0.5, size=3)
        images[k] = colour[:, None, None] + pattern + 0.3 * rng.standard_normal(
            (3, SIZE, SIZE))
        label[rng.random((SIZE, SIZE)) < 0.01] = -1
        labels[k] = label
    return images, labels


def _forward(params, x):
    w1, b1, w2, b2, w3, b3 = params
    h = tanh(max_pool2d(conv2d(x, w1, b1), 2))
    h = tanh(conv2d(h, w2, b2))
    return conv2d(h, w3, b3)


# The network sees a 14x14 patch per output; output (i, j) is centred on
# input pixel (2i + 7, 2j + 7) (the patch's lower-right centre).
_OFFSET, _STRIDE = 7, 2


def _targets(labels, out_size):
    end = _OFFSET + _STRIDE * out_size
    return labels[:, _OFFSET:end:_STRIDE, _OFFSET:end:_STRIDE]


def run_demo(n_train=64, n_test=32, epochs=12, batch_size=8, seed=0,
             sink=print):
    """Train the demo network and return its held-out pixel accuracy."""
    rng = np.random.default_rng(seed)
    x_train, y_train = make_textured_scenes(n_train, rng)
    x_test, y_test = make_textured_scenes(n_test, rng)

    def init(*shape):
        fan_in = int(np.prod(shape[1:]))
        return Variable((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(
            np.float32), requires_grad=True)

    def zeros(n):
        return Variable(np.zeros(n, np.float32), requires_grad=True)

    params = [init(16, 3, 5, 5), zeros(16), init(32, 16, 5, 5), zeros(32),
              init(N_CLASSES, 32, 1, 1), zeros(N_CLASSES)]
    velocity = [np.zeros_like(p.data) for p in params]
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_train)
        losses = []
        for first in range(0, n_train, batch_size):
            batch = order[first:first + batch_size]
            scores = _forward(params, x_train[batch])
            loss = softmax_cross_entropy(
                scores, _targets(y_train[batch], scores.shape[2]))
            for p in params:
                p.zero_grad()
            loss.backward()
            for p, v in zip(params, velocity):
                v *= 0.9
                v -= 0.05 * p.grad
                p.data += v
            losses.append(float(loss.data))
        sink(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}  "
             f"{time.perf_counter() - start:5.1f}s")
    with no_grad():
        scores = _forward(params, x_test).data
    truth = _targets(y_test, scores.shape[2])
    known = truth >= 0
    accuracy = float((scores.argmax(axis=1) == truth)[known].mean())
    majority = float(np.bincount(truth[known]).max() / known.sum())
    sink(f"held-out pixel accuracy {accuracy:.3f} "
         f"(majority class {majority:.3f})")
    return accuracy, majority
