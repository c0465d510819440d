"""Whole-image scores: shift-and-stitch, the dense pass, output resolution.

Every pixel is scored exactly as the patch centred on it would be in
training: the standardised image is padded with zeros (the image mean) by
``s - 1`` pixels (``(s - 1) // 2`` on the top and left), so the patch whose
top-left corner is padded pixel ``(i, j)`` is centred on image pixel
``(i, j)``.

At output resolution ``1/k`` the labelled pixels are ``c + k*a`` on each
axis (``c = (k - 1) // 2``, the middle of each k-pixel block); their class
probabilities are brought back to every pixel by linear interpolation, so
the labelled pixels keep their exact values.

- ``method="shift"`` (the paper's shift-and-stitch): strided passes on the
  padded image shifted by every residue that the labelled pixels need,
  ``(S/k)**2`` passes for total stride S (64 for rcnn2 with 3 instances).
- ``method="dense"``: one pass whose first pools stay strided up to
  ``k`` and whose later layers are dilated (REFERENCE.md section 1): the
  same scores with far less work.
"""

import warnings

import numpy as np

from .autograd import no_grad
from .backend import get_array_module as _xp

INFERENCE_METHODS = ("dense", "shift")
#: Activation memory allowed for one pass before it is cut into row tiles.
DEFAULT_MAX_BYTES = 768 * 2 ** 20


def pad_for_patches(image, side):
    """Zero-pad a (C, H, W) image so every pixel gets a centred patch."""
    xp = _xp(image)
    top = (side - 1) // 2
    bottom = side - 1 - top
    return xp.pad(image, ((0, 0), (top, bottom), (top, bottom)))


