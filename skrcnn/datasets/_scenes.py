"""Synthetic outdoor scenes whose labels can only be read from context.

Each scene is drawn top to bottom: sky, a band of distant mountains whose
lower edge is the horizon, on half of the scenes a lake, then grass, with
trees and buildings standing on the grass. Sky and water are rendered by the
same random process (same colour, same texture statistics), so a window that
sees only sky-or-water pixels cannot tell which it is; only the layout can:
sky lies above the mountains, water below them and above the grass. How far
that cue is from a typical sky or water pixel is set by ``context_scale``.
"""

import math
import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

CLASS_NAMES = ["sky", "water", "mountain", "grass", "tree", "building"]
SKY, WATER, MOUNTAIN, GRASS, TREE, BUILDING = range(len(CLASS_NAMES))

# Parts drawn in their own colour but labelled as the object they belong to.
_TRUNK, _WINDOW = 6, 7
_PART_CLASS = np.array([SKY, WATER, MOUNTAIN, GRASS, TREE, BUILDING,
                        TREE, BUILDING], dtype=np.int64)

# Mean RGB of each part. Sky and water share one colour on purpose.
_PART_COLOUR = np.array([
    [120, 165, 215],  # sky
    [120, 165, 215],  # water: identical to sky
    [105, 95, 125],   # mountain
    [95, 150, 60],    # grass
    [35, 95, 45],     # tree crown
    [150, 145, 140],  # building wall
    [95, 65, 40],     # trunk
    [60, 65, 80],     # window
], dtype=np.float32)
# Standard deviations of the per-pixel (fine) and blotchy (coarse) texture.
_FINE_STD = np.array([10, 10, 8, 14, 14, 6, 8, 4], dtype=np.float32)
_COARSE_STD = np.array([14, 14, 10, 10, 10, 6, 6, 4], dtype=np.float32)
_INT8_STD = np.float32(np.sqrt((256 ** 2 - 1) / 12))  # of uniform int8 noise
_COLOUR_JITTER = 8.0  # per-scene shift of every part's colour
_COARSE_CELL = 8  # pixels per cell of the coarse texture grid

# Band heights are drawn in [1 - _SPREAD, 1 + _SPREAD] times their scale.
_SPREAD = 0.25
MIN_SIDE = 24
MIN_CONTEXT_SCALE = 4

_DESCR = """\
Synthetic outdoor scenes (skrcnn.datasets.make_scenes)
-----------------------------------------------------

Scenes are drawn top to bottom: sky; a band of distant mountains whose lower
edge is the horizon (``horizons`` gives its row); on about half of the scenes
a lake; grass down to the bottom edge; one to three trees and buildings
standing on the grass, larger the nearer they stand.

Classes: 0 sky, 1 water, 2 mountain, 3 grass, 4 tree, 5 building; -1 marks
unknown pixels (a band along class boundaries when ``unknown_band`` > 0).

Sky and water are rendered by the same random process: within a scene they
share one colour and their texture has the same statistics, so no local
window that sees only sky or water can tell them apart. The layout can: every
sky pixel lies above the horizon and every water pixel below it. The sky and
the lake are each between 0.75 and 1.25 times ``context_scale`` rows tall,
so ``context_scale`` sets how far a typical sky or water pixel is from the
mountains and the shore that disambiguate it.
"""


def make_scenes(n_samples=100, image_shape=(64, 64), random_state=None, *,
                context_scale=None, unknown_band=0, return_X_y=False):
    """Generate synthetic outdoor scenes that need context to be labelled.

    Sky and water have identical colour and texture statistics; they differ
    only in where they lie relative to the horizon. A classifier that sees
    a small window around a pixel is at chance on the interior of those
    regions; one that sees about ``2 * context_scale`` pixels is not.

    Parameters
    ----------
    n_samples : int, default=100
        Number of scenes.
    image_shape : tuple of int (height, width), default=(64, 64)
        Size of each scene in pixels; both at least 24.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the scene generator. The same integer gives byte-identical
        scenes.
    context_scale : int or float, default=None
        Typical height in pixels of the sky and of the lake (each is drawn
        between 0.75 and 1.25 times this), hence how far a typical sky or
        water pixel is from the cue that disambiguates it. The mountain band
        is about a quarter of it (at least 2 pixels). None means
        ``image_shape[0] // 4``. At least 4, and small enough that sky,
        mountains, lake and some grass fit in the image height.
    unknown_band : int, default=0
        Pixels within this many pixels of a boundary between two classes
        are labelled -1 (unknown), as annotators leave boundaries unlabelled.
    return_X_y : bool, default=False
        If True, return ``(images, labels)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With attributes

        - ``images``: (n_samples, height, width, 3) uint8 array;
        - ``labels``: (n_samples, height, width) int64 array, class index or
          -1 for unknown;
        - ``horizons``: (n_samples,) int64 array, the first row below the
          mountains (every sky pixel is above it, every water pixel on or
          below it);
        - ``class_names``: the 6 class names;
        - ``DESCR``: a description of the generator.
    (images, labels) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> from skrcnn.datasets import make_scenes
    >>> scenes = make_scenes(n_samples=4, image_shape=(48, 64), random_state=0)
    >>> scenes.images.shape, scenes.labels.shape
    ((4, 48, 64, 3), (4, 48, 64))
    >>> scenes.class_names[:2]
    ['sky', 'water']
    """
    height, width = _check_image_shape(image_shape)
    n_samples = _check_int(n_samples, "n_samples", minimum=1)
    unknown_band = _check_int(unknown_band, "unknown_band", minimum=0)
    scale = _check_context_scale(context_scale, height)
    rng = _generator(random_state)

    images = np.empty((n_samples, height, width, 3), dtype=np.uint8)
    labels = np.empty((n_samples, height, width), dtype=np.int64)
    horizons = np.empty(n_samples, dtype=np.int64)
    upsample = _bilinear_upsampler(height, width)
    for i in range(n_samples):
        parts, horizons[i] = _draw_parts(rng, height, width, scale)
        images[i] = _render(rng, parts, upsample)
        labels[i] = np.take(_PART_CLASS, parts)
        if unknown_band:
            labels[i][_near_boundary(labels[i], unknown_band)] = -1

    if return_X_y:
        return images, labels
    return Bunch(images=images, labels=labels, horizons=horizons,
                 class_names=list(CLASS_NAMES), DESCR=_DESCR)


