"""Per-image normalisation, the paper's only preprocessing.

Each image is brought to zero mean and unit variance over all its pixels and
channels together (one mean and one deviation per image, so the relative
colour of regions, which tells sky from grass, is kept). Standardising an
already standardised image changes it by float rounding only, so
:class:`ImageStandardizer` in a pipeline in front of a
:class:`~skrcnn.RecurrentCNNSegmenter` (which standardises too) is harmless.

Resizing (scale augmentation in training, test-time scales in prediction)
lives here too, so both use the same interpolation: bilinear, anti-aliased
when shrinking, with pixel centres mapped onto pixel centres.
"""

import functools
import math

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._validation import check_images


def standardize_image(image, dtype=np.float32):
    """Return ``image`` scaled to zero mean and unit variance.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 or float RGB.
    dtype : numpy dtype, default=np.float32

    Returns
    -------
    ndarray of shape (H, W, 3) and ``dtype``
        A new array; ``image`` is not modified. A constant image becomes all
        zeros.

    Raises
    ------
    ValueError
        If ``image`` is not of shape (H, W, 3).
    """
    shape = np.shape(image)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"standardize_image: image has shape {shape}; "
                         "expected (H, W, 3) RGB")
    scaled = apply_standardization(image, standardization(image))
    return scaled.astype(dtype, copy=False)


def standardization(image):
    """The statistics :func:`standardize_image` uses for ``image``.

    Returns
    -------
    divisor, mean, std : float
        The standardised image is ``(image / divisor - mean) / std`` (only
        centred when ``std`` is 0). ``divisor`` is 1 unless the values are
        so large that their sum or squares overflow: then it is their
        largest magnitude.
    """
    values = np.asarray(image, dtype=np.float64)
    divisor = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        mean = values.mean()
        std = values.std()
    if not (np.isfinite(mean) and np.isfinite(std)):
        divisor = float(np.abs(values).max())
        values = values / divisor
        mean = values.mean()
        std = values.std()
    # A constant image whose mean rounds off the constant has a deviation
    # of a few ulps of it (0.1 everywhere: 2.8e-17); that is no variation,
    # and dividing by it would make the image all +1 or -1.
    if std <= 16 * np.finfo(np.float64).eps * abs(mean):
        # Centred on a pixel's own value, a constant image is exactly 0.
        mean, std = (values.flat[0] if values.size else mean), 0.0
    return divisor, float(mean), float(std)


def apply_standardization(values, statistics):
    """``values`` (an image or some of its pixels) standardised with the
    image's :func:`standardization` ``statistics``, as float64: the same
    bits whichever pixels are taken."""
    divisor, mean, std = statistics
    scaled = np.asarray(values, dtype=np.float64)
    if divisor != 1:
        scaled = scaled / divisor
    scaled = scaled - mean
    if std > 0:
        scaled /= std
    return scaled


def scaled_shape(shape, factor):
    """``(H, W)`` multiplied by ``factor``, each side rounded, at least 1."""
    return tuple(max(1, round(side * factor)) for side in shape)


def resize_image(image, shape):
    """Bilinear resize of an ``(H, W, ...)`` array to ``shape = (h, w)``.

    Anti-aliased along a side that shrinks. Pixel centres map onto pixel
    centres: output pixel ``c`` samples input position
    ``(c + 0.5) * H / h - 0.5``. Returns float64; ``image`` is not modified.

    The same values as scikit-image's ``resize(image, ..., order=1,
    anti_aliasing=<a side shrinks>, preserve_range=True)`` (to float
    rounding), computed as two gathers instead of a spline zoom, which
    took most of a rescaled training crop's sampling time.
    """
    image = np.asarray(image, dtype=np.float64)
    shape = tuple(shape)
    factors = np.divide(image.shape[:2], shape)
    if (factors > 1).any():
        # Imported here: scipy.ndimage is only needed when shrinking.
        from scipy import ndimage

        # scikit-image's anti-aliasing: sigma (factor - 1) / 2 per axis,
        # its "reflect" mode (scipy's "mirror").
        sigma = tuple(np.maximum(0, (factors - 1) / 2)) + (0,) * (
            image.ndim - 2)
        image = ndimage.gaussian_filter(image, sigma, mode="mirror")
    return resample_bilinear(image, np.arange(shape[0]), np.arange(shape[1]),
                             shape)


