"""Scene-parsing scores over collections of label maps.

Every function takes ``(y_true, y_pred, labels=None)``: two sequences of
``(H, W)`` integer label maps (image sizes may differ), or two ``(n, H, W)``
arrays. Pixels whose true label is negative ("unknown") are ignored
everywhere. Scores are pooled over all pixels of all images (the paper's
convention: one confusion matrix for the whole test set), not averaged per
image.

- :func:`pixel_accuracy`: correctly labelled pixels / labelled pixels.
- :func:`mean_class_accuracy`: the paper's "average per-class accuracy", the
  mean over the classes present in ``y_true`` of their recall.
- :func:`mean_iou`: mean intersection over union over the classes with a
  non-zero union (present in ``y_true`` or predicted on a labelled pixel);
  a class that is predicted but absent from ``y_true`` counts with IoU 0.

The scorers (:data:`pixel_accuracy_scorer`, ...) are built with
:func:`sklearn.metrics.make_scorer`, so they work as ``scoring=`` in
:func:`~sklearn.model_selection.cross_val_score`,
:func:`~sklearn.model_selection.cross_validate` and
:class:`~sklearn.model_selection.GridSearchCV`, and in multi-metric scoring
scikit-learn calls ``predict`` once per fold for all of them. scikit-learn's
own registry does not know their names, so a list of names must go through
:func:`get_scorer`::

    cross_validate(est, X, y, cv=ImageKFold(),
                   scoring=get_scorer(["pixel_accuracy", "mean_iou"]))
"""

import numpy as np
from sklearn.metrics import make_scorer

from ._validation import check_label_values

__all__ = ["SCORERS", "confusion_matrix", "get_scorer", "mean_class_accuracy",
           "mean_class_accuracy_scorer", "mean_iou", "mean_iou_scorer",
           "per_class_accuracy", "per_class_iou", "pixel_accuracy",
           "pixel_accuracy_scorer", "scores_from_confusion"]


# ------------------------------------------------------------------ checks

def _as_maps(y, name):
    """A list of the label maps in ``y`` (no copies)."""
    if isinstance(y, np.ndarray):
        if y.ndim == 3 or (y.ndim == 1 and y.dtype == object):
            # (n, H, W), or the usual container of maps of different sizes
            return list(y)
        if y.ndim == 2:
            raise ValueError(
                f"{name} is one array of shape {y.shape}: pass a sequence of "
                f"label maps or an (n, H, W) array (for a single map, use "
                f"[{name}])")
        raise ValueError(f"{name} must be a sequence of (H, W) label maps or "
                         f"an (n, H, W) array, got an array of shape "
                         f"{y.shape}")
    if y is None or isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
        raise TypeError(f"{name} must be a sequence of label maps, got "
                        f"{type(y).__name__}")
    return list(y)


def _check_map(labels, where):
    labels = np.asarray(labels)
    check_label_values(labels, where)
    if labels.ndim != 2:
        raise ValueError(f"{where} has shape {labels.shape}; expected an "
                         "(H, W) label map")
    return labels.astype(np.int64, copy=False)


def _check_pairs(y_true, y_pred):
    """Check two collections of label maps against each other.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(true, pred)`` int64 maps of equal shape, one pair per image.

    Raises
    ------
    ValueError, TypeError
        Naming the image index and the problem.
    """
    true_maps = _as_maps(y_true, "y_true")
    pred_maps = _as_maps(y_pred, "y_pred")
    if len(true_maps) != len(pred_maps):
        raise ValueError(f"y_true has {len(true_maps)} label maps but y_pred "
                         f"has {len(pred_maps)}")
    if not true_maps:
        raise ValueError("y_true is empty: at least one label map is needed")
    pairs = []
    for index, (true, pred) in enumerate(zip(true_maps, pred_maps)):
        true = _check_map(true, f"y_true[{index}]")
        pred = _check_map(pred, f"y_pred[{index}]")
        if true.shape != pred.shape:
            raise ValueError(f"y_pred[{index}] has shape {pred.shape} but "
                             f"y_true[{index}] has shape {true.shape}: each "
                             "prediction must match its label map")
        pairs.append((true, pred))
    return pairs


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of class "
                         f"labels, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if (labels < 0).any():
        raise ValueError(f"labels must be non-negative (negative means "
                         f"unknown), got {labels.tolist()}")
    if np.unique(labels).size != labels.size:
        raise ValueError(f"labels holds duplicates: {labels.tolist()}")
    return labels


def _present(values):
    """Sorted distinct non-negative values of an int64 array."""
    values = values[values >= 0]
    if values.size == 0:
        return values
    if values.max() < 65536:  # small class ids: a count is faster than a sort
        return np.flatnonzero(np.bincount(values))
    return np.unique(values)


