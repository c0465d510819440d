"""2-D convolution (cross-correlation), NCHW, no padding.

The computation is organised around kernel rows rather than a full im2col.
For a kernel of ``kh x kw`` taps, im2col copies every input value ``kh * kw``
times and multiplies a ``C*kh*kw``-deep matrix by only ``O`` output channels;
with the paper's 25-channel layers that GEMM is too thin to run fast and the
copy dominates. Instead:

1. ``E[c, j, n, r, w] = x[n, c, r, s*w + d*j]`` expands the input along the
   kernel *columns* only (``kw`` copies, not ``kh*kw``);
2. one GEMM ``Z = Wr @ E`` with ``Wr[(i, o), (c, j)] = W[o, c, i, j]`` gives
   every kernel row's partial sum at every input row (``kh*O`` rows: a
   well-shaped GEMM);
3. ``y[n, o, h, w] = sum_i Z[i, o, n, s*h + d*i, w]`` adds ``kh`` row-shifted
   slices.

Backward mirrors it: ``dZ`` holds ``dy`` shifted into the ``kh`` row slots,
``dWr = dZ @ E.T`` and ``dE = Wr.T @ dZ``, which is scattered back with ``kw``
column-shifted adds. ``E`` is recomputed in backward rather than kept: it is
``kw`` times the size of the input.

With few input channels (3 RGB planes) ``E`` has only ``C*kw`` rows, too few
for a fast GEMM. Then ``g`` kernel rows are expanded together (``E`` gets
``C*g*kw`` rows and ``Z`` ``kh/g * O``) and the shifted adds step ``g`` rows
at a time; ``g = 1`` is the scheme above.

A band of one image computes ``Z`` on its halo rows too (the rows below
the band that only the lower kernel rows read): with a large dilation that
is a large share of the GEMM, so there the kernel rows go in blocks, each
block's GEMM on only the rows it reads (see ``row_blocks``). A 1x1 kernel
needs none of this: :class:`PointwiseConvolution2D` is one GEMM per image.

The work is split into chunks (groups of images, or bands of output rows of
one large image) whose temporaries fit in cache, and those temporaries are
reused between calls (see ``_workspace``). On a multi-core CPU the chunks are
made equal and as many as a multiple of the threads, and the threads share
them (see ``_parallel``). All of it is plain ``xp`` code, the same on NumPy
and CuPy.

On a CPU, a convolution with many channels over many positions (rCNN2's
25 -> 50 and 11 -> 25 layers in a dense pass or a training batch) goes
through the FFT instead (``_spectral``), forward and backward: far fewer
operations than any GEMM scheme, the same values to float32 rounding.
"""

from .. import _parallel, _workspace
from . import _spectral
from .._cpu_cache import l2_cache_bytes
from ..autograd import Function
from ..backend import get_array_module
from ._checks import check_array, check_same_dtype, output_size, pair


def cpu_chunk_bytes(l2_bytes):
    """The chunk budget for a core with ``l2_bytes`` of L2 cache (None:
    unknown): twice that, within 2-8 MiB; 8 MiB when unknown."""
    if not l2_bytes:
        return 8 * 2 ** 20
    return max(2 * 2 ** 20, min(8 * 2 ** 20, 2 * l2_bytes))


# Bytes of row-partial sums ``Z`` per chunk: small enough to stay in a CPU's
# L2/L3 cache, which measured 1.3-1.9x faster than one whole-batch GEMM. The
# thin GEMMs of first layers want it near L2: on a Zen 4 VM (1 MiB of L2 a
# core) 2 MiB trained the plain network 6-8% and rcnn2 with 2 instances
# 10% faster than 8 MiB (3 instances and the dense pass within 2%); on the
# Intel Xeon VM of earlier sessions 4, 8 and 16 MiB were within 2% of each
# other (less was not tried).
# Results then differ in the last bits between such machines, as they do
# between thread counts (chunks are summed in a different grouping).
CPU_CHUNK_BYTES = cpu_chunk_bytes(l2_cache_bytes())
GPU_CHUNK_BYTES = 512 * 2 ** 20
# Band shape for one image too large for the cache budget (the dense pass):
# 16 halos measured the dense rCNN2 pass of a 240x320 image 10% faster than
# 4 (0.463 s against 0.510 s, interleaved A/B), with Z at most 169 MB there.
MIN_BAND_HALOS = 16
MAX_BAND_BYTES = 256 * 2 ** 20
# Every thread keeps its own temporaries (``_workspace``), so on a CPU with
# many cores the bands shrink to keep all of them under this total.
MAX_ALL_BANDS_BYTES = 512 * 2 ** 20
# Kernel rows are grouped (see the module docstring) until the GEMM depth
# ``C * g * kw`` reaches this many.
MIN_GEMM_DEPTH = 32
# Smallest share of a convolution (bytes of its larger temporary) worth
# handing to another thread.
MIN_PART_BYTES = 2 ** 18


