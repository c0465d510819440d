"""NumPy and CuPy give the same results and gradients (needs a CUDA GPU).

Every operation runs forward and backward once on NumPy and once on CuPy
with the same float32 inputs; values and all gradients must agree to float32
precision. Skipped cleanly where CuPy or a GPU is missing.
"""

import numpy as np
import pytest

from skrcnn import backend

pytestmark = pytest.mark.gpu

if not backend.gpu_available():
    pytest.skip("needs CuPy and a CUDA GPU", allow_module_level=True)

import cupy  # noqa: E402  (only importable where the skip did not happen)

from op_cases import (cast_constants, loss_case, make_op_cases,  # noqa: E402
                      spy_chunks)
from skrcnn.autograd import Variable  # noqa: E402
from skrcnn.functions import (conv2d, convolution,  # noqa: E402
                              softmax_cross_entropy)

RTOL, ATOL = 1e-4, 1e-5


def _assert_close(gpu_value, cpu_value, what):
    assert isinstance(gpu_value, cupy.ndarray), (
        f"{what}: expected a CuPy array, got {type(gpu_value).__name__}")
    gpu_value = cupy.asnumpy(gpu_value)
    cpu_value = np.asarray(cpu_value)
    assert gpu_value.shape == cpu_value.shape, what
    assert gpu_value.dtype == cpu_value.dtype == np.float32, what
    # atol relative to the magnitude of the values compared
    scale = max(1.0, float(np.abs(cpu_value).max(initial=0.0)))
    np.testing.assert_allclose(gpu_value, cpu_value, rtol=RTOL,
                               atol=ATOL * scale, err_msg=what)


def _run(f, inputs, constants, grad_y, xp):
    """Forward and backward on ``xp``; returns (output, [input grads])."""
    move = cupy.asarray if xp is cupy else np.asarray
    variables = [Variable(move(a), requires_grad=True) for a in inputs]
    y = f(*variables, *[move(c) for c in constants])
    if grad_y is None:
        y.backward()
    else:
        y.backward(move(grad_y))
    return y.data, [v.grad for v in variables]


def _compare(f, inputs, constants=(), seed=0, name="op"):
    inputs = [np.asarray(a, dtype=np.float32) for a in inputs]
    constants = cast_constants(list(constants), np.float32)
    shape = np.shape(f(*inputs, *constants).data)  # NumPy, nothing recorded
    grad_y = (None if shape == () else np.random.default_rng(seed)
              .standard_normal(shape).astype(np.float32))
    y_cpu, grads_cpu = _run(f, inputs, constants, grad_y, np)
    y_gpu, grads_gpu = _run(f, inputs, constants, grad_y, cupy)
    _assert_close(y_gpu, y_cpu, f"{name}: output")
    for k, (g_gpu, g_cpu) in enumerate(zip(grads_gpu, grads_cpu)):
        assert g_gpu is not None, f"{name}: input {k} got no gradient on GPU"
        _assert_close(g_gpu, g_cpu, f"{name}: gradient of input {k}")
    return y_gpu, grads_gpu


OP_CASES = make_op_cases()


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_op_matches_numpy(name):
    inputs, constants, f = OP_CASES[name]
    _compare(f, inputs, constants, seed=1, name=name)


# (N, C, H, W, O, KH, KW, stride, dilation)
GPU_CONV_CASES = [
    (2, 3, 17, 15, 4, 3, 3, 1, 1),
    (1, 4, 20, 23, 3, 5, 4, 2, 1),
    (2, 2, 25, 19, 3, 3, 3, 1, 2),
    (1, 3, 31, 29, 2, 3, 2, (3, 2), (2, 3)),
    (3, 1, 16, 16, 2, 8, 8, 1, 1),
    (1, 5, 40, 33, 6, 4, 4, 3, 3),
    (2, 6, 9, 11, 4, 1, 1, 1, 1),          # 1x1: one GEMM per image
    (1, 5, 12, 10, 3, 1, 1, (2, 3), 1),
]


@pytest.mark.parametrize("case", GPU_CONV_CASES, ids=str)
def test_conv2d_strides_dilations_match_numpy(case):
    n, c, h, w, o, kh, kw, stride, dilation = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((o, c, kh, kw)) / np.sqrt(c * kh * kw)
    bias = rng.standard_normal(o)
    _compare(lambda a, k, b: conv2d(a, k, b, stride=stride,
                                    dilation=dilation),
             [x, weight, bias], seed=3, name=str(case))


def _banded(plan):
    return len(plan) > 1 and any(h0 > 0 for _, _, h0, _ in plan)


def test_conv2d_row_bands_match_numpy(monkeypatch):
    # A small GPU budget splits each image into row bands; NumPy runs whole.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 150, 97))
    weight = rng.standard_normal((5, 6, 5, 3)) / np.sqrt(90)
    bias = rng.standard_normal(5)
    plans = spy_chunks(monkeypatch)
    monkeypatch.setattr(convolution, "GPU_CHUNK_BYTES", 64 * 1024)
    _compare(lambda a, k, b: conv2d(a, k, b, stride=(2, 1), dilation=(1, 2)),
             [x, weight, bias], seed=5, name="row bands")
    gpu_plans = plans[-2:]  # the CuPy forward and backward run last
    assert all(_banded(plan) for plan in gpu_plans), gpu_plans