# ----------------------------------------------------------------- checks

def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_image_shape(image_shape):
    try:
        height, width = image_shape
    except (TypeError, ValueError):
        raise ValueError("image_shape must be a pair (height, width), got "
                         f"{image_shape!r}") from None
    for side in (height, width):
        if (isinstance(side, (bool, np.bool_))
                or not isinstance(side, numbers.Integral)
                or side < MIN_SIDE):
            raise ValueError(f"image_shape must be two integers >= "
                             f"{MIN_SIDE}, got {image_shape!r}")
    return int(height), int(width)


def _mountain_scale(scale):
    return max(2.0, scale / 4)


def _check_context_scale(context_scale, height):
    if context_scale is None:
        context_scale = max(MIN_CONTEXT_SCALE, height // 4)
    if (isinstance(context_scale, (bool, np.bool_))
            or not isinstance(context_scale, numbers.Real)
            or not np.isfinite(context_scale)
            or context_scale < MIN_CONTEXT_SCALE):
        raise ValueError(f"context_scale must be a number >= "
                         f"{MIN_CONTEXT_SCALE}, got {context_scale!r}")
    scale = float(context_scale)
    # The tallest sky, mountains and lake must leave some grass to stand on.
    tallest = ((1 + _SPREAD) * (2 * scale + _mountain_scale(scale))
               + _min_grass(scale))
    if tallest > height:
        # Rounded down: the suggested value itself must fit.
        largest = math.floor(_largest_scale(height) * 10) / 10
        raise ValueError(
            f"context_scale={context_scale!r} is too large for images "
            f"{height} pixels high: sky, mountains, lake and grass need up "
            f"to {tallest:.0f} rows; use context_scale <= {largest:.1f} or "
            f"taller images")
    return scale


def _min_grass(scale):
    return max(4.0, scale / 2)


def _largest_scale(height):
    """Largest context_scale that fits (the constraint is monotone)."""
    low, high = float(MIN_CONTEXT_SCALE), float(height)
    for _ in range(50):
        mid = (low + high) / 2
        fits = ((1 + _SPREAD) * (2 * mid + _mountain_scale(mid))
                + _min_grass(mid)) <= height
        low, high = (mid, high) if fits else (low, mid)
    return low


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    # scikit-learn semantics (None = global state, int = seed, RandomState =
    # consumed), then a Generator for its fast float32 normal draws.
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed)


# ----------------------------------------------------------------- layout

def _band(rng, scale):
    return scale * rng.uniform(1 - _SPREAD, 1 + _SPREAD)


def _smooth_profile(rng, width, n_knots=6):
    """A random curve over the columns with values in [0, 1]."""
    knots = np.linspace(0, width - 1, n_knots)
    return np.interp(np.arange(width), knots, rng.random(n_knots))


def _draw_parts(rng, height, width, scale):
    """Return the part index of every pixel and the horizon row."""
    sky = _band(rng, scale)
    mountain = _band(rng, _mountain_scale(scale))
    horizon = int(round(sky + mountain))
    # The mountain band is 0.5 to 1.5 times its mean thickness, at least 1.
    thickness = mountain * (0.5 + _smooth_profile(rng, width))
    mountain_top = np.minimum(np.round(horizon - thickness), horizon - 1)
    lake = rng.random() < 0.5
    shore = horizon + (int(round(_band(rng, scale))) if lake else 0)

    rows = np.arange(height)[:, None]
    parts = np.full((height, width), GRASS, dtype=np.intp)
    parts[:shore] = WATER
    parts[:horizon] = MOUNTAIN
    parts[rows < mountain_top[None, :]] = SKY
    _draw_objects(rng, parts, horizon, shore)
    return parts, horizon


