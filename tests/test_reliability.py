"""Reliability (issue 7): determinism, thread safety, interrupts and time limits, divergence,
memory.

* Determinism (SPEC 6.2 "bit-for-bit reproducible for a given seed, whatever the thread count"):
  every method of ``NATIVE_METHODS`` on an operator large enough that the native passes really run
  on a team of threads, and every operator kind's forward / adjoint / fused residual, give
  bit-identical results for ``n_threads`` 1 and 2 and across repeated runs.
* Thread safety: four Python threads calling forward / adjoint / residual / solve on shared
  operators at once get exactly the serial results (native calls release the GIL).
* Interrupts: the driver has no special handling of ``KeyboardInterrupt`` (its ``try/finally``
  only closes the progress bar): Ctrl-C during a long solve propagates as ``KeyboardInterrupt``
  from the next Python bytecode after the native call in flight (each call is one pass over the
  sensing data), so the solve stops within a pass; the operator is untouched and later calls give
  the same results as before. Checked in a child process (real SIGINT) and in-process (a callback
  or an operator raising ``KeyboardInterrupt`` mid-iteration). ``max_time`` stops a run within one
  iteration of the limit.
* Divergence: a far too large step stops with ``stop_reason == "diverged"`` and the last finite
  iterate (the same iterate a run stopped just before the bad step returns); no NaN ever reaches
  ``res.x``, for every method and absurd step sizes.
* Memory: 10,000 calls of every kernel and 100 solves do not grow the resident set or the number
  of live Python allocations; large operators are never copied (``dense_sensing`` shares the
  caller's buffer, a solve allocates far less than the operator's size).
"""
from __future__ import annotations

import concurrent.futures
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import wnsense_native as wn
from _helpers import OP_KINDS, make_operator
from wnsense_native import _core
from wnsense_native.solvers import NATIVE_METHODS

# ------------------------------------------------------------------------------------------------
# fixtures: operators large enough for the parallel path (cpp/dense_sensing.cpp: team_size runs a
# pass on one thread below 2^15 stored numbers; the reduction uses reduction_slices(m) slices)

D, M = 20, 2000          # symmetric: 2000 x 400 numbers (6.4 MB), 8 slices
D2 = 15                  # rectangular 20 x 15: 2000 x 300 numbers
PARALLEL_WORK = 1 << 15  # team_size's threshold (stored numbers per pass)


def _uses_parallel_path(op) -> bool:
    stored = op.data.shape[1] if isinstance(op, wn.DenseSensing) else op.shape[1] * op.shape[2]
    return _core.testing.reduction_slices(op.m) >= 2 and op.m * stored >= PARALLEL_WORK


@pytest.fixture(scope="module")
def sym_problem():
    op = wn.gaussian_sensing(D, M, rng=11)
    Zs = wn.low_rank_target(D, 2, kappa=3.0, rng=1)
    return op, op.forward(Zs), Zs


@pytest.fixture(scope="module")
def rect_problem():
    op = wn.gaussian_sensing(D, M, d2=D2, rng=12)
    Zs = wn.low_rank_target(D, 2, kappa=3.0, d2=D2, rng=2)
    return op, op.forward(Zs), Zs


@pytest.fixture(scope="module")
def snn_problem():
    # the SNN's own small setting, still above the parallel threshold (1000 x 64 numbers)
    op = wn.gaussian_sensing(8, 1000, rng=13)
    Zs = wn.low_rank_target(8, 2, rng=3)
    return op, op.forward(Zs), Zs


def _cases():
    """(method, family) pairs: every native method on every family it supports."""
    out = []
    for method in NATIVE_METHODS:
        if method == "snn":
            out.append((method, "snn"))
            continue
        out.append((method, "sym"))
        if method != "column_wn":  # column WN is symmetric-only
            out.append((method, "rect"))
    return out


CASES = _cases()


