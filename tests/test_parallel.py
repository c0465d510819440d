"""The CPU threads of skrcnn._parallel and the convolution's use of them."""

import threading
import time
import types

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import reference_ops as ref
import skrcnn.functions.convolution as convolution
from forking import result_in_forked_child
from op_cases import conv_all, spy_chunks
from skrcnn import _parallel
from skrcnn.autograd import Variable
from skrcnn.functions import conv2d


def _blas_thread_counts():
    return [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"]


@pytest.mark.parametrize("n_items, parts, lengths", [
    (7, 3, [3, 2, 2]), (6, 3, [2, 2, 2]), (2, 2, [1, 1]), (5, 1, [5])])
def test_split_evenly_keeps_order_and_balances(n_items, parts, lengths):
    runs = _parallel.split_evenly(list(range(n_items)), parts)
    assert [len(run) for run in runs] == lengths
    assert sum(runs, []) == list(range(n_items))


def test_map_parts_runs_contiguous_runs_in_separate_threads(threads):
    threads(3)
    seen = []
    barrier = threading.Barrier(3, timeout=10)

    def work(part, run):
        # All three runs must be in flight at once to pass the barrier.
        barrier.wait()
        seen.append(threading.get_ident())
        return part, list(run), _blas_thread_counts(), \
            _parallel.available_threads()

    results = _parallel.map_parts(work, list(range(8)), np)
    assert [r[0] for r in results] == [0, 1, 2]
    assert [r[1] for r in results] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert len(set(seen)) == 3
    # BLAS held to one thread in every run; a run never splits again.
    assert all(counts == [1] * len(counts) for _, _, counts, _ in results)
    assert all(available == 1 for *_, available in results)


def test_map_parts_stays_in_the_caller_when_it_cannot_split(threads):
    caller = threading.get_ident()

    def work(part, run):
        return part, list(run), threading.get_ident()

    threads(1)
    assert _parallel.map_parts(work, [1, 2, 3], np) == [(0, [1, 2, 3],
                                                         caller)]
    threads(4)
    assert _parallel.map_parts(work, [9], np) == [(0, [9], caller)]
    fake_cupy = types.SimpleNamespace(__name__="cupy")
    assert _parallel.map_parts(work, [1, 2], fake_cupy) == [(0, [1, 2],
                                                             caller)]


def test_map_parts_raises_a_workers_error_after_all_runs_end(threads):
    threads(2)
    finished = []

    def work(part, run):
        if part == 1:
            raise ValueError("bad chunk")
        time.sleep(0.2)  # the failing worker is done long before this
        finished.append(part)

    with pytest.raises(ValueError, match="bad chunk"):
        _parallel.map_parts(work, [0, 1], np)
    assert finished == [0]

    def caller_fails(part, run):
        if part == 0:
            raise KeyError("first run")
        time.sleep(0.2)
        finished.append(part)

    finished.clear()
    with pytest.raises(KeyError):
        _parallel.map_parts(caller_fails, [0, 1], np)
    # The caller's error waits for the other run instead of leaving it
    # writing into arrays the caller is about to drop.
    assert finished == [1]


def test_parallel_cpu_holds_blas_and_restores_the_users_setting():
    before = _blas_thread_counts()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl can control")
    with threadpool_limits(2, user_api="blas"):
        with _parallel.parallel_cpu():
            assert _blas_thread_counts() == [1] * len(before)
            assert _parallel.available_threads() == 2
            with _parallel.parallel_cpu():  # nested: no change
                assert _parallel.available_threads() == 2
            assert _blas_thread_counts() == [1] * len(before)
        assert _blas_thread_counts() == [2] * len(before)
        with threadpool_limits(1, user_api="blas"):
            # A user who limits BLAS to one thread gets no extra threads.
            with _parallel.parallel_cpu():
                assert _parallel.available_threads() == 1
    assert _blas_thread_counts() == before


def test_parallel_cpu_holds_blas_in_other_threads_too():
    """Once the main thread has set OpenBLAS's thread count, setting it from
    another thread does not take there: a fit run from a worker thread
    (Dask, a web server) computed its GEMMs on several BLAS threads, with
    other sums than the same fit in the main thread. Inside parallel_cpu,
    any thread's GEMMs give the one-thread sums, and its own setting comes
    back afterwards."""
    if not _blas_thread_counts():
        pytest.skip("no BLAS library that threadpoolctl can control")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 3000)).astype(np.float32)
    b = rng.standard_normal((3000, 400)).astype(np.float32)
    with threadpool_limits(2, user_api="blas"):
        with threadpool_limits(1, user_api="blas"):
            one = a @ b
        two = a @ b
        if np.array_equal(one, two):
            pytest.skip("this BLAS sums alike on 1 and 2 threads")
        with _parallel.parallel_cpu():  # the main thread sets BLAS first
            pass
        got = {}

        def in_a_thread():
            with _parallel.parallel_cpu():
                got["inside"] = a @ b
            got["after"] = a @ b
        worker = threading.Thread(target=in_a_thread)
        worker.start()
        worker.join()
    np.testing.assert_array_equal(got["inside"], one)
    np.testing.assert_array_equal(got["after"], two)