def resample_bilinear(image, rows, cols, shape):
    """Pixels ``rows x cols`` of ``image`` (H, W, ...) resized bilinearly to
    ``shape = (h, w)``, without anti-aliasing: an array of shape
    (len(rows), len(cols), ...). Computes only the pixels asked for, so a
    few pixels of a large resized map cost a few gathers."""
    extra = (1,) * (image.ndim - 2)
    low, high, weight = _bilinear_taps(np.asarray(rows), image.shape[0],
                                       shape[0])
    weight = weight.reshape((-1, 1) + extra)
    # In place: fresh temporaries of a few MB page-fault (glibc maps them).
    picked = image[low].astype(np.result_type(image, weight), copy=False)
    picked *= 1 - weight
    below = image[high] * weight
    picked += below
    # Columns are gathered as runs of the flattened trailing axes: indexing
    # the middle axis of an (h, W, 3) array copies one 3-value pixel at a
    # time, and took 10x longer.
    height, width = picked.shape[:2]
    depth = math.prod(picked.shape[2:])
    flat = picked.reshape(height, width * depth)
    low, high, weight = _bilinear_taps(np.asarray(cols), image.shape[1],
                                       shape[1])
    within = np.arange(depth)
    out = np.take(flat, (depth * low[:, None] + within).ravel(), axis=1)
    out *= np.repeat(1 - weight, depth)
    right = np.take(flat, (depth * high[:, None] + within).ravel(), axis=1)
    right *= np.repeat(weight, depth)
    out += right
    return out.reshape((height, len(low)) + picked.shape[2:])


def _bilinear_taps(index, size, new_size):
    """Source pixels and weight of output pixels ``index`` along an axis
    resized from ``size`` to ``new_size`` (pixel centres on pixel centres):
    output ``i`` is ``(1 - weight[i]) * x[low[i]] + weight[i] *
    x[high[i]]``. Positions past the edge pixels' centres are mirrored
    back, as scikit-image's resize does."""
    position = np.abs((index + 0.5) * size / new_size - 0.5)
    position = np.clip(np.where(position > size - 1,
                                2 * (size - 1) - position, position),
                       0, size - 1)
    low = np.floor(position).astype(np.intp)
    return low, np.minimum(low + 1, size - 1), position - low


def resize_labels(labels, shape):
    """Nearest-neighbour resize of an ``(H, W)`` label map (values kept).

    scikit-image's ``resize(labels, shape, order=0)``, computed as one
    gather of rows and columns (order 0 is separable): 2.5x faster, and
    the index arrays are reused between calls.
    """
    rows = _nearest_sources(labels.shape[0], shape[0])
    cols = _nearest_sources(labels.shape[1], shape[1])
    return labels[np.ix_(rows, cols)]


@functools.lru_cache(maxsize=4096)
def _nearest_sources(size, new_size):
    """The source pixel of each output pixel of one axis resized from
    ``size`` to ``new_size`` by nearest neighbour: scikit-image's own (its
    resize of an index ramp), so that pixel centres exactly halfway between
    two source pixels fall as they do there. Read-only: it is shared."""
    from skimage.transform import resize

    sources = resize(np.arange(size, dtype=np.float64), (new_size,),
                     order=0, anti_aliasing=False,
                     preserve_range=True).astype(np.intp)
    sources.setflags(write=False)
    return sources


class ImageStandardizer(TransformerMixin, BaseEstimator):
    """Scale every image to zero mean and unit variance (per image).

    The paper's normalisation, as a stateless scikit-learn transformer for
    pipelines: ``make_pipeline(ImageStandardizer(), RecurrentCNNSegmenter())``.

    Parameters
    ----------
    dtype : {"float32", "float64"}, default="float32"
        Floating-point type of the output images.

    Examples
    --------
    >>> import numpy as np
    >>> from skrcnn import ImageStandardizer
    >>> images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3))
    >>> out = ImageStandardizer().fit_transform(images)
    >>> out.shape, abs(round(float(out[0].mean()), 6)), round(float(out[0].std()), 4)
    ((2, 8, 8, 3), 0.0, 1.0)
    """

    def __init__(self, dtype="float32"):
        self.dtype = dtype

    def fit(self, X, y=None):
        """Check ``X``; nothing is learned.

        Parameters
        ----------
        X : sequence of (H, W, 3) images or ndarray (n, H, W, 3)
        y : ignored

        Returns
        -------
        self
        """
        self._check_dtype()
        check_images(X)
        self.n_features_in_ = 3  # RGB channels, for pipeline introspection
        return self

    def transform(self, X):
        """Standardise each image.

        Parameters
        ----------
        X : sequence of (H, W, 3) images or ndarray (n, H, W, 3)

        Returns
        -------
        list of ndarray, or ndarray (n, H, W, 3) when ``X`` was an array
        """
        dtype = self._check_dtype()
        images, was_array = check_images(X)
        out = [standardize_image(image, dtype) for image in images]
        return np.stack(out) if was_array else out

    def set_output(self, *, transform=None):
        """Accept scikit-learn's output configuration of a pipeline.

        Images have no feature columns, so only the default container (the
        input's: a list or an array) exists.

        Parameters
        ----------
        transform : {"default"} or None

        Returns
        -------
        self
        """
        if transform not in (None, "default"):
            raise ValueError(f"ImageStandardizer outputs images, not tables: "
                             f"set_output(transform={transform!r}) is not "
                             "supported; use 'default'")
        return self

    def _check_dtype(self):
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got "
                             f"{self.dtype!r}")
        return np.dtype(self.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
