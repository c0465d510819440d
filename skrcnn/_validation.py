"""Checks of user images and label maps: fail before any long work starts,
and name the image and the problem.

Images are ``(H, W, 3)`` RGB arrays (uint8 or float; sizes may differ) given
as a sequence, or one ``(n, H, W, 3)`` array. Label maps are ``(H, W)``
integer arrays; negative labels mean "unknown". Nothing here modifies or
copies what the user passed.
"""

import numbers

import numpy as np

N_COLOURS = 3


def _as_sequence(X, name):
    if isinstance(X, np.ndarray):
        if X.ndim == 1 and X.dtype == object:
            # The usual container of images of different sizes.
            return list(X), False
        if X.ndim == 4:
            return list(X), True
        if X.ndim == 3:
            raise ValueError(
                f"{name} is one array of shape {X.shape}: pass a sequence of "
                f"images or an (n, H, W, 3) array (for a single image, use "
                f"[image])")
        raise ValueError(f"{name} must be a sequence of (H, W, 3) images or "
                         f"an (n, H, W, 3) array, got an array of shape "
                         f"{X.shape}")
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        raise TypeError(f"{name} must be a sequence of images, got "
                        f"{type(X).__name__}")
    return list(X), False


def check_images(X, name="X", min_size=1, min_size_reason=None):
    """Check a collection of RGB images.

    Parameters
    ----------
    X : sequence of array-like of shape (H, W, 3), or ndarray (n, H, W, 3)
    name : str
        Argument name used in error messages.
    min_size : int, default=1
        Smallest allowed image height and width.
    min_size_reason : str, optional
        Why, for the error message.

    Returns
    -------
    images : list of ndarray
        The images, as given (no copy where they already are arrays).
    was_array : bool
        Whether ``X`` was one 4-D array (so outputs can be stacked back).

    Raises
    ------
    ValueError, TypeError
        Naming the image index and the problem.
    """
    images, was_array = _as_sequence(X, name)
    if not images:
        raise ValueError(f"{name} is empty: at least one image is needed")
    checked = []
    for index, image in enumerate(images):
        image = np.asarray(image)
        where = f"{name}[{index}]"
        if image.dtype == bool or not (
                np.issubdtype(image.dtype, np.integer)
                or np.issubdtype(image.dtype, np.floating)):
            raise TypeError(f"{where} has dtype {image.dtype}; images must "
                            "be integer (e.g. uint8) or floating-point RGB")
        if image.ndim != 3 or image.shape[2] != N_COLOURS:
            raise ValueError(f"{where} has shape {image.shape}; expected "
                             f"(H, W, {N_COLOURS}) RGB")
        if image.shape[0] < min_size or image.shape[1] < min_size:
            reason = f" ({min_size_reason})" if min_size_reason else ""
            raise ValueError(f"{where} is {image.shape[0]}x{image.shape[1]} "
                             f"pixels; images must be at least "
                             f"{min_size}x{min_size}{reason}")
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise ValueError(f"{where} contains NaN or infinite pixel values")
        checked.append(image)
    return checked, was_array


def _one_per_image(values, images, name, what):
    """``values`` as a sequence (an array split along its first axis),
    checked to hold one item per image."""
    items = list(values) if isinstance(values, np.ndarray) else values
    if isinstance(items, (str, bytes)) or not hasattr(items, "__len__"):
        raise TypeError(f"{name} must be a sequence of {what}, got "
                        f"{type(values).__name__}")
    if len(items) != len(images):
        raise ValueError(f"{name} has {len(items)} {what} for "
                         f"{len(images)} images")
    return items


def check_label_maps(y, images, name="y"):
    """Check label maps against their images.

    Parameters
    ----------
    y : sequence of array-like of shape (H, W), or ndarray (n, H, W)
        Integer labels; negative values mean "unknown".
    images : list of ndarray
        The checked images (see :func:`check_images`).

    Returns
    -------
    list of ndarray of int64
        The label maps (copied only where a dtype conversion was needed).
    """
    if y is None:
        raise ValueError(f"{name} is required: one (H, W) label map per "
                         "image")
    maps = _one_per_image(y, images, name, "label maps")
    checked = []
    for index, (labels, image) in enumerate(zip(maps, images)):
        labels = np.asarray(labels)
        where = f"{name}[{index}]"
        check_label_values(labels, where)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"{where} has shape {labels.shape} but image "
                             f"{index} is {image.shape[:2]}: each label map "
                             "must match its image's height and width")
        checked.append(labels.astype(np.int64, copy=False))
    return checked


