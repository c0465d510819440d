"""Forward against loop references and gradients against finite differences,
for every operation in skrcnn.functions."""

import numpy as np
import pytest

import reference_ops as ref
import skrcnn.functions.convolution as convolution
import skrcnn.functions.pooling as pooling
from gradcheck import check_gradients
from op_cases import (cast_constants, conv_all, distinct_values, loss_case,
                      make_op_cases, spy_chunks)
from skrcnn.autograd import Variable, no_grad
from skrcnn.functions import (avg_pool2d, bias_add, channel_slice, concat,
                              conv2d, crop, max_pool2d, pad,
                              softmax_cross_entropy, tanh, weighted_sum)


def rng_for(*key):
    """A generator seeded from a test's parameters (stable across runs)."""
    return np.random.default_rng(_stable_seed(key))


def _stable_seed(key):
    """A seed from ``repr(key)`` (unlike hash(), stable across runs)."""
    seed = 0
    for ch in repr(key):
        seed = (seed * 131 + ord(ch)) % 2 ** 32
    return seed


# =============================================================== convolution

# (N, C, H, W, O, KH, KW, stride, dilation)
CONV_CASES = [
    (1, 1, 5, 5, 1, 1, 1, 1, 1),
    (2, 3, 7, 9, 2, 3, 3, 1, 1),
    (1, 2, 9, 8, 3, 2, 3, 2, 1),
    (3, 2, 11, 10, 2, 3, 2, 3, 1),
    (1, 3, 10, 13, 2, 3, 3, (1, 2), 1),
    (2, 2, 9, 11, 2, 2, 2, (3, 1), (2, 1)),
    (1, 2, 11, 9, 2, 3, 3, 1, 2),
    (2, 1, 13, 12, 2, 3, 2, 2, 3),
    (1, 2, 10, 10, 1, 2, 3, 1, (1, 3)),
    (1, 1, 9, 10, 2, 5, 4, 1, 1),
    (1, 2, 8, 9, 1, 8, 8, 1, 1),      # kernel as tall as the input
    (2, 1, 12, 11, 1, 8, 7, 2, 1),
    (1, 1, 7, 7, 2, 1, 7, 1, 1),      # 1 x 7 kernel
    (1, 2, 13, 8, 1, 4, 2, (2, 3), (3, 2)),
    (1, 1, 6, 6, 1, 2, 2, 3, 3),      # stride == dilation, 2x2 output... of 1
    (2, 2, 5, 7, 3, 5, 1, 1, 1),      # 5 x 1 kernel
    # 1 x 1 kernels (a GEMM per image, without the row-partial scheme)
    (3, 4, 6, 7, 5, 1, 1, 1, 1),
    (2, 3, 7, 9, 2, 1, 1, (2, 3), 2),  # stride; dilation changes nothing
    (1, 6, 5, 8, 3, 1, 1, 1, 4),
]