def _problem(family, request):
    return request.getfixturevalue({"sym": "sym_problem", "rect": "rect_problem",
                                    "snn": "snn_problem"}[family])


def _assert_bit_identical(a, b, *, skip=("time",)):
    """Results ``a`` and ``b`` agree bit for bit: x, factors, history (except wall time),
    iteration counts and the scalar fields."""
    assert a.x.tobytes() == b.x.tobytes()
    assert sorted(a.factors) == sorted(b.factors)
    for k in a.factors:
        assert np.asarray(a.factors[k]).tobytes() == np.asarray(b.factors[k]).tobytes(), k
    assert sorted(a.history) == sorted(b.history)
    for k in a.history:
        if k not in skip:
            assert a.history[k].tobytes() == b.history[k].tobytes(), k
    for k in ("nit", "nfev", "stop_reason", "status"):
        assert a[k] == b[k], k
    assert np.float64(a.fun).tobytes() == np.float64(b.fun).tobytes()


# ================================================================================================
# 3. determinism

def test_fixture_operators_take_the_parallel_path(sym_problem, rect_problem, snn_problem):
    assert _core.has_openmp, "built without OpenMP: the thread-count checks are vacuous"
    for op, _, _ in (sym_problem, rect_problem, snn_problem):
        assert _uses_parallel_path(op)


