"""pytest-benchmark timings of the kernels and one solver iteration (not part of the test suite:
run ``python -m pytest bench/ --benchmark-only``)."""
import numpy as np
import pytest

import wnsense_native as wn
from _common import STORAGES, constant_step_start

D, M = 100, 20000


@pytest.fixture(scope="module", params=STORAGES,
                ids=lambda p: f"{p[0]}{'-packed' if p[1] else ''}")
def operator(request):
    dtype, packed = request.param
    return wn.gaussian_sensing(D, M, dtype=dtype, packed=packed, rng=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((D, D))
    return Z + Z.T, rng.standard_normal(M)


def test_forward(benchmark, operator, data):
    benchmark(operator.forward, data[0])


def test_adjoint(benchmark, operator, data):
    benchmark(operator.adjoint, data[1])


def test_fused_residual_adjoint(benchmark, operator, data):
    V = np.linalg.qr(np.random.default_rng(2).standard_normal((D, 10)))[0]
    benchmark(operator._residual, data[0], np.eye(D), data[1], V, None)


def test_wn_rgd_iteration(benchmark, operator):
    # the paper's Algorithm 1 (two passes per iteration)
    Zs = wn.low_rank_target(D, 5, 5.0, rng=2)
    y = operator.forward(Zs)
    start = constant_step_start(wn.solve, operator, y, 10, variant="paper")
    benchmark.pedantic(wn.solve, args=(operator, y, 10),
                       kwargs=dict(rng=3, max_iter=10, tol=0, variant="paper", **start), rounds=3)


def test_wn_lbfgs_iteration(benchmark, operator):
    # the library's default, WN-LBFGS (one pass per iteration)
    Zs = wn.low_rank_target(D, 5, 5.0, rng=2)
    y = operator.forward(Zs)
    start = constant_step_start(wn.solve, operator, y, 10)
    benchmark.pedantic(wn.solve, args=(operator, y, 10),
                       kwargs=dict(rng=3, max_iter=10, tol=0, **start), rounds=3)