def _random_conv_cases(count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        kh, kw = (int(k) for k in rng.integers(1, 9, size=2))
        sh, sw = (int(s) for s in rng.integers(1, 4, size=2))
        dh = int(rng.integers(1, 4)) if kh <= 4 else 1
        dw = int(rng.integers(1, 4)) if kw <= 4 else 1
        height = dh * (kh - 1) + 1 + int(rng.integers(0, 7))
        width = dw * (kw - 1) + 1 + int(rng.integers(0, 7))
        n, c, o = (int(v) for v in rng.integers(1, 4, size=3))
        cases.append((n, c, height, width, o, kh, kw, (sh, sw), (dh, dw)))
    return cases


ALL_CONV_CASES = CONV_CASES + _random_conv_cases(10, seed=20240501)


def _conv_inputs(case, dtype=np.float64):
    n, c, h, w, o, kh, kw, _, _ = case
    rng = rng_for("conv", case)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    return x, weight, bias


def _expected_conv_shape(case):
    n, _, h, w, o, kh, kw, stride, dilation = case
    (sh, sw), (dh, dw) = ref.as_pair(stride), ref.as_pair(dilation)
    return (n, o, (h - dh * (kh - 1) - 1) // sh + 1,
            (w - dw * (kw - 1) - 1) // sw + 1)


@pytest.mark.parametrize("case", ALL_CONV_CASES, ids=str)
def test_conv2d_forward_and_backward_match_loops(case):
    stride, dilation = case[7], case[8]
    x, weight, bias = _conv_inputs(case)
    y = conv2d(x, weight, stride=stride, dilation=dilation)
    assert isinstance(y, Variable)
    assert y.shape == _expected_conv_shape(case)
    assert y.dtype == np.float64
    np.testing.assert_allclose(
        y.data, ref.conv2d_forward(x, weight, None, stride, dilation),
        rtol=1e-12, atol=1e-12)

    xv = Variable(x, requires_grad=True)
    wv = Variable(weight, requires_grad=True)
    bv = Variable(bias, requires_grad=True)
    yb = conv2d(xv, wv, bv, stride=stride, dilation=dilation)
    np.testing.assert_allclose(
        yb.data, ref.conv2d_forward(x, weight, bias, stride, dilation),
        rtol=1e-12, atol=1e-12)
    grad_y = rng_for("conv-gy", case).standard_normal(yb.shape)
    yb.backward(grad_y)
    gx, gw, gb = ref.conv2d_backward(x, weight, grad_y, stride, dilation)
    np.testing.assert_allclose(xv.grad, gx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(wv.grad, gw, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(bv.grad, gb, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("case", ALL_CONV_CASES, ids=str)
def test_conv2d_gradcheck(case):
    stride, dilation = case[7], case[8]
    x, weight, bias = _conv_inputs(case)
    check_gradients(
        lambda a, w, b: conv2d(a, w, b, stride=stride, dilation=dilation),
        [x, weight, bias], seed=1)


def test_conv2d_gradcheck_without_bias():
    x, weight, _ = _conv_inputs(CONV_CASES[5])
    check_gradients(lambda a, w: conv2d(a, w, stride=(3, 1), dilation=(2, 1)),
                    [x, weight], seed=2)


def test_conv2d_accepts_variables_and_arrays_alike():
    x, weight, bias = _conv_inputs(CONV_CASES[1])
    from_arrays = conv2d(x, weight, bias).data
    from_variables = conv2d(Variable(x), Variable(weight), Variable(bias)).data
    np.testing.assert_array_equal(from_arrays, from_variables)


def _non_contiguous_views(x):
    return {
        "fortran": np.asfortranarray(x),
        "negative strides": np.ascontiguousarray(x[:, :, ::-1, ::-1])[
            :, :, ::-1, ::-1],
        "every other channel": np.repeat(x, 2, axis=1)[:, ::2],
        "transposed": np.ascontiguousarray(x.transpose(1, 0, 3, 2))
        .transpose(1, 0, 3, 2),
    }


@pytest.mark.parametrize("kernel, stride, dilation", [
    ((3, 2), (2, 1), (1, 2)), ((1, 1), 1, 1), ((1, 1), (2, 1), 1)])
@pytest.mark.parametrize("budget", [None, 1000])
@pytest.mark.parametrize("layout", ["fortran", "negative strides",
                                    "every other channel", "transposed"])
def test_conv2d_handles_non_contiguous_arrays(layout, budget, kernel, stride,
                                              dilation, monkeypatch):
    if budget is not None:
        monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", budget)
    rng = rng_for("layout")
    x = _non_contiguous_views(rng.standard_normal((2, 3, 11, 12)))[layout]
    weight = _non_contiguous_views(
        rng.standard_normal((2, 3) + kernel))[layout]
    assert not x.flags.c_contiguous
    assert kernel == (1, 1) or not weight.flags.c_contiguous
    xv = Variable(x, requires_grad=True)
    wv = Variable(weight, requires_grad=True)
    y = conv2d(xv, wv, stride=stride, dilation=dilation)
    np.testing.assert_allclose(
        y.data, ref.conv2d_forward(x, weight, None, stride, dilation),
        rtol=1e-12, atol=1e-12)
    grad_y = rng.standard_normal(y.shape)
    y.backward(grad_y)
    gx, gw, _ = ref.conv2d_backward(x, weight, grad_y, stride, dilation)
    np.testing.assert_allclose(xv.grad, gx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(wv.grad, gw, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------- convolution chunking

def _conv_case_arrays(key, case):
    """Random x, weight, bias and output gradient for a conv case
    (N, C, H, W, O, KH, KW, stride, dilation)."""
    n, c, h, w, o, kh, kw, stride, dilation = case
    rng = rng_for(key, case)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((o, c, kh, kw))
    bias = rng.standard_normal(o)
    grad_y = rng.standard_normal(_expected_conv_shape(case))
    return x, weight, bias, grad_y


# (N, C, H, W, O, KH, KW, stride, dilation, budget, kind). The images of
# the "rows" cases are tall relative to the kernel's halo, so that they split
# into several bands at the minimum band height the test sets.
CHUNK_CASES = [
    # several small images per chunk, with a remainder chunk
    (7, 1, 5, 5, 1, 2, 2, 1, 1, 1000, "images"),
    (5, 2, 6, 7, 2, 3, 2, (1, 2), 1, 3000, "images"),
    # row bands of single images, small and larger budgets
    (2, 2, 23, 11, 3, 3, 3, 1, 1, 1000, "rows"),
    (1, 3, 27, 9, 2, 3, 3, 2, 2, 1000, "rows"),
    (2, 2, 23, 12, 3, 3, 3, 1, 1, 5000, "rows"),
    (2, 2, 25, 13, 2, 3, 2, 2, 1, 5000, "rows"),
    (1, 2, 29, 10, 2, 2, 3, 3, (2, 1), 2000, "rows"),
    (2, 1, 55, 14, 2, 4, 2, (2, 1), (3, 2), 4000, "rows"),
    (1, 2, 21, 12, 2, 1, 3, 3, 1, 2000, "rows"),  # stride > kernel span
]


@pytest.mark.parametrize("limits", [dict(MIN_BAND_HALOS=2),
                                    dict(MIN_BAND_HALOS=16,
                                         MAX_BAND_BYTES=1500)], ids=str)
@pytest.mark.parametrize("case", CHUNK_CASES, ids=str)
def test_conv2d_chunked_matches_unchunked_and_loops(case, limits,
                                                    monkeypatch):
    # Bands at least two halos tall, and bands cut shorter than the
    # minimum height by the cap on their temporaries.
    n, c, h, w, o, kh, kw, stride, dilation, budget, kind = case
    for name, value in limits.items():
        monkeypatch.setattr(convolution, name, value)
    # The budgets above are sized for one kernel row per GEMM; grouped rows
    # have their own test below.
    monkeypatch.setattr(convolution, "MIN_GEMM_DEPTH", 0)
    x, weight, bias, grad_y = _conv_case_arrays("chunk", case[:9])
    shape = grad_y.shape

    plans = spy_chunks(monkeypatch)
    whole = conv_all(x, weight, bias, stride, dilation, grad_y)
    assert all(len(plan) == 1 for plan in plans), plans  # one chunk unpatched

    plans.clear()
    monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", budget)
    chunked = conv_all(x, weight, bias, stride, dilation, grad_y)
    assert len(plans) == 2  # forward and backward
    chunks = plans[0]
    assert len(chunks) > 1
    if kind == "images":
        assert any(n1 - n0 >= 2 for n0, n1, _, _ in chunks), chunks
        assert all(h0 == 0 and h1 == shape[2] for _, _, h0, h1 in chunks)
    else:
        assert all(n1 - n0 == 1 for n0, n1, _, _ in chunks), chunks
        assert any(h0 > 0 for _, _, h0, _ in chunks), chunks
    # The chunks tile every (image, output row) exactly once.
    covered = np.zeros((n, shape[2]), dtype=int)
    for n0, n1, h0, h1 in chunks:
        covered[n0:n1, h0:h1] += 1
    assert np.all(covered == 1)

    for name, a, b in zip(("y", "grad_x", "grad_w", "grad_b"), whole,
                          chunked):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    expected_y = ref.conv2d_forward(x, weight, bias, stride, dilation)
    gx, gw, gb = ref.conv2d_backward(x, weight, grad_y, stride, dilation)
    for name, value, expected in zip(("y", "grad_x", "grad_w", "grad_b"),
                                     chunked, (expected_y, gx, gw, gb)):
        np.testing.assert_allclose(value, expected, rtol=1e-11, atol=1e-11,
                                   err_msg=name)


@pytest.mark.parametrize("channels, kh, kw, depth, expected", [
    (3, 6, 6, 32, 2),     # the plain network's first layer: 36 deep
    (3, 8, 8, 32, 2),     # rcnn2's first layer on RGB alone: 48 deep
    (11, 8, 8, 32, 1),    # 88 deep without grouping
    (3, 6, 6, 50, 3),
    (2, 5, 1, 32, 5),     # no divisor of 5 gets there: the whole kernel
    (3, 6, 6, 0, 1),
])
def test_row_group_is_the_smallest_divisor_deep_enough(
        channels, kh, kw, depth, expected, monkeypatch):
    monkeypatch.setattr(convolution, "MIN_GEMM_DEPTH", depth)
    assert convolution.row_group(channels, kh, kw) == expected
    # An explicit depth overrides the module's.
    monkeypatch.setattr(convolution, "MIN_GEMM_DEPTH", 10 ** 6)
    assert convolution.row_group(channels, kh, kw, depth) == expected


# (N, C, H, W, O, KH, KW, stride, dilation); every divisor of KH is tried.
GROUPED_CASES = [
    (3, 2, 13, 11, 3, 4, 3, 1, 1),
    (2, 3, 17, 12, 2, 6, 2, (2, 1), (1, 2)),
    (2, 1, 19, 9, 2, 4, 2, (1, 2), (2, 1)),
    (1, 2, 29, 10, 3, 6, 3, 3, 2),
]


def _divisors(k):
    return [g for g in range(1, k + 1) if k % g == 0]


def _small_chunks(monkeypatch, budget):
    """Chunks of at most ``budget`` bytes, bands as thin as one halo (None:
    the defaults)."""
    if budget is not None:
        monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", budget)
        monkeypatch.setattr(convolution, "MIN_BAND_HALOS", 1)


@pytest.mark.parametrize("budget", [None, 600])
@pytest.mark.parametrize("case", GROUPED_CASES, ids=str)
def test_conv2d_grouped_kernel_rows_match_loops(case, budget, monkeypatch):
    # Every grouping of kernel rows, whole and in image or row chunks, gives
    # the loop reference's output and gradients.
    n, c, h, w, o, kh, kw, stride, dilation = case
    _small_chunks(monkeypatch, budget)
    x, weight, bias, grad_y = _conv_case_arrays("grouped", case)
    expected = (ref.conv2d_forward(x, weight, bias, stride, dilation),) \
        + tuple(ref.conv2d_backward(x, weight, grad_y, stride, dilation))
    plans = spy_chunks(monkeypatch)
    for group in _divisors(kh):
        monkeypatch.setattr(convolution, "row_group",
                            lambda channels, k, k2, min_depth=None,
                            group=group: group)
        plans.clear()
        got = conv_all(x, weight, bias, stride, dilation, grad_y)
        if budget is not None:
            assert len(plans[0]) > 1, plans
        for name, value, want in zip(("y", "grad_x", "grad_w", "grad_b"),
                                     got, expected):
            np.testing.assert_allclose(value, want, rtol=1e-11, atol=1e-11,
                                       err_msg=f"{name}, {group} rows")


@pytest.mark.parametrize(
    "n_groups, out_channels, halo_share, limit, expected", [
        (8, 50, 0.32, 2, 2),   # rcnn2's last dilated conv2 in a dense pass
        (8, 50, 0.07, 2, 1),   # too little halo to pay for thinner GEMMs
        (8, 50, 0.32, 4, 4),
        (8, 25, 0.32, 4, 2),   # 4 blocks would keep only 50 rows each
        (6, 50, 0.32, 4, 3),
        (7, 50, 0.32, 4, 1),   # no divisor of 7 up to 4
        (4, 20, 0.32, 2, 1),   # 2 blocks of 40 rows
    ])
def test_row_blocks_divide_groups_and_keep_enough_rows(
        n_groups, out_channels, halo_share, limit, expected, monkeypatch):
    monkeypatch.setattr(convolution, "ROW_BLOCKS", limit)
    assert convolution.row_blocks(n_groups, out_channels, halo_share) \
        == expected


# (N, C, H, W, O, KH, KW, stride, dilation): single images, banded or not.
BLOCK_CASES = [
    (1, 2, 19, 11, 3, 6, 3, 1, 1),
    (1, 3, 33, 12, 2, 4, 2, (2, 1), (3, 2)),
    (2, 2, 29, 10, 3, 6, 3, 3, 2),
    (1, 1, 30, 9, 2, 8, 2, 1, 2),
]


@pytest.mark.parametrize("budget", [None, 600])
@pytest.mark.parametrize("case", BLOCK_CASES, ids=str)
def test_conv2d_kernel_row_blocks_match_loops(case, budget, monkeypatch):
    # Every split of one image's kernel-row groups into blocks, each GEMM on
    # only the rows it reads, gives the loop reference's output, for every
    # grouping of kernel rows and for whole images and row bands alike.
    n, c, h, w, o, kh, kw, stride, dilation = case
    _small_chunks(monkeypatch, budget)
    x, weight, bias, _ = _conv_case_arrays("blocks", case)
    expected = ref.conv2d_forward(x, weight, bias, stride, dilation)
    plans = spy_chunks(monkeypatch)
    for group in _divisors(kh):
        monkeypatch.setattr(convolution, "row_group",
                            lambda channels, k, k2, min_depth=None,
                            group=group: group)
        for blocks in _divisors(kh // group):
            asked = []
            monkeypatch.setattr(
                convolution, "row_blocks",
                lambda n_groups, o, share, blocks=blocks:
                    asked.append((n_groups, share)) or blocks)
            plans.clear()
            with no_grad():
                got = conv2d(x, weight, bias, stride, dilation).data
            np.testing.assert_allclose(
                got, expected, rtol=1e-11, atol=1e-11,
                err_msg=f"{group} rows per group, {blocks} blocks")
            single = [ch for ch in plans[0] if ch[1] - ch[0] == 1]
            assert len(asked) == len(single)
            assert all(n_groups == kh // group and 0 <= share < 1
                       for n_groups, share in asked), asked
    if n == 1 or budget is not None:
        assert asked, "no chunk of a single image"


# (N, C, H, W, O, stride, budget, kind) for 1x1 kernels.
POINTWISE_CHUNK_CASES = [
    (7, 3, 5, 6, 2, 1, 1500, "images"),
    (2, 4, 19, 9, 3, 1, 600, "rows"),
    (1, 2, 23, 10, 5, (2, 3), 600, "rows"),
    (5, 3, 9, 8, 2, 2, 2000, "images"),
]


@pytest.mark.parametrize("case", POINTWISE_CHUNK_CASES, ids=str)
def test_conv2d_1x1_in_chunks_matches_whole_and_loops(case, monkeypatch):
    # A 1x1 convolution cut into groups of images or bands of rows gives the
    # loop reference's output and gradients, and the uncut ones exactly.
    n, c, h, w, o, stride, budget, kind = case
    x, weight, bias, grad_y = _conv_case_arrays(
        "pointwise", (n, c, h, w, o, 1, 1, stride, 1))
    plans = spy_chunks(monkeypatch)
    whole = conv_all(x, weight, bias, stride, 1, grad_y)
    assert all(len(plan) == 1 for plan in plans), plans
    plans.clear()
    monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", budget)
    chunked = conv_all(x, weight, bias, stride, 1, grad_y)
    assert len(plans[0]) > 1, plans
    banded = any(h0 > 0 for _, _, h0, _ in plans[0])
    assert banded == (kind == "rows"), plans[0]
    assert kind == "rows" or any(n1 - n0 > 1 for n0, n1, _, _ in plans[0])
    expected = (ref.conv2d_forward(x, weight, bias, stride, 1),) \
        + tuple(ref.conv2d_backward(x, weight, grad_y, stride, 1))
    for name, a, b, want in zip(("y", "grad_x", "grad_w", "grad_b"), whole,
                                chunked, expected):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12,
                                   err_msg=name)
        np.testing.assert_allclose(b, want, rtol=1e-11, atol=1e-11,
                                   err_msg=name)


def test_conv2d_chunked_gradcheck(monkeypatch):
    monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", 1000)
    rng = rng_for("chunk-gradcheck")
    x = rng.standard_normal((2, 2, 13, 7))
    weight = rng.standard_normal((2, 2, 3, 2))
    bias = rng.standard_normal(2)
    check_gradients(lambda a, w, b: conv2d(a, w, b, stride=(2, 1),
                                           dilation=(2, 1)),
                    [x, weight, bias], seed=3)


def test_conv2d_chunked_float32(monkeypatch):
    rng = rng_for("chunk-f32")
    x = rng.standard_normal((3, 2, 15, 9)).astype(np.float32)
    weight = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    grad_y = rng.standard_normal((3, 2, 13, 7)).astype(np.float32)
    whole = conv_all(x, weight, bias, 1, 1, grad_y)
    monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", 1000)
    chunked = conv_all(x, weight, bias, 1, 1, grad_y)
    for a, b in zip(whole, chunked):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


# =================================================================== pooling

# (N, C, H, W, kernel, stride, dilation)
POOL_CASES = [
    (1, 1, 4, 4, 2, None, 1),
    (2, 3, 7, 9, 3, None, 1),
    (1, 2, 9, 8, 2, 1, 1),
    (2, 1, 11, 10, 3, 2, 1),
    (1, 2, 10, 13, (2, 3), (1, 2), 1),
    (2, 2, 9, 11, 2, (3, 1), (2, 1)),
    (1, 1, 11, 9, 3, 1, 2),
    (1, 2, 13, 12, 3, 2, 3),
    (2, 1, 10, 10, (1, 4), 1, (1, 3)),
    (1, 1, 9, 10, (5, 4), None, 1),
    (1, 1, 8, 9, 8, 1, 1),        # kernel as tall as the input
    (1, 2, 12, 11, (8, 7), 2, 1),
    (2, 1, 7, 7, 1, 1, 1),        # 1x1 kernel is the identity
    (1, 1, 7, 8, 1, 3, 2),        # subsampling only
    (2, 3, 17, 19, 8, None, 1),   # the plain network's 8x8 tiles, ragged edge
    (1, 2, 13, 8, (4, 2), (2, 3), (3, 2)),
    (3, 1, 6, 6, (6, 1), (1, 2), 1),
    (2, 2, 14, 17, 3, 4, 1),      # gaps between windows
    (1, 2, 15, 16, 3, (5, 6), 2), # dilated windows that do not overlap
    (2, 1, 12, 13, (3, 4), (3, 5), 1),
]


def _pool_input(case):
    n, c, h, w = case[:4]
    return distinct_values(rng_for("pool", case), (n, c, h, w)) / 4


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_forward_and_backward_match_loops(case):
    kernel, stride, dilation = case[4:]
    x = _pool_input(case)
    y = max_pool2d(x, kernel, stride=stride, dilation=dilation)
    expected, _ = ref.max_pool2d_forward(x, kernel, stride, dilation)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.data, expected)

    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, kernel, stride=stride, dilation=dilation)
    grad_y = rng_for("max-gy", case).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, kernel, stride, dilation),
        rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("kernel", [(1, 300), (258, 1)])
def test_max_pool2d_windows_over_256_taps_a_side(kernel):
    """A window side of more than 256 taps indexes its winners past uint8."""
    case = (1, 2) + tuple(k + 3 for k in kernel)
    x = distinct_values(rng_for("wide-pool", case), case)
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, kernel, stride=1)
    expected, _ = ref.max_pool2d_forward(x, kernel, (1, 1), (1, 1))
    np.testing.assert_array_equal(y.data, expected)
    grad_y = rng_for("wide-gy", case).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, kernel, (1, 1), (1, 1)),
        rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_gradcheck(case):
    kernel, stride, dilation = case[4:]
    check_gradients(lambda a: max_pool2d(a, kernel, stride=stride,
                                         dilation=dilation),
                    [_pool_input(case)], seed=4)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_avg_pool2d_forward_and_backward_match_loops(case):
    kernel, stride, dilation = case[4:]
    x = rng_for("avg", case).standard_normal(case[:4])
    y = avg_pool2d(x, kernel, stride=stride, dilation=dilation)
    expected = ref.avg_pool2d_forward(x, kernel, stride, dilation)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=1e-13, atol=1e-14)

    xv = Variable(x, requires_grad=True)
    y = avg_pool2d(xv, kernel, stride=stride, dilation=dilation)
    grad_y = rng_for("avg-gy", case).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.avg_pool2d_backward(x, grad_y, kernel, stride, dilation),
        rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("case", POOL_CASES[::2], ids=str)
def test_avg_pool2d_gradcheck(case):
    kernel, stride, dilation = case[4:]
    x = rng_for("avg", case).standard_normal(case[:4])
    check_gradients(lambda a: avg_pool2d(a, kernel, stride=stride,
                                         dilation=dilation), [x], seed=5)


@pytest.mark.parametrize("layout", ["fortran", "negative strides",
                                    "every other channel", "transposed"])
def test_pooling_handles_non_contiguous_input(layout):
    x = _non_contiguous_views(distinct_values(rng_for("pool-layout"),
                                              (2, 3, 9, 10)))[layout]
    grad_y = rng_for("pool-layout-gy").standard_normal((2, 3, 5, 5))
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, (3, 2), stride=(1, 2), dilation=(2, 1))
    expected, _ = ref.max_pool2d_forward(x, (3, 2), (1, 2), (2, 1))
    np.testing.assert_array_equal(y.data, expected)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, (3, 2), (1, 2), (2, 1)),
        rtol=1e-14, atol=1e-14)  # overlapping windows: sums in any order
    xv = Variable(x, requires_grad=True)
    y = avg_pool2d(xv, (3, 2), stride=(1, 2), dilation=(2, 1))
    np.testing.assert_allclose(
        y.data, ref.avg_pool2d_forward(x, (3, 2), (1, 2), (2, 1)),
        rtol=1e-13, atol=1e-13)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.avg_pool2d_backward(x, grad_y, (3, 2), (1, 2), (2, 1)),
        rtol=1e-13, atol=1e-13)


