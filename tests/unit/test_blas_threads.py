"""BLAS threads per product: small products on one thread, large ones on the free cores
(or the user's cap), the caller's count given back after each run."""
from __future__ import annotations

import numpy as np
import pytest

import sm_notebook
from sm_notebook.engine import blas
from sm_notebook.engine.blas import BLAS, BlasThreads


class FakeLibrary:
    """Records what the engine sets; starts at the caller's count."""

    def __init__(self, caller):
        self.threads = caller
        self.calls = []

    def set(self, n):
        self.calls.append(n)
        self.threads = n

    def get(self):
        return self.threads


@pytest.fixture
def fake(monkeypatch):
    controller = BlasThreads()
    library = FakeLibrary(caller=4)
    controller._found, controller._lib = True, (library.set, library.get)
    controller.cap = None
    monkeypatch.setattr(controller.load, "free_cores", lambda: 2.0)
    return controller, library


def test_small_products_leave_the_library_alone(fake):
    controller, library = fake
    controller.for_product(blas.OPENBLAS_SINGLE_THREAD_MNK)
    controller.restore()
    assert library.calls == []


def test_medium_products_run_on_one_thread_and_the_count_is_restored(fake):
    controller, library = fake
    controller.for_product(blas.OPENBLAS_SINGLE_THREAD_MNK + 1)
    controller.for_product(blas.OPENBLAS_SINGLE_THREAD_MNK + 1)  # unchanged: no call
    assert library.calls == [1]
    controller.restore()
    assert library.threads == 4 and library.calls == [1, 4]


def test_large_products_use_the_free_cores_or_the_cap(fake):
    controller, library = fake
    controller.for_product(blas.THREADED_MNK)
    assert library.threads == 2
    controller.cap = 1
    controller.for_product(blas.THREADED_MNK)
    assert library.threads == 1
    controller.restore()
    assert library.threads == 4


def test_free_cores_subtract_other_processes_load(monkeypatch):
    load = blas._Load()
    load.cores = 2
    samples = iter([(0.0, 10.0, 1.0, 2), (1.0, 11.5, 1.5, 2)])  # others used 1 core-second
    monkeypatch.setattr(load, "_sample", lambda: next(samples))
    monkeypatch.setattr(blas.time, "monotonic", iter([0.0, 1.0]).__next__)
    load.free_cores()
    assert load.free_cores() == pytest.approx(1.0)


def test_set_num_threads_validates_and_sets_the_cap():
    before = BLAS.cap
    try:
        sm_notebook.set_num_threads(3)
        assert BLAS.cap == 3
        sm_notebook.set_num_threads(None)
        assert BLAS.cap is None
        with pytest.raises(sm_notebook.SavedModelError, match="at least 1"):
            sm_notebook.set_num_threads(0)
    finally:
        BLAS.cap = before


def test_a_run_gives_numpys_count_back():
    """A real product above the threading size, through the real library when found."""
    functions = BLAS._functions()
    if functions is None:
        pytest.skip("no OpenBLAS/MKL found in this process")
    _, getter = functions
    before = getter()
    BLAS.for_product(blas.OPENBLAS_SINGLE_THREAD_MNK + 1)
    assert getter() == 1
    np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)
    BLAS.restore()
    assert getter() == before


def test_a_forked_child_starts_with_an_empty_pool(monkeypatch):
    import os
    monkeypatch.setattr(BLAS, "cap", 2)
    BLAS.run_parts(lambda i: None, 4, 0)   # the parent has a helper thread now
    pid = os.fork()
    if pid == 0:  # child: parts still all run, and no job waits for a thread that is not there
        seen = []
        BLAS.run_parts(seen.append, 4, 0)
        os._exit(0 if sorted(seen) == [0, 1, 2, 3] and len(BLAS.pool.threads) == 1 else 1)
    _, status = os.waitpid(pid, 0)
    BLAS.restore()
    assert os.WEXITSTATUS(status) == 0


def _split_products():
    """Split products of every numpy path (name, thunk, multiply-adds, units it may be cut
    along, rows per unit)."""
    from sm_notebook.engine.ops import _winograd, nn_ops
    rng = np.random.default_rng(12)
    tall = rng.standard_normal((4100, 70)).astype(np.float32), rng.standard_normal((70, 90)).astype(np.float32)
    wide = rng.standard_normal((30, 300)).astype(np.float32), rng.standard_normal((300, 2100)).astype(np.float32)
    x = rng.standard_normal((3, 41, 37, 24)).astype(np.float32)
    w = rng.standard_normal((3, 3, 24, 40)).astype(np.float32)
    one = rng.standard_normal((1, 60, 70, 16)).astype(np.float32)
    stem = rng.standard_normal((5, 5, 16, 64)).astype(np.float32)
    wx = rng.standard_normal((2, 30, 30, 64)).astype(np.float32)
    ww = rng.standard_normal((3, 3, 64, 96)).astype(np.float32)
    u = _winograd.filters(ww)
    for a in (*tall, *wide, x, w, one, stem, wx, ww, u):
        a.flags.writeable = False
    return [
        ("matmul by rows", lambda: BLAS.matmul(*tall), 4100 * 70 * 90, 4100, 1),
        ("matmul by columns", lambda: BLAS.matmul(*wide), 30 * 300 * 2100, 2100 // blas.COLUMN_BLOCK,
         blas.COLUMN_BLOCK),
        ("im2col, whole images", lambda: nn_ops._conv_numpy(x, w, (1, 1), (1, 1), ((1, 1), (1, 1)), (41, 37)),
         3 * 41 * 37 * 9 * 24 * 40, 3 * 41, 37),
        ("im2col, rows of one image", lambda: nn_ops._conv_numpy(one, stem, (1, 1), (1, 1), ((2, 2), (2, 2)), (60, 70)),
         60 * 70 * 25 * 16 * 64, 60, 70),
        ("Winograd", lambda: nn_ops._winograd_numpy(wx, u, ((1, 1), (1, 1)), (30, 30)),
         16 * 2 * 15 * 15 * 64 * 96, 2 * 15, 15),
    ]


@pytest.mark.parametrize("case", range(5))
def test_split_products_give_the_same_bits_at_any_thread_count(case, monkeypatch):
    """The cut of a large product depends on the product alone: one thread and two compute
    the same BLAS calls, so the results are equal bit for bit (and are cut at all)."""
    name, run, mnk, units, unit_rows = _split_products()[case]
    assert mnk >= blas.THREADED_MNK and BLAS.parts(mnk, units, unit_rows) > 1, name
    results = []
    for threads in (1, 2, 1):
        monkeypatch.setattr(BLAS, "cap", threads)
        results.append(run())
        BLAS.restore()
    assert results[0].dtype == np.float32
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other, err_msg=name)
