"""Cross-correlation and its gradients through the FFT, on the CPU.

An 8x8 convolution spends 64 multiply-adds per input channel, output
channel and position; in the frequency domain the same correlation costs
one complex multiply-add per channel pair and frequency bin, plus
transforms whose cost grows with the channel count, not with its square.
For rCNN2's 25 -> 50 layers that is 1.5-2.5x less time than the GEMM
scheme of ``convolution`` at this machine's matmul speed, in dense passes
and in training batches alike.

The forward pass:

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

The backward pass works on the same tiles (see :func:`correlate_backward`).
Tile rows are processed in chunks small enough for the cache, shared out
over ``_parallel``'s threads; the output does not depend on how (every
value is computed by one thread), the gradients are summed over threads in
a fixed order and so depend, to rounding, on their number, as the GEMM
scheme's do. The values agree with the GEMM
scheme's to float32 rounding of the transforms (about 1e-6 of their scale).
"""

import numpy as np

from .. import _parallel

# Longest FFT along an axis: longer tiles waste less of their overlap
# (k - 1 values of every T), shorter ones keep each chunk in cache. Against
# 64, 48 measured 4-10% faster on the dense pass of a 240x320 image and on
# rCNN2's training steps at batch 16, 8% slower with 2 instances at batch
# 64 (interleaved runs, one process; 40 and 56 within the noise of both).
MAX_TRANSFORM = 48
# Bytes of complex spectra per chunk (input and output spectra of its tiles).
CHUNK_BYTES = 8 * 2 ** 20
# The scheme pays off from about this many multiply-adds per position,
# channel in or out (``C * O * kh * kw / (C + O)``): 1067 for rCNN2's
# 25 -> 50 layers (2.0-2.3x faster in a dense pass), 489 for its 11 -> 25
# ones (1.5-1.9x), 171 for its RGB layer (1.5-2.5x slower) and 96 for the
# plain network's (2-3x slower).
MIN_TAPS_PER_CHANNEL = 400
# ... and from this many output positions and tiles in all: below, the
# kernel's spectrum, the tiles' overlap and per-bin GEMMs only a few tiles
# wide cost more than the multiply-adds saved (one 67x67 map of rCNN2's
# 25 -> 50 layer, 4 tiles: forward 1.4x and backward 2.5x slower than the
# GEMM scheme; 16 of them, 64 tiles: 1.4x and 1.6-3x faster).
MIN_POSITIONS = 64 * 64
MIN_TILES = 16


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
    """Whether the FFT (:func:`correlate`, :func:`correlate_backward`) is
    expected to beat the GEMM scheme on this convolution."""
    n, c, h, w = x_shape
    o, _, kh, kw = weight_shape
    if tuple(stride) != (1, 1) or \
            c * o * kh * kw < MIN_TAPS_PER_CHANNEL * (c + o):
        return False
    plan = _Tiling(x_shape, (kh, kw), dilation)
    return (n * plan.out_h * plan.out_w >= MIN_POSITIONS
            and plan.n_tile_rows * plan.cols >= MIN_TILES)