def row_group(channels, kh, kw, min_depth=None):
    """Kernel rows expanded together: the smallest divisor ``g`` of ``kh``
    with ``channels * g * kw >= min_depth`` (default ``MIN_GEMM_DEPTH``;
    ``kh`` if none)."""
    min_depth = MIN_GEMM_DEPTH if min_depth is None else min_depth
    for g in range(1, kh + 1):
        if kh % g == 0 and channels * g * kw >= min_depth:
            return g
    return kh


# The forward GEMM of one image's band is split into up to ``ROW_BLOCKS``
# blocks of kernel rows when the band's halo is at least ``MIN_HALO_SHARE``
# of its input rows (see ``row_blocks``); with less, the saving measured
# smaller than the cost of the extra, thinner GEMMs. Each block keeps at
# least ``MIN_BLOCK_M`` GEMM rows.
ROW_BLOCKS = 2
MIN_HALO_SHARE = 1 / 8
MIN_BLOCK_M = 100


def row_blocks(n_groups, out_channels, halo_share):
    """Blocks of kernel-row groups whose forward GEMMs run separately, each
    on only the input rows it reads: the most, up to ``ROW_BLOCKS``, that
    divide ``n_groups`` and keep ``MIN_BLOCK_M`` GEMM rows; 1 when the halo
    is below ``MIN_HALO_SHARE`` of the input rows."""
    if halo_share < MIN_HALO_SHARE:
        return 1
    for blocks in range(ROW_BLOCKS, 1, -1):
        if n_groups % blocks == 0 and \
                n_groups // blocks * out_channels >= MIN_BLOCK_M:
            return blocks
    return 1


def _as_strided(xp, array, shape, strides):
    return xp.lib.stride_tricks.as_strided(array, shape=shape, strides=strides)


