"""skrcnn._outermost: one process-wide setting shared by many blocks."""

import os
import threading

import pytest
from forking import result_in_forked_child

from skrcnn._outermost import Outermost


def _recorder():
    calls = []
    held = Outermost(lambda: calls.append("enter"),
                     lambda: calls.append("leave"))
    return held, calls


def test_nested_blocks_enter_and_leave_once():
    held, calls = _recorder()
    with held():
        with held():
            assert held.depth == 2
        assert calls == ["enter"]
    assert calls == ["enter", "leave"] and held.depth == 0
    with pytest.raises(RuntimeError):
        with held():
            raise RuntimeError("inside")
    assert calls == ["enter", "leave"] * 2 and held.depth == 0


def test_blocks_in_threads_share_one_setting():
    held, calls = _recorder()
    inside = threading.Barrier(3, timeout=10)
    done = threading.Barrier(3, timeout=10)

    def block():
        with held():
            inside.wait()  # all three blocks open at once
            done.wait()

    threads = [threading.Thread(target=block) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == ["enter", "leave"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_forked_child_can_enter_while_a_parent_thread_held_the_lock():
    held, _ = _recorder()
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with held._lock:
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)

    def child_enters():
        with held():
            return held.depth

    hung, depth = result_in_forked_child(child_enters)
    release.set()
    holder.join(10)
    assert not hung, "the child waited for a lock no thread of it holds"
    assert depth == 1
