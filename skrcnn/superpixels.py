"""Superpixel voting: class probabilities averaged over image segments.

Not in the paper, whose point is a labelling without superpixels; Farabet
et al. (2013), one of its comparisons, gain label coherence this way. Every
pixel of a segment gets the segment's mean class probabilities, so a
segment is labelled as a whole by the majority of its probability mass.

The default segmentation (:func:`felzenszwalb_segments`) runs on the image
standardised as the network sees it, so it does not depend on the image's
value range (uint8 or float). Its settings (scale 400, sigma 0.8, at least
20 pixels a segment: about 370 segments on a 320 x 240 Stanford Background
image) were chosen on the test images of paper folds 1 and 2 with those
folds' rcnn2 models and then measured on folds 0, 3 and 4: +0.9 points of
pixel and of average per-class accuracy there (benchmarks/RESULTS.md,
session 38).
"""

import numpy as np
from skimage.segmentation import felzenszwalb

from .preprocessing import standardize_image

SUPERPIXEL_METHODS = ("felzenszwalb",)

__all__ = ["average_over_segments", "felzenszwalb_segments"]


def felzenszwalb_segments(image, scale=400.0, sigma=0.8, min_size=20):
    """Felzenszwalb-Huttenlocher segments of an image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 or float RGB; segmented after standardisation to zero mean and
        unit variance, so any value range gives the same segments.
    scale : float, default=400.0
        Higher gives larger segments (``scale`` of
        :func:`skimage.segmentation.felzenszwalb`).
    sigma : float, default=0.8
        Width of the Gaussian smoothing before segmenting.
    min_size : int, default=20
        Smallest segment, in pixels.

    Returns
    -------
    ndarray of shape (H, W), int
        Segment numbers from 0.
    """
    standardized = standardize_image(image, np.float64)
    return felzenszwalb(standardized, scale=scale, sigma=sigma,
                        min_size=min_size, channel_axis=-1)


def average_over_segments(proba, segments):
    """Replace each pixel's class probabilities by its segment's mean.

    Parameters
    ----------
    proba : ndarray of shape (H, W, n_classes)
        Class probabilities of one image, e.g. one of
        :meth:`RecurrentCNNSegmenter.predict_proba`'s maps.
    segments : ndarray of shape (H, W), int
        Any integers; pixels with the same number form one segment.

    Returns
    -------
    ndarray of shape (H, W, n_classes)
        A new array of ``proba``'s dtype; rows still sum to 1.

    Raises
    ------
    ValueError
        If the shapes do not match.
    """
    proba = np.asarray(proba)
    if proba.ndim != 3:
        raise ValueError(f"average_over_segments: proba has shape "
                         f"{proba.shape}; expected (H, W, n_classes)")
    segments = _segment_numbers(segments, proba.shape[:2],
                                "average_over_segments: segments")
    return _segment_means(proba.transpose(2, 0, 1), segments).transpose(
        1, 2, 0)


def check_superpixels(superpixels):
    """ValueError unless ``superpixels`` is None, a method name or a
    callable."""
    if superpixels is None or callable(superpixels) or (
            isinstance(superpixels, str)
            and superpixels in SUPERPIXEL_METHODS):
        return
    raise ValueError(f"superpixels must be None, one of "
                     f"{SUPERPIXEL_METHODS} or a callable image -> (H, W) "
                     f"integer segment map, got {superpixels!r}")


def segments_of(superpixels, image, index):
    """Segment numbers (0..k-1) of ``image`` (the ``index``-th given) by
    the estimator's ``superpixels`` setting; ValueError naming the image
    when a callable returns something else than an (H, W) integer map."""
    if isinstance(superpixels, str):  # "felzenszwalb", checked before
        return felzenszwalb_segments(image).astype(np.int32)
    return _segment_numbers(superpixels(image), image.shape[:2],
                            f"superpixels of image {index}")


def segment_means_chw(probabilities, segments):
    """(n_classes, H, W) probabilities averaged over (H, W) segment
    numbers 0..k-1 (a NumPy array of the same dtype)."""
    return _segment_means(np.asarray(probabilities), segments)


def _segment_numbers(segments, shape, where):
    segments = np.asarray(segments)
    if segments.shape != tuple(shape):
        raise ValueError(f"{where} has shape {segments.shape}; expected "
                         f"{tuple(shape)}, the image's height and width")
    if segments.dtype == bool or not np.issubdtype(segments.dtype,
                                                   np.integer):
        raise ValueError(f"{where} has dtype {segments.dtype}; segment "
                         f"numbers must be integers")
    # Any integers name segments: renumber them 0..k-1 for bincount
    # (int32: the estimator keeps every image's map until it predicts).
    numbers = np.unique(segments, return_inverse=True)[1]
    return numbers.reshape(shape).astype(np.int32)


def _segment_means(probabilities, segments):
    n_classes = probabilities.shape[0]
    flat = segments.ravel()
    n_segments = int(flat.max()) + 1 if flat.size else 0
    counts = np.bincount(flat, minlength=n_segments)
    means = np.empty((n_classes, n_segments))
    for k in range(n_classes):
        means[k] = np.bincount(flat, probabilities[k].ravel().astype(
            np.float64), minlength=n_segments) / np.maximum(counts, 1)
    return means[:, flat].reshape(probabilities.shape).astype(
        probabilities.dtype, copy=False)

