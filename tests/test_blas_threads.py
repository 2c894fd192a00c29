"""numpy's OpenBLAS runs on one thread during a native solve and gets its count back afterwards
(python/wnsense_native/_blas.py: its idle workers would spin on the cores the kernels need)."""
from __future__ import annotations

import contextlib
import threading

import pytest

import wnsense_native as wn
from wnsense_native import _blas, solvers

needs_openblas = pytest.mark.skipif(not _blas.openblas_threads(),
                                    reason="numpy is not linked against a loaded OpenBLAS")


@pytest.fixture(scope="module")
def problem():
    op = wn.gaussian_sensing(12, 400, rng=0)
    return op, op.forward(wn.low_rank_target(12, 2, rng=1))


@pytest.fixture
def two_blas_threads():
    before = _blas.openblas_threads()
    for set_fn, _ in _blas._libraries:
        set_fn(2)
    yield
    for (set_fn, _), n in zip(_blas._libraries, before):
        set_fn(n)


@needs_openblas
def test_solve_runs_blas_single_threaded_and_restores(problem, two_blas_threads):
    op, y = problem
    seen = []
    wn.solve(op, y, 3, max_iter=4, tol=0, rng=0,
             callback=lambda res: seen.append(_blas.openblas_threads()))
    assert seen and all(all(n == 1 for n in counts) for counts in seen)
    assert all(n == 2 for n in _blas.openblas_threads())


@needs_openblas
def test_restored_after_an_exception(problem, two_blas_threads):
    op, y = problem

    def boom(res):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wn.solve(op, y, 3, max_iter=4, rng=0, callback=boom)
    assert all(n == 2 for n in _blas.openblas_threads())


@needs_openblas
def test_nested_and_concurrent_solves_share_one_limit(problem, two_blas_threads):
    op, y = problem
    inner, errors = [], []

    def nested(res):  # a solve inside a solve's callback: the outer limit must survive it
        if res.nit == 1:
            wn.solve(op, y, 3, max_iter=2, rng=1)
            inner.append(_blas.openblas_threads())

    def worker():
        try:
            for _ in range(5):
                wn.solve(op, y, 3, max_iter=3, rng=2, callback=nested)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert inner and all(all(n == 1 for n in counts) for counts in inner)
    assert all(n == 2 for n in _blas.openblas_threads())


@needs_openblas
def test_reference_solve_keeps_numpy_threads(problem, two_blas_threads):
    """The numpy yardstick keeps its multithreaded BLAS."""
    op, y = problem
    seen = []
    wn.reference.solve(op, y, 3, max_iter=2, rng=0,
                       callback=lambda res: seen.append(_blas.openblas_threads()))
    assert seen and all(counts == [2] * len(counts) for counts in seen)


@needs_openblas
def test_results_do_not_depend_on_the_blas_limit(problem, two_blas_threads, monkeypatch):
    """A native solve with numpy's BLAS left on two threads gives the same bits as one under the
    single-thread limit."""
    op, y = problem
    kw = dict(max_iter=20, tol=0.0, rng=0)
    seen = []
    with monkeypatch.context() as m:
        m.setattr(solvers, "single_threaded_blas", contextlib.nullcontext)
        a = wn.solve(op, y, 3, callback=lambda res: seen.append(_blas.openblas_threads()), **kw)
    assert seen and all(counts == [2] * len(counts) for counts in seen)  # the limit was off
    b = wn.solve(op, y, 3, **kw)
    assert a.nit == b.nit == 20
    assert a.x.tobytes() == b.x.tobytes()
    assert a.history["loss"].tobytes() == b.history["loss"].tobytes()
