"""Max and average pooling over NCHW maps, with kernel, stride and dilation.

Both combine strided views of the input, one kernel tap at a time, so no
window array is ever materialised (max pooling goes one axis at a time, see
:class:`MaxPooling2D`). Dilation is what turns a strided network into the
dense ("a trous") one used for full-image inference.
"""

from .. import _parallel
from ..autograd import Function
from ..backend import get_array_module
from ._checks import check_array, output_size, pair


def _tap(array, i, j, out_shape, stride, dilation):
    """The strided view of ``array`` seen by kernel tap (i, j)."""
    (oh, ow), (sh, sw), (dh, dw) = out_shape, stride, dilation
    return array[:, :, dh * i:dh * i + sh * (oh - 1) + 1:sh,
                 dw * j:dw * j + sw * (ow - 1) + 1:sw]


class _Pooling2D(Function):
    def __init__(self, kernel, stride, dilation, out_shape):
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.out_shape = out_shape

    def taps(self, array):
        kh, kw = self.kernel
        for i in range(kh):
            for j in range(kw):
                yield i * kw + j, _tap(array, i, j, self.out_shape,
                                       self.stride, self.dilation)


# Input bytes per chunk of planes for max pooling on the CPU. A window's
# column taps each read a strided view, so every cache line is read ``kw``
# times: from cache when the chunk fits in L2, measured 2x faster for the
# plain network's 8x8 pool than one pass over the whole batch.
CPU_CHUNK_BYTES = 2 ** 20

# Smallest non-overlapping window for which backward scatters to the
# winners: 4x4 and 8x8 windows measured 2.5-8x faster that way, 2x2 windows
# 1.1-1.5x slower (their index arithmetic is a quarter of the input's size).
SCATTER_MIN_TAPS = 9
# Input gradients smaller than this are scattered in one run (a thread's
# hand-off would cost more than it saves).
SCATTER_PARALLEL_BYTES = 2 ** 21


def _index_dtype(xp, n_taps):
    """The smallest unsigned type indexing ``n_taps`` window taps."""
    return xp.uint8 if n_taps <= 256 else xp.uint16 if n_taps <= 2 ** 16 \
        else xp.uint32


def _running_max(xp, views, best, winner):
    """``best`` = elementwise max over ``views``; unless ``winner`` is None,
    also the index of the first view that reaches it (in ``winner``'s
    unsigned type: see :func:`_index_dtype`)."""
    views = iter(views)
    best[...] = next(views)
    if winner is None:
        for view in views:
            xp.maximum(best, view, out=best)
        return
    # A view is strictly better exactly where the running max moves, so the
    # comparison reads two contiguous buffers rather than the strided view
    # again (comparisons on strided views also scaled badly over threads).
    current, spare = best, xp.empty_like(best)
    candidate = xp.empty_like(winner)
    index = 0
    for index, view in enumerate(views, start=1):
        xp.maximum(current, view, out=spare)
        if index == 1:
            # Where the second view is strictly better it wins (index 1),
            # else the first (0): one comparison sets every index.
            xp.greater(spare, current, out=winner)
        else:
            # Indices only grow, so "the latest strictly better view" is the
            # maximum of better * index: arithmetic passes, much faster than
            # a masked assignment.
            xp.greater(spare, current, out=candidate)
            xp.multiply(candidate, winner.dtype.type(index), out=candidate)
            xp.maximum(winner, candidate, out=winner)
        current, spare = spare, current
    if index == 0:  # a one-tap window: the only view wins
        winner.fill(0)
    if current is not best:
        best[...] = current


def _plane_chunks(xp, shape, itemsize):
    """(images, channels) index pairs covering an (N, C, H, W) array in
    chunks of about ``CPU_CHUNK_BYTES`` (one chunk on a GPU)."""
    n, c, h, w = shape
    per_chunk = CPU_CHUNK_BYTES // max(1, h * w * itemsize)
    if xp.__name__ != "numpy" or per_chunk >= n * c:
        return [(slice(None), slice(None))]
    if per_chunk >= c:
        images = per_chunk // c
        return [(slice(i, i + images), slice(None))
                for i in range(0, n, images)]
    channels = max(1, per_chunk)
    return [(slice(i, i + 1), slice(j, j + channels))
            for i in range(n) for j in range(0, c, channels)]


