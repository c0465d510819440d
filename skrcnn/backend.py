"""Array backend selection: NumPy everywhere, CuPy when a GPU is there.

All array code in skrcnn is written once against an array module ``xp``
(``numpy`` or ``cupy``). This module finds out whether CuPy and a GPU are
usable, resolves the user's ``device`` choice, and moves arrays between host
and device. It imports cleanly on machines without CuPy or CUDA.
"""

import threading

import numpy as np

try:  # CuPy is an optional extra; its absence is the normal case on CPUs.
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA library that fails to load
    _cupy = None

DEFAULT_DTYPE = np.float32
DEVICES = ("auto", "cpu", "gpu")

_gpu_visible = None  # cached answer of gpu_available()
_gpu_problem = None  # why CuPy could not count the devices, if it failed
_gpu_lock = threading.Lock()  # one probe; other callers wait for its answer


def cupy_available():
    """Return True when CuPy imported successfully."""
    return _cupy is not None


def _probe_gpu():
    """Run a compiled kernel and a matmul on the GPU: CuPy counts the
    devices with the driver alone, but its kernels need NVRTC and its
    matmuls cuBLAS (the CUDA toolkit, or ``cupy-cuda13x[ctk]``)."""
    ramp = _cupy.arange(4, dtype=_cupy.float32) * 2
    total = float(ramp @ _cupy.ones(4, dtype=_cupy.float32))
    if total != 12.0:
        raise RuntimeError(f"a test matmul on the GPU gave {total}, not 12")


def gpu_available():
    """Return True when CuPy is importable, sees a CUDA device and can run
    kernels and matrix products on it."""
    global _gpu_visible, _gpu_problem
    if _gpu_visible is None:
        with _gpu_lock:
            if _gpu_visible is None:
                visible, problem = False, None
                if _cupy is not None:
                    try:
                        if _cupy.cuda.runtime.getDeviceCount() > 0:
                            _probe_gpu()
                            visible = True
                    except Exception as exc:  # no driver or device, broken
                        problem = f"{type(exc).__name__}: {exc}"
                _gpu_problem, _gpu_visible = problem, visible
    return _gpu_visible


def resolve_device(device="auto"):
    """Turn a user's device choice into ``"cpu"`` or ``"gpu"``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}, default="auto"
        ``"auto"`` picks the GPU when CuPy and a CUDA device are present.

    Returns
    -------
    str
        ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ValueError
        If ``device`` is not one of the accepted names, or if ``"gpu"`` is
        requested where no usable GPU exists.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "gpu" if gpu_available() else "cpu"
    if device == "gpu" and not gpu_available():
        if _cupy is None:
            reason = "CuPy is not installed (pip install 'skrcnn[gpu]')"
        elif _gpu_problem is not None:
            # E.g. a driver too old for the CUDA version CuPy was built for.
            reason = f"CuPy cannot use CUDA ({_gpu_problem})"
        else:
            reason = "CuPy sees no CUDA device"
        raise ValueError(f"device='gpu' was requested but {reason}; "
                         "use device='cpu' or device='auto'")
    return device


def array_module(device):
    """Return ``numpy`` for ``"cpu"`` and ``cupy`` for ``"gpu"``."""
    return _cupy if resolve_device(device) == "gpu" else np


def get_array_module(*arrays):
    """Return the array module (``numpy`` or ``cupy``) of the given arrays."""
    if _cupy is not None:
        return _cupy.get_array_module(*arrays)
    return np


def is_gpu_array(array):
    """Return True when ``array`` lives on a GPU."""
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def to_numpy(array):
    """Return ``array`` as a NumPy array (copying from the GPU if needed)."""
    if is_gpu_array(array):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def to_device(array, device):
    """Return ``array`` on ``device`` (``"cpu"`` or ``"gpu"``), copying only
    when it is somewhere else."""
    if resolve_device(device) == "gpu":
        return _cupy.asarray(array)
    return to_numpy(array)
