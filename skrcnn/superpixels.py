"""Superpixel voting: class probabilities averaged over image segments.

Not in the paper, whose point is a labelling without superpixels; Farabet
et al. (2013), one of its comparisons, gain label coherence this way. Every
pixel of a segment gets the segment's mean class probabilities, so a
segment is labelled as a whole by the majority of its probability mass.
Given several segmentations of one image (coarse to fine), a pixel gets the
mean of its segments' means: a fine segment keeps a small object, a coarse
one fixes a large region.

The built-in segmentations (:func:`felzenszwalb_segmentations`) run on the
image standardised as the network sees it, so they do not depend on the
image's value range (uint8 or float). Their settings (scales 100, 400 and
1600, sigma 0.8, at least 20 pixels a segment: about 1000, 370 and 120
segments on a 320 x 240 Stanford Background image) were chosen on the test
images of paper folds 1 and 2 with those folds' rcnn2 models, among single
scales 200-1600 and a few sets of scales, then measured on folds 0, 3 and
4 (benchmarks/RESULTS.md, session 38).
"""

import numpy as np
from skimage.segmentation import felzenszwalb

from .preprocessing import standardize_image

SUPERPIXEL_METHODS = ("felzenszwalb",)
#: The scales of :func:`felzenszwalb_segmentations` by default.
FELZENSZWALB_SCALES = (100.0, 400.0, 1600.0)

__all__ = ["FELZENSZWALB_SCALES", "average_over_segments",
           "felzenszwalb_segmentations", "felzenszwalb_segments"]


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


def felzenszwalb_segmentations(image, scales=FELZENSZWALB_SCALES):
    """Segmentations of an image at several scales: the segments
    ``superpixels="felzenszwalb"`` averages over.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
    scales : sequence of float, default=FELZENSZWALB_SCALES
        One :func:`felzenszwalb_segments` segmentation per scale.

    Returns
    -------
    list of ndarray of shape (H, W), int32
    """
    return [felzenszwalb_segments(image, scale=scale).astype(np.int32)
            for scale in scales]


def average_over_segments(proba, segments):
    """Replace each pixel's class probabilities by its segment's mean.

    Parameters
    ----------
    proba : ndarray of shape (H, W, n_classes)
        Class probabilities of one image, e.g. one of
        :meth:`RecurrentCNNSegmenter.predict_proba`'s maps.
    segments : ndarray of shape (H, W), int, or a list of them
        Any integers; pixels with the same number form one segment. Given a
        list of segmentations, each pixel gets the mean over them of its
        segment's mean.

    Returns
    -------
    ndarray of shape (H, W, n_classes)
        A new array of ``proba``'s dtype; rows still sum to 1.

    Raises
    ------
    ValueError
        If a segment map's shape does not match, or it is not integer.
    """
    proba = np.asarray(proba)
    if proba.ndim != 3:
        raise ValueError(f"average_over_segments: proba has shape "
                         f"{proba.shape}; expected (H, W, n_classes)")
    maps = _segment_maps(segments, proba.shape[:2],
                         "average_over_segments: segments")
    return segment_means_chw(proba.transpose(2, 0, 1), maps).transpose(
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
                     f"integer segment map (or a list of them), got "
                     f"{superpixels!r}")


def segments_of(superpixels, image, index):
    """The segment maps (numbered 0..k-1) of ``image``, the ``index``-th
    given, by the estimator's ``superpixels`` setting; ValueError naming
    the image when a callable returns something else than (a list of)
    (H, W) integer maps."""
    if isinstance(superpixels, str):  # "felzenszwalb", checked before
        return felzenszwalb_segmentations(image)
    return _segment_maps(superpixels(image), image.shape[:2],
                         f"superpixels of image {index}")


def segment_means_chw(probabilities, maps):
    """(n_classes, H, W) probabilities averaged over each of ``maps``
    ((H, W) segment numbers 0..k-1), then over the maps: a NumPy array of
    the probabilities' dtype."""
    probabilities = np.asarray(probabilities)
    flat = probabilities.reshape(len(probabilities), -1).astype(np.float64)
    total = np.zeros_like(flat)
    for segments in maps:
        numbers = segments.ravel()
        n_segments = int(numbers.max()) + 1 if numbers.size else 0
        counts = np.maximum(np.bincount(numbers, minlength=n_segments), 1)
        for k, row in enumerate(flat):
            total[k] += (np.bincount(numbers, row, minlength=n_segments)
                         / counts)[numbers]
    return (total / len(maps)).reshape(probabilities.shape).astype(
        probabilities.dtype, copy=False)


def _segment_maps(segments, shape, where):
    """A non-empty list of (H, W) maps renumbered 0..k-1 from one map or a
    list of them."""
    if isinstance(segments, (list, tuple)):
        if not segments:
            raise ValueError(f"{where} is an empty list; give at least one "
                             f"segment map")
        return [_segment_numbers(one, shape, f"{where}[{i}]")
                for i, one in enumerate(segments)]
    return [_segment_numbers(segments, shape, where)]


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
    # (int32: the estimator keeps every image's maps until it predicts).
    numbers = np.unique(segments, return_inverse=True)[1]
    return numbers.reshape(shape).astype(np.int32)
