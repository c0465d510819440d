"""retain_freed_memory: freed large blocks are reused inside the context
(no page faults on reallocation), glibc's defaults come back after it."""

import platform
import resource
import warnings

import numpy as np
import pytest

from skrcnn import _allocator
from skrcnn._allocator import is_retaining, retain_freed_memory

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the tuning only acts on glibc")

# 64 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so without
# the tuning every allocation is a fresh mapping that faults on first touch.
BLOCK = 16 * 2 ** 20


def _faults_per_allocation(repeats=5):
    # NumPy asks for transparent huge pages on large arrays, which hides the
    # faults' count (one per 2 MiB); count 4 KiB pages instead.
    multiarray = getattr(np, "_core", None) or np.core
    hugepages = multiarray.multiarray._set_madvise_hugepage(False)
    try:
        return _count_faults(repeats)
    finally:
        multiarray.multiarray._set_madvise_hugepage(hugepages)


def _count_faults(repeats):
    np.ones(BLOCK, np.float32)  # warm-up: the first one faults everywhere
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        np.ones(BLOCK, np.float32)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return (after - before) / repeats


@pytest.fixture
def fresh_allocator(monkeypatch):
    """Forget the cached libc decision, so env changes take effect."""
    monkeypatch.setattr(_allocator, "_libc", None)
    for name in list(__import__("os").environ):
        if name.startswith("MALLOC_") or name == "GLIBC_TUNABLES":
            monkeypatch.delenv(name)
    monkeypatch.delenv("SKRCNN_MALLOC_TUNING", raising=False)
    yield monkeypatch
    monkeypatch.setattr(_allocator, "_libc", None)


@glibc_only
def test_freed_blocks_are_reused_inside_and_returned_outside(fresh_allocator):
    pages = BLOCK * 4 // resource.getpagesize()
    outside = _faults_per_allocation()
    with retain_freed_memory():
        inside = _faults_per_allocation()
    after = _faults_per_allocation()
    assert outside > pages / 2, outside
    assert inside < pages / 20, (inside, outside)
    assert after > pages / 2, after


@glibc_only
def test_tuning_can_be_switched_off(fresh_allocator):
    fresh_allocator.setenv("SKRCNN_MALLOC_TUNING", "0")
    pages = BLOCK * 4 // resource.getpagesize()
    with retain_freed_memory():
        inside = _faults_per_allocation()
    assert inside > pages / 2, inside


@glibc_only
def test_user_allocator_settings_are_left_alone(fresh_allocator):
    fresh_allocator.setenv("MALLOC_ARENA_MAX_", "2")
    assert _allocator._glibc() is None
    fresh_allocator.setattr(_allocator, "_libc", None)
    fresh_allocator.delenv("MALLOC_ARENA_MAX_")
    assert _allocator._glibc() is not None


def test_nested_contexts_restore_only_at_the_outermost(fresh_allocator):
    calls = []
    fresh_allocator.setattr(_allocator, "_set",
                            lambda trim, mmap: calls.append((trim, mmap)))
    assert not is_retaining()
    with retain_freed_memory():
        with retain_freed_memory():
            assert is_retaining()
        assert is_retaining()
        assert len(calls) == 1
    assert not is_retaining()
    assert calls == [(_allocator.RETAIN_BYTES, _allocator.RETAIN_BYTES),
                     (_allocator.DEFAULT_TRIM_THRESHOLD,
                      _allocator.DEFAULT_MMAP_THRESHOLD)]


def test_defaults_come_back_after_an_exception(fresh_allocator):
    calls = []
    fresh_allocator.setattr(_allocator, "_set",
                            lambda trim, mmap: calls.append((trim, mmap)))
    with pytest.raises(KeyError):
        with retain_freed_memory():
            raise KeyError("boom")
    assert not is_retaining()
    assert calls[-1] == (_allocator.DEFAULT_TRIM_THRESHOLD,
                         _allocator.DEFAULT_MMAP_THRESHOLD)


def test_fit_and_predict_run_inside_the_context(fresh_allocator):
    from skrcnn import RecurrentCNNSegmenter
    from skrcnn import segmenter as segmenter_module

    seen = []
    original = segmenter_module.image_scores

    def spy(*args, **kwargs):
        seen.append(is_retaining())
        return original(*args, **kwargs)

    fresh_allocator.setattr(segmenter_module, "image_scores", spy)
    rng = np.random.default_rng(0)
    X = rng.random((2, 24, 24, 3))
    y = (X[..., 0] > 0.5).astype(int)
    model = RecurrentCNNSegmenter(architecture="rcnn2", hidden_sizes=(4, 4),
                                  n_instances=1, max_iter=1,
                                  patches_per_epoch=16, random_state=0)
    fresh_allocator.setattr(
        RecurrentCNNSegmenter, "_epoch",
        lambda self, *a, original=RecurrentCNNSegmenter._epoch:
        (seen.append(("fit", is_retaining())), original(self, *a))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    model.predict(X)
    assert seen == [("fit", True), True, True]
    assert not is_retaining()