def _chunks(n_images, out_height, in_height, geometry, row_bytes, xp):
    """Split the work into (first image, last image, first row, last row)."""
    kh, stride, dilation = geometry
    budget = CPU_CHUNK_BYTES if xp.__name__ == "numpy" else GPU_CHUNK_BYTES
    image_bytes = row_bytes * in_height
    # Threads to share the chunks (see ``_parallel``): each gets the same
    # number of equal chunks, if each share still pays for the hand-off.
    parts = 1
    if xp.__name__ == "numpy":
        parts = max(1, min(_parallel.available_threads(),
                           image_bytes * n_images // MIN_PART_BYTES))
    if image_bytes <= budget and n_images >= parts:
        per_chunk = max(1, budget // image_bytes)
        n_chunks = -(-n_images // per_chunk)
        n_chunks = -(-n_chunks // parts) * parts
        per_chunk = -(-n_images // n_chunks)
        return [(n, min(n + per_chunk, n_images), 0, out_height)
                for n in range(0, n_images, per_chunk)]
    halo = dilation * (kh - 1) + 1 - stride
    # Input rows in a band are ``stride * rows + halo``, and Z is computed
    # on all of them: a band only a few halos tall wastes a large share of
    # the GEMM (a fifth at four halos). Bands therefore keep at least
    # MIN_BAND_HALOS halos of fresh rows even if that overflows the cache
    # budget, as long as their temporaries stay under MAX_BAND_BYTES.
    within_budget = (budget // row_bytes - halo) // stride
    cap = min(MAX_BAND_BYTES, MAX_ALL_BANDS_BYTES // parts)
    tall_enough = min(MIN_BAND_HALOS * halo, cap // row_bytes - halo) // stride
    rows = max(1, within_budget, tall_enough)
    n_bands = -(-out_height // rows)
    # Fewer images than threads, or bands: round up so that the bands of all
    # images share out evenly.
    while n_images * n_bands % parts and n_bands < out_height:
        n_bands += 1
    rows = -(-out_height // n_bands)  # equal bands, no short last one
    return [(n, n + 1, h, min(h + rows, out_height))
            for n in range(n_images) for h in range(0, out_height, rows)]


def _expand(xp, x, group, kw, out_width, stride, dilation, name):
    """``E[c, a, j, n, r, w] = x[n, c, r + dh*a, sw*w + dw*j]`` in a reused
    buffer, for ``a < group`` and the ``H - dh*(group-1)`` rows ``r`` where
    a group of kernel rows can start. Returns it as a matrix and that row
    count."""
    n, c, h, _ = x.shape
    (_, sw), (dh, dw) = stride, dilation
    s0, s1, s2, s3 = x.strides
    rows = h - dh * (group - 1)
    view = _as_strided(xp, x, (c, group, kw, n, rows, out_width),
                       (s1, s2 * dh, s3 * dw, s0, s2, s3 * sw))
    expanded = _workspace.scratch(name, view.shape, x.dtype, xp)
    expanded[...] = view
    return expanded.reshape(c * group * kw, n * rows * out_width), rows


class _Convolution(Function):
    """What both convolution schemes share: the inputs kept for backward and
    which gradients are wanted."""

    def _keep_inputs(self, x, weight):
        if any(self.needs_input_grad):
            self.saved = (x, weight)

    def _wanted(self):
        """(need_x, need_w, need_b)."""
        need_x, need_w = self.needs_input_grad[:2]
        return need_x, need_w, (len(self.needs_input_grad) > 2
                                and self.needs_input_grad[2])

    @staticmethod
    def _sum_in_chunk_order(term_lists, shape, dtype, xp):
        """The sum of every run's list of per-chunk terms, added in chunk
        order whatever the number of runs, so that a gradient does not
        depend on how the chunks were shared out."""
        total = xp.zeros(shape, dtype=dtype)
        for terms in term_lists:
            for term in terms:
                total += term
        return total


class Convolution2D(_Convolution):
    """Cross-correlation of NCHW images with OIHW weights, optional bias."""

    # Overrides ``MIN_GEMM_DEPTH`` for this convolution (see ``row_group``).
    min_gemm_depth = None

    def __init__(self, stride, dilation):
        self.stride = stride
        self.dilation = dilation

    def _plan(self, x, weight):
        n, c, h, width = x.shape
        o, _, kh, kw = weight.shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        oh = (h - dh * (kh - 1) - 1) // sh + 1
        ow = (width - dw * (kw - 1) - 1) // sw + 1
        group = row_group(c, kh, kw, self.min_gemm_depth)
        # Bytes per input row of one image in the larger temporary (Z or E).
        row_bytes = max(kh // group * o, c * group * kw) * ow * x.dtype.itemsize
        xp = get_array_module(x)
        return oh, ow, group, _chunks(n, oh, h, (kh, sh, dh), row_bytes, xp)

    def _slab(self, x, kh, h0, h1):
        (sh, _), (dh, _) = self.stride, self.dilation
        return slice(sh * h0, sh * (h1 - 1) + dh * (kh - 1) + 1)

    @staticmethod
    def _grouped_rows(weight, group):
        """``Wg[(b, o), (c, a, j)] = W[o, c, b*group + a, j]``."""
        o, c, kh, kw = weight.shape
        return weight.reshape(o, c, kh // group, group, kw) \
            .transpose(2, 0, 1, 3, 4).reshape(kh // group * o, c * group * kw)

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        self.spectral = xp.__name__ == "numpy" and _spectral.pays_off(
            x.shape, weight.shape, self.stride, self.dilation)
        if self.spectral:
            self._keep_inputs(x, weight)
            return _spectral.correlate(x, weight, bias, self.dilation)
        o, c, kh, kw = weight.shape
        (sh, _), (dh, _) = self.stride, self.dilation
        oh, ow, group, chunks = self._plan(x, weight)
        n_groups = kh // group
        w_rows = self._grouped_rows(weight, group)
        y = xp.empty((x.shape[0], o, oh, ow), dtype=x.dtype)

        def run(part, chunk_run):
            # Chunks write disjoint blocks of y, so runs need no merging.
            for n0, n1, h0, h1 in chunk_run:
                slab = x[n0:n1, :, self._slab(x, kh, h0, h1)]
                expanded, in_rows = _expand(xp, slab, group, kw, ow,
                                            self.stride, self.dilation,
                                            "conv_E")
                out = y[n0:n1, :, h0:h1].transpose(1, 0, 2, 3)
                rows = h1 - h0
                span = sh * (rows - 1) + 1
                # One image's band: each block of kernel-row groups needs Z
                # only on the input rows it reads, which are contiguous
                # columns of E; Z on all the band's rows wastes the dilated
                # halo (a third of the GEMM for rCNN2's last dilated layer
                # in a dense pass). Several images' rows are not contiguous.
                blocks = 1 if n1 - n0 > 1 else \
                    row_blocks(n_groups, o, 1 - span / in_rows)
                per = n_groups // blocks
                for k in range(blocks):
                    first = dh * group * per * k
                    last = dh * group * (per * (k + 1) - 1) + span
                    partial = _workspace.scratch(
                        "conv_Z", (per * o, (n1 - n0) * (last - first) * ow),
                        x.dtype, xp)
                    columns = expanded if blocks == 1 else \
                        expanded[:, first * ow:last * ow]
                    xp.matmul(w_rows[per * o * k:per * o * (k + 1)], columns,
                              out=partial)
                    partial = partial.reshape(per, o, n1 - n0, last - first,
                                              ow)
                    for b in range(per):
                        start = dh * group * b
                        term = partial[b, :, :, start:start + span:sh]
                        if k or b:
                            xp.add(out, term, out=out)
                        elif bias is None:
                            out[...] = term
                        else:  # the bias comes with the first copy
                            xp.add(term, bias.reshape(-1, 1, 1, 1), out=out)

        _parallel.map_parts(run, chunks, xp)
        self._keep_inputs(x, weight)
        return y

    def backward(self, grad_y):
        x, weight = self.saved
        xp = get_array_module(x)
        need_x, need_w, need_b = self._wanted()
        if self.spectral:
            grad_x, grad_w = _spectral.correlate_backward(
                x, weight, grad_y, self.dilation, need_x, need_w)
            return grad_x, grad_w, (grad_y.sum(axis=(0, 2, 3))
                                    if need_b else None)
        o, c, kh, kw = weight.shape
        (sh, sw), (dh, dw) = self.stride, self.dilation
        oh, ow, group, chunks = self._plan(x, weight)
        n_groups = kh // group
        w_rows = self._grouped_rows(weight, group)
        grad_x = xp.zeros_like(x) if need_x else None
        # Bands of one image share halo rows of grad_x: runs after the first
        # then add into their own buffer, merged below.
        banded = any(h0 != 0 or h1 != oh for _, _, h0, h1 in chunks)

        def run(part, chunk_run):
            grad_w_terms, grad_b_terms = [], []
            target_x = grad_x
            if need_x and banded and part > 0:
                target_x = xp.zeros_like(x)
            for n0, n1, h0, h1 in chunk_run:
                rows_in = self._slab(x, kh, h0, h1)
                slab = x[n0:n1, :, rows_in]
                n, in_rows = n1 - n0, slab.shape[2] - dh * (group - 1)
                rows = h1 - h0
                # dZ[b, o, n, s*h + d*g*b, w] = dy[n, o, h, w]; zero elsewhere.
                grad_partial = _workspace.scratch(
                    "conv_dZ", (n_groups, o, n, in_rows, ow), x.dtype, xp)
                if sh != 1:
                    grad_partial.fill(0)
                grad_out = grad_y[n0:n1, :, h0:h1].transpose(1, 0, 2, 3)
                if need_b:
                    grad_b_terms.append(grad_out.sum(axis=(1, 2, 3)))
                for b in range(n_groups):
                    start = dh * group * b
                    end = start + sh * (rows - 1) + 1
                    grad_partial[b, :, :, start:end:sh] = grad_out
                    if sh == 1:
                        # The copy covers every row but the margins: clearing
                        # only those saves a pass over the largest temporary.
                        grad_partial[b, :, :, :start] = 0
                        grad_partial[b, :, :, end:] = 0
                grad_partial = grad_partial.reshape(n_groups * o, -1)
                if need_w:
                    expanded, _ = _expand(xp, slab, group, kw, ow,
                                          self.stride, self.dilation, "conv_E")
                    grad_w_terms.append(grad_partial @ expanded.T)
                if need_x:
                    grad_expanded = _workspace.scratch(
                        "conv_dE", (c * group * kw, grad_partial.shape[1]),
                        x.dtype, xp)
                    xp.matmul(w_rows.T, grad_partial, out=grad_expanded)
                    grad_expanded = grad_expanded.reshape(c, group, kw, n,
                                                          in_rows, ow)
                    target = target_x[n0:n1, :, rows_in].transpose(1, 0, 2, 3)
                    for a in range(group):
                        band = target[:, :, dh * a:dh * a + in_rows]
                        for j in range(kw):
                            start = dw * j
                            cols = band[..., start:start + sw * (ow - 1) + 1:sw]
                            xp.add(cols, grad_expanded[:, a, j], out=cols)
            return grad_w_terms, grad_b_terms, target_x

        results = _parallel.map_parts(run, chunks, xp)
        if need_x:
            for _, _, target_x in results:
                if target_x is not grad_x:
                    grad_x += target_x
        grad_w = grad_b = None
        if need_w:
            grad_w_rows = self._sum_in_chunk_order(
                [terms for terms, _, _ in results], w_rows.shape, x.dtype, xp)
            grad_w = xp.ascontiguousarray(
                grad_w_rows.reshape(n_groups, o, c, group, kw)
                .transpose(1, 2, 0, 3, 4).reshape(o, c, kh, kw))
        if need_b:
            grad_b = self._sum_in_chunk_order(
                [terms for _, terms, _ in results], (o,), x.dtype, xp)
        return grad_x, grad_w, grad_b


class PointwiseConvolution2D(_Convolution):
    """A 1x1 convolution: per image, ``y = W @ x`` over the positions.

    No kernel rows to expand or shift (dilation has no effect), so with
    stride 1 every GEMM reads the input and writes the output in place,
    where the general scheme would copy the input into ``E`` and the
    output out of ``Z``. rCNN2's 50 -> 8 layer measured 1.9-2.2x faster so
    in training (forward and backward, batch 16) and 1.4x in a dense pass.
    """

    def __init__(self, stride):
        self.stride = stride

    def _plan(self, x, weight):
        n, c, h, width = x.shape
        o = weight.shape[0]
        sh, sw = self.stride
        oh, ow = (h - 1) // sh + 1, (width - 1) // sw + 1
        row_bytes = max(o, c) * ow * x.dtype.itemsize
        xp = get_array_module(x)
        return oh, ow, _chunks(n, oh, h, (1, sh, 1), row_bytes, xp)

    def _positions(self, array, n0, n1, h0, h1):
        """The chunk's input positions as (images, channels, positions): a
        view with stride 1, a copy of the sampled positions otherwise."""
        sh, sw = self.stride
        if (sh, sw) == (1, 1):
            block = array[n0:n1, :, h0:h1]
        else:
            block = get_array_module(array).ascontiguousarray(
                array[n0:n1, :, sh * h0:sh * (h1 - 1) + 1:sh, ::sw])
        return block.reshape(n1 - n0, block.shape[1], -1)

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        o, c = weight.shape[:2]
        oh, ow, chunks = self._plan(x, weight)
        w_matrix = weight.reshape(o, c)
        y = xp.empty((x.shape[0], o, oh, ow), dtype=x.dtype)

        def run(part, chunk_run):
            for n0, n1, h0, h1 in chunk_run:
                out = y[n0:n1, :, h0:h1].reshape(n1 - n0, o, -1)
                xp.matmul(w_matrix, self._positions(x, n0, n1, h0, h1),
                          out=out)
                if bias is not None:
                    out += bias.reshape(-1, 1)

        _parallel.map_parts(run, chunks, xp)
        self._keep_inputs(x, weight)
        return y

    def backward(self, grad_y):
        x, weight = self.saved
        xp = get_array_module(x)
        o, c = weight.shape[:2]
        sh, sw = self.stride
        need_x, need_w, need_b = self._wanted()
        _, _, chunks = self._plan(x, weight)
        w_matrix = weight.reshape(o, c)
        grad_x = None
        if need_x:
            # C order whatever x's layout: the GEMMs write into views.
            grad_x = (xp.empty if (sh, sw) == (1, 1) else xp.zeros)(
                x.shape, dtype=x.dtype)

        def run(part, chunk_run):
            terms = []
            for n0, n1, h0, h1 in chunk_run:
                grad_out = grad_y[n0:n1, :, h0:h1].reshape(n1 - n0, o, -1)
                if need_w:
                    positions = self._positions(x, n0, n1, h0, h1)
                    terms.append(xp.matmul(grad_out, positions
                                           .transpose(0, 2, 1)).sum(axis=0))
                if need_x and (sh, sw) == (1, 1):
                    xp.matmul(w_matrix.T, grad_out,
                              out=grad_x[n0:n1, :, h0:h1].reshape(
                                  n1 - n0, c, -1))
                elif need_x:
                    rows = slice(sh * h0, sh * (h1 - 1) + 1, sh)
                    target = grad_x[n0:n1, :, rows, ::sw]
                    target[...] = xp.matmul(w_matrix.T, grad_out) \
                        .reshape(target.shape)
            return terms

        results = _parallel.map_parts(run, chunks, xp)
        grad_w = grad_b = None
        if need_w:
            grad_w = self._sum_in_chunk_order(results, (o, c), x.dtype, xp) \
                .reshape(o, c, 1, 1)
        if need_b:
            grad_b = grad_y.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b


def check_conv_arguments(x, weight, bias, stride, dilation):
    """:func:`conv2d`'s argument checks, each error naming the argument and
    the shapes: returns ``(stride, dilation, (OH, OW))`` as pairs."""
    check_array("conv2d: x", x, 4)
    check_array("conv2d: weight", weight, 4)
    stride = pair("conv2d: stride", stride, 1)
    dilation = pair("conv2d: dilation", dilation, 1)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv2d: x has {x.shape[1]} channels (shape {tuple(x.shape)}) but "
            f"weight expects {weight.shape[1]} (shape {tuple(weight.shape)})")
    arrays = {"x": x, "weight": weight}
    if bias is not None:
        check_array("conv2d: bias", bias, 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"conv2d: bias has shape {tuple(bias.shape)}, "
                             f"expected ({weight.shape[0]},) for weight of "
                             f"shape {tuple(weight.shape)}")
        arrays["bias"] = bias
    check_same_dtype(**arrays)
    out_shape = tuple(
        output_size(f"conv2d (x shape {tuple(x.shape)}, weight shape "
                    f"{tuple(weight.shape)})", size, k, s, d, axis)
        for axis, size, k, s, d in (
            ("vertical", x.shape[2], weight.shape[2], stride[0], dilation[0]),
            ("horizontal", x.shape[3], weight.shape[3], stride[1],
             dilation[1])))
    return stride, dilation, out_shape


def conv2d(x, weight, bias=None, stride=1, dilation=1):
    """2-D convolution (cross-correlation) without padding.

    Parameters
    ----------
    x : Variable or ndarray of shape (N, C, H, W)
        Input images, floating point.
    weight : Variable or ndarray of shape (O, C, KH, KW)
        Filters.
    bias : Variable or ndarray of shape (O,), optional
        Added to every output position of each channel.
    stride : int or (int, int), default=1
        Step between applications of the kernel.
    dilation : int or (int, int), default=1
        Spacing between kernel taps ("a trous" convolution).

    Returns
    -------
    Variable of shape (N, O, OH, OW)
        With ``OH = (H - dilation*(KH-1) - 1) // stride + 1`` and likewise
        ``OW``. Use :func:`pad` first for a padded convolution.

    Raises
    ------
    TypeError
        For non-floating or mismatched dtypes, or non-integer stride/dilation.
    ValueError
        For wrong ranks, mismatched channels or bias, or a kernel that does
        not fit in the input.
    """
    stride, dilation, _ = check_conv_arguments(x, weight, bias, stride,
                                               dilation)
    function = (PointwiseConvolution2D(stride)
                if tuple(weight.shape[2:]) == (1, 1)
                else Convolution2D(stride, dilation))
    if bias is None:
        return function(x, weight)
    return function(x, weight, bias)