def label_positions(size, step):
    """Pixels labelled at output resolution ``1/step`` along one axis."""
    start = min((step - 1) // 2, size - 1)
    return np.arange(start, size, step)


def pass_scores(network, padded, n_instances, output_stride, top, left,
                n_rows, n_cols, max_bytes=DEFAULT_MAX_BYTES):
    """Scores of the patches whose top-left corners are ``(top + q*a, left +
    q*b)`` in ``padded`` for ``a < n_rows``, ``b < n_cols``.

    One network pass with output stride ``q``, cut into bands of output rows
    when its activations would exceed ``max_bytes``. A band that runs out of
    memory (``MemoryError``; CuPy's ``OutOfMemoryError`` is one) is computed
    again in bands half as tall, with a warning, down to one output row.

    Returns
    -------
    array of shape (N, n_rows, n_cols), on the network's device
    """
    xp = _xp(padded)
    q = output_stride
    side = network.patch_size(n_instances)
    width = side + q * (n_cols - 1)
    band = _rows_per_band(network, q, side, width, n_rows, max_bytes)
    bands, first = [], 0
    with no_grad():
        while first < n_rows:
            rows = min(band, n_rows - first)
            start = top + q * first
            window = padded[None, :, start:start + side + q * (rows - 1),
                            left:left + width]
            scores, error = _scores_unless_out_of_memory(network, window,
                                                         n_instances, q)
            if error is not None:
                band = _retry_smaller(xp, rows, error, max_bytes,
                                      padded.shape, side)
                continue
            bands.append(scores)
            first += rows
    return bands[0] if len(bands) == 1 else xp.concatenate(bands, axis=1)


def _scores_unless_out_of_memory(network, window, n_instances, q):
    """``(scores, None)`` of the pass on one band, or ``(None, error)`` if
    it ran out of memory; the error comes without its traceback, which
    would keep the failed attempt's arrays alive."""
    try:
        return network.forward(_xp(window).ascontiguousarray(window),
                               n_instances, output_stride=q).data[0], None
    except MemoryError as error:
        return None, error.with_traceback(None)


def _retry_smaller(xp, rows, error, max_bytes, padded_shape, side):
    """After ``error`` (out of memory) on a band of ``rows`` output rows:
    free what can be freed and return the next band height, half as tall;
    a MemoryError if the band was one row. CuPy raises
    ``OutOfMemoryError``, a ``MemoryError``, when the GPU is full (its
    memory also holds what other programs and the pool cache);
    ``max_bytes`` is an estimate made without knowing that."""
    if rows == 1:
        raise MemoryError(
            f"out of memory computing even one output row of a "
            f"{padded_shape[1]}x{padded_shape[2]} padded image (a "
            f"{side}-pixel context patch); use fewer instances or smaller "
            f"images") from error
    warnings.warn(
        f"out of memory on a band of {rows} output rows (max_inference_bytes"
        f"={max_bytes}); retrying in bands of {rows // 2}. A lower "
        f"max_inference_bytes avoids the failed attempt", UserWarning,
        stacklevel=4)
    if xp.__name__ != "numpy":
        xp.get_default_memory_pool().free_all_blocks()
    return rows // 2


def _bytes_per_input_row(network, width):
    # The widest activation dominates: about four of them are alive at once
    # (input, output and the convolution's temporaries), at the input width.
    channels = max([network.n_classes + 3] + [
        int(layer[1]) for layer in network.layers
        if layer[0] == "conv" and not isinstance(layer[1], str)])
    return 4 * channels * width * 4


def _rows_per_band(network, q, side, width, n_rows, max_bytes):
    per_input_row = _bytes_per_input_row(network, width)
    rows = (max_bytes // per_input_row - side) // q + 1
    return int(max(1, min(n_rows, rows)))


def minimum_pass_bytes(network, height, width, n_instances):
    """Estimated memory of labelling a ``height x width`` image when its
    pass is cut into the thinnest bands (one output row each): the padded
    image plus one band's activations. Bands cannot go below this, so a
    budget under it cannot be kept."""
    side = network.patch_size(n_instances)
    padded = 3 * (height + side - 1) * (width + side - 1) * 4
    return padded + side * _bytes_per_input_row(network, width + side - 1)


def image_scores(network, image, n_instances, step=1, method="dense",
                 max_bytes=DEFAULT_MAX_BYTES):
    """Class scores at the pixels labelled at output resolution ``1/step``.

    Parameters
    ----------
    network : RecurrentNetwork
    image : array of shape (3, H, W)
        The standardised image, on the network's device.
    n_instances : int
    step : int, default=1
        Label every ``step``-th pixel per axis (see :func:`label_positions`).
    method : {"dense", "shift"}

    Returns
    -------
    scores : array of shape (N, len(rows), len(cols))
    rows, cols : ndarray
        The labelled pixel positions.
    """
    _, height, width = image.shape
    rows, cols = label_positions(height, step), label_positions(width, step)
    side = network.patch_size(n_instances)
    padded = pad_for_patches(image, side)
    strides = network.output_strides(n_instances)
    if method == "dense":
        # The largest stride a pass can produce that still hits every
        # labelled pixel; any remaining factor is a plain subsampling.
        q = max(s for s in strides if step % s == 0)
        sub = step // q
        scores = pass_scores(network, padded, n_instances, q, rows[0],
                             cols[0], (len(rows) - 1) * sub + 1,
                             (len(cols) - 1) * sub + 1, max_bytes)
        return scores[:, ::sub, ::sub], rows, cols
    if method != "shift":
        raise ValueError(f"method must be one of {INFERENCE_METHODS}, got "
                         f"{method!r}")
    xp = _xp(image)
    total = strides[-1]
    scores = xp.empty((network.n_classes, len(rows), len(cols)),
                      dtype=image.dtype)
    # Each strided pass scores the pixels congruent to its shift modulo S;
    # run one per pair of residues that labelled pixels fall on.
    for row_shift in np.unique(rows % total):
        row_hits = np.flatnonzero(rows % total == row_shift)
        n_rows = (rows[row_hits[-1]] - row_shift) // total + 1
        for col_shift in np.unique(cols % total):
            col_hits = np.flatnonzero(cols % total == col_shift)
            n_cols = (cols[col_hits[-1]] - col_shift) // total + 1
            part = pass_scores(network, padded, n_instances, total,
                               int(row_shift), int(col_shift), n_rows,
                               n_cols, max_bytes)
            pick_rows = (rows[row_hits] - row_shift) // total
            pick_cols = (cols[col_hits] - col_shift) // total
            scores[:, row_hits[:, None], col_hits[None, :]] = part[
                :, pick_rows[:, None], pick_cols[None, :]]
    return scores, rows, cols


def softmax(scores, axis=0):
    """Class probabilities from scores, along ``axis``."""
    xp = _xp(scores)
    shifted = scores - scores.max(axis=axis, keepdims=True)
    exp = xp.exp(shifted)
    exp /= exp.sum(axis=axis, keepdims=True)
    return exp


def upsample(values, rows, cols, height, width):
    """Linear interpolation of (N, len(rows), len(cols)) values, known at
    pixels ``rows x cols``, to every pixel of an ``height x width`` image;
    known pixels keep their values exactly, the edges are held constant."""
    if len(rows) == height and len(cols) == width:
        return values
    xp = _xp(values)
    r0, r1, rw = _interpolation(rows, height)
    c0, c1, cw = _interpolation(cols, width)
    rw = xp.asarray(rw, dtype=values.dtype)[None, :, None]
    cw = xp.asarray(cw, dtype=values.dtype)[None, None, :]
    by_rows = values[:, r0] * (1 - rw) + values[:, r1] * rw
    return by_rows[:, :, c0] * (1 - cw) + by_rows[:, :, c1] * cw


def _interpolation(known, size):
    """Left/right known neighbours of every pixel and the right one's weight."""
    pixels = np.arange(size)
    right = np.clip(np.searchsorted(known, pixels), 0, len(known) - 1)
    left = np.clip(right - (known[right] > pixels), 0, len(known) - 1)
    gap = known[right] - known[left]
    weight = np.where(gap > 0, (pixels - known[left]) / np.maximum(gap, 1),
                      0.0)
    return left, right, weight

