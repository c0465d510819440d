"""Shared pytest setup: make the helper modules in tests/ importable, a
fixture that presses Ctrl-C during training, one that pretends BLAS has
some number of threads, and the real Stanford Background Dataset when it
is available.

pytest's default import mode already puts this directory on ``sys.path`` for
test modules outside a package; inserting it here as well keeps
``from gradcheck import ...`` working under other import modes too.
"""

import os
import pathlib
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

REPO_ROOT = pathlib.Path(_HERE).parent


@pytest.fixture
def threads(monkeypatch):
    """Pretend BLAS has ``n`` threads: ``threads(n)``."""
    from skrcnn import _parallel

    def set_threads(n):
        monkeypatch.setattr(_parallel, "blas_threads", lambda: n)
    return set_threads


def _real_stanford_archive():
    """``$SKRCNN_STANFORD_ARCHIVE``, else this workplace's read-only copy
    beside the repository; None when neither is there."""
    candidates = [os.environ.get("SKRCNN_STANFORD_ARCHIVE"),
                  REPO_ROOT.parent / "shared" / "data" / "iccv09Data.tar.gz"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return pathlib.Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_stanford(tmp_path_factory):
    """The real Stanford Background Bunch, parsed once per session from the
    archive as distributed (skips the test without it). Shared by the
    tests: read it, never change it."""
    from skrcnn.datasets import load_stanford_background

    archive = _real_stanford_archive()
    if archive is None:
        pytest.skip("the real iccv09Data.tar.gz is not available "
                    "(set SKRCNN_STANFORD_ARCHIVE)")
    home = tmp_path_factory.mktemp("stanford")
    (home / "iccv09Data.tar.gz").symlink_to(archive)
    return load_stanford_background(data_home=home)


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
