"""Cross-correlation through the FFT, for inference passes on the CPU.

A dense pass's dilated 8x8 convolutions spend 64 multiply-adds per input
channel, output channel and position; in the frequency domain the same
correlation costs one complex multiply-add per channel pair and frequency
bin, plus transforms whose cost grows with the channel count, not with its
square. For rCNN2's 25 -> 50 layers that is about 1.5-2x less time than
the best GEMM scheme (``convolution``) at the speed of this machine's matmul.

The scheme (forward only: training keeps the GEMM scheme and its exact
gradients):

1. A convolution dilated by ``(dh, dw)`` is ``dh * dw`` undilated ones: the
   output positions ``(p + dh*i, q + dw*j)`` read only the input phase
   ``x[p::dh, q::dw]``, with the kernel's taps next to each other.
2. Each phase's output is cut into tiles of ``L`` rows and columns; a tile
   reads ``T = L + k - 1`` input rows and columns (overlap-save), and
   ``T`` is a length the FFT handles fast.
3. Per frequency bin, the spectra of all tiles and input channels make one
   complex GEMM with the kernel's spectrum: ``Y[f] = conj(K[f]) @ X[f]``,
   ``O x C`` by ``C x tiles``. The bias goes into the zero-frequency bin.
4. The inverse transform's first ``L x L`` values of each tile are the
   correlation there; they go back into the output's phase positions.

Tile rows are processed in chunks small enough for the cache, shared out
over ``_parallel``'s threads (each chunk's bins and tiles are computed
whole by one thread, so the result does not depend on the thread count).
The values agree with the GEMM scheme to float32 rounding of the transforms
(about 1e-6 of the output's scale).
"""

import numpy as np

from .. import _parallel

# Longest FFT along an axis: longer tiles waste less of their overlap
# (k - 1 values of every T), shorter ones keep each chunk in cache.
MAX_TRANSFORM = 64
# Bytes of complex spectra per chunk (input and output spectra of its tiles).
CHUNK_BYTES = 8 * 2 ** 20
# The scheme pays off from about this many multiply-adds per position,
# channel in or out (``C * O * kh * kw / (C + O)``): 1067 for rCNN2's
# 25 -> 50 layers (1.5-2x faster), 489 for its 11 -> 25 ones (1.1-1.3x),
# 171 for the RGB layer (1.5x slower).
MIN_TAPS_PER_CHANNEL = 400
# ... and from this many output positions in all (below, the kernel's
# spectrum and the tiles' overlap cost more than the GEMMs save).
MIN_POSITIONS = 64 * 64