def test_conv2d_large_input_default_budget_uses_row_bands(monkeypatch):
    # Large enough that the default GPU budget splits the image into bands;
    # compared with one unsplit GPU pass (the same on NumPy would be slow).
    rng = np.random.default_rng(6)
    c, o, kh, kw = 32, 32, 3, 3
    x = cupy.asarray(rng.standard_normal((1, c, 1400, 1100),
                                         dtype=np.float32))
    weight = cupy.asarray(rng.standard_normal((o, c, kh, kw),
                                              dtype=np.float32) / 17)
    grad_y = cupy.asarray(rng.standard_normal((1, o, 1398, 1098),
                                              dtype=np.float32))

    def run():
        xv = Variable(x, requires_grad=True)
        wv = Variable(weight, requires_grad=True)
        y = conv2d(xv, wv)
        y.backward(grad_y)
        return y.data, xv.grad, wv.grad

    plans = spy_chunks(monkeypatch)
    banded = run()
    assert all(_banded(plan) for plan in plans), [len(p) for p in plans]
    plans.clear()
    monkeypatch.setattr(convolution, "GPU_CHUNK_BYTES", 2 ** 40)
    whole = run()
    assert all(len(plan) == 1 for plan in plans)
    for name, a, b in zip(("y", "grad_x", "grad_w"), banded, whole):
        a, b = cupy.asnumpy(a), cupy.asnumpy(b)
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL * scale,
                                   err_msg=name)
    # Spot-check a corner of the output against NumPy.
    corner = conv2d(cupy.asnumpy(x[:, :, :20, :30]), cupy.asnumpy(weight))
    _assert_close(banded[0][:, :, :18, :28], corner.data, "corner")


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_with_ignored_pixels_matches_numpy(weighted):
    scores, targets = loss_case((3, 5, 16, 12), seed=7, ignore_fraction=0.4)
    assert (targets < 0).any() and (targets >= 0).any()
    constants = [targets]
    if weighted:
        constants.append(np.array([1.0, 0.5, 2.0, 1.5, 0.25]))
    _, grads = _compare(lambda s, *c: softmax_cross_entropy(s, *c),
                        [scores], constants, name="loss")
    grad = cupy.asnumpy(grads[0])
    ignored = np.broadcast_to((targets < 0)[:, None], grad.shape)
    assert np.all(grad[ignored] == 0)


def test_loss_all_ignored_on_gpu():
    scores = cupy.asarray(np.random.default_rng(8).standard_normal(
        (2, 3, 4, 4)).astype(np.float32))
    targets = cupy.full((2, 4, 4), -1, dtype=cupy.int64)
    sv = Variable(scores, requires_grad=True)
    loss = softmax_cross_entropy(sv, targets)
    assert float(loss.data) == 0.0
    loss.backward()
    assert bool((sv.grad == 0).all())


def test_loss_takes_host_targets_and_weights_for_device_scores():
    """NumPy targets, class weights and soft targets beside CuPy scores go
    to the GPU (CuPy never converts implicitly): the same loss as with
    everything on the device."""
    scores, targets = loss_case((2, 3, 4, 4), seed=9, ignore_fraction=0.2)
    scores = scores.astype(np.float32)
    weight = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    soft = np.full(scores.shape, 1 / 3, dtype=np.float32)
    on_device = softmax_cross_entropy(
        cupy.asarray(scores), cupy.asarray(targets), cupy.asarray(weight),
        cupy.asarray(soft))
    mixed = softmax_cross_entropy(cupy.asarray(scores), targets, weight, soft)
    assert isinstance(mixed.data, cupy.ndarray)
    np.testing.assert_allclose(float(mixed.data), float(on_device.data),
                               rtol=1e-6)


def test_convolution_scratch_is_not_kept_on_the_gpu():
    from skrcnn import _workspace
    _workspace.clear()
    x = cupy.ones((2, 3, 20, 20), dtype=cupy.float32)
    conv2d(x, cupy.ones((4, 3, 3, 3), dtype=cupy.float32))
    assert not any(key[1] == "cupy" for key in
                   getattr(_workspace._local, "buffers", {}))


def test_resolve_and_transfer_on_gpu():
    assert backend.resolve_device("gpu") == "gpu"
    assert backend.resolve_device("auto") == "gpu"
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    on_gpu = backend.to_device(a, "gpu")
    assert isinstance(on_gpu, cupy.ndarray)
    assert backend.is_gpu_array(on_gpu)
    assert backend.get_array_module(on_gpu) is cupy
    back = backend.to_numpy(on_gpu)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)
    np.testing.assert_array_equal(backend.to_device(on_gpu, "cpu"), a)
