"""Shape operations on NCHW maps: channel concatenation, spatial crop and pad."""

import numbers

from ..autograd import Function
from ..backend import get_array_module
from ._checks import check_array, check_same_dtype


class Concat(Function):
    def forward(self, *xs):
        self.sizes = [x.shape[1] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=1)

    def backward(self, grad_y):
        grads, start = [], 0
        for size, needed in zip(self.sizes, self.needs_input_grad):
            grads.append(grad_y[:, start:start + size] if needed else None)
            start += size
        return tuple(grads)


class ChannelSlice(Function):
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def forward(self, x):
        self.x_shape = x.shape
        return x[:, self.start:self.stop].copy()

    def backward(self, grad_y):
        grad_x = get_array_module(grad_y).zeros(self.x_shape, grad_y.dtype)
        grad_x[:, self.start:self.stop] = grad_y
        return (grad_x,)


class Crop(Function):
    def __init__(self, top, left, height, width):
        self.window = (slice(top, top + height), slice(left, left + width))

    def forward(self, x):
        self.x_shape = x.shape
        return x[(Ellipsis,) + self.window].copy()

    def backward(self, grad_y):
        grad_x = get_array_module(grad_y).zeros(self.x_shape, grad_y.dtype)
        grad_x[(Ellipsis,) + self.window] = grad_y
        return (grad_x,)


class Pad(Function):
    def __init__(self, widths, value):
        self.widths = widths
        self.value = value

    def forward(self, x):
        top, bottom, left, right = self.widths
        n, c, h, w = x.shape
        y = get_array_module(x).full((n, c, h + top + bottom, w + left + right),
                                     self.value, dtype=x.dtype)
        y[:, :, top:top + h, left:left + w] = x
        return y

    def backward(self, grad_y):
        top, bottom, left, right = self.widths
        h = grad_y.shape[2] - top - bottom
        w = grad_y.shape[3] - left - right
        return (grad_y[:, :, top:top + h, left:left + w],)


def concat(xs, axis=1):
    """Concatenate NCHW maps along the channel axis.

    Parameters
    ----------
    xs : sequence of Variable or ndarray, each (N, C_k, H, W)
    axis : {1}
        Only channel concatenation is supported (and needed).

    Returns
    -------
    Variable of shape (N, sum C_k, H, W)
    """
    if axis != 1:
        raise ValueError(f"concat: only axis=1 (channels) is supported, "
                         f"got axis={axis}")
    xs = list(xs)
    if not xs:
        raise ValueError("concat: xs is empty")
    for k, x in enumerate(xs):
        check_array(f"concat: xs[{k}]", x)
        if len(x.shape) < 2 or (x.shape[0],) + tuple(x.shape[2:]) != (
                xs[0].shape[0],) + tuple(xs[0].shape[2:]):
            raise ValueError(
                f"concat: xs[{k}] has shape {tuple(x.shape)}, which differs "
                f"from xs[0] of shape {tuple(xs[0].shape)} outside axis 1")
    check_same_dtype(**{f"xs[{k}]": x for k, x in enumerate(xs)})
    return Concat()(*xs)


def channel_slice(x, start, stop):
    """Take channels ``start:stop`` (axis 1) of ``x``.

    Used to apply a first-layer filter bank to a subset of its input planes
    (the recurrent network's first instance, whose score planes are zeros).

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, ...)
    start, stop : int
        ``0 <= start < stop <= C``.

    Returns
    -------
    Variable of shape (N, stop - start, ...)
    """
    check_array("channel_slice: x", x)
    _non_negative_ints("channel_slice", dict(start=start, stop=stop))
    if len(x.shape) < 2 or not start < stop <= x.shape[1]:
        raise ValueError(f"channel_slice: channels {start}:{stop} are not a "
                         f"non-empty range of x with shape {tuple(x.shape)}")
    return ChannelSlice(start, stop)(x)


def _non_negative_ints(name, values):
    for label, value in values.items():
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{name}: {label} must be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"{name}: {label} must be >= 0, got {value}")


def crop(x, top, left, height, width):
    """Take the spatial window ``x[..., top:top+height, left:left+width]``.

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, H, W)
    top, left : int
        Corner of the window.
    height, width : int
        Size of the window; it must lie inside ``x``.

    Returns
    -------
    Variable of shape (N, C, height, width)
    """
    check_array("crop: x", x, 4)
    _non_negative_ints("crop", dict(top=top, left=left, height=height,
                                    width=width))
    h, w = x.shape[2:]
    if top + height > h or left + width > w or height == 0 or width == 0:
        raise ValueError(f"crop: window (top={top}, left={left}, "
                         f"height={height}, width={width}) does not fit in x "
                         f"of shape {tuple(x.shape)}")
    return Crop(top, left, height, width)(x)


def pad(x, widths, value=0.0):
    """Pad the two spatial axes of NCHW maps with a constant.

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, H, W)
    widths : int or (top, bottom, left, right)
        Pixels added on each side; one int pads all four sides equally.
    value : float, default=0.0

    Returns
    -------
    Variable of shape (N, C, H + top + bottom, W + left + right)
    """
    check_array("pad: x", x, 4)
    if isinstance(widths, numbers.Integral):
        widths = (widths,) * 4
    widths = tuple(widths)
    if len(widths) != 4:
        raise ValueError(f"pad: widths must be an int or (top, bottom, left, "
                         f"right), got {widths!r}")
    _non_negative_ints("pad", dict(zip(("top", "bottom", "left", "right"),
                                       widths)))
    return Pad(tuple(int(v) for v in widths), float(value))(x)