def test_pool_stride_defaults_to_kernel():
    x = rng_for("default-stride").standard_normal((1, 1, 9, 8))
    np.testing.assert_array_equal(max_pool2d(x, (3, 2)).data,
                                  max_pool2d(x, (3, 2), stride=(3, 2)).data)
    np.testing.assert_array_equal(avg_pool2d(x, 3).data,
                                  avg_pool2d(x, 3, stride=3).data)
    assert max_pool2d(x, (3, 2)).shape == (1, 1, 3, 4)


def test_max_pool2d_ties_first_tap_wins_non_overlapping():
    # Two 2x2 windows: [[5, 5], [5, 1]] and [[0, 7], [7, 7]].
    x = np.array([[[[5., 5., 0., 7.],
                    [5., 1., 7., 7.]]]])
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, 2)
    np.testing.assert_array_equal(y.data, [[[[5., 7.]]]])
    y.backward(np.array([[[[10., 20.]]]]))
    expected = np.array([[[[10., 0., 0., 20.],
                           [0., 0., 0., 0.]]]])
    np.testing.assert_array_equal(xv.grad, expected)


def test_max_pool2d_ties_first_tap_wins_overlapping_and_dilated():
    # Constant row, 1x2 windows with stride 1: each window's left tap wins.
    x = np.full((1, 1, 1, 4), 4.0)
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, (1, 2), stride=1)
    y.backward(np.array([[[[1., 2., 4.]]]]))
    np.testing.assert_array_equal(xv.grad, [[[[1., 2., 4., 0.]]]])

    # 2x2 windows, dilation 2, stride 1 on a 3x4 map whose windows tie.
    x = np.array([[[[3., 9., 3., 9.],
                    [0., 0., 0., 0.],
                    [3., 9., 3., 9.]]]])
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, 2, stride=1, dilation=2)
    # window (0,0) taps (0,0) (0,2) (2,0) (2,2): all 3 -> (0,0) wins
    # window (0,1) taps (0,1) (0,3) (2,1) (2,3): all 9 -> (0,1) wins
    np.testing.assert_array_equal(y.data, [[[[3., 9.]]]])
    y.backward(np.array([[[[1., 2.]]]]))
    expected = np.zeros((1, 1, 3, 4))
    expected[0, 0, 0, 0] = 1.
    expected[0, 0, 0, 1] = 2.
    np.testing.assert_array_equal(xv.grad, expected)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_random_ties_route_to_first_tap_like_the_loop(case):
    # Values from {0, 1, 2}: most windows tie, so the gradient shows which
    # tap wins. The loop reference takes the first one in row-major order.
    n, c, h, w, kernel, stride, dilation = case
    x = rng_for("pool-ties", case).integers(0, 3, (n, c, h, w)).astype(float)
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, kernel, stride=stride, dilation=dilation)
    expected, _ = ref.max_pool2d_forward(x, kernel, stride, dilation)
    np.testing.assert_array_equal(y.data, expected)
    grad_y = rng_for("pool-ties-gy", case).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, kernel, stride, dilation),
        rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [1, 200, 1000])
