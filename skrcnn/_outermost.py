"""A process-wide setting held while any of several blocks runs."""

import contextlib
import os
import threading


class Outermost:
    """Blocks that may nest and run in several threads at once, sharing one
    process-wide setting: ``enter()`` runs when the first block opens and
    ``leave()`` when the last one closes.

    Call the instance to get a block: ``with held(): ...``.
    """

    def __init__(self, enter, leave):
        self._enter = enter
        self._leave = leave
        self._lock = threading.Lock()
        self.depth = 0
        if hasattr(os, "register_at_fork"):
            # A lock held by another thread at fork would never be released
            # in the child.
            os.register_at_fork(after_in_child=self._new_lock)

    def _new_lock(self):
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self):
        with self._lock:
            if self.depth == 0:
                self._enter()
            self.depth += 1
        try:
            yield
        finally:
            with self._lock:
                self.depth -= 1
                if self.depth == 0:
                    self._leave()