def _tiling(out_length, k):
    """(tiles, tile output length L, transform length T) along one axis."""
    from scipy import fft

    count = -(-out_length // (MAX_TRANSFORM - k + 1))
    length = -(-out_length // count)
    transform = fft.next_fast_len(length + k - 1, real=True)
    length = transform - k + 1
    return -(-out_length // length), length, transform


def _kernel_spectrum(weight, row_t, col_t):
    """``K[(u, v), o, c]``: the conjugate of the kernel's ``row_t x col_t``
    real spectrum, which turns the FFT's circular convolution into the
    correlation, with the valid outputs first in every tile.

    Two small DFT-matrix products (kernel rows, then columns) rather than an
    FFT of the zero-padded kernel: a kernel is mostly padding, and this
    gives the ``(bins, O, C)`` layout the GEMMs want without a transpose.
    """
    o, c, kh, kw = weight.shape
    complex_type = np.result_type(weight.dtype, np.complex64)
    half = col_t // 2 + 1
    # conj(exp(-2 pi i u k / T)) = exp(+2 pi i u k / T)
    rows = np.exp(2j * np.pi * np.outer(np.arange(row_t), np.arange(kh))
                  / row_t).astype(complex_type)
    cols = np.exp(2j * np.pi * np.outer(np.arange(kw), np.arange(half))
                  / col_t).astype(complex_type)
    # P[i, v, (o, c)] = sum_j W[o, c, i, j] cols[j, v]
    partial = (weight.transpose(2, 0, 1, 3).reshape(kh, o * c, kw) @ cols) \
        .transpose(0, 2, 1).reshape(kh, half * o * c)
    return (rows @ partial).reshape(row_t * half, o, c)


def pays_off(x_shape, weight_shape, stride, dilation):
    """Whether :func:`correlate` is expected to beat the GEMM scheme."""
    n, c, h, w = x_shape
    o, _, kh, kw = weight_shape
    if tuple(stride) != (1, 1):
        return False
    (dh, dw) = dilation
    positions = n * (h - dh * (kh - 1)) * (w - dw * (kw - 1))
    return (c * o * kh * kw >= MIN_TAPS_PER_CHANNEL * (c + o)
            and positions >= MIN_POSITIONS)


def correlate(x, weight, bias, dilation):
    """``y[n, o, h, w] = b[o] + sum x[n, c, h + dh*i, w + dw*j] W[o, c, i, j]``
    through the FFT, for NumPy arrays and stride 1.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (O, C, KH, KW)
    bias : ndarray of shape (O,) or None
    dilation : (int, int)

    Returns
    -------
    ndarray of shape (N, O, H - dh*(KH-1), W - dw*(KW-1)), ``x``'s dtype
    """
    from scipy import fft

    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    dh, dw = dilation
    out_h, out_w = h - dh * (kh - 1), w - dw * (kw - 1)
    rows, row_len, row_t = _tiling(-(-out_h // dh), kh)
    cols, col_len, col_t = _tiling(-(-out_w // dw), kw)
    # Every tile of every phase must be inside the (zero-padded) input.
    need_h = dh * ((rows - 1) * row_len + row_t)
    need_w = dw * ((cols - 1) * col_len + col_t)
    if need_h > h or need_w > w:
        padded = np.zeros((n, c, max(h, need_h), max(w, need_w)), x.dtype)
        padded[:, :, :h, :w] = x
        x = padded
    s_n, s_c, s_h, s_w = x.strides
    # tiles[n, p, q, a, b, c] is the T x T input of tile (a, b) of phase
    # (p, q): rows p + dh*(a*L + r), columns q + dw*(b*L + s).
    tiles = np.lib.stride_tricks.as_strided(
        x, (n, dh, dw, rows, cols, c, row_t, col_t),
        (s_n, s_h, s_w, s_h * dh * row_len, s_w * dw * col_len, s_c,
         s_h * dh, s_w * dw), writeable=False)
    half = col_t // 2 + 1
    bins = row_t * half
    kernel = _kernel_spectrum(weight, row_t, col_t)
    dc_bias = None if bias is None else \
        (bias * (row_t * col_t)).astype(kernel.dtype)
    y = np.empty((n, o, out_h, out_w), dtype=x.dtype)

    def tile_row(index):
        """(image, p, q, a) of the ``index``-th row of tiles."""
        image, rest = divmod(index, dh * dw * rows)
        phase, a = divmod(rest, rows)
        return (image,) + divmod(phase, dw) + (a,)

    def run(part, chunk_run):
        for chunk in chunk_run:
            inputs = np.stack([tiles[tile_row(i)] for i in chunk])
            spectra = fft.rfft2(inputs)
            m = len(chunk) * cols
            spectra = spectra.reshape(m, c, bins).transpose(2, 1, 0).copy()
            products = np.matmul(kernel, spectra)  # (bins, O, m)
            if dc_bias is not None:
                products[0] += dc_bias[:, None]
            products = products.reshape(row_t, half, o, m).transpose(3, 2, 0, 1)
            values = fft.irfft2(products, s=(row_t, col_t))  # (m, O, T, T)
            values = values.reshape(len(chunk), cols, o, row_t, col_t)
            for k, index in enumerate(chunk):
                image, p, q, a = tile_row(index)
                target = y[image, :, p::dh, q::dw][:, a * row_len:
                                                   (a + 1) * row_len]
                block = values[k, :, :, :row_len, :col_len] \
                    .transpose(1, 2, 0, 3).reshape(o, row_len, cols * col_len)
                target[...] = block[:, :target.shape[1], :target.shape[2]]

    per_row = cols * (c + o) * bins * 8
    per_chunk = max(1, CHUNK_BYTES // per_row)
    total = n * dh * dw * rows
    threads = _parallel.available_threads()
    n_chunks = -(-total // per_chunk)
    n_chunks = min(total, -(-n_chunks // threads) * threads)
    bounds = [total * i // n_chunks for i in range(n_chunks + 1)]
    chunks = [list(range(bounds[i], bounds[i + 1])) for i in range(n_chunks)]
    _parallel.map_parts(run, chunks, np)
    return y

