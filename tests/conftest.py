"""Shared pytest setup: make the helper modules in tests/ importable, and
a fixture that presses Ctrl-C during training.

pytest's default import mode already puts this directory on ``sys.path`` for
test modules outside a package; inserting it here as well keeps
``from gradcheck import ...`` working under other import modes too.
"""

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def interrupt_epoch(monkeypatch):
    """``interrupt_epoch(n)`` makes the estimator's ``n``-th epoch in this
    test raise KeyboardInterrupt (as Ctrl-C would); it returns the list
    that gets one entry per epoch started."""
    from skrcnn import RecurrentCNNSegmenter

    def arm(n):
        original = RecurrentCNNSegmenter._epoch
        started = []

        def epoch(self, *args):
            started.append(1)
            if len(started) == n:
                raise KeyboardInterrupt
            return original(self, *args)

        monkeypatch.setattr(RecurrentCNNSegmenter, "_epoch", epoch)
        return started

    return arm
