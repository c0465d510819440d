"""Max and average pooling over NCHW maps, with kernel, stride and dilation.

Both walk the ``kh * kw`` kernel taps and combine strided views of the input,
one tap at a time, so no window array is ever materialised. Dilation is what
turns a strided network into the dense ("a trous") one used for full-image
inference.
"""

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


class MaxPooling2D(_Pooling2D):
    """Max over each window; the winning tap (first one on ties) gets the gradient."""

    def forward(self, x):
        xp = get_array_module(x)
        if self._tiles():
            return self._forward_tiles(xp, x)
        taps = self.taps(x)
        _, first = next(taps)
        y = first.copy()
        if not self.needs_input_grad[0]:  # inference: the max alone
            for _, view in taps:
                xp.maximum(y, view, out=y)
            return y
        n_taps = self.kernel[0] * self.kernel[1]
        winner = xp.zeros(y.shape, dtype=xp.uint8 if n_taps <= 256 else xp.int32)
        candidate = xp.empty_like(winner)
        for tap_index, view in taps:
            # Tap indices only grow, so "the latest strictly better tap" is
            # the maximum of better * index: an arithmetic pass, much faster
            # than a masked assignment.
            xp.multiply(view > y, winner.dtype.type(tap_index), out=candidate)
            xp.maximum(winner, candidate, out=winner)
            xp.maximum(y, view, out=y)
        self.saved = (x.shape, winner)
        return y

    def _tiles(self):
        """Non-overlapping windows (stride = kernel, no dilation), such as
        the plain network's 8x8 pool: the windows tile the input, so they
        can be handled as one reshaped array instead of kh*kw tap passes."""
        return self.stride == self.kernel and self.dilation == (1, 1)

    def _blocks(self, xp, array):
        """(N, C, OH, KH, OW, KW) view of the tiled part of ``array``."""
        (oh, ow), (kh, kw) = self.out_shape, self.kernel
        n, c = array.shape[:2]
        s0, s1, s2, s3 = array.strides
        return xp.lib.stride_tricks.as_strided(
            array, (n, c, oh, kh, ow, kw), (s0, s1, s2 * kh, s2, s3 * kw, s3))

    def _forward_tiles(self, xp, x):
        blocks = self._blocks(xp, x)
        if not self.needs_input_grad[0]:
            return blocks.max(axis=(3, 5))
        n, c, oh, kh, ow, kw = blocks.shape
        windows = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(
            n, c, oh, ow, kh * kw)
        # argmax takes the first maximum: the same tie rule as the taps.
        winner = windows.argmax(axis=-1).astype(
            xp.uint8 if kh * kw <= 256 else xp.int32)
        self.saved = (x.shape, winner)
        return windows.max(axis=-1)

    def _backward_tiles(self, xp, grad_y):
        x_shape, winner = self.saved
        (kh, kw) = self.kernel
        taps = xp.arange(kh * kw, dtype=winner.dtype)
        routed = (winner[..., None] == taps) * grad_y[..., None]
        n, c, oh, ow = grad_y.shape
        grad_x = xp.zeros(x_shape, dtype=grad_y.dtype)
        self._blocks(xp, grad_x)[...] = routed.reshape(
            n, c, oh, ow, kh, kw).transpose(0, 1, 2, 4, 3, 5)
        return (grad_x,)

    def backward(self, grad_y):
        xp = get_array_module(grad_y)
        if self._tiles():
            return self._backward_tiles(xp, grad_y)
        x_shape, winner = self.saved
        grad_x = xp.zeros(x_shape, dtype=grad_y.dtype)
        routed = xp.empty_like(grad_y)
        for tap_index, view in self.taps(grad_x):
            xp.multiply(grad_y, winner == tap_index, out=routed)
            # Adding (not assigning) keeps overlapping windows correct.
            view += routed
        return (grad_x,)


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
        Defaults to ``kernel_size`` (non-overlapping windows).
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
