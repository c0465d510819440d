"""Keep freed memory in the process while skrcnn trains or predicts.

Every training step and every dense pass allocates the same large arrays
(activations, gradients) again. glibc hands large freed blocks straight back
to the operating system (they are mmapped, or trimmed off the top of the
heap), so the next allocation of the same size page-faults on first touch.
On the development VM that cost 11-15% of an rcnn2 training step and 5% of a
dense pass (``benchmarks/bench_training.py`` reports it). While a fit or a
prediction runs, :func:`retain_freed_memory` raises glibc's mmap and trim
thresholds so freed blocks are reused, and puts glibc's documented initial
values back when the last such call returns (glibc's dynamic adjustment of
the mmap threshold stays off: setting either threshold disables it for the
rest of the process, see ``man mallopt``). The process then keeps its peak
footprint until the heap is trimmed again.

The settings are process-wide, so nested and concurrent (threaded) calls are
counted and only the outermost one changes them. Nothing happens outside
glibc (macOS, Windows, musl), when the environment variable
``SKRCNN_MALLOC_TUNING`` is ``0``, or when the user tunes glibc's allocator
through the environment already (``MALLOC_*_`` or ``GLIBC_TUNABLES``).
"""

import ctypes
import ctypes.util
import os
import platform

from ._outermost import Outermost

# mallopt parameters (malloc.h) and glibc's documented defaults.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_THRESHOLD = 128 * 1024
# Larger than any array the paper's networks allocate, and far below what a
# 64-bit glibc accepts.
RETAIN_BYTES = 2 ** 30

_libc = None


def _glibc():
    """The C library when it is glibc and tuning is allowed, else None."""
    global _libc
    if _libc is None:
        _libc = False
        user_tuned = any(name.startswith("MALLOC_") and name.endswith("_")
                         or name == "GLIBC_TUNABLES" for name in os.environ)
        if (os.environ.get("SKRCNN_MALLOC_TUNING", "1") != "0"
                and not user_tuned and platform.system() == "Linux"
                and platform.libc_ver()[0] == "glibc"):
            try:
                library = ctypes.CDLL(ctypes.util.find_library("c"))
                library.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                _libc = library
            except (OSError, AttributeError):
                pass
    return _libc or None


def _set(trim_threshold, mmap_threshold):
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
        libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)


_retaining = Outermost(
    lambda: _set(RETAIN_BYTES, RETAIN_BYTES),
    lambda: _set(DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_THRESHOLD))


def retain_freed_memory():
    """Context in which glibc keeps freed large blocks for reuse."""
    return _retaining()


def is_retaining():
    """Whether a :func:`retain_freed_memory` context is active (for tests)."""
    return _retaining.depth > 0