@pytest.mark.parametrize("case", [(3, 4, 11, 10, 3, 2, 1),
                                  (2, 5, 17, 19, 8, None, 1),
                                  (2, 3, 13, 12, 3, 1, 2)], ids=str)
def test_max_pool2d_in_chunks_of_planes_matches_the_loop(monkeypatch, case,
                                                         chunk_bytes):
    # Chunks of one plane, of a few channels, and of whole images (all on
    # ties, so the routing shows) against the loop reference.
    monkeypatch.setattr(pooling, "CPU_CHUNK_BYTES", chunk_bytes * 8)
    n, c, h, w, kernel, stride, dilation = case
    x = rng_for("pool-chunks", case).integers(0, 3, (n, c, h, w)).astype(float)
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, kernel, stride=stride, dilation=dilation)
    expected, _ = ref.max_pool2d_forward(x, kernel, stride, dilation)
    np.testing.assert_array_equal(y.data, expected)
    with no_grad():
        np.testing.assert_array_equal(
            max_pool2d(x, kernel, stride=stride, dilation=dilation).data,
            expected)
    grad_y = rng_for("pool-chunks-gy", case).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, kernel, stride, dilation),
        rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("min_taps", [1, 10 ** 9])
@pytest.mark.parametrize("case", [(2, 3, 17, 19, 8, None, 1),
                                  (2, 2, 14, 17, 3, 4, 1),
                                  (1, 2, 15, 16, 3, (5, 6), 2),
                                  (2, 2, 9, 11, 2, (3, 1), (2, 1))], ids=str)
