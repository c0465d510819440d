"""Run a function in a forked child, failing rather than hanging (a test
helper)."""

import multiprocessing


def result_in_forked_child(function, timeout=20):
    """``function()``'s return value, computed in a child made by fork.

    Returns ``(hung, value)``: ``hung`` is True (and ``value`` None) when
    the child had not finished after ``timeout`` seconds; it is killed.
    """
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=lambda: queue.put(function()))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        return True, None
    return False, queue.get(timeout=5)
