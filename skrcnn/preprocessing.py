"""Per-image normalisation, the paper's only preprocessing.

Each image is brought to zero mean and unit variance over all its pixels and
channels together (one mean and one deviation per image, so the relative
colour of regions, which tells sky from grass, is kept). Standardising an
already standardised image changes it by float rounding only, so
:class:`ImageStandardizer` in a pipeline in front of a
:class:`~skrcnn.RecurrentCNNSegmenter` (which standardises too) is harmless.
"""

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
    """
    values = np.asarray(image, dtype=np.float64)
    mean = values.mean()
    std = values.std()
    scaled = values - mean
    if std > 0:
        scaled /= std
    return scaled.astype(dtype, copy=False)


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
    >>> out.shape, round(float(out[0].mean()), 6), round(float(out[0].std()), 4)
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