def test_max_pool2d_scatter_and_routed_backward_match_the_loop(
        monkeypatch, case, min_taps):
    # Windows that do not overlap may scatter the gradient to the winners;
    # force that path (min_taps=1) and the routed one (never scatter) on
    # ties, where a wrong winner would show.
    monkeypatch.setattr(pooling, "SCATTER_MIN_TAPS", min_taps)
    n, c, h, w, kernel, stride, dilation = case
    x = rng_for("pool-scatter", case).integers(0, 3, (n, c, h, w)).astype(float)
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, kernel, stride=stride, dilation=dilation)
    grad_y = rng_for("pool-scatter-gy", case).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, kernel, stride, dilation),
        rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [2, 4])
def test_pools_of_an_empty_batch_have_empty_gradients(kernel):
    # kernel 4 takes the scatter backward, kernel 2 the routed one.
    for pool in (max_pool2d, avg_pool2d):
        xv = Variable(np.zeros((0, 1, 8, 8)), requires_grad=True)
        y = pool(xv, kernel)
        assert y.shape == (0, 1, 8 // kernel, 8 // kernel)
        y.backward(np.zeros(y.shape))
        assert xv.grad.shape == (0, 1, 8, 8)


def test_max_pool2d_ties_later_strictly_larger_tap_still_wins():
    # A tie between taps 0 and 1, then a strictly larger value at tap 3.
    x = np.array([[[[2., 2.], [1., 3.]]]])
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, 2)
    np.testing.assert_array_equal(y.data, [[[[3.]]]])
    y.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(xv.grad, [[[[0., 0.], [0., 1.]]]])


