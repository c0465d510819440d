"""Scratch buffers: reused on the CPU, per thread; fresh on a GPU."""

import threading
import types

import numpy as np

from skrcnn import _workspace


def test_cpu_buffers_are_reused_and_grown():
    _workspace.clear()
    a = _workspace.scratch("t", (4, 5), np.float32, np)
    b = _workspace.scratch("t", (2, 3), np.float32, np)
    assert np.shares_memory(a, b) and b.shape == (2, 3)
    c = _workspace.scratch("t", (10, 10), np.float32, np)  # grows
    assert c.shape == (10, 10) and not np.shares_memory(a, c)
    other_dtype = _workspace.scratch("t", (2, 3), np.float64, np)
    assert not np.shares_memory(c, other_dtype)


def test_threads_never_share_a_buffer():
    _workspace.clear()
    mine = _workspace.scratch("t", (8,), np.float32, np)
    theirs = {}
    worker = threading.Thread(target=lambda: theirs.update(
        array=_workspace.scratch("t", (8,), np.float32, np)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs["array"])


def test_other_array_modules_get_fresh_arrays():
    """A GPU module (here a stand-in named cupy, backed by NumPy) gets a new
    array every call: its own memory pool reuses blocks, and kept buffers
    would hold device memory after a fit."""
    made = []

    def empty(shape, dtype):
        made.append(np.empty(shape, dtype))
        return made[-1]
    fake = types.SimpleNamespace(__name__="cupy", empty=empty,
                                 dtype=np.dtype)
    _workspace.clear()
    a = _workspace.scratch("t", (4, 5), np.float32, fake)
    b = _workspace.scratch("t", (4, 5), np.float32, fake)
    assert len(made) == 2 and a is made[0] and b is made[1]
    assert not getattr(_workspace._local, "buffers", {})
