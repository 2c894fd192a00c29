"""Fixtures shared by the test modules (the helpers themselves are in ``_helpers.py``)."""
import pytest

import _helpers


@pytest.fixture(scope="module")
def sym_gaussian():
    """``(op, y, Z*)``: symmetric Gaussian sensing, d = 12, r* = 2, m = 300 (read-only)."""
    return _helpers.sym_gaussian()


@pytest.fixture(scope="module")
def rect_gaussian():
    """``(op, y, Z*)``: rectangular Gaussian sensing, 10 x 8, r* = 2, m = 250 (read-only)."""
    return _helpers.rect_gaussian()


@pytest.fixture(scope="module")
def gaussian(sym_gaussian, rect_gaussian):
    """``gaussian(symmetric)``: the symmetric or the rectangular problem above."""
    return lambda symmetric: sym_gaussian if symmetric else rect_gaussian


# Dask clusters listen on loopback only: inproc transport (processes=False) or 127.0.0.1, and the
# HTTP servers (scheduler and workers) on 127.0.0.1 too (dashboard_address=None still listens).
LOOPBACK = {"dashboard_address": "127.0.0.1:0", "worker_dashboard_address": "127.0.0.1:0"}


# Module scope: one cluster for all the tests of a module (only test_distributed.py uses it), closed
# when that module ends. A session-scoped one kept its scheduler and workers ticking in this
# process for the rest of the run: their allocations made the leak tests of test_reliability.py
# (which count live Python blocks) fail under the sanitizer, where every call is slower.
@pytest.fixture(scope="module")
def dask_client():
    """A ``distributed.Client`` of 2 in-process workers with one thread each (skips the test
    when the optional extra ``dask`` is not installed)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       **LOOPBACK)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