def test_max_pool2d_many_taps():
    # 17 x 17 = 289 taps: more than a uint8 tap index can hold.
    x = distinct_values(rng_for("many-taps"), (1, 2, 18, 17))
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, 17, stride=1)
    expected, _ = ref.max_pool2d_forward(x, 17, 1)
    np.testing.assert_array_equal(y.data, expected)
    grad_y = rng_for("many-taps-gy").standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(xv.grad,
                               ref.max_pool2d_backward(x, grad_y, 17, 1),
                               rtol=1e-14, atol=1e-14)


# ================================================================ pointwise

@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 3, 5, 4), (1, 1, 7, 1)])
def test_tanh_forward_and_gradcheck(shape):
    x = 1.5 * rng_for("tanh", shape).standard_normal(shape)
    np.testing.assert_allclose(tanh(x).data, ref.tanh_forward(x),
                               rtol=1e-14, atol=1e-15)
    check_gradients(tanh, [x], seed=6)


def test_tanh_backward_matches_closed_form():
    x = np.linspace(-4, 4, 17).reshape(1, 1, 1, 17)
    xv = Variable(x, requires_grad=True)
    grad_y = np.arange(17.0).reshape(x.shape)
    tanh(xv).backward(grad_y)
    t = ref.tanh_forward(x)
    np.testing.assert_allclose(xv.grad, grad_y * (1 - t * t), rtol=1e-13,
                               atol=1e-15)


@pytest.mark.parametrize("shape", [(2, 3), (1, 4, 5, 3), (3, 2, 4, 4),
                                   (2, 3, 5)])
def test_bias_add_forward_and_gradcheck(shape):
    rng = rng_for("bias", shape)
    x = rng.standard_normal(shape)
    bias = rng.standard_normal(shape[1])
    np.testing.assert_array_equal(bias_add(x, bias).data,
                                  ref.bias_add_forward(x, bias))
    check_gradients(bias_add, [x, bias], seed=7)


def test_bias_add_bias_gradient_sums_over_batch_and_space():
    rng = rng_for("bias-grad")
    x = rng.standard_normal((3, 2, 4, 5))
    bv = Variable(np.zeros(2), requires_grad=True)
    grad_y = rng.standard_normal(x.shape)
    bias_add(x, bv).backward(grad_y)
    expected = np.array([sum(grad_y[n, c, i, j] for n in range(3)
                             for i in range(4) for j in range(5))
                         for c in range(2)])
    np.testing.assert_allclose(bv.grad, expected, rtol=1e-13)


# ===================================================================== shape

@pytest.mark.parametrize("channels", [(1,), (2, 3), (1, 4, 2)])
@pytest.mark.parametrize("spatial", [(3, 4), (1, 5)])
def test_concat_forward_and_gradcheck(channels, spatial):
    rng = rng_for("concat", channels, spatial)
    xs = [rng.standard_normal((2, c) + spatial) for c in channels]
    y = concat(xs)
    assert y.shape == (2, sum(channels)) + spatial
    np.testing.assert_array_equal(y.data, ref.concat_forward(xs))
    check_gradients(lambda *vs: concat(vs), xs, seed=8)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("weights", [(1.0,), (0.5, -2.0), (1 / 3,) * 3])
def test_weighted_sum_forward_and_gradcheck(shape, weights):
    rng = rng_for("weighted_sum", shape, weights)
    xs = [rng.standard_normal(shape) for _ in weights]
    y = weighted_sum(xs, weights)
    expected = np.zeros(shape)
    for x, w in zip(xs, weights):
        expected = expected + w * x
    np.testing.assert_allclose(y.data, expected, rtol=1e-14, atol=1e-15)
    check_gradients(lambda *vs: weighted_sum(vs, weights), xs, seed=23)


def test_weighted_sum_of_losses_sharing_a_graph_adds_their_gradients():
    # Two losses on one score map: one backward through the weighted sum
    # gives w1 * grad(loss1) + w2 * grad(loss2).
    scores, targets = loss_case((2, 4, 3, 3), seed=30)
    other = np.where(targets >= 0, (targets + 1) % 4, -1)
    parts = []
    for t in (targets, other):
        v = Variable(scores.copy(), requires_grad=True)
        softmax_cross_entropy(tanh(v), t).backward()
        parts.append(v.grad)
    v = Variable(scores.copy(), requires_grad=True)
    hidden = tanh(v)
    weighted_sum([softmax_cross_entropy(hidden, targets),
                  softmax_cross_entropy(hidden, other)], [0.25, 2.0]).backward()
    np.testing.assert_allclose(v.grad, 0.25 * parts[0] + 2.0 * parts[1],
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("start,stop", [(0, 1), (1, 4), (0, 5), (4, 5)])
@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (3, 5)], ids=str)
def test_channel_slice_forward_and_gradcheck(start, stop, shape):
    x = rng_for("slice", shape).standard_normal(shape)
    y = channel_slice(x, start, stop)
    expected = np.zeros((shape[0], stop - start) + shape[2:])
    for k in range(stop - start):
        expected[:, k] = x[:, start + k]
    np.testing.assert_array_equal(y.data, expected)
    check_gradients(lambda a: channel_slice(a, start, stop), [x], seed=21)


@pytest.mark.parametrize("window", [(0, 0, 1, 1), (0, 0, 5, 7), (1, 2, 3, 4),
                                    (4, 6, 1, 1), (2, 0, 3, 7)])
def test_crop_forward_and_gradcheck(window):
    x = rng_for("crop", window).standard_normal((2, 3, 5, 7))
    y = crop(x, *window)
    assert y.shape == (2, 3, window[2], window[3])
    np.testing.assert_array_equal(y.data, ref.crop_forward(x, *window))
    check_gradients(lambda a: crop(a, *window), [x], seed=9)


def test_crop_result_does_not_alias_input():
    x = rng_for("crop-alias").standard_normal((1, 1, 4, 4))
    y = crop(x, 1, 1, 2, 2)
    y.data[...] = 100.0
    assert np.all(x < 100.0)


@pytest.mark.parametrize("widths,value", [(0, 0.0), (1, 0.0), (2, -1.5),
                                          ((1, 0, 2, 3), 0.0),
                                          ((0, 3, 0, 1), 7.0),
                                          ((2, 2, 0, 0), 0.25)])