def _encoder(labels):
    """A function mapping label values to their positions in ``labels``.

    The function raises a ValueError naming the image for a value that is
    not in ``labels``.
    """
    def fail(values, known, name, index):
        value = int(values[np.argmax(~known)])
        if value < 0:
            raise ValueError(f"{name}[{index}] holds the negative label "
                             f"{value} at a labelled pixel; predictions "
                             "must be class labels (only y_true may mark "
                             "pixels unknown)")
        raise ValueError(f"{name}[{index}] holds label {value} at a labelled "
                         f"pixel, which is not in labels {labels.tolist()}")

    top = int(labels.max())
    if top < 65536:  # class ids: a lookup table
        table = np.full(top + 1, -1, dtype=np.int64)
        table[labels] = np.arange(labels.size)

        def encode(values, name, index):
            if values.size and (values.min() < 0 or values.max() > top):
                fail(values, (values >= 0) & (values <= top), name, index)
            position = table[values]
            if values.size and position.min() < 0:
                fail(values, position >= 0, name, index)
            return position
        return encode

    sort = np.argsort(labels, kind="stable")
    sorted_labels = labels[sort]

    def encode(values, name, index):
        position = np.searchsorted(sorted_labels, values)
        position = np.minimum(position, sorted_labels.size - 1)
        known = sorted_labels[position] == values
        if not known.all():
            fail(values, known, name, index)
        return sort[position]
    return encode


# ------------------------------------------------------------------ metrics

def confusion_matrix(y_true, y_pred, labels=None):
    """Pixel confusion matrix pooled over a collection of label maps.

    Parameters
    ----------
    y_true : sequence of array-like of shape (H, W), or ndarray (n, H, W)
        True labels; pixels with a negative label are ignored.
    y_pred : sequence of array-like of shape (H, W), or ndarray (n, H, W)
        Predicted labels, one map per true map, of the same shape.
    labels : array-like of int, default=None
        Classes, in the order of the rows and columns. By default the sorted
        union of the values in ``y_true`` (non-negative) and of the values of
        ``y_pred`` at labelled pixels.

    Returns
    -------
    ndarray of shape (n_labels, n_labels), int64
        ``C[i, j]`` = number of labelled pixels of true class ``labels[i]``
        predicted as ``labels[j]``.

    Raises
    ------
    ValueError
        If the numbers or shapes of the maps differ (naming the image), or a
        value at a labelled pixel is not in ``labels`` (naming the value and
        the image).

    Examples
    --------
    >>> import numpy as np
    >>> from skrcnn.metrics import confusion_matrix
    >>> y_true = [np.array([[0, 0], [1, -1]])]
    >>> y_pred = [np.array([[0, 1], [1, 1]])]
    >>> confusion_matrix(y_true, y_pred)
    array([[1, 1],
           [0, 1]])
    """
    pairs = _check_pairs(y_true, y_pred)
    if labels is None:
        present = [np.empty(0, dtype=np.int64)]
        for true, pred in pairs:
            valid = true >= 0
            present += [_present(true[valid]), _present(pred[valid])]
        labels = np.unique(np.concatenate(present))
        if labels.size == 0:
            return np.zeros((0, 0), dtype=np.int64)
    else:
        labels = _check_labels(labels)
    n_labels = labels.size
    encode = _encoder(labels)
    counts = np.zeros(n_labels * n_labels, dtype=np.int64)
    for index, (true, pred) in enumerate(pairs):
        valid = true >= 0
        t = encode(true[valid], "y_true", index)
        p = encode(pred[valid], "y_pred", index)
        counts += np.bincount(t * n_labels + p, minlength=n_labels * n_labels)
    return counts.reshape(n_labels, n_labels)


def _require_pixels(cm):
    if cm.sum() == 0:
        raise ValueError("y_true has no labelled (non-negative) pixels: the "
                         "score is undefined")


def _per_class_accuracy(cm):
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def _per_class_iou(cm):
    hits = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, hits / union, np.nan)


def scores_from_confusion(cm):
    """All scores from a confusion matrix (e.g. one summed over folds).

    Parameters
    ----------
    cm : array-like of shape (n_labels, n_labels)
        Rows = true class, columns = predicted class, as returned by
        :func:`confusion_matrix`.

    Returns
    -------
    dict
        ``pixel_accuracy``, ``mean_class_accuracy`` and ``mean_iou`` (floats),
        ``per_class_accuracy`` and ``per_class_iou`` (arrays, NaN where the
        score is undefined).
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square matrix, got shape {cm.shape}")
    if cm.dtype == bool or cm.dtype.kind not in "iuf":
        raise TypeError(f"cm must hold pixel counts, got dtype {cm.dtype}")
    if not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("cm must hold non-negative finite pixel counts, "
                         f"got minimum {cm.min().item()!r}")
    _require_pixels(cm)
    accuracy = _per_class_accuracy(cm)
    iou = _per_class_iou(cm)
    return {"pixel_accuracy": float(np.trace(cm) / cm.sum()),
            "mean_class_accuracy": float(np.nanmean(accuracy)),
            "mean_iou": float(np.nanmean(iou)),
            "per_class_accuracy": accuracy,
            "per_class_iou": iou}


def pixel_accuracy(y_true, y_pred, labels=None):
    """Fraction of labelled pixels whose prediction is right.

    Parameters
    ----------
    y_true, y_pred, labels
        As in :func:`confusion_matrix`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`confusion_matrix`, or if ``y_true`` has no labelled pixel.
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    _require_pixels(cm)
    return float(np.trace(cm) / cm.sum())


