"""A convolution followed by max pooling over large non-overlapping windows,
as one operation.

The plain network's first layer convolves the 3 RGB planes with 6x6
kernels and max-pools the result over 8x8 windows. As two operations, the
convolution writes a map 64 times the size of the pooled one, the pooling
reads it back from memory, and backward takes the weight gradient as a dense
GEMM over a gradient that is zero at 63 of every 64 positions (and then,
with only 3 input channels, that GEMM is far too thin to run fast). Fused:

* forward convolves and pools a group of images at a time (the groups
  shared over the threads), so each unpooled map is pooled while it is
  still in cache, rows first (contiguous runs) and then columns on the
  rows' maxima; only the pooled map and each window's winner are kept;
* backward takes the weight gradient from the winners alone: the input
  patch under each window's winning position, weighted by that window's
  gradient, summed per output channel. The patches are gathered from a
  channels-last copy of the input, where each kernel row of a patch is one
  contiguous run of ``C * kw`` values. That is ``ph * pw`` times fewer
  multiply-adds than the dense GEMM (64 for the plain network).

The values are those of ``max_pool2d(conv2d(x, w, b), k)``, to float
rounding (sums run in a different order); only the tie rule differs (see
:class:`ConvolutionMaxPooling2D`).
"""

from .. import _parallel, _workspace
from ..autograd import Function
from ..backend import get_array_module
from ._checks import output_size, pair
from .convolution import (Convolution2D, _spectral, check_conv_arguments,
                          conv2d)
from .pooling import _index_dtype, _running_max, max_pool2d

# Bytes of unpooled convolution output per piece of work (a group of images,
# or a band of window rows of one large image): each piece is convolved
# and pooled in turn (the pieces shared over the threads), its map still
# in cache when pooled.
PIECE_BYTES = 4 * 2 ** 20
# Kernel rows expanded together in forward (``convolution.row_group``):
# for the plain network's 3-channel 6x6 layer on two images, three rows
# (54 deep) measured 1.2x faster than two (36, the default rule's choice)
# and 1.15x faster than one (one thread, six interleaved rounds); whole
# training steps 4-8% faster, within this VM's noise of +-5%. The weight
# gradient does not use the scheme here.
MIN_GEMM_DEPTH = 54
# Bytes of input patches gathered at once for the weight gradient (one
# image's 25 x 256 winners' 6x6x3 patches for the plain network: 2.6 MB).
GATHER_BYTES = 2 ** 20


# Smallest window (taps) for which the fused operation runs. Forward and
# backward at batch 16, against the two operations in turn (3 -> 25 6x6 on
# 133x133, 11 -> 25 8x8 on 67x67): 8x8 windows 1.7x faster, 6x6 1.2-1.4x,
# 5x5 1.2x faster / 1.05x slower, 4x4 1.15-1.35x slower, 3x3 1.6-1.9x and
# 2x2 3.3x slower: the gathered patches cost more per window than the
# dense GEMM saves until windows are large.
MIN_FUSED_TAPS = 36


def fusion_pays_off(x_shape, weight_shape, pool, xp):
    """Whether :func:`conv_max_pool2d` fuses: on NumPy, for windows of at
    least ``MIN_FUSED_TAPS`` taps and a convolution that would not go
    through the FFT (those layers have many input channels and measured
    fast already)."""
    return (xp.__name__ == "numpy"
            and pool[0] * pool[1] >= MIN_FUSED_TAPS
            and not _spectral.pays_off(x_shape, weight_shape, (1, 1), (1, 1)))


def _tiled_max(xp, full, pool, pooled, winners, first_row=0):
    """Max over each ``pool`` window of ``full`` (N, O, H, W), windows side
    by side from the top-left corner (rows and columns past the last whole
    window are left out), into ``pooled``; unless ``winners`` is None, also
    each window's winner as the flat index ``row * W + column`` of its
    position, counting rows from ``first_row`` above ``full``'s first.

    Rows first: the max over each window column's ``ph`` rows (views whose
    rows are contiguous runs, unlike a window row's strided taps), then the
    max of those over the ``pw`` columns, on an eighth of the data for 8x8
    windows. Ties go to the first column holding the window's max, then to
    the first row in that column.
    """
    n, o, _, width = full.shape
    ph, pw = pool
    qh, qw = pooled.shape[2:]
    windows = full[:, :, :qh * ph, :qw * pw].reshape(n, o, qh, ph, qw * pw)
    shape = (n, o, qh, qw * pw)
    column_max = _workspace.scratch("pool_column_max", shape, full.dtype, xp)
    row_winner = column_winner = None
    if winners is not None:
        row_winner = _workspace.scratch("pool_row_winner", shape,
                                        _index_dtype(xp, ph), xp)
        column_winner = _workspace.scratch(
            "pool_column_winner", pooled.shape, _index_dtype(xp, pw), xp)
    _running_max(xp, (windows[:, :, :, i] for i in range(ph)), column_max,
                 row_winner)
    columns = column_max.reshape(n, o, qh, qw, pw)
    _running_max(xp, (columns[..., j] for j in range(pw)), pooled,
                 column_winner)
    if winners is None:
        return
    column = column_winner.astype(xp.intp)
    row = xp.take_along_axis(row_winner.reshape(n, o, qh, qw, pw),
                             column[..., None], axis=4)[..., 0]
    window_rows = (xp.arange(qh, dtype=xp.intp) * ph + first_row)[:, None]
    window_columns = xp.arange(qw, dtype=xp.intp) * pw
    winners[...] = (window_rows + row) * width + window_columns + column