def test_pad_forward_and_gradcheck(widths, value):
    x = rng_for("pad", widths, value).standard_normal((2, 2, 3, 4))
    y = pad(x, widths, value)
    np.testing.assert_array_equal(y.data, ref.pad_forward(x, widths, value))
    check_gradients(lambda a: pad(a, widths, value), [x], seed=10)


def test_pad_then_conv_is_a_padded_convolution():
    # A "same" 3x3 convolution of a one-hot image reproduces the kernel.
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    weight = np.arange(9.0).reshape(1, 1, 3, 3)
    y = conv2d(pad(x, 1), weight)
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = weight[0, 0, ::-1, ::-1]  # cross-correlation flips
    np.testing.assert_array_equal(y.data[0, 0], expected)


# ====================================================================== loss

LOSS_SHAPES = [(4, 3), (1, 5), (2, 3, 4, 5), (1, 4, 3, 3), (3, 2, 5)]


def _soft_targets(shape, seed):
    """A random class distribution per position, shaped like the scores."""
    rng = np.random.default_rng(seed)
    soft = rng.random(shape) ** 3
    return soft / soft.sum(axis=1, keepdims=True)


def _soft_arguments(shape, soft_weight, seed):
    """No soft targets (``soft_weight`` None), or random ones mixed in by
    ``soft_weight``, as keyword arguments of the loss and its loop."""
    if soft_weight is None:
        return {}
    return dict(soft_targets=_soft_targets(shape, seed),
                soft_weight=soft_weight)


@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("soft_weight", [None, 0.3, 1.0])
def test_softmax_cross_entropy_matches_loop(shape, weighted, soft_weight):
    scores, targets = loss_case(shape, seed=_stable_seed(shape))
    targets.flat[0] = 1  # at least one valid position
    class_weight = (np.linspace(0.5, 2.0, shape[1]) if weighted else None)
    soft = _soft_arguments(shape, soft_weight, _stable_seed(shape) + 3)
    loss = softmax_cross_entropy(scores, targets, class_weight, **soft)
    assert isinstance(loss, Variable)
    assert loss.shape == ()
    expected = ref.softmax_cross_entropy_forward(scores, targets,
                                                 class_weight, **soft)
    assert float(loss.data) == pytest.approx(expected, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("soft_weight", [None, 0.6])
def test_softmax_cross_entropy_gradcheck(shape, weighted, soft_weight):
    scores, targets = loss_case(shape, seed=_stable_seed(shape) + 1)
    targets.flat[0] = 0
    class_weight = (np.linspace(2.0, 0.5, shape[1]) if weighted else None)
    soft = _soft_arguments(shape, soft_weight, _stable_seed(shape) + 5)
    check_gradients(
        lambda s: softmax_cross_entropy(s, targets, class_weight, **soft),
        [scores], seed=11, atol=1e-9)


def test_softmax_cross_entropy_soft_targets_hand_computed():
    # p = softmax([0, log 3]) = (1/4, 3/4); target 1, soft target (1/2, 1/2)
    scores = np.array([[0.0, np.log(3.0)]])
    soft = np.array([[0.5, 0.5]])
    loss = softmax_cross_entropy(scores, np.array([1]), soft_targets=soft,
                                 soft_weight=0.25)
    expected = -(0.75 * np.log(0.75)
                 + 0.25 * (0.5 * np.log(0.25) + 0.5 * np.log(0.75)))
    assert float(loss.data) == pytest.approx(expected, rel=1e-14)
    # Ignored positions stay ignored, whatever their soft target says.
    sv = Variable(np.array([[0.0, 1.0], [2.0, -1.0]]), requires_grad=True)
    softmax_cross_entropy(sv, np.array([0, -1]),
                          soft_targets=np.array([[0.5, 0.5], [0.0, 1.0]]),
                          soft_weight=1.0).backward()
    assert np.all(sv.grad[1] == 0) and np.all(sv.grad[0] != 0)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 3)], ids=str)
def test_softmax_cross_entropy_gradcheck_unnormalised_soft_targets(shape):
    """Soft rows that do not sum to 1 (float16 teacher probabilities are
    off by up to 1e-3; validation allows 1e-2): the gradient is still the
    derivative of the loss returned."""
    scores, targets = loss_case(shape, seed=_stable_seed(shape) + 7)
    targets.flat[0] = 0
    soft = _soft_targets(shape, 21) * np.random.default_rng(22).uniform(
        0.5, 1.5, (shape[0], 1) + shape[2:])
    check_gradients(
        lambda s: softmax_cross_entropy(s, targets, soft_targets=soft,
                                        soft_weight=0.6),
        [scores], seed=12, atol=1e-9)


def test_softmax_cross_entropy_is_finite_where_log_probabilities_are_not():
    """A log-probability of -inf where the loss does not look (an ignored
    position, a class whose soft target is 0) leaves the loss finite."""
    # float32 scores 4e38 apart: the shifted score overflows to -inf.
    scores = np.array([[0.0, 1.0], [-2e38, 2e38]], np.float32)
    with np.errstate(over="ignore"):
        loss = softmax_cross_entropy(scores, np.array([1, -1]))
    expected = -np.log(np.exp(1.0) / (1 + np.exp(1.0)))
    assert float(loss.data) == pytest.approx(expected, rel=1e-6)
    masked = softmax_cross_entropy(np.array([[0.0, -np.inf]]), np.array([0]),
                                   soft_targets=np.array([[1.0, 0.0]]),
                                   soft_weight=0.5)
    assert float(masked.data) == 0.0


def test_softmax_cross_entropy_of_float16_scores_sums_without_overflow():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((1, 3, 300, 300))
    targets = rng.integers(0, 3, (1, 300, 300))
    half = Variable(scores.astype(np.float16), requires_grad=True)
    loss = softmax_cross_entropy(half, targets)
    loss.backward()
    assert loss.data.dtype == np.float16 and half.grad.dtype == np.float16
    expected = ref.softmax_cross_entropy_forward(scores, targets)
    assert float(loss.data) == pytest.approx(expected, rel=2e-3)
    assert np.abs(half.grad).max() > 0


def test_softmax_cross_entropy_tiny_class_weights_still_average():
    """Weights below float32's smallest normal number: still a weighted
    mean, equal to the unweighted one for equal weights."""
    scores, targets = loss_case((4, 3), seed=23, ignore_fraction=0.0)
    scores = scores.astype(np.float32)
    plain = softmax_cross_entropy(scores, targets)
    tiny = softmax_cross_entropy(scores, targets,
                                 np.full(3, 1e-40, np.float32))
    assert float(tiny.data) == pytest.approx(float(plain.data), rel=1e-5)