class _Tiling:
    """The phases and overlap-save tiles of one correlation of an
    ``(N, C, H, W)`` input with a ``kh x kw`` kernel dilated by ``(dh, dw)``.

    Tile ``(a, b)`` of phase ``(p, q)`` of image ``n`` covers the output
    positions ``(p + dh*(a*L + r), q + dw*(b*L + s))`` for ``r, s < L`` and
    reads the input positions of the same form for ``r, s < T``. A *tile
    row* is one ``(n, p, q, a)``: all ``b`` along the row.
    """

    def __init__(self, x_shape, kernel_shape, dilation):
        n, _, h, w = x_shape
        kh, kw = kernel_shape
        self.dh, self.dw = dh, dw = dilation
        self.out_h, self.out_w = h - dh * (kh - 1), w - dw * (kw - 1)
        self.rows, self.row_len, self.row_t = _tiling(-(-self.out_h // dh), kh)
        self.cols, self.col_len, self.col_t = _tiling(-(-self.out_w // dw), kw)
        # Every tile of every phase must be inside the (zero-padded) input.
        self.padded_h = max(h, dh * ((self.rows - 1) * self.row_len
                                     + self.row_t))
        self.padded_w = max(w, dw * ((self.cols - 1) * self.col_len
                                     + self.col_t))
        self.half = self.col_t // 2 + 1
        self.bins = self.row_t * self.half
        self.n_tile_rows = n * dh * dw * self.rows

    def padded(self, x):
        """``x`` zero-padded to cover every tile (``x`` itself if it does)."""
        n, c, h, w = x.shape
        if (h, w) == (self.padded_h, self.padded_w):
            return x
        out = np.zeros((n, c, self.padded_h, self.padded_w), x.dtype)
        out[:, :, :h, :w] = x
        return out

    def input_tiles(self, padded):
        """``tiles[n, p, q, a, b]``: the ``C x T x T`` inputs of the tiles."""
        n, c = padded.shape[:2]
        s_n, s_c, s_h, s_w = padded.strides
        return np.lib.stride_tricks.as_strided(
            padded, (n, self.dh, self.dw, self.rows, self.cols, c,
                     self.row_t, self.col_t),
            (s_n, s_h, s_w, s_h * self.dh * self.row_len,
             s_w * self.dw * self.col_len, s_c, s_h * self.dh,
             s_w * self.dw), writeable=False)

    def tile_row(self, index):
        """(n, p, q, a) of the ``index``-th tile row."""
        image, rest = divmod(index, self.dh * self.dw * self.rows)
        phase, a = divmod(rest, self.rows)
        return (image,) + divmod(phase, self.dw) + (a,)

    def output_block(self, y, index):
        """The view of the output ``y`` that tile row ``index`` covers:
        ``(O, <= L, <= cols * L)``, cut where the phase ends."""
        image, p, q, a = self.tile_row(index)
        return y[image, :, p::self.dh, q::self.dw][
            :, a * self.row_len:(a + 1) * self.row_len]

    def chunks(self, channels, itemsize):
        """Tile rows in chunks of about ``CHUNK_BYTES`` of spectra
        (``channels`` of them per tile), as many as a multiple of the
        threads that will share them."""
        per_row = self.cols * channels * self.bins * itemsize
        per_chunk = max(1, CHUNK_BYTES // per_row)
        total = self.n_tile_rows
        threads = _parallel.available_threads()
        count = -(-total // per_chunk)
        count = min(total, -(-count // threads) * threads)
        bounds = [total * i // count for i in range(count + 1)]
        return [range(bounds[i], bounds[i + 1]) for i in range(count)]

    def spectra(self, tiles, chunk):
        """Spectra of the chunk's tiles ``(bins, C, m)``, ``m`` tiles."""
        from scipy import fft

        inputs = np.stack([tiles[self.tile_row(i)] for i in chunk])
        out = fft.rfft2(inputs)  # (rows in chunk, cols, C, T, half)
        m, c = len(chunk) * self.cols, out.shape[2]
        return out.reshape(m, c, self.bins).transpose(2, 1, 0).copy()

    def output_spectra(self, grad_y, chunk):
        """Spectra ``(bins, O, m)`` of the chunk's output tiles, each ``L x L``
        values of ``grad_y`` zero-padded to ``T x T``."""
        from scipy import fft

        o = grad_y.shape[1]
        blocks = np.zeros((len(chunk), o, self.row_len,
                           self.cols * self.col_len), grad_y.dtype)
        for k, index in enumerate(chunk):
            block = self.output_block(grad_y, index)
            blocks[k, :, :block.shape[1], :block.shape[2]] = block
        tiles = np.zeros((len(chunk), self.cols, o, self.row_t, self.col_t),
                         grad_y.dtype)
        tiles[..., :self.row_len, :self.col_len] = blocks.reshape(
            len(chunk), o, self.row_len, self.cols, self.col_len) \
            .transpose(0, 3, 1, 2, 4)
        out = fft.rfft2(tiles)
        m = len(chunk) * self.cols
        return out.reshape(m, o, self.bins).transpose(2, 1, 0).copy()

    def inverse(self, products, chunk):
        """Values ``(rows in chunk, cols, channels, T, T)`` of the spectra
        ``(bins, channels, m)``."""
        from scipy import fft

        channels = products.shape[1]
        products = products.reshape(self.row_t, self.half, channels, -1) \
            .transpose(3, 2, 0, 1)
        values = fft.irfft2(products, s=(self.row_t, self.col_t))
        return values.reshape(len(chunk), self.cols, channels, self.row_t,
                              self.col_t)


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
    n, c = x.shape[:2]
    o, _, kh, kw = weight.shape
    plan = _Tiling(x.shape, (kh, kw), dilation)
    tiles = plan.input_tiles(plan.padded(x))
    kernel = _kernel_spectrum(weight, plan.row_t, plan.col_t)
    dc_bias = None if bias is None else \
        (bias * (plan.row_t * plan.col_t)).astype(kernel.dtype)
    y = np.empty((n, o, plan.out_h, plan.out_w), dtype=x.dtype)
    rl, cl = plan.row_len, plan.col_len

    def run(part, chunk_run):
        for chunk in chunk_run:
            products = np.matmul(kernel, plan.spectra(tiles, chunk))
            if dc_bias is not None:
                products[0] += dc_bias[:, None]
            values = plan.inverse(products, chunk)
            for k, index in enumerate(chunk):
                target = plan.output_block(y, index)
                block = values[k, :, :, :rl, :cl].transpose(1, 2, 0, 3) \
                    .reshape(o, rl, plan.cols * cl)
                target[...] = block[:, :target.shape[1], :target.shape[2]]

    _parallel.map_parts(run, plan.chunks(c + o, kernel.itemsize), np)
    return y


def correlate_backward(x, weight, grad_y, dilation, need_x=True,
                       need_w=True):
    """Gradients of :func:`correlate` through the FFT: ``(grad_x, grad_w)``,
    each None where not asked for.

    On the same tiles as the forward pass: a tile's weight gradient is the
    correlation of its input with its ``L x L`` output gradients, summed
    over tiles per frequency bin (``conj(dY[f]) @ X[f].T``) before one
    inverse transform; its input gradient is the full convolution of its
    output gradients with the kernel (``K[f].T @ dY[f]``), whose ``T x T``
    values are added where the tile reads (overlap-add).
    """
    from scipy import fft

    n, c = x.shape[:2]
    o, _, kh, kw = weight.shape
    plan = _Tiling(x.shape, (kh, kw), dilation)
    padded = plan.padded(x)
    tiles = plan.input_tiles(padded) if need_w else None
    kernel_t = np.conj(_kernel_spectrum(weight, plan.row_t, plan.col_t)) \
        .transpose(0, 2, 1).copy() if need_x else None
    dh, dw = dilation
    rl, cl, rt, ct = plan.row_len, plan.col_len, plan.row_t, plan.col_t

    def run(part, chunk_run):
        grad_w_spectrum = None
        grad_padded = np.zeros(padded.shape, x.dtype) if need_x else None
        for chunk in chunk_run:
            grad_spectra = plan.output_spectra(grad_y, chunk)  # (bins, O, m)
            if need_w:
                term = np.matmul(np.conj(grad_spectra),
                                 plan.spectra(tiles, chunk).transpose(0, 2, 1))
                if grad_w_spectrum is None:
                    grad_w_spectrum = term
                else:
                    grad_w_spectrum += term
            if need_x:
                values = plan.inverse(np.matmul(kernel_t, grad_spectra), chunk)
                for k, index in enumerate(chunk):
                    image, p, q, a = plan.tile_row(index)
                    phase = grad_padded[image, :, p::dh, q::dw][
                        :, a * rl:a * rl + rt]
                    for b in range(plan.cols):
                        target = phase[:, :, b * cl:b * cl + ct]
                        target += values[k, b]
        return grad_w_spectrum, grad_padded

    results = _parallel.map_parts(run, plan.chunks(c + o, 8), np)
    grad_x = grad_w = None
    if need_x:
        grad_x = results[0][1]
        for _, other in results[1:]:
            grad_x += other
        grad_x = np.ascontiguousarray(grad_x[:, :, :x.shape[2], :x.shape[3]])
    if need_w:
        spectrum = results[0][0]
        for other, _ in results[1:]:
            spectrum += other
        values = fft.irfft2(spectrum.reshape(rt, plan.half, o * c)
                            .transpose(2, 0, 1), s=(rt, ct))
        grad_w = np.ascontiguousarray(
            values[:, :kh, :kw].reshape(o, c, kh, kw)).astype(x.dtype)
    return grad_x, grad_w