def test_blocks_closed_last_in_another_thread_restore_the_main_threads_blas():
    """A fit in a thread pool (joblib's threading backend) can close the
    last block in another thread than the one that opened the first; the
    main thread's BLAS count must come back all the same (it stayed at 1
    for the rest of the process, and later fits recorded 1 as the count)."""
    if not _blas_thread_counts():
        pytest.skip("no BLAS library that threadpoolctl can control")
    with threadpool_limits(2, user_api="blas"):
        before = _blas_thread_counts()
        opened, main_closed = threading.Event(), threading.Event()

        def closes_last():
            with _parallel.parallel_cpu():
                opened.set()
                main_closed.wait(10)
        worker = threading.Thread(target=closes_last)
        with _parallel.parallel_cpu():
            worker.start()
            opened.wait(10)
        main_closed.set()
        worker.join()
        assert _blas_thread_counts() == before
        with _parallel.parallel_cpu():
            assert _parallel.available_threads() == 2


def test_a_caller_growing_the_pool_never_shuts_it_under_another(
        monkeypatch):
    """A caller needing more workers replaces the shared pool and shuts the
    old one down; a caller that had just fetched the old one then submitted
    to a shut-down pool (RuntimeError, on machines with 3+ threads). Here
    caller A is held inside its first submit until B has made a new pool
    (or for 0.5 s if B cannot meanwhile)."""
    monkeypatch.setattr(_parallel, "available_threads", lambda: 8)
    monkeypatch.setattr(_parallel, "_pool", None)
    monkeypatch.setattr(_parallel, "_pool_size", 0)
    pools, a_submitting, second_pool = [], threading.Event(), threading.Event()

    class Pool(_parallel.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pools.append(self)
            if len(pools) == 2:
                second_pool.set()

        def submit(self, *args, **kwargs):
            if threading.current_thread().name == "A" and self is pools[0]:
                a_submitting.set()
                second_pool.wait(0.5)
            return super().submit(*args, **kwargs)
    monkeypatch.setattr(_parallel, "ThreadPoolExecutor", Pool)
    errors = []

    def caller(n):
        try:
            _parallel.map_parts(lambda part, run: None, list(range(n)), np)
        except Exception as error:  # noqa: BLE001 - any is a failure
            errors.append(repr(error))
    a = threading.Thread(target=caller, args=(2,), name="A")
    b = threading.Thread(target=caller, args=(8,), name="B")
    a.start()
    a_submitting.wait(5)
    b.start()
    a.join()
    b.join()
    for pool in pools:
        pool.shutdown()
    assert errors == [] and len(pools) == 2


def test_the_hold_leaves_alone_counts_it_did_not_set(monkeypatch):
    """A library that cannot tell its count (None) is not held (it would
    stay at 1); a count someone else changed meanwhile is not put back."""
    calls = []

    class Library:
        threading_layer = "pthreads"

        def __init__(self, count):
            self.count = count

        def get_num_threads(self):
            return self.count

        def set_num_threads(self, count):
            calls.append((self, count))
            self.count = count
    mute, held, changed = Library(None), Library(4), Library(4)
    controller = types.SimpleNamespace(
        lib_controllers=[mute, held, changed], info=lambda: [])
    monkeypatch.setattr(_parallel, "_controller", controller)
    with _parallel.parallel_cpu():
        assert (held.count, changed.count, mute.count) == (1, 1, None)
        changed.count = 3  # a user's own limit, set in another thread
    assert (held.count, changed.count, mute.count) == (4, 3, None)
    assert all(library is not mute for library, _ in calls)


# ------------------------------------------------------------ convolution

# (N, C, H, W, O, KH, KW, stride, dilation)
THREADED_CASES = [
    (6, 2, 9, 8, 3, 3, 2, 1, 1),        # images shared out
    (5, 3, 10, 9, 2, 2, 3, (2, 1), 1),  # 5 images over 2 or 3 threads
    (1, 2, 17, 9, 3, 3, 3, 1, 1),       # one image: bands
    (2, 2, 21, 10, 2, 3, 2, 2, (2, 1)),  # fewer images than 3 threads
]


def spy_runs(monkeypatch):
    """Record how many runs every map_parts call used."""
    runs = []
    original = _parallel.map_parts

    def spy(function, items, xp):
        results = original(function, items, xp)
        runs.append(len(results))
        return results

    monkeypatch.setattr(_parallel, "map_parts", spy)
    return runs


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("case", THREADED_CASES, ids=str)
def test_threaded_convolution_matches_loops_and_is_reproducible(
        case, n_threads, threads, monkeypatch):
    n, c, h, w, o, kh, kw, stride, dilation = case
    rng = np.random.default_rng(sum(case[:7]) + n_threads)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((o, c, kh, kw))
    bias = rng.standard_normal(o)
    expected_y = ref.conv2d_forward(x, weight, bias, stride, dilation)
    grad_y = rng.standard_normal(expected_y.shape)

    threads(n_threads)
    monkeypatch.setattr(convolution, "MIN_PART_BYTES", 1)
    runs = spy_runs(monkeypatch)
    plans = spy_chunks(monkeypatch)
    first = conv_all(x, weight, bias, stride, dilation, grad_y)
    # Forward and backward each shared their chunks over every thread, in
    # equal numbers per thread, each (image, output row) exactly once.
    assert runs == [n_threads, n_threads]
    chunks = plans[0]
    assert len(chunks) % n_threads == 0, chunks
    covered = np.zeros((n, expected_y.shape[2]), dtype=int)
    for n0, n1, h0, h1 in chunks:
        covered[n0:n1, h0:h1] += 1
    assert np.all(covered == 1)

    gx, gw, gb = ref.conv2d_backward(x, weight, grad_y, stride, dilation)
    for name, value, expected in zip(("y", "grad_x", "grad_w", "grad_b"),
                                     first, (expected_y, gx, gw, gb)):
        np.testing.assert_allclose(value, expected, rtol=1e-11, atol=1e-11,
                                   err_msg=name)
    # The split depends on the thread count, never on timing.
    again = conv_all(x, weight, bias, stride, dilation, grad_y)
    for name, a, b in zip(("y", "grad_x", "grad_w", "grad_b"), first, again):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_small_convolutions_stay_on_one_thread(threads, monkeypatch):
    # Work below MIN_PART_BYTES per thread is not worth a hand-off.
    threads(2)
    plans = spy_chunks(monkeypatch)
    x = np.ones((4, 2, 6, 6), dtype=np.float32)
    conv2d(x, np.ones((3, 2, 3, 3), dtype=np.float32))
    assert len(plans[0]) == 1


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"),
                    reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_map_parts_works_in_a_child_forked_after_it_ran(threads):
    threads(2)
    _parallel.map_parts(lambda part, run: None, [0, 1], np)  # pool started
    hung, result = result_in_forked_child(
        lambda: _parallel.map_parts(lambda part, run: (part, list(run)),
                                    [1, 2, 3, 4], np))
    assert not hung, "map_parts hung in the forked child"
    assert result == [(0, [1, 2]), (1, [3, 4])]


@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_bands_of_all_threads_stay_under_the_total_cap(n_threads, threads,
                                                       monkeypatch):
    # One tall image, bands as tall as allowed: each thread's band
    # temporaries shrink so that all threads' together stay under the cap.
    threads(n_threads)
    monkeypatch.setattr(convolution, "CPU_CHUNK_BYTES", 100)
    monkeypatch.setattr(convolution, "MIN_BAND_HALOS", 1000)
    monkeypatch.setattr(convolution, "MAX_BAND_BYTES", 4000)
    monkeypatch.setattr(convolution, "MAX_ALL_BANDS_BYTES", 8000)
    monkeypatch.setattr(convolution, "MIN_PART_BYTES", 1)
    row_bytes, kh, halo = 10, 3, 2
    chunks = convolution._chunks(1, 998, 1000, (kh, 1, 1), row_bytes, np)
    tallest = max(h1 - h0 for _, _, h0, h1 in chunks)
    cap = min(4000, 8000 // n_threads)
    assert (tallest + halo) * row_bytes <= cap
    assert len(chunks) % n_threads == 0
    # No more bands than needed: one round fewer would break the cap.
    fewer = len(chunks) - n_threads
    assert fewer == 0 or (-(-998 // fewer) + halo) * row_bytes > cap


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("case", [(3, 4, 11, 10, 3, 1, 1),   # overlapping
                                  (2, 5, 17, 19, 8, None, 1),  # scattered
                                  (2, 3, 13, 12, 3, 1, 2)], ids=str)
def test_threaded_max_pooling_matches_the_loop_on_ties(case, n_threads,
                                                       threads, monkeypatch):
    from skrcnn.functions import max_pool2d, pooling

    threads(n_threads)
    monkeypatch.setattr(pooling, "CPU_CHUNK_BYTES", 8 * 40)  # few planes
    monkeypatch.setattr(pooling, "SCATTER_PARALLEL_BYTES", 0)
    runs = spy_runs(monkeypatch)
    n, c, h, w, kernel, stride, dilation = case
    # Values from {0, 1, 2}: ties everywhere, so a wrong winner shows.
    x = np.random.default_rng(h * w).integers(0, 3, (n, c, h, w)) \
        .astype(float)
    xv = Variable(x, requires_grad=True)
    y = max_pool2d(xv, kernel, stride=stride, dilation=dilation)
    expected, _ = ref.max_pool2d_forward(x, kernel, stride, dilation)
    np.testing.assert_array_equal(y.data, expected)
    grad_y = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(grad_y)
    np.testing.assert_allclose(
        xv.grad, ref.max_pool2d_backward(x, grad_y, kernel, stride, dilation),
        rtol=1e-12, atol=1e-12)
    # Backward (routed through winners, or scattered to them in runs of
    # images) shared out; forward too, except for large windows that don't
    # overlap (one run: they measured slower on two threads).
    if stride == 1:
        assert runs == [n_threads, n_threads]
    else:
        assert runs == [min(n_threads, n)]
