"""Scratch buffers reused across calls.

Large temporaries that are allocated afresh on every call page-fault on every
call (on the VMs we measured, this cost PyTorch up to 2x). The convolution's
per-chunk buffers are therefore taken from here: one buffer per name, array
module and dtype, grown when a larger one is asked for and reused otherwise.
Buffers are per thread, so concurrent fits in threads never share one.
"""

import math
import threading

_local = threading.local()


def scratch(name, shape, dtype, xp):
    """Return an uninitialised array of ``shape`` backed by a reused buffer.

    The array is valid until the next call with the same ``name`` in the same
    thread; callers must not hand it out as a result. On a GPU it is a fresh
    array: CuPy's memory pool already reuses freed device blocks, and kept
    buffers (up to 512 MiB each) would hold device memory after a fit and
    belong to whichever device was current when they were made.
    """
    if xp.__name__ != "numpy":
        return xp.empty(shape, dtype=dtype)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (name, xp.__name__, xp.dtype(dtype).str)
    size = math.prod(shape)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def clear():
    """Free every buffer of the calling thread."""
    _local.buffers = {}
