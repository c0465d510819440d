"""Slow, obviously-correct loop references for the operations (test helper).

Written from the definitions, independently of skrcnn's implementation: every
function loops over output positions and kernel taps and computes in float64.
"""

import math

import numpy as np


def as_pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def out_size(size, kernel, stride, dilation):
    return (size - dilation * (kernel - 1) - 1) // stride + 1


# --------------------------------------------------------------- convolution

def conv2d_forward(x, w, b=None, stride=1, dilation=1):
    """y[n, o, p, q] = b[o]
    + sum_{c,i,j} w[o, c, i, j] x[n, c, sh p + dh i, sw q + dw j]."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
    n_img, _, height, width = x.shape
    n_out, _, kh, kw = w.shape
    oh, ow = out_size(height, kh, sh, dh), out_size(width, kw, sw, dw)
    y = np.zeros((n_img, n_out, oh, ow))
    for n in range(n_img):
        for p in range(oh):
            for q in range(ow):
                acc = np.zeros(n_out)
                for i in range(kh):
                    for j in range(kw):
                        acc += w[:, :, i, j] @ x[n, :, sh * p + dh * i,
                                                 sw * q + dw * j]
                if b is not None:
                    acc += np.asarray(b, dtype=np.float64)
                y[n, :, p, q] = acc
    return y


def conv2d_backward(x, w, grad_y, stride=1, dilation=1):
    """The adjoint of :func:`conv2d_forward`: (grad_x, grad_w, grad_b)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    grad_y = np.asarray(grad_y, dtype=np.float64)
    (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
    n_img, _, oh, ow = grad_y.shape
    _, _, kh, kw = w.shape
    grad_x = np.zeros_like(x)
    grad_w = np.zeros_like(w)
    for n in range(n_img):
        for p in range(oh):
            for q in range(ow):
                g = grad_y[n, :, p, q]
                for i in range(kh):
                    for j in range(kw):
                        r, c = sh * p + dh * i, sw * q + dw * j
                        grad_x[n, :, r, c] += w[:, :, i, j].T @ g
                        grad_w[:, :, i, j] += np.outer(g, x[n, :, r, c])
    grad_b = np.zeros(w.shape[0])
    for o in range(w.shape[0]):
        grad_b[o] = grad_y[:, o].sum()
    return grad_x, grad_w, grad_b


# ------------------------------------------------------------------- pooling

def _window_taps(kernel, stride, dilation, p, q):
    """(row, col) of each tap of window (p, q), in row-major tap order."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    return [(sh * p + dh * i, sw * q + dw * j)
            for i in range(kh) for j in range(kw)]


def _pool_geometry(x, kernel_size, stride, dilation):
    kernel = as_pair(kernel_size)
    stride = kernel if stride is None else as_pair(stride)
    dilation = as_pair(dilation)
    oh = out_size(x.shape[2], kernel[0], stride[0], dilation[0])
    ow = out_size(x.shape[3], kernel[1], stride[1], dilation[1])
    return kernel, stride, dilation, oh, ow


def max_pool2d_forward(x, kernel_size, stride=None, dilation=1):
    """Return (y, winner), winner[n, c, p, q] = (row, col) of the first max."""
    x = np.asarray(x, dtype=np.float64)
    kernel, stride, dilation, oh, ow = _pool_geometry(x, kernel_size, stride,
                                                      dilation)
    n_img, n_ch = x.shape[:2]
    y = np.zeros((n_img, n_ch, oh, ow))
    winner = np.zeros((n_img, n_ch, oh, ow, 2), dtype=int)
    for n in range(n_img):
        for c in range(n_ch):
            for p in range(oh):
                for q in range(ow):
                    best, where = -math.inf, None
                    for r, col in _window_taps(kernel, stride, dilation, p, q):
                        if x[n, c, r, col] > best:  # strict: first one wins
                            best, where = x[n, c, r, col], (r, col)
                    y[n, c, p, q] = best
                    winner[n, c, p, q] = where
    return y, winner


def max_pool2d_backward(x, grad_y, kernel_size, stride=None, dilation=1):
    _, winner = max_pool2d_forward(x, kernel_size, stride, dilation)
    grad_y = np.asarray(grad_y, dtype=np.float64)
    grad_x = np.zeros(x.shape)
    for n, c, p, q in np.ndindex(grad_y.shape):
        r, col = winner[n, c, p, q]
        grad_x[n, c, r, col] += grad_y[n, c, p, q]
    return grad_x


def avg_pool2d_forward(x, kernel_size, stride=None, dilation=1):
    x = np.asarray(x, dtype=np.float64)
    kernel, stride, dilation, oh, ow = _pool_geometry(x, kernel_size, stride,
                                                      dilation)
    y = np.zeros(x.shape[:2] + (oh, ow))
    for p in range(oh):
        for q in range(ow):
            taps = _window_taps(kernel, stride, dilation, p, q)
            total = np.zeros(x.shape[:2])
            for r, col in taps:
                total += x[:, :, r, col]
            y[:, :, p, q] = total / len(taps)
    return y


def avg_pool2d_backward(x, grad_y, kernel_size, stride=None, dilation=1):
    kernel, stride, dilation, oh, ow = _pool_geometry(x, kernel_size, stride,
                                                      dilation)
    grad_y = np.asarray(grad_y, dtype=np.float64)
    grad_x = np.zeros(x.shape)
    for p in range(oh):
        for q in range(ow):
            taps = _window_taps(kernel, stride, dilation, p, q)
            for r, col in taps:
                grad_x[:, :, r, col] += grad_y[:, :, p, q] / len(taps)
    return grad_x


# --------------------------------------------------------------- elementwise

def tanh_forward(x):
    flat = [math.tanh(v) for v in np.asarray(x, dtype=np.float64).ravel()]
    return np.array(flat).reshape(np.shape(x))


def bias_add_forward(x, bias):
    y = np.array(x, dtype=np.float64)
    for c in range(y.shape[1]):
        y[:, c] += bias[c]
    return y


# --------------------------------------------------------------------- shape

def concat_forward(xs):
    channels = sum(x.shape[1] for x in xs)
    y = np.zeros((xs[0].shape[0], channels) + xs[0].shape[2:])
    offset = 0
    for x in xs:
        for c in range(x.shape[1]):
            y[:, offset + c] = x[:, c]
        offset += x.shape[1]
    return y


def crop_forward(x, top, left, height, width):
    y = np.zeros(x.shape[:2] + (height, width))
    for r in range(height):
        for c in range(width):
            y[:, :, r, c] = x[:, :, top + r, left + c]
    return y


def pad_forward(x, widths, value=0.0):
    top, bottom, left, right = ((widths,) * 4 if isinstance(widths, int)
                                else widths)
    n_img, n_ch, height, width = x.shape
    y = np.full((n_img, n_ch, height + top + bottom, width + left + right),
                float(value))
    for r in range(height):
        for c in range(width):
            y[:, :, top + r, left + c] = x[:, :, r, c]
    return y


# ---------------------------------------------------------------------- loss

def softmax_cross_entropy_forward(scores, targets, class_weight=None,
                                  soft_targets=None, soft_weight=0.0):
    """Weighted mean over valid positions of -log softmax(scores)[target]
    (with ``soft_targets``: the cross-entropy with the target distribution
    ``(1 - soft_weight) onehot + soft_weight soft``)."""
    scores = np.asarray(scores, dtype=np.float64)
    numerator = 0.0
    denominator = 0.0
    n_classes = scores.shape[1]
    for index in np.ndindex(targets.shape):
        t = int(targets[index])
        if t < 0:
            continue
        n, rest = index[0], index[1:]
        s = [float(scores[(n, k) + rest]) for k in range(n_classes)]
        m = max(s)
        log_sum_exp = m + math.log(sum(math.exp(v - m) for v in s))
        nll = log_sum_exp - s[t]
        if soft_targets is not None:
            soft_nll = sum(float(soft_targets[(n, k) + rest])
                           * (log_sum_exp - s[k]) for k in range(n_classes))
            nll = (1 - soft_weight) * nll + soft_weight * soft_nll
        weight = 1.0 if class_weight is None else float(class_weight[t])
        numerator += weight * nll
        denominator += weight
    return numerator / denominator if denominator > 0 else 0.0