class MaxPooling2D(_Pooling2D):
    """Max over each window; the winning tap (first one in row-major order on
    ties) gets the gradient.

    The max is separable: first over the ``kw`` taps along each input row,
    then over the ``kh`` row maxima of each window. That costs ``kh + kw``
    passes instead of ``kh * kw`` and keeps the row-major tie rule: the first
    row holding the window's max, and the first tap in that row. On the CPU
    the work goes in cache-sized chunks of planes. Backward routes each
    gradient back through the two winner indices; large windows that don't
    overlap (the plain network's 8x8 pool) scatter it to the winners in one
    indexed assignment instead.
    """

    def _used_rows(self, array):
        (oh, _), (sh, _), (dh, _) = self.out_shape, self.stride, self.dilation
        return array[:, :, :dh * (self.kernel[0] - 1) + sh * (oh - 1) + 1]

    def _column_taps(self, array):
        """Views ``array[..., r, s*w + d*j]`` over (n, c, r, w), one per j."""
        (_, ow), (_, sw), (_, dw) = self.out_shape, self.stride, self.dilation
        for j in range(self.kernel[1]):
            yield array[..., dw * j:dw * j + sw * (ow - 1) + 1:sw]

    def _row_taps(self, array):
        """Views ``array[:, :, s*h + d*i, w]`` over (n, c, h, w), one per i."""
        (oh, _), (sh, _), (dh, _) = self.out_shape, self.stride, self.dilation
        for i in range(self.kernel[0]):
            yield array[:, :, dh * i:dh * i + sh * (oh - 1) + 1:sh]

    def forward(self, x):
        xp = get_array_module(x)
        track = self.needs_input_grad[0]
        used = self._used_rows(x)
        n, c, rows = used.shape[:3]
        row_shape = (n, c, rows, self.out_shape[1])
        y = xp.empty((n, c) + self.out_shape, dtype=x.dtype)
        row_max = xp.empty(row_shape, dtype=x.dtype)
        column_winner = row_winner = None
        if track:
            column_winner = xp.empty(row_shape,
                                     dtype=_index_dtype(xp, self.kernel[1]))
            row_winner = xp.empty(y.shape,
                                  dtype=_index_dtype(xp, self.kernel[0]))

        def run(_, parts):
            for part in parts:
                _running_max(xp, self._column_taps(used[part]), row_max[part],
                             None if column_winner is None
                             else column_winner[part])
                _running_max(xp, self._row_taps(row_max[part]), y[part],
                             None if row_winner is None else row_winner[part])

        chunks = _plane_chunks(xp, used.shape, x.dtype.itemsize)
        if self._windows_are_sparse():
            # Large non-overlapping windows read the input with wide strides:
            # on two threads the plain network's 8x8 pool measured 1.1-1.3x
            # slower than on one (2x2 windows: 1.4x faster on two).
            run(0, chunks)
        else:
            # Chunks are disjoint planes: threads need no merging.
            _parallel.map_parts(run, chunks, xp)
        if track:
            self.saved = (x.shape, column_winner, row_winner)
        return y

    def _windows_are_sparse(self):
        """True when windows don't overlap and are large: then each input
        gets at most one output's gradient and few inputs get any."""
        return all(s >= d * (k - 1) + 1 for k, s, d in
                   zip(self.kernel, self.stride, self.dilation)) \
            and self.kernel[0] * self.kernel[1] >= SCATTER_MIN_TAPS

    def _scatter_backward(self, xp, grad_y, x_shape, column_winner,
                          row_winner):
        """Write each output's gradient straight to its winning input.

        One indexed assignment over the outputs instead of ``kh + kw``
        passes over the input: the plain network's 8x8 pool measured 8x
        faster. Assignment is exact because no two windows share an input.
        On the CPU, large batches go in runs of images over the threads.
        """
        n, c, height, width = x_shape
        (oh, ow), (sh, sw), (dh, dw) = self.out_shape, self.stride, self.dilation
        index = xp.int64  # an alias CuPy is sure to have
        grad_x = xp.empty(x_shape, dtype=grad_y.dtype)

        def run(_, images):
            first, stop = images[0], images[-1] + 1
            planes = xp.arange((stop - first) * c, dtype=index) \
                .reshape(stop - first, c, 1, 1)
            rows = (xp.arange(oh, dtype=index) * sh)[:, None] \
                + dh * row_winner[first:stop].astype(index)
            columns = xp.arange(ow, dtype=index)
            # The winning column of the winning row: column_winner is
            # indexed by every input row, one entry per window column.
            winners = column_winner[first:stop]
            column_offset = winners.reshape(-1)[
                (planes * winners.shape[2] + rows) * ow + columns]
            flat = (planes * height + rows) * width + columns * sw \
                + dw * column_offset.astype(index)
            block = grad_x[first:stop]
            block.fill(0)
            block.reshape(-1)[flat.reshape(-1)] = \
                grad_y[first:stop].reshape(-1)

        images = list(range(n))
        if n == 0:
            return grad_x
        if grad_x.nbytes < SCATTER_PARALLEL_BYTES:
            run(0, images)
        else:
            _parallel.map_parts(run, images, xp)
        return grad_x

    def backward(self, grad_y):
        xp = get_array_module(grad_y)
        x_shape, column_winner, row_winner = self.saved
        if self._windows_are_sparse():
            return (self._scatter_backward(xp, grad_y, x_shape,
                                           column_winner, row_winner),)
        grad_x = xp.zeros(x_shape, dtype=grad_y.dtype)
        used = self._used_rows(grad_x)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        rows_apart = sh >= dh * (kh - 1) + 1
        columns_apart = sw >= dw * (kw - 1) + 1
        # Every used row is some window's (2x2 windows, stride 2): nothing
        # of the row gradients is left to clear.
        rows_tiled = rows_apart and dh == 1 and sh == kh

        def run(_, parts):
            for part in parts:
                # Route each output's gradient to its winning row, then along
                # that row to the winning tap.
                grad_rows = (xp.empty if rows_tiled else xp.zeros)(
                    column_winner[part].shape, dtype=grad_y.dtype)
                _route(xp, grad_y[part], row_winner[part],
                       self._row_taps(grad_rows), rows_apart)
                _route(xp, grad_rows, column_winner[part],
                       self._column_taps(used[part]), columns_apart)

        _parallel.map_parts(run, _plane_chunks(xp, used.shape,
                                               grad_y.dtype.itemsize), xp)
        return (grad_x,)