def _pieces(n_images, window_rows, window_row_bytes):
    """Forward's work items (images, first window row, last window row):
    groups of whole images whose unpooled maps fit in ``PIECE_BYTES``, or
    equal bands of window rows of one image when one map does not."""
    image_bytes = window_rows * window_row_bytes
    if image_bytes <= PIECE_BYTES:
        per_piece = PIECE_BYTES // image_bytes
        return [(slice(i, min(i + per_piece, n_images)), 0, window_rows)
                for i in range(0, n_images, per_piece)]
    n_bands = -(-image_bytes // PIECE_BYTES)
    band = -(-window_rows // n_bands)
    return [(slice(i, i + 1), q, min(q + band, window_rows))
            for i in range(n_images) for q in range(0, window_rows, band)]


class ConvolutionMaxPooling2D(Function):
    """``max_pool2d(conv2d(x, weight, bias), pool)`` with stride-1,
    undilated convolution and non-overlapping ``pool`` windows (NumPy).

    On ties the gradient goes to the first column of the window holding
    the max, then that column's first row (:func:`max_pool2d` takes the
    first tap in row-major order); the values are the same either way,
    and so is the weight gradient where tied positions see equal patches
    (an input's zero padding).
    """

    def __init__(self, pool):
        self.pool = pool

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        n, _, h, w = x.shape
        o, _, kh, kw = weight.shape
        conv_shape = (h - kh + 1, w - kw + 1)
        qh, qw = conv_shape[0] // self.pool[0], conv_shape[1] // self.pool[1]
        track = any(self.needs_input_grad)
        y = xp.empty((n, o, qh, qw), dtype=x.dtype)
        winners = xp.empty(y.shape, dtype=xp.intp) if track else None
        arguments = (weight,) if bias is None else (weight, bias)
        ph = self.pool[0]
        pieces = _pieces(n, qh, o * ph * conv_shape[1] * x.dtype.itemsize)

        def run(_, piece_run):
            convolution = Convolution2D((1, 1), (1, 1))
            convolution.needs_input_grad = (False,) * (1 + len(arguments))
            convolution.min_gemm_depth = MIN_GEMM_DEPTH
            for images, q0, q1 in piece_run:
                # The input rows under window rows q0 .. q1 - 1.
                slab = x[images, :, ph * q0:ph * q1 + kh - 1]
                full = convolution.forward(slab, *arguments)
                _tiled_max(xp, full, self.pool, y[images, :, q0:q1],
                           None if winners is None
                           else winners[images, :, q0:q1], ph * q0)

        _parallel.map_parts(run, pieces, xp)
        if track:
            self.saved = (x, weight, winners, conv_shape)
        return y

    def backward(self, grad_y):
        x, weight, winners, conv_shape = self.saved
        xp = get_array_module(x)
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        grad_x = grad_w = grad_b = None
        if need_w:
            grad_w = self._weight_grad(xp, x, weight.shape, grad_y, winners,
                                       conv_shape)
        if need_b:
            grad_b = grad_y.sum(axis=(0, 2, 3))
        if need_x:
            grad_x = self._input_grad(xp, x, weight, grad_y, winners,
                                      conv_shape)
        return grad_x, grad_w, grad_b

    def _weight_grad(self, xp, x, weight_shape, grad_y, winners, conv_shape):
        """``dW[o] = sum over windows of dy * (input patch at the winner)``."""
        n, c, h, w = x.shape
        o, _, kh, kw = weight_shape
        run_length = c * kw
        kernel_rows = xp.arange(kh, dtype=xp.intp) * w
        windows = winners.shape[2] * winners.shape[3]
        # Images per block: their patches (for all channels) in cache, and
        # their input in L2 while the patches are picked out of it (the
        # gathers measured 2x slower per patch at batch 64 than at 16 when
        # each swept the whole batch).
        patch_bytes = o * windows * kh * run_length * x.dtype.itemsize
        per_block = max(1, GATHER_BYTES // patch_bytes)
        blocks = [slice(i, min(i + per_block, n))
                  for i in range(0, n, per_block)]

        def run(_, block_run):
            terms = []
            for block in block_run:
                images = block.stop - block.start
                channels_last = _workspace.scratch(
                    "conv_pool_input", (images, h, w, c), x.dtype, xp)
                channels_last[...] = x[block].transpose(0, 2, 3, 1)
                flat = channels_last.reshape(-1)
                # Row r of this view: the ``kw`` pixels (all channels) from
                # flat pixel r on. A patch's kernel row i starts at pixel
                # ``(image*h + row + i) * w + column``; it never runs past
                # its input row, as ``column <= w - kw``.
                pixel_runs = xp.lib.stride_tricks.as_strided(
                    flat, (images * h * w - (kw - 1), run_length),
                    (c * flat.itemsize, flat.itemsize))
                rows, columns = divmod(
                    winners[block].reshape(images, o, windows), conv_shape[1])
                starts = (xp.arange(images, dtype=xp.intp).reshape(-1, 1, 1)
                          * h + rows) * w + columns
                starts = starts.transpose(1, 0, 2).reshape(o, -1)
                patches = pixel_runs[starts[..., None] + kernel_rows]
                gradients = grad_y[block].transpose(1, 0, 2, 3).reshape(
                    o, 1, -1)
                terms.append(xp.matmul(gradients, patches.reshape(
                    o, patches.shape[1], -1))[:, 0])
            return terms

        # Summed in block order: the same result for any number of threads.
        total = None
        for terms in _parallel.map_parts(run, blocks, xp):
            for term in terms:
                total = term if total is None else total + term
        # Gathered in (kh, kw, c) order.
        return xp.ascontiguousarray(
            total.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))

    def _input_grad(self, xp, x, weight, grad_y, winners, conv_shape):
        """The convolution's input gradient from the gradient routed to the
        winners (dense: every input pixel may be under a winner's patch)."""
        n, o = grad_y.shape[:2]
        grad_conv = xp.zeros((n, o, conv_shape[0] * conv_shape[1]),
                             dtype=grad_y.dtype)
        xp.put_along_axis(grad_conv, winners.reshape(n, o, -1),
                          grad_y.reshape(n, o, -1), axis=2)
        # The GEMM scheme's backward for the input alone, as after a
        # forward of its own (the FFT does not take these layers).
        convolution = Convolution2D((1, 1), (1, 1))
        convolution.needs_input_grad = (True, False)
        convolution.spectral = False
        convolution.saved = (x, weight)
        grad_x, _, _ = convolution.backward(
            grad_conv.reshape((n, o) + conv_shape))
        return grad_x


def conv_max_pool2d(x, weight, bias, pool_size):
    """``max_pool2d(conv2d(x, weight, bias), pool_size)``, fused where that
    pays off.

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, H, W)
    weight : Variable or ndarray of shape (O, C, KH, KW)
    bias : Variable or ndarray of shape (O,), or None
    pool_size : int or (int, int)
        Pooling window, also its stride (non-overlapping windows).

    Returns
    -------
    Variable of shape (N, O, (H - KH + 1) // ph, (W - KW + 1) // pw)

    Notes
    -----
    The convolution has stride 1 and no dilation. On NumPy, with windows
    of at least 36 taps, one :class:`ConvolutionMaxPooling2D` does both
    (see the module docstring); otherwise the two operations run in turn.
    Either way the values and gradients are the same, to float rounding.
    """
    pool = pair("conv_max_pool2d: pool_size", pool_size, 1)
    _, _, conv_shape = check_conv_arguments(x, weight, bias, 1, 1)
    for size, k, axis in zip(conv_shape, pool, ("vertical", "horizontal")):
        output_size(f"conv_max_pool2d (convolution output "
                    f"{tuple(conv_shape)}, pool_size {pool})", size, k, k, 1,
                    axis)
    xp = get_array_module(getattr(x, "data", x))
    if not fusion_pays_off(x.shape, weight.shape, pool, xp):
        return max_pool2d(conv2d(x, weight, bias), pool)
    function = ConvolutionMaxPooling2D(pool)
    if bias is None:
        return function(x, weight)
    return function(x, weight, bias)