def test_parallel_team_really_starts():
    """A pass over a large operator with n_threads=2 starts an OpenMP team (a new OS thread in a
    fresh process), one with n_threads=1 or below the size threshold does not."""
    code = textwrap.dedent("""
        import numpy as np, wnsense_native as wn
        def threads():
            with open("/proc/self/status") as f:
                return int(next(l for l in f if l.startswith("Threads:")).split()[1])
        g = np.random.default_rng(0)
        big = wn.dense_sensing(g.standard_normal((2000, 20, 20)), symmetric=False)
        small = wn.dense_sensing(g.standard_normal((10, 4, 4)), symmetric=False)
        Z = g.standard_normal((20, 20))
        t0 = threads()
        small.forward(np.ones((4, 4)), n_threads=2)
        big.forward(Z, n_threads=1); big.adjoint(np.ones(2000), n_threads=1)
        t1 = threads()
        big.forward(Z, n_threads=2)
        t2 = threads()
        print(t0, t1, t2)
    """)
    env = dict(os.environ, OMP_NUM_THREADS="4", OMP_DYNAMIC="false", OPENBLAS_NUM_THREADS="1")
    env.pop("OMP_THREAD_LIMIT", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    t0, t1, t2 = map(int, out.stdout.split())
    assert t1 == t0, "a single-threaded pass started threads"
    assert t2 > t1, "n_threads=2 on a large operator did not start a team"


@pytest.mark.parametrize("method,family", CASES)
def test_solve_bit_identical_across_threads_and_runs(method, family, request):
    op, y, Zs = _problem(family, request)
    rank = 4
    # WN-RGD: the default (WN-LBFGS) and the paper's Algorithm 1
    for opts in ([{}, {"variant": "paper"}] if method == "wn_rgd" else [{}]):
        kw = dict(method=method, max_iter=25, tol=0.0, rng=1234, x_true=Zs, **opts)
        runs = [wn.solve(op, y, rank, n_threads=nt, **kw) for nt in (1, 2, 2, 1, None)]
        assert runs[0].nit > 0
        for other in runs[1:]:
            _assert_bit_identical(runs[0], other)
        # a seed changes the start (the comparison above is not vacuous)
        other_seed = wn.solve(op, y, rank, n_threads=2, **{**kw, "rng": 4321})
        assert other_seed.x.tobytes() != runs[0].x.tobytes()


@pytest.mark.parametrize("method,family", [c for c in CASES if c[0] != "snn"])
def test_solve_bit_identical_with_constant_step(method, family, request):
    """The constant-step path (no line search) is deterministic too."""
    op, y, _ = _problem(family, request)
    step = {"wn_rgd": 0.1, "gd": 0.1, "precgd": 0.2, "scaledgd": 0.2, "column_wn": 0.1}[method]
    for opts in ([{}, {"variant": "paper"}] if method == "wn_rgd" else [{}]):
        kw = dict(method=method, max_iter=15, tol=0.0, rng=7, step_size=step, **opts)
        a = wn.solve(op, y, 3, n_threads=1, **kw)
        b = wn.solve(op, y, 3, n_threads=2, **kw)
        _assert_bit_identical(a, b)


@pytest.fixture(scope="module")
def zoo():
    """One operator of every kind (``OP_KINDS``), d = 20 (20 x 15 rectangular), m = 2000; the
    user's dense stack is square and not symmetric."""
    return {kind: make_operator(kind, D, D if kind == "user_dense" else D2, M, seed=21)
            for kind in OP_KINDS}


@pytest.mark.parametrize("name", sorted(OP_KINDS))
def test_operator_kernels_bit_identical_across_threads_and_runs(name, zoo):
    op = zoo[name]
    m, d1, d2 = op.shape
    g = np.random.default_rng(6)
    Z = g.standard_normal((d1, d2))
    v = g.standard_normal(m)
    L, R = g.standard_normal((d1, 3)), g.standard_normal((d2, 3))
    right, left = g.standard_normal((d2, 4)), g.standard_normal((d1, 2))
    y = g.standard_normal(m)

    def kernels(nt):
        fw = op.forward(Z, n_threads=nt)
        adj = op.adjoint(v, n_threads=nt)
        t = 0 if nt is None else nt
        r, sumsq, AV, AtU = op._residual(L, R, y, right, left, t)
        r2, sumsq2, no_right, no_left = op._residual(L, R, y, None, None, t)
        assert no_right is None and no_left is None
        assert r2.tobytes() == r.tobytes() and sumsq2 == sumsq
        return [fw.tobytes(), adj.tobytes(), r.tobytes(), np.float64(sumsq).tobytes(),
                AV.tobytes(), AtU.tobytes()]

    ref = kernels(1)
    for nt in (2, 2, None, 1, 3):
        assert kernels(nt) == ref, nt


@pytest.mark.parametrize("kw", [{}, {"d2": D2}, {"dtype": "float32"}, {"packed": True},
                                {"dtype": "float32", "packed": True}])
def test_gaussian_generation_bit_identical_across_threads(kw):
    a = wn.gaussian_sensing(D, M, rng=99, n_threads=1, **kw)
    b = wn.gaussian_sensing(D, M, rng=99, n_threads=2, **kw)
    c = wn.gaussian_sensing(D, M, rng=99, **kw)
    assert a.data.tobytes() == b.data.tobytes() == c.data.tobytes()


# ================================================================================================
# 4. thread safety

def test_concurrent_calls_on_shared_operators_match_serial(sym_problem, rect_problem, zoo):
    ops = {"sym": sym_problem[0], "rect": rect_problem[0], "packed": zoo["gauss_packed_f32"],
           "entry": zoo["entry_sym"], "rank_one": zoo["rank_one"]}
    ys = {"sym": sym_problem[1], "rect": rect_problem[1]}
    g = np.random.default_rng(8)
    tasks = []
    for name, op in ops.items():
        m, d1, d2 = op.shape
        for k in range(3):
            Z = g.standard_normal((d1, d2))
            v = g.standard_normal(m)
            L, R = g.standard_normal((d1, 2)), g.standard_normal((d2, 2))
            y = g.standard_normal(m)
            nt = 1 + k % 2
            tasks.append(("forward", lambda op=op, Z=Z, nt=nt: op.forward(Z, n_threads=nt)))
            tasks.append(("adjoint", lambda op=op, v=v, nt=nt: op.adjoint(v, n_threads=nt)))
            tasks.append(("residual", lambda op=op, L=L, R=R, y=y, nt=nt:
                          op._residual(L, R, y, R, L, nt)))
    for fam, method in [("sym", "wn_rgd"), ("sym", "gd"), ("rect", "wn_rgd"), ("sym", "precgd"),
                        ("rect", "scaledgd"), ("sym", "column_wn")]:
        for seed in (1, 2):
            tasks.append(("solve", lambda fam=fam, method=method, seed=seed: wn.solve(
                ops[fam], ys[fam], 3, method=method, max_iter=8, tol=0.0, rng=seed,
                n_threads=2)))

    def digest(kind, out):
        if kind == "solve":
            return (out.x.tobytes(), out.history["loss"].tobytes(), out.nit)
        if kind == "residual":
            r, s, AV, AtU = out
            return (r.tobytes(), s, AV.tobytes(), AtU.tobytes())
        return out.tobytes()

    serial = [digest(kind, fn()) for kind, fn in tasks]
    order = list(range(len(tasks))) * 2
    np.random.default_rng(9).shuffle(order)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [(i, pool.submit(tasks[i][1])) for i in order]
        for i, fut in futures:
            assert digest(tasks[i][0], fut.result(timeout=300)) == serial[i], tasks[i][0]


def test_concurrent_constructors_are_independent():
    """Operators and targets built concurrently from the same seeds are identical."""
    def build(seed):
        op = wn.gaussian_sensing(D, M, rng=seed, n_threads=2)
        return op.data.tobytes(), wn.low_rank_target(D, 3, rng=seed).tobytes()

    serial = [build(s) for s in range(4)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(build, list(range(4)) * 2)) == serial * 2


# ================================================================================================
# 5. interrupts and time limits

_CHILD = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    import wnsense_native as wn

    # what an interactive interpreter has; CPython installs no handler when SIGINT was inherited
    # as ignored (e.g. the tests run from a background job of a non-interactive shell)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    catch = sys.argv[1] == "catch"
    op = wn.gaussian_sensing(30, 4000, rng=0)           # 29 MB: a pass takes milliseconds
    Zs = wn.low_rank_target(30, 3, rng=1)
    y = op.forward(Zs)
    before = op.forward(Zs).tobytes(), op.adjoint(y).tobytes()
    reference = wn.solve(op, y, 5, method="gd", step_size=1e-4, max_iter=3, tol=0.0, rng=2)
    started = []

    def announce(res):
        if not started:
            started.append(1)
            print("RUNNING", flush=True)

    try:
        # constant tiny step from a small start: the loss creeps down for ever, nothing stops it
        wn.solve(op, y, 5, method="gd", step_size=1e-4, max_iter=10**9, tol=0.0, rng=2,
                 callback=announce)
    except KeyboardInterrupt:
        if not catch:
            raise
        print("INTERRUPTED", time.monotonic(), flush=True)
    # everything still usable, and results unchanged
    assert (op.forward(Zs).tobytes(), op.adjoint(y).tobytes()) == before
    again = wn.solve(op, y, 5, method="gd", step_size=1e-4, max_iter=3, tol=0.0, rng=2)
    assert again.x.tobytes() == reference.x.tobytes()
    print("USABLE", flush=True)
""")


def _run_child_and_interrupt(mode):
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1,
                            env=dict(os.environ, OMP_NUM_THREADS="2"))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while "RUNNING\n" not in lines:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the child never started its solve"
            time.sleep(0.01)
        time.sleep(1.0)  # a second into the long solve
        assert proc.poll() is None, "the 'endless' solve ended by itself"
        t_sig = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        t_exit = time.monotonic()
        reader.join(timeout=5)
        return proc.returncode, lines, proc.stderr.read(), t_sig, t_exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_during_long_solve_caught_leaves_everything_usable():
    rc, lines, err, t_sig, t_exit = _run_child_and_interrupt("catch")
    assert rc == 0, err
    interrupted = [ln for ln in lines if ln.startswith("INTERRUPTED")]
    assert interrupted, (lines, err)
    latency = float(interrupted[0].split()[1]) - t_sig
    assert latency < 1.0, f"KeyboardInterrupt {latency:.2f} s after SIGINT"
    assert lines[-1] == "USABLE\n"
    assert t_exit - t_sig < 2.0


def test_sigint_during_long_solve_uncaught_exits_with_keyboardinterrupt():
    rc, lines, err, t_sig, t_exit = _run_child_and_interrupt("raise")
    assert t_exit - t_sig < 2.0, f"exit {t_exit - t_sig:.2f} s after SIGINT"
    assert "KeyboardInterrupt" in err
    assert rc in (-signal.SIGINT, 130, 1), rc  # CPython re-raises SIGINT on exit: -2
    assert "USABLE\n" not in lines


class _InterruptingOperator(wn.DenseSensing):
    """Shares an operator's buffer; raises KeyboardInterrupt on the n-th residual pass (i.e. in the
    middle of an iteration: inside the step-size search or the magnitude step)."""

    def __init__(self, base, after):
        super().__init__(base.data, base.shape[1], base.shape[2], symmetric=base.symmetric,
                         packed=base.packed)
        self.after = after
        self.calls = 0

    def _residual(self, *args, **kw):
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return super()._residual(*args, **kw)


@pytest.mark.parametrize("method,family", CASES)
def test_keyboardinterrupt_in_process_leaves_operator_usable(method, family, request):
    op, y, Zs = _problem(family, request)
    data_before = op.data.copy()
    kw = dict(method=method, max_iter=12, tol=0.0, rng=5)
    before = wn.solve(op, y, 3, **kw)
    fw = op.forward(Zs).tobytes()

    def stop_at_3(res):
        if res.nit == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wn.solve(op, y, 3, callback=stop_at_3, **kw)
    flaky = _InterruptingOperator(op, after=6)
    with pytest.raises(KeyboardInterrupt):
        wn.solve(flaky, y, 3, **kw)
    assert np.shares_memory(flaky.data, op.data)
    # the shared operator is untouched and gives the same results
    assert op.data.tobytes() == data_before.tobytes()
    assert op.forward(Zs).tobytes() == fw
    _assert_bit_identical(before, wn.solve(op, y, 3, **kw))


@pytest.mark.parametrize("max_time", [0.3, 0.8])
def test_max_time_is_honoured(max_time):
    op = wn.gaussian_sensing(30, 4000, rng=0)
    y = op.forward(wn.low_rank_target(30, 3, rng=1))
    t0 = time.perf_counter()
    res = wn.solve(op, y, 5, method="gd", step_size=1e-4, max_iter=10**9, tol=0.0, rng=2,
                   max_time=max_time)
    wall = time.perf_counter() - t0
    assert res.stop_reason == "max_time" and res.status == 2 and not res.success
    assert res.nit >= 1
    # stopped at the first check after the limit: the iteration before the last ended under it
    # (its check let the run go on) and the run ended over it. No bound on how late: a loaded
    # machine can stretch any one iteration (the checks are of the logic, not of speed).
    times = res.history["time"]
    assert times[-2] < max_time <= res.time, (times[-3:], res.time)
    assert times[0] >= 0.0 and res.time <= wall      # the clock starts inside the call


# ================================================================================================
# 6. divergence

DIVERGING_STEP = 1e3


@pytest.fixture(scope="module")
def small_problems():
    sym = wn.gaussian_sensing(8, 200, rng=1)
    rect = wn.gaussian_sensing(8, 200, d2=6, rng=1)
    sym_case = (sym, sym.forward(wn.low_rank_target(8, 2, rng=0)))
    return {"sym": sym_case,
            "rect": (rect, rect.forward(wn.low_rank_target(8, 2, d2=6, rng=0))),
            "snn": sym_case}


def _diverging_cases():
    out = []
    for method, family in CASES:
        if method == "wn_rgd":
            # the paper's Algorithm 1: the direction moves on the Stiefel manifold whatever eta
            # is, WN-RGD diverges through its magnitude step, so an absurd mu (with a constant
            # step) is the "far too large step" for it
            out.append((method, family, {"variant": "paper", "step_size": 0.1, "mu": 1e8}))
            # the default (WN-LBFGS) moves X and Theta jointly with its step t: a constant t = 10
            # overshoots the magnitude (measured: diverged after 6 iterations)
            out.append((method, family, {"step_size": 10.0}))
        else:
            out.append((method, family, {"step_size": DIVERGING_STEP}))
    return out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method,family,kw", _diverging_cases())
def test_far_too_large_step_stops_as_diverged_with_last_finite_iterate(method, family, kw,
                                                                         small_problems):
    op, y = small_problems[family]
    res = wn.solve(op, y, 3, method=method, max_iter=200, tol=0.0, rng=3, **kw)
    assert res.stop_reason == "diverged", (res.stop_reason, res.nit)
    assert res.status == 4 and not res.success
    assert np.all(np.isfinite(res.x))
    for k, v in res.factors.items():
        assert np.all(np.isfinite(v)), k
    assert np.all(np.isfinite(res.history["loss"]))
    assert res.fun == res.history["loss"][-1]
    # "the last finite iterate": exactly what a run stopped just before the bad step returns
    stopped = wn.solve(op, y, 3, method=method, max_iter=res.nit, tol=0.0, rng=3, **kw)
    assert stopped.stop_reason == "max_iter" and stopped.nit == res.nit
    assert stopped.x.tobytes() == res.x.tobytes()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("step", [10.0, 1e3, 1e10, 1e30, 1e150, 1e300, 1.7e308])
@pytest.mark.parametrize("method,family", CASES)
def test_absurd_steps_never_return_nan(method, family, step, small_problems):
    op, y = small_problems[family]
    res = wn.solve(op, y, 3, method=method, step_size=step, max_iter=30, tol=0.0, rng=4)
    assert np.all(np.isfinite(res.x))
    assert np.all(np.isfinite(res.history["loss"]))
    assert res.stop_reason in ("diverged", "max_iter", "step_failed")
    if method == "wn_rgd":
        for k in ("X", "X_L", "X_R"):
            if k in res.factors:
                Xk = res.factors[k]
                np.testing.assert_allclose(Xk.T @ Xk, np.eye(Xk.shape[1]), atol=1e-10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method,family", CASES)
def test_default_rule_recovers_from_absurd_options(method, family, small_problems):
    """The safeguarded default never diverges on a well-posed problem, even from a huge start
    scale (GD family) or an extreme magnitude (WN-RGD)."""
    op, y = small_problems[family]
    # WN-RGD: an extreme magnitude for the paper's Algorithm 1 and the preconditioned variant;
    # extreme damping (none, or a huge one) and the longest memory for the default (WN-LBFGS)
    extras = {"wn_rgd": [{"variant": "paper", "theta0": 2.0},
                         {"variant": "preconditioned", "theta0": 2.0, "mu": 1e6},
                         {"damping": 0.0, "memory": 100}, {"damping": 1e8}],
              "snn": [{"init_scale": 1.0}]}.get(method, [{"init_scale": 10.0}])
    for extra in extras:
        res = wn.solve(op, y, 3, method=method, max_iter=30, tol=0.0, rng=4, **extra)
        assert res.stop_reason != "diverged", extra
        assert np.all(np.isfinite(res.x)), extra
        assert res.history["loss"][-1] <= res.history["loss"][0] * (1 + 1e-12), extra


# ================================================================================================
# 7. memory

def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


RSS_BOUND = 20 * 2**20    # bytes of resident-set growth tolerated after warm-up
BLOCKS_BOUND = 2000       # live Python allocations tolerated (a leak per call gives >= 10,000)
# Under tests/sanitize.sh, ASan's quarantine keeps freed memory resident: the resident-set bounds
# do not apply there (the allocation counts, and ASan itself, still catch leaks and misuse).
SANITIZED = os.environ.get("WNSENSE_SANITIZER") == "1"


def _assert_no_growth(fn, n, warmup, rounds=3):
    # A leak grows in every round of n calls; other threads of the process (an event loop left
    # by an earlier test) may allocate now and then: one clean round of the up to `rounds` clears
    # the kernel
    for _ in range(warmup):
        fn()
    for _ in range(rounds):
        gc.collect()
        rss0, blocks0 = _rss_bytes(), sys.getallocatedblocks()
        for _ in range(n):
            fn()
        gc.collect()
        rss1, blocks1 = _rss_bytes(), sys.getallocatedblocks()
        rss_ok = SANITIZED or rss1 - rss0 < RSS_BOUND
        if rss_ok and blocks1 - blocks0 < BLOCKS_BOUND:
            return
    if not SANITIZED:
        assert rss1 - rss0 < RSS_BOUND, f"resident set grew by {(rss1 - rss0) / 2**20:.1f} MB"
    assert blocks1 - blocks0 < BLOCKS_BOUND, f"{blocks1 - blocks0} more live Python allocations"


KERNEL_OPS = ("dense_tall", "dense_tall_f32_packed", "dense_wide", "dense_wide_rect", "entry",
              "rank_one", "identity")


@pytest.fixture(scope="module")
def kernel_ops():
    """The operators of ``KERNEL_OPS``, by name."""
    g = np.random.default_rng(3)
    ops = {
        # tall: large outputs of forward / residual (2000 floats), small adjoint
        "dense_tall": wn.gaussian_sensing(4, 2000, rng=1),
        "dense_tall_f32_packed": wn.gaussian_sensing(6, 2000, dtype="float32", packed=True,
                                                     rng=1),
        # wide: large adjoint / gradient outputs (40 x 40), few measurements
        "dense_wide": wn.dense_sensing(g.standard_normal((8, 40, 40))),
        "dense_wide_rect": wn.gaussian_sensing(40, 8, d2=30, rng=2),
        "entry": wn.entry_sampling(40, 2000, rng=3),
        "rank_one": wn.rank_one_sensing(12, 2000, rng=4),
        "identity": wn.identity_sensing(40),
    }
    assert tuple(ops) == KERNEL_OPS
    return ops


N_CALLS = 10_000


@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
@pytest.mark.parametrize("kernel", ["forward", "adjoint", "residual"])
def test_kernels_do_not_leak(name, kernel, kernel_ops):
    op = kernel_ops[name]
    m, d1, d2 = op.shape
    g = np.random.default_rng(0)
    Z, v, y = g.standard_normal((d1, d2)), g.standard_normal(m), g.standard_normal(m)
    L, R = g.standard_normal((d1, 2)), g.standard_normal((d2, 2))
    fn = {"forward": lambda: op.forward(Z),
          "adjoint": lambda: op.adjoint(v),
          "residual": lambda: op._residual(L, R, y, R, L)}[kernel]
    _assert_no_growth(fn, N_CALLS, warmup=300)


@pytest.mark.parametrize("kernel", ["tangent_projection", "polar", "qr", "cayley"])
def test_stiefel_kernels_do_not_leak(kernel):
    g = np.random.default_rng(1)
    X = wn.random_stiefel(200, 10, rng=g)
    G = wn.tangent_projection(X, g.standard_normal((200, 10)))
    fn = {"tangent_projection": lambda: wn.tangent_projection(X, G),
          "polar": lambda: wn.polar_retraction(X, G, 0.3),
          "qr": lambda: wn.qr_retraction(X, G, 0.3),
          "cayley": lambda: wn.cayley_retraction(X, G, 0.3)}[kernel]
    _assert_no_growth(fn, N_CALLS, warmup=300)


def test_native_layer_does_not_leak_on_errors(kernel_ops):
    """Rejected calls (argument errors raised from C++ after conversions) free what they took."""
    op = kernel_ops["dense_tall"]
    bad_Z = np.ones((5, 5))

    def fn():
        try:
            _core.dense_forward(op.data, 4, 4, False, bad_Z, 0)
        except ValueError:
            pass
        try:
            _core.polar_retraction(np.ones((3, 4)), np.ones((3, 4)), 0.1)
        except ValueError:
            pass

    _assert_no_growth(fn, N_CALLS, warmup=300)


def test_repeated_solves_do_not_leak(sym_problem, rect_problem, snn_problem):
    runs = []
    for method, family in CASES:
        op, y, _ = {"sym": sym_problem, "rect": rect_problem, "snn": snn_problem}[family]
        runs.append(lambda op=op, y=y, method=method: wn.solve(op, y, 3, method=method,
                                                               max_iter=5, tol=0.0, rng=0))
    k = iter(range(10**9))
    _assert_no_growth(lambda: runs[next(k) % len(runs)](), 100, warmup=len(runs) * 2)


# -- no hidden copies of large operators -----------------------------------------------------------

BIG_D, BIG_M = 50, 2500   # 2500 x 2500 float64 = 50 MB


@pytest.fixture(scope="module")
def big_operator():
    return wn.gaussian_sensing(BIG_D, BIG_M, rng=0)


def _traced_peak(fn):
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.mark.parametrize("symmetric", [None, True, False])
def test_dense_sensing_shares_the_callers_buffer(big_operator, symmetric):
    M = big_operator.data.reshape(BIG_M, BIG_D, BIG_D)   # a 50 MB float64 C-contiguous stack
    op, peak = _traced_peak(lambda: wn.dense_sensing(M, symmetric=symmetric))
    assert np.shares_memory(op.data, M) and op.data.base is not None
    # validation (finiteness, symmetry detection) works in blocks: no operator-sized temporary
    assert peak < 0.2 * M.nbytes, f"peak {peak / 2**20:.1f} MB for a {M.nbytes / 2**20:.0f} MB M"
    M32 = M.astype(np.float32)
    op32 = wn.dense_sensing(M32)
    assert np.shares_memory(op32.data, M32) and op32.dtype == np.float32
    ro = M32.view()
    ro.setflags(write=False)
    assert np.shares_memory(wn.dense_sensing(ro).data, M32)


@pytest.mark.parametrize("method", ["wn_rgd", "gd", "precgd", "scaledgd", "column_wn"])
def test_solve_does_not_copy_the_operator(big_operator, method):
    op = big_operator
    y = op.forward(wn.low_rank_target(BIG_D, 3, rng=1))
    res, peak = _traced_peak(lambda: wn.solve(op, y, 5, method=method, max_iter=5, tol=0.0,
                                              rng=0))
    assert res.nit == 5
    assert peak < 0.05 * op.nbytes, f"{method}: peak {peak / 2**20:.1f} MB during the solve"
    # forward / adjoint do not copy it either
    Z = np.ones((BIG_D, BIG_D))
    _, peak = _traced_peak(lambda: (op.forward(Z), op.adjoint(y)))
    assert peak < 0.05 * op.nbytes


def test_solve_does_not_grow_resident_memory_by_an_operator(big_operator):
    """Sampled resident set during a solve on the 50 MB operator: no native-side copy either
    (tracemalloc does not see C++ allocations)."""
    op = big_operator
    y = op.forward(wn.low_rank_target(BIG_D, 3, rng=1))
    wn.solve(op, y, 5, max_iter=2, rng=0)  # warm-up
    gc.collect()
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    try:
        for method in ("wn_rgd", "gd", "scaledgd"):
            wn.solve(op, y, 5, method=method, max_iter=10, tol=0.0, rng=0)
    finally:
        done.set()
        t.join()
    if not SANITIZED:
        assert peak[0] - base < 0.3 * op.nbytes, f"{(peak[0] - base) / 2**20:.1f} MB"