def _route(xp, grad, winner, views, apart):
    """Send each value of ``grad`` to the view of its winning tap. Where
    the taps' views don't overlap it is written there (each input has one
    window at most: the 2x2 pools of training measured 1.1-1.4x faster
    than adding); where they do, added."""
    routed = None if apart else xp.empty_like(grad)
    for tap, view in enumerate(views):
        if apart:
            xp.multiply(grad, winner == tap, out=view)
        else:
            xp.multiply(grad, winner == tap, out=routed)
            view += routed


class AveragePooling2D(_Pooling2D):
    """Mean over each window."""

    def forward(self, x):
        taps = self.taps(x)
        _, first = next(taps)
        y = first.copy()
        for _, view in taps:
            y += view
        y *= 1.0 / (self.kernel[0] * self.kernel[1])
        if self.needs_input_grad[0]:
            self.saved = (x.shape,)
        return y

    def backward(self, grad_y):
        (x_shape,) = self.saved
        xp = get_array_module(grad_y)
        grad_x = xp.zeros(x_shape, dtype=grad_y.dtype)
        share = grad_y * (1.0 / (self.kernel[0] * self.kernel[1]))
        for _, view in self.taps(grad_x):
            view += share
        return (grad_x,)


def _pooling(function_class, name, x, kernel_size, stride, dilation):
    check_array(f"{name}: x", x, 4)
    kernel = pair(f"{name}: kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(f"{name}: stride", stride, 1)
    dilation = pair(f"{name}: dilation", dilation, 1)
    where = f"{name} (x shape {tuple(x.shape)}, kernel_size {kernel})"
    out_shape = (output_size(where, x.shape[2], kernel[0], stride[0],
                             dilation[0], "vertical"),
                 output_size(where, x.shape[3], kernel[1], stride[1],
                             dilation[1], "horizontal"))
    return function_class(kernel, stride, dilation, out_shape)(x)


def max_pool2d(x, kernel_size, stride=None, dilation=1):
    """Max pooling without padding.

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows when the
        dilation is 1).
    dilation : int or (int, int), default=1
        Spacing between the taps of a window.

    Returns
    -------
    Variable of shape (N, C, OH, OW)
        ``OH = (H - dilation*(kh-1) - 1) // stride + 1``, likewise ``OW``.

    Notes
    -----
    On ties the first tap in row-major window order wins the gradient.
    """
    return _pooling(MaxPooling2D, "max_pool2d", x, kernel_size, stride,
                    dilation)


def avg_pool2d(x, kernel_size, stride=None, dilation=1):
    """Average pooling without padding; ``avg_pool2d(x, 2)`` halves the size.

    Parameters and output shape are those of :func:`max_pool2d`.
    """
    return _pooling(AveragePooling2D, "avg_pool2d", x, kernel_size, stride,
                    dilation)
