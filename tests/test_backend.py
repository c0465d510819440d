"""Backend selection and host/device transfers; importing without CuPy."""

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from skrcnn import backend

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_resolve_cpu():
    assert backend.resolve_device("cpu") == "cpu"


def test_auto_and_the_default_pick_a_working_gpu(monkeypatch):
    _use_fake_cupy(monkeypatch)
    assert backend.resolve_device() == "gpu"
    assert backend.resolve_device("auto") == "gpu"
    assert backend.resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("cupy", ["missing", "no device"])
def test_auto_and_the_default_fall_back_to_the_cpu(monkeypatch, cupy):
    if cupy == "missing":
        monkeypatch.setattr(backend, "_cupy", None)
        monkeypatch.setattr(backend, "_gpu_visible", None)
        monkeypatch.setattr(backend, "_gpu_problem", None)
    else:
        _use_fake_cupy(monkeypatch, count=lambda: 0)
    assert backend.resolve_device() == "cpu"
    assert backend.resolve_device("auto") == "cpu"


@pytest.mark.parametrize("name", ["cuda", "GPU", "", None, "tpu"])
def test_unknown_device_name(name):
    with pytest.raises(ValueError, match=r"device must be one of .*'auto'.*"
                       r"'cpu'.*'gpu'.*got " + repr(repr(name))[1:-1]):
        backend.resolve_device(name)


def test_gpu_requested_without_gpu_is_clear_value_error():
    if backend.gpu_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(ValueError, match=r"device='gpu' was requested but "
                       r"(CuPy is not installed|CuPy sees no CUDA device|"
                       r"CuPy cannot use CUDA).*"
                       r"device='cpu'"):
        backend.resolve_device("gpu")


def test_gpu_requested_without_cupy_mentions_install(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_gpu_visible", None)
    assert not backend.cupy_available()
    assert not backend.gpu_available()
    assert backend.resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match=r"CuPy is not installed.*"
                       r"skrcnn\[gpu\]"):
        backend.resolve_device("gpu")
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.array_module("cpu") is np


def _use_fake_cupy(monkeypatch, count=lambda: 1, arange=np.arange):
    """A stand-in CuPy (NumPy doing its kernels) whose device count and
    first kernel are ``count`` and ``arange``; detection starts afresh."""
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
            getDeviceCount=count)),
        float32=np.float32, arange=arange, ones=np.ones)
    monkeypatch.setattr(backend, "_cupy", fake)
    monkeypatch.setattr(backend, "_gpu_visible", None)
    monkeypatch.setattr(backend, "_gpu_problem", None)


def _fails(message):
    def fail(*args, **kwargs):
        raise RuntimeError(message)
    return fail


@pytest.mark.parametrize("broken, said", [
    # A driver too old for the CUDA version CuPy was built for: the error
    # says what CUDA said, not only that no GPU was seen.
    (dict(count=_fails("cudaErrorInsufficientDriver: CUDA driver version "
                       "is insufficient for CUDA runtime version")),
     "cudaErrorInsufficientDriver: "),
    # cupy-cuda13x without the CUDA libraries counts the device with the
    # driver alone, then fails at its first kernel: 'auto' must not pick it.
    (dict(arange=_fails("CompileException: libnvrtc.so.13: cannot open "
                        "shared object file")),
     "CompileException: libnvrtc"),
], ids=["old driver", "no CUDA libraries"])
def test_an_unusable_gpu_is_passed_over_and_named(monkeypatch, broken,
                                                  said):
    _use_fake_cupy(monkeypatch, **broken)
    assert backend.gpu_available() is False
    assert backend.resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match=r"CuPy cannot use CUDA "
                       r"\(RuntimeError: " + said + r".*\); use device='cpu'"):
        backend.resolve_device("gpu")
    _use_fake_cupy(monkeypatch)  # a working one is used
    assert backend.gpu_available() is True


def test_callers_during_the_gpu_probe_wait_for_its_answer(monkeypatch):
    """The probe compiles a kernel (seconds on a real GPU): a second thread
    asking meanwhile got 'no GPU' before the first thread's answer."""
    import threading
    import time
    probing = threading.Event()

    def slow_arange(*args, **kwargs):
        probing.set()
        time.sleep(0.3)
        return np.arange(*args, **kwargs)
    _use_fake_cupy(monkeypatch, arange=slow_arange)
    answers = []
    first = threading.Thread(target=lambda: answers.append(
        backend.gpu_available()))
    first.start()
    probing.wait(5)
    answers.append(backend.resolve_device("auto") == "gpu")
    first.join()
    assert answers == [True, True]


def test_gpu_available_is_false_without_cupy_consistent():
    if not backend.cupy_available():
        assert backend.gpu_available() is False


def test_to_numpy_and_to_device_round_trip_on_cpu():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    on_cpu = backend.to_device(a, "cpu")
    assert isinstance(on_cpu, np.ndarray)
    assert on_cpu is a  # already there: no copy
    back = backend.to_numpy(on_cpu)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)
    assert back.dtype == np.float32
    assert not backend.is_gpu_array(a)
    assert backend.get_array_module(a) is np
    # lists become arrays
    np.testing.assert_array_equal(backend.to_numpy([1.0, 2.0]), [1.0, 2.0])


def test_to_device_gpu_without_gpu_raises():
    if backend.gpu_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(ValueError, match="device='gpu'"):
        backend.to_device(np.zeros(2), "gpu")


def test_package_imports_without_cupy():
    code = (
        "import sys\n"
        "sys.modules['cupy'] = None  # any 'import cupy' now fails\n"
        "import numpy as np\n"
        "import skrcnn, skrcnn.backend, skrcnn.functions as F\n"
        "from skrcnn.autograd import Variable\n"
        "assert skrcnn.backend.cupy_available() is False\n"
        "assert skrcnn.backend.gpu_available() is False\n"
        "assert skrcnn.backend.resolve_device('auto') == 'cpu'\n"
        "x = Variable(np.ones((1, 1, 3, 3)), requires_grad=True)\n"
        "F.conv2d(x, np.ones((1, 1, 2, 2))).backward(np.ones((1, 1, 2, 2)))\n"
        "assert x.grad.sum() == 16.0\n"
        "try:\n"
        "    skrcnn.backend.resolve_device('gpu')\n"
        "except ValueError as e:\n"
        "    assert 'CuPy is not installed' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
        "print('ok')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
