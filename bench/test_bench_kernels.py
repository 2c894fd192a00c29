"""pytest-benchmark timings of the kernels and one solver iteration (not part of the test suite:
run ``python -m pytest bench/ --benchmark-only``)."""
import numpy as np
import pytest

import wnsense_native as wn

D, M = 100, 20000


@pytest.fixture(scope="module", params=[("float64", False), ("float32", False),
                                        ("float64", True), ("float32", True)],
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
    benchmark(operator._residual, data[0], np.eye(D), data[1], True)


def test_wn_rgd_iteration(benchmark, operator):
    Zs = wn.low_rank_target(D, 5, 5.0, rng=2)
    y = operator.forward(Zs)
    res = wn.solve(operator, y, 10, rng=3, max_iter=5, tol=0)
    eta = float(res.history["step_size"][-1])
    benchmark.pedantic(wn.solve, args=(operator, y, 10),
                       kwargs=dict(rng=3, max_iter=10, tol=0, step_size=eta, init=res.factors),
                       rounds=3)