def check_label_values(labels, where):
    """Labels must be integers (or integral floats) that fit in int64: a
    larger one would wrap to a negative, i.e. "unknown", value."""
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or (labels != np.round(
                labels)).any():
            raise ValueError(f"{where} holds non-integer labels")
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"{where} has dtype {labels.dtype}; labels must "
                        "be integers (negative = unknown)")
    if labels.size and (labels.dtype.kind == "f"
                        or labels.dtype == np.uint64):
        low, high = labels.min(), labels.max()
        if not -2 ** 63 <= low <= high < 2 ** 63:
            value = high if high >= 2 ** 63 else low
            raise ValueError(f"{where} holds the label {value.item()!r}, "
                             "outside the range of 64-bit integers")


def check_classes(classes):
    """``partial_fit``'s ``classes``: distinct non-negative integers (floats
    of whole numbers pass, as they do in ``y``), returned sorted as int64."""
    given = np.asarray(classes)
    whole = (given.dtype.kind in "iu"
             and given.max(initial=0) <= np.iinfo(np.int64).max) or (
        given.dtype.kind == "f" and np.isfinite(given).all()
        and (given == np.round(given)).all()
        and (np.abs(given) < 2 ** 53).all())
    if (given.ndim != 1 or given.size == 0 or not whole or (given < 0).any()
            or np.unique(given).size != given.size):
        raise ValueError(f"classes must be distinct non-negative integers, "
                         f"got {given!r}")
    return np.sort(given.astype(np.int64))


def check_teacher_proba(teacher_proba, images, n_classes,
                        name="teacher_proba"):
    """Check per-pixel class distributions against their images.

    Parameters
    ----------
    teacher_proba : sequence of array-like of shape (H, W, n_classes), \
            or ndarray (n, H, W, n_classes)
        Probabilities of the classes in ``classes_`` order, e.g. another
        model's ``predict_proba(X)``.
    images : list of ndarray
        The checked images (see :func:`check_images`).
    n_classes : int

    Returns
    -------
    list of ndarray
        The maps, as given (no copy where they already are float arrays).
    """
    maps = _one_per_image(teacher_proba, images, name, "probability maps")
    checked = []
    for index, (proba, image) in enumerate(zip(maps, images)):
        proba = np.asarray(proba)
        where = f"{name}[{index}]"
        if proba.dtype.kind != "f":
            raise TypeError(f"{where} has dtype {proba.dtype}; probabilities "
                            "must be floats")
        expected = image.shape[:2] + (n_classes,)
        if proba.shape != expected:
            raise ValueError(f"{where} has shape {proba.shape}, expected "
                             f"{expected}: image {index}'s height and width "
                             f"and one probability per class")
        if not np.isfinite(proba).all() or proba.min() < 0:
            raise ValueError(f"{where} holds negative or non-finite values")
        # float16 maps sum to 1 only to about 1e-3.
        sums = proba.sum(axis=-1, dtype=np.float64)
        worst = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
        if abs(sums[worst] - 1) > 1e-2:
            raise ValueError(f"{where} at pixel {tuple(map(int, worst))} sums "
                             f"to {sums[worst]:g} over the classes, not 1")
        checked.append(proba)
    return checked


def check_positive_int(name, value, minimum=1):
    """Check that ``value`` is an integer >= ``minimum``."""
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or value < minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got "
                         f"{value!r}")
    return int(value)