def test_softmax_cross_entropy_soft_weight_zero_is_the_hard_loss():
    scores, targets = loss_case((2, 3, 4, 4), seed=15)
    targets.flat[0] = 2
    soft = _soft_targets(scores.shape, 16)
    weight = np.array([1.0, 3.0, 0.5])
    hard = Variable(scores.copy(), requires_grad=True)
    mixed = Variable(scores.copy(), requires_grad=True)
    a = softmax_cross_entropy(hard, targets, weight)
    b = softmax_cross_entropy(mixed, targets, weight, soft_targets=soft,
                              soft_weight=0.0)
    a.backward()
    b.backward()
    assert float(a.data) == pytest.approx(float(b.data), rel=1e-14)
    np.testing.assert_allclose(mixed.grad, hard.grad, rtol=1e-13, atol=1e-16)


def test_softmax_cross_entropy_hand_computed():
    scores = np.array([[0.0, np.log(3.0)], [2.0, 2.0]])
    targets = np.array([1, 0])
    # p(1 | row 0) = 3/4, p(0 | row 1) = 1/2
    expected = -(np.log(0.75) + np.log(0.5)) / 2
    assert float(softmax_cross_entropy(scores, targets).data) == \
        pytest.approx(expected, rel=1e-14)
    weighted = softmax_cross_entropy(scores, targets, np.array([3.0, 1.0]))
    assert float(weighted.data) == pytest.approx(
        -(1 * np.log(0.75) + 3 * np.log(0.5)) / 4, rel=1e-14)


def test_softmax_cross_entropy_is_stable_for_large_scores():
    scores = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1000.0]])
    targets = np.array([0, 2])
    loss = softmax_cross_entropy(scores, targets)
    assert np.isfinite(loss.data)
    expected = ref.softmax_cross_entropy_forward(scores, targets)
    assert float(loss.data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy_ignored_positions_get_exactly_zero(weighted):
    scores, targets = loss_case((2, 4, 5, 6), seed=12, ignore_fraction=0.4,
                                 scale=30.0)
    assert (targets < 0).any() and (targets >= 0).any()
    class_weight = np.array([1.0, 2.0, 0.5, 3.0]) if weighted else None
    sv = Variable(scores, requires_grad=True)
    softmax_cross_entropy(sv, targets, class_weight).backward()
    ignored = np.broadcast_to((targets < 0)[:, None], scores.shape)
    assert np.all(sv.grad[ignored] == 0)
    # Valid positions do get a gradient, summing to zero over classes.
    valid_grad = sv.grad.transpose(0, 2, 3, 1)[targets >= 0]
    assert np.all(np.abs(valid_grad).sum(axis=1) > 0)
    np.testing.assert_allclose(valid_grad.sum(axis=1), 0, atol=1e-15)


def test_softmax_cross_entropy_ignored_positions_do_not_change_loss():
    scores, targets = loss_case((2, 3, 4, 4), seed=13, ignore_fraction=0.5)
    targets.flat[0] = 2
    other = scores.copy()
    other[np.broadcast_to((targets < 0)[:, None], scores.shape)] = 1e3
    a = softmax_cross_entropy(scores, targets).data
    b = softmax_cross_entropy(other, targets).data
    assert float(a) == pytest.approx(float(b), rel=1e-14)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy_all_ignored(shape, weighted):
    scores = np.random.default_rng(14).standard_normal(shape)
    targets = np.full((shape[0],) + shape[2:], -1)
    class_weight = np.ones(shape[1]) if weighted else None
    sv = Variable(scores, requires_grad=True)
    loss = softmax_cross_entropy(sv, targets, class_weight)
    assert float(loss.data) == 0.0 and not np.signbit(loss.data)
    loss.backward()
    assert np.all(sv.grad == 0)


def test_softmax_cross_entropy_zero_weight_class_is_ignored_in_mean():
    scores, targets = loss_case((6, 3), seed=15, ignore_fraction=0.0)
    targets[:] = [0, 1, 2, 0, 1, 2]
    class_weight = np.array([1.0, 0.0, 1.0])
    loss = softmax_cross_entropy(scores, targets, class_weight)
    keep = targets != 1
    expected = softmax_cross_entropy(scores[keep], targets[keep])
    assert float(loss.data) == pytest.approx(float(expected.data), rel=1e-13)


def test_softmax_cross_entropy_upstream_gradient_scales():
    scores, targets = loss_case((2, 3, 2, 2), seed=16)
    targets.flat[0] = 0
    a = Variable(scores, requires_grad=True)
    b = Variable(scores, requires_grad=True)
    softmax_cross_entropy(a, targets).backward()
    softmax_cross_entropy(b, targets).backward(np.array(2.5))
    np.testing.assert_allclose(b.grad, 2.5 * a.grad, rtol=1e-14)


def test_softmax_cross_entropy_accepts_targets_as_variable():
    scores, targets = loss_case((3, 4, 2, 2), seed=17)
    targets.flat[0] = 3
    assert float(softmax_cross_entropy(scores, Variable(targets)).data) == \
        float(softmax_cross_entropy(scores, targets).data)


# =========================================== float32 vs float64, dtypes kept

OP_CASES = make_op_cases()


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_float32_agrees_with_float64(name):
    inputs, constants, f = OP_CASES[name]
    results = {}
    for dtype in (np.float32, np.float64):
        variables = [Variable(np.asarray(a, dtype=dtype), requires_grad=True)
                     for a in inputs]
        y = f(*variables, *cast_constants(constants, dtype))
        assert np.asarray(y.data).dtype == dtype
        if y.ndim == 0:
            y.backward()
        else:
            grad_y = np.random.default_rng(20).standard_normal(y.shape)
            y.backward(grad_y.astype(dtype))
        for v in variables:
            assert v.grad.dtype == dtype
        results[dtype] = (np.asarray(y.data), [v.grad for v in variables])
    y32, grads32 = results[np.float32]
    y64, grads64 = results[np.float64]
    scale = max(1.0, float(np.abs(y64).max()))
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5 * scale)
    for g32, g64 in zip(grads32, grads64):
        scale = max(1.0, float(np.abs(g64).max()))
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_every_op_gradcheck_on_shared_cases(name):
    inputs, constants, f = OP_CASES[name]
    check_gradients(lambda *vs: f(*vs, *constants), inputs, seed=22,
                    atol=1e-8)