def per_class_accuracy(y_true, y_pred, labels=None):
    """Recall of every class: its pixels labelled right / its pixels.

    Parameters
    ----------
    y_true, y_pred, labels
        As in :func:`confusion_matrix`.

    Returns
    -------
    ndarray of shape (n_labels,), float64
        In the order of ``labels`` (by default the sorted classes); NaN for a
        class without pixels in ``y_true``.
    """
    return _per_class_accuracy(confusion_matrix(y_true, y_pred, labels))


def mean_class_accuracy(y_true, y_pred, labels=None):
    """The paper's "average per-class accuracy".

    The mean of :func:`per_class_accuracy` over the classes present in
    ``y_true`` (classes only predicted are left out: their recall is
    undefined).

    Parameters
    ----------
    y_true, y_pred, labels
        As in :func:`confusion_matrix`.

    Returns
    -------
    float
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    _require_pixels(cm)
    return float(np.nanmean(_per_class_accuracy(cm)))


def per_class_iou(y_true, y_pred, labels=None):
    """Intersection over union of every class.

    Parameters
    ----------
    y_true, y_pred, labels
        As in :func:`confusion_matrix`.

    Returns
    -------
    ndarray of shape (n_labels,), float64
        ``TP / (TP + FP + FN)`` over labelled pixels, in the order of
        ``labels``; NaN for a class with an empty union (absent from
        ``y_true`` and never predicted on a labelled pixel).
    """
    return _per_class_iou(confusion_matrix(y_true, y_pred, labels))


def mean_iou(y_true, y_pred, labels=None):
    """Mean intersection over union.

    The mean of :func:`per_class_iou` over the classes with a non-zero union,
    i.e. present in ``y_true`` or predicted on a labelled pixel (the common
    convention, e.g. of the PASCAL VOC and Cityscapes tools). A class that is
    predicted but absent from ``y_true`` counts with IoU 0; listing extra,
    unused classes in ``labels`` changes nothing.

    Parameters
    ----------
    y_true, y_pred, labels
        As in :func:`confusion_matrix`.

    Returns
    -------
    float
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    _require_pixels(cm)
    return float(np.nanmean(_per_class_iou(cm)))


# ------------------------------------------------------------------ scorers

#: Scorer for ``scoring=``: :func:`pixel_accuracy` of ``estimator.predict(X)``.
pixel_accuracy_scorer = make_scorer(pixel_accuracy)
#: Scorer for ``scoring=``: :func:`mean_class_accuracy`.
mean_class_accuracy_scorer = make_scorer(mean_class_accuracy)
#: Scorer for ``scoring=``: :func:`mean_iou`.
mean_iou_scorer = make_scorer(mean_iou)

#: Scorers by name.
SCORERS = {"pixel_accuracy": pixel_accuracy_scorer,
           "mean_class_accuracy": mean_class_accuracy_scorer,
           "mean_iou": mean_iou_scorer}


def get_scorer(scoring):
    """Scorer(s) by name, for ``scoring=`` in scikit-learn's tools.

    Parameters
    ----------
    scoring : str or list/tuple of str
        One of ``"pixel_accuracy"``, ``"mean_class_accuracy"``,
        ``"mean_iou"``, or a list of them.

    Returns
    -------
    scorer or dict
        The scorer for a name; for a list, a dict name -> scorer, which is
        scikit-learn's multi-metric form (``predict`` then runs once per fold
        for all the metrics).

    Examples
    --------
    >>> from skrcnn.metrics import get_scorer
    >>> sorted(get_scorer(["mean_iou", "pixel_accuracy"]))
    ['mean_iou', 'pixel_accuracy']
    """
    if isinstance(scoring, (list, tuple)):
        if not scoring:
            raise ValueError("scoring is an empty list: give at least one "
                             f"of {sorted(SCORERS)}")
        if len(set(scoring)) != len(scoring):
            raise ValueError(f"scoring lists a name twice: {list(scoring)}")
        return {name: get_scorer(name) for name in scoring}
    if not isinstance(scoring, str) or scoring not in SCORERS:
        raise ValueError(f"unknown scorer {scoring!r}: choose from "
                         f"{sorted(SCORERS)}")
    return SCORERS[scoring]