def check_real(name, value, low=None, high=None, low_open=False,
               high_open=False):
    """Check that ``value`` is a real number in the given interval."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = (f"{left}{'-inf' if low is None else low}, "
                    f"{'inf' if high is None else high}{right}")
        raise ValueError(f"{name} must be a real number in {interval}, got "
                         f"{value!r}")
    return float(value)


def check_bool(name, value):
    """Check that ``value`` is True or False (NumPy booleans included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name, value, choices):
    """Check that ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got "
                         f"{value!r}")
    return value


def _positive_reals(name, values, message):
    """``values`` as a tuple of finite floats > 0; any other content, or a
    ``values`` that is not iterable, raises ValueError(``message``)."""
    try:
        return tuple(check_real(name, value, 0, low_open=True)
                     for value in values)
    except (TypeError, ValueError):
        raise ValueError(message) from None


def check_scale_range(scale_range):
    """Check that ``scale_range`` is None or ``(low, high)`` with
    ``0 < low <= high`` (finite reals)."""
    if scale_range is None:
        return None
    message = (f"scale_range must be None or a pair (low, high) of real "
               f"numbers with 0 < low <= high, got {scale_range!r}")
    values = _positive_reals("scale_range", scale_range, message)
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(message)
    return values


def check_test_time_scales(scales):
    """Check that ``scales`` is None or a non-empty sequence of finite
    reals > 0; return them as a tuple of floats (None gives ``(1.0,)``)."""
    if scales is None:
        return (1.0,)
    message = (f"test_time_scales must be None or a non-empty sequence of "
               f"real numbers > 0, got {scales!r}")
    if isinstance(scales, (str, bytes, dict)):
        raise ValueError(message)
    values = _positive_reals("test_time_scales", scales, message)
    if not values:
        raise ValueError(message)
    return values


def check_class_weight_spec(class_weight):
    """Check the form of ``class_weight``: None, "balanced" or a dict."""
    if class_weight is None or isinstance(class_weight, dict):
        return class_weight
    if isinstance(class_weight, str) and class_weight == "balanced":
        return class_weight
    raise ValueError(f"class_weight must be None, 'balanced' or a dict "
                     f"{{label: weight}}, got {class_weight!r}")


def resolve_class_weight(class_weight, classes, targets):
    """The loss weight of each class that ``class_weight`` asks for.

    Parameters
    ----------
    class_weight : None, "balanced" or dict
        ``"balanced"``: ``n_pixels / (n_classes * pixels_of_class)`` over
        the labelled pixels of ``targets`` (scikit-learn's formula, per
        pixel). A dict maps labels to weights; labels it leaves out weigh 1.
    classes : ndarray of shape (n_classes,)
        The sorted labels (``classes_``).
    targets : list of ndarray
        Label maps as class indices (-1 where unknown).

    Returns
    -------
    ndarray of shape (n_classes,) or None
        None for ``class_weight=None`` (every pixel weighs the same).

    Raises
    ------
    ValueError
        Naming the label and the problem: a dict label that is not an
        integer, or not a class while some class has no weight in the
        dict; a weight that is negative or not finite; all weights 0; or a
        class with no labelled pixel to balance.
    """
    check_class_weight_spec(class_weight)
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        counts = np.zeros(len(classes))
        for labels in targets:
            counts += np.bincount(labels[labels >= 0], minlength=len(classes))
        absent = classes[counts == 0]
        if absent.size:
            raise ValueError(
                f"class_weight='balanced': classes {absent.tolist()} have no "
                "labelled pixel in y, so their weight is undefined; pass a "
                "dict of weights instead")
        return counts.sum() / (len(classes) * counts)
    weights = np.ones(len(classes))
    others = []  # integer labels that are not classes of this y
    for label, value in class_weight.items():
        if not isinstance(label, numbers.Integral) or isinstance(label, bool):
            raise ValueError(f"class_weight has a weight for label "
                             f"{label!r}; labels are integers")
        label = int(label)
        check_real(f"class_weight[{label!r}]", value, 0)
        if label in classes:
            weights[np.searchsorted(classes, label)] = value
        else:
            others.append(label)
    # As scikit-learn: a dict may name labels this y lacks (a dict for the
    # whole data set, fitted on one fold) when it weighs every class here.
    if others and len(class_weight) - len(others) < len(classes):
        raise ValueError(f"class_weight has a weight for label {others[0]}, "
                         f"which is not one of the classes "
                         f"{classes.tolist()} (other labels are allowed "
                         f"only when every class has a weight)")
    if not (weights > 0).any():
        raise ValueError("class_weight gives every class weight 0: no pixel "
                         "would be trained on")
    return weights