def _draw_objects(rng, parts, horizon, shore):
    """Trees and buildings standing on the grass, far ones drawn first."""
    height, width = parts.shape
    n_objects = rng.integers(1, 4)
    bases = np.sort(rng.integers(shore + 1, height + 1, size=n_objects))
    for base in bases:
        # Perspective: an object standing nearer (lower) is drawn larger.
        size = (base - horizon) * rng.uniform(0.6, 1.6)
        centre = rng.uniform(0, width)
        if rng.random() < 0.5:
            _draw_tree(rng, parts, base, centre, max(size, 4.0))
        else:
            _draw_building(rng, parts, base, centre, max(size, 4.0))


def _draw_tree(rng, parts, base, centre, size):
    crown_ry = 0.33 * size
    crown_rx = crown_ry * rng.uniform(0.7, 1.1)
    crown_y = base - size + crown_ry
    trunk_half = max(0.6, crown_rx / 6)
    rows, cols = _grid(parts.shape, base - size, base,
                       centre - crown_rx, centre + crown_rx)
    if rows is None:
        return
    box = parts[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    trunk = (np.abs(cols + 0.5 - centre) <= trunk_half) & (rows >= crown_y)
    crown = (((rows + 0.5 - crown_y) / crown_ry) ** 2
             + ((cols + 0.5 - centre) / crown_rx) ** 2) <= 1
    box[trunk] = _TRUNK
    box[crown] = TREE


def _draw_building(rng, parts, base, centre, size):
    half_width = 0.5 * size * rng.uniform(0.5, 1.0)
    top = base - size
    rows, cols = _grid(parts.shape, top, base,
                       centre - half_width, centre + half_width)
    if rows is None:
        return
    box = parts[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box[...] = BUILDING
    period = max(3, int(round(size / 6)))
    pane = max(1, period // 2)
    inside = ((rows - int(top) - 1) % period < pane) & (
        (cols - int(centre - half_width) - 1) % period < pane)
    margin = (rows > top + 1) & (rows < base - 2)
    box[np.broadcast_to(inside & margin, box.shape)] = _WINDOW


def _grid(shape, top, bottom, left, right):
    """Row and column index grids of a box clipped to the image, or None."""
    height, width = shape
    r0, r1 = max(0, int(np.floor(top))), min(height, int(np.ceil(bottom)))
    c0, c1 = max(0, int(np.floor(left))), min(width, int(np.ceil(right)))
    if r0 >= r1 or c0 >= c1:
        return None, None
    return np.arange(r0, r1)[:, None], np.arange(c0, c1)[None, :]


# ---------------------------------------------------------------- texture

def _bilinear_upsampler(height, width):
    """Matrices that turn a coarse noise grid into a smooth full-size field."""
    def matrix(size):
        n_cells = size // _COARSE_CELL + 2
        position = (np.arange(size) + 0.5) / _COARSE_CELL
        low = np.floor(position).astype(int)
        weight = (position - low).astype(np.float32)
        out = np.zeros((size, n_cells), dtype=np.float32)
        out[np.arange(size), low] = 1 - weight
        out[np.arange(size), low + 1] = weight
        return out

    rows, cols = matrix(height), matrix(width)
    # Bilinear weights shrink the variance; rescale so the field has unit std.
    gain = 1 / np.sqrt((rows ** 2).sum(1).mean() * (cols ** 2).sum(1).mean())
    return rows * np.float32(gain), cols.T.copy()


def _render(rng, parts, upsample):
    rows, cols = upsample
    palette = _PART_COLOUR + rng.normal(
        0, _COLOUR_JITTER, size=_PART_COLOUR.shape).astype(np.float32)
    palette[WATER] = palette[SKY]  # one colour for both, in every scene
    palette += 0.5  # so that the final truncation to uint8 rounds
    coarse = rows @ rng.standard_normal(
        (rows.shape[1], cols.shape[0]), dtype=np.float32) @ cols
    # Uniform int8 noise: four times cheaper to draw than normal floats.
    fine = rng.integers(-128, 128, size=parts.shape + (3,), dtype=np.int8)
    image = np.take(palette, parts, axis=0)
    image += np.take(_FINE_STD / _INT8_STD, parts)[:, :, None] * fine
    image += (np.take(_COARSE_STD, parts) * coarse)[:, :, None]
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def _near_boundary(labels, band):
    """Pixels whose (2 * band + 1)-square window holds more than one class."""
    from scipy.ndimage import maximum_filter, minimum_filter

    size = 2 * band + 1
    return maximum_filter(labels, size) != minimum_filter(labels, size)
