"""Property-based tests (hypothesis) of every public entry point (SPEC 6.2, issue 7).

Every public constructor (``gaussian_sensing``, ``entry_sampling``, ``rank_one_sensing``,
``identity_sensing``, ``dense_sensing``, ``low_rank_target``, ``random_stiefel``), the Stiefel tools
(``tangent_projection`` and the three retractions), the operator methods (``forward``,
``adjoint``) and ``wn.solve`` are called with randomly drawn arguments: shapes (including 0 and
1), dtypes (integers, float16, float32, float64, complex, object, bool, str, nested lists), memory
layouts (Fortran order, strided and reversed views, read-only arrays), NaN/Inf anywhere,
mismatched sizes and absurd options (non-finite or negative steps, rank 0 or > d, unknown
methods and options, negative ``max_iter``, NaN ``tol``, wrong warm starts, ...).

The contract checked for every case: the call either

* succeeds, and the answer agrees with an independent numpy computation from the values the
  caller passed (converted to float64), or
* raises ``ValueError``/``TypeError`` whose message names one of the offending arguments
  (``TypeError`` for a wrong kind of object or dtype, ``ValueError`` for a wrong shape, size or
  value; when several arguments are bad at once either is accepted).

Each test draws an *expectation* alongside the arguments (the set of bad argument names and the
exception types each may raise) from the documented rules, so the oracle never consults the
library's own validation. The number of cases run, by entry point and outcome, is printed in the
terminal summary ("property-based cases").

Budget: each test's ``max_examples`` below times ``WNSENSE_HYPOTHESIS_EXAMPLES`` (default 3: about
5,000 cases, ~20 s on a loaded 2-core machine); raise it for a longer hunt (10: ~17,000 cases,
about a minute). No example database is written (``database=None``). The cases are drawn from a
fixed seed (``derandomize``), so CI runs the same cases every time; set
``WNSENSE_HYPOTHESIS_RANDOM=1`` for fresh random cases on each run (a bug hunt).
"""
from __future__ import annotations

import collections
import math
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis.errors import InvalidArgument
from hypothesis import strategies as st

import wnsense_native as wn
from _helpers import OP_KINDS, dense_stack, make_operator, ref_adjoint, ref_forward
from wnsense_native.result import STOP_REASONS
from wnsense_native.solvers import NATIVE_METHODS

# ------------------------------------------------------------------------------------------------
# budget, case counter

_SCALE = float(os.environ.get("WNSENSE_HYPOTHESIS_EXAMPLES", "3"))
_RANDOM = os.environ.get("WNSENSE_HYPOTHESIS_RANDOM", "0") == "1"


def _settings(n):
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, database=None,
                    derandomize=not _RANDOM,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


CASES: collections.Counter = collections.Counter()


class _CaseReport:
    """Prints the case counts at the end of the session (pytest terminal summary)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not CASES:
            return
        tr = terminalreporter
        tr.write_sep("-", "property-based cases (tests/test_properties.py)")
        by_entry = collections.defaultdict(dict)
        for (entry, outcome), n in CASES.items():
            by_entry[entry][outcome] = n
        for entry in sorted(by_entry):
            parts = ", ".join(f"{k} {v}" for k, v in sorted(by_entry[entry].items()))
            tr.write_line(f"{entry:>22}: {sum(by_entry[entry].values()):5d} cases ({parts})")
        tr.write_line(f"{'total':>22}: {sum(CASES.values()):5d} cases")


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("wnsense-property-cases"):
        pm.register(_CaseReport(), "wnsense-property-cases")
    yield


# ------------------------------------------------------------------------------------------------
# the outcome contract


class Expect:
    """The bad arguments of one call: name -> set of acceptable exception types."""

    def __init__(self):
        self.bad: dict[str, set] = {}

    def add(self, name, *exc_types):
        self.bad.setdefault(name, set()).update(exc_types)

    @property
    def ok(self):
        return not self.bad

    def __repr__(self):
        return f"Expect({ {k: sorted(t.__name__ for t in v) for k, v in self.bad.items()} })"


def _names_argument(message: str, name: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(name) + r"(?![\w])", message) is not None


def run_case(entry, expect: Expect, call, check, optional=None):
    """Call ``call()``; on success run ``check(result)`` (the numpy comparison), on failure assert
    the exception type and message against ``expect``. Counts the case. ``optional``: a
    ``(name, exception types)`` pair for a bad argument that may be rejected or ignored."""
    try:
        note(f"expect: {expect!r}")
    except InvalidArgument:  # called outside a hypothesis test (the harness self-test)
        pass
    try:
        result = call()
    except (ValueError, TypeError) as exc:
        CASES[(entry, type(exc).__name__)] += 1
        bad = dict(expect.bad)
        if optional is None:
            assert not expect.ok, f"unexpected {type(exc).__name__}: {exc}"
        else:
            bad[optional[0]] = set(optional[1]) | bad.get(optional[0], set())
        allowed = set().union(*bad.values())
        assert isinstance(exc, tuple(allowed)), (
            f"{type(exc).__name__} ({exc}) but expected one of "
            f"{sorted(t.__name__ for t in allowed)} for {expect!r}")
        msg = str(exc)
        assert any(_names_argument(msg, name) for name in bad), (
            f"message {msg!r} names none of the bad arguments {sorted(bad)}")
        return None
    CASES[(entry, "ok")] += 1
    assert expect.ok, f"no error raised for bad arguments {expect!r}"
    check(result)
    return result


# ------------------------------------------------------------------------------------------------
# array-like arguments of every dtype and memory layout

NUMERIC_OK = ("float64", "float32", "float16", "int64", "int8", "uint8", "list")
NUMERIC_BAD = ("complex128", "object", "bool", "str")
LAYOUTS = ("C", "F", "strided", "readonly", "reversed")


def _strided(arr):
    if arr.ndim == 0:
        return arr
    big = np.zeros(tuple(2 * s + 1 for s in arr.shape), dtype=arr.dtype)
    idx = tuple(slice(1, 2 * s + 1, 2) for s in arr.shape)
    big[idx] = arr
    return big[idx]


def _layout(arr, layout):
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided":
        return _strided(arr)
    if layout == "readonly":
        arr = arr.copy()
        arr.setflags(write=False)
        return arr
    if layout == "reversed" and arr.ndim >= 1:
        return np.ascontiguousarray(arr[::-1])[::-1]
    return arr


def draw_array(data, base, *, kinds=("float64",) * 8 + NUMERIC_OK + NUMERIC_BAD, nonfinite=True,
               label="", allow_bad=True):
    """An array-like carrying the values of the float64 array ``base`` in a drawn dtype and
    layout, possibly with a NaN/Inf planted at a drawn position.

    Returns ``(obj, seen, dtype_bad, has_nonfinite)``: ``seen`` is the float64 array the library
    should compute with (None when the dtype is not acceptable)."""
    if not allow_bad:
        kinds = [k for k in kinds if k not in NUMERIC_BAD]
        nonfinite = False
    kind = data.draw(st.sampled_from(kinds), label=f"{label} kind")
    base = np.asarray(base, dtype=np.float64)
    if kind in ("int64", "int8"):
        arr = np.rint(2 * base).clip(-100, 100).astype(kind)
    elif kind == "uint8":
        arr = np.rint(2 * np.abs(base)).clip(0, 200).astype(kind)
    elif kind in ("float64", "float32", "float16", "list"):
        arr = base.astype(np.float64 if kind == "list" else kind)
    elif kind == "complex128":
        arr = base.astype(np.complex128)
    elif kind == "object":
        arr = base.astype(object)
    elif kind == "bool":
        arr = base > 0
    else:  # str
        arr = base.astype(str)
    planted = False
    if (nonfinite and arr.dtype.kind in "fc" and arr.size
            and data.draw(st.integers(0, 5), label=f"{label} plant?") == 0):
        pos = data.draw(st.integers(0, arr.size - 1), label=f"{label} NaN position")
        val = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label=f"{label} NaN value")
        arr = arr.copy()
        arr.flat[pos] = val
        planted = True
    if kind == "list":
        obj = arr.tolist()
    else:
        obj = _layout(arr, data.draw(st.sampled_from(LAYOUTS), label=f"{label} layout"))
    dtype_bad = kind in NUMERIC_BAD
    seen = None if dtype_bad else np.asarray(obj, dtype=np.float64)
    return obj, seen, dtype_bad, planted


def expect_array(expect, name, seen, dtype_bad, planted, shape_ok):
    """Record in ``expect`` what is wrong with an array argument (``shape_ok(shape)`` decides
    whether the shape is acceptable; empty arrays never are)."""
    if dtype_bad:
        expect.add(name, TypeError)
        return
    shape = np.shape(seen)
    if not shape_ok(shape) or int(np.prod(shape)) == 0:
        expect.add(name, ValueError)
    elif planted:
        expect.add(name, ValueError)


def draw_shape(data, good, label, *, max_side=7, allow_bad=True):
    """Mostly ``good``; sometimes a random shape with 0..4 dimensions of size 0..max_side."""
    if not allow_bad or data.draw(st.integers(0, 7), label=f"{label} reshape?") > 0:
        return tuple(good)
    ndim = data.draw(st.integers(0, 4), label=f"{label} ndim")
    return tuple(data.draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim),
                           label=f"{label} shape"))


# ------------------------------------------------------------------------------------------------
# scalar arguments

class Bad:
    """A value that must be rejected with one of ``types``."""

    def __init__(self, value, *types):
        self.value, self.types = value, types

    def __repr__(self):
        return f"Bad({self.value!r})"


def mostly(valid, bad, k=8, allow_bad=True):
    """``valid`` about ``k`` times as often as ``bad`` (keeps most cases on the success path);
    only ``valid`` when ``allow_bad`` is false."""
    if not allow_bad:
        return valid
    return st.sampled_from([True] * k + [False]).flatmap(lambda ok: valid if ok else bad)


INT_TYPE_BAD = [Bad(2.0, TypeError), Bad(2.5, TypeError), Bad("3", TypeError),
                Bad(True, TypeError), Bad(np.float64(3.0), TypeError), Bad([2], TypeError)]


def int_arg(lo, hi, *, minimum, maximum=None, nullable=False, allow_bad=True):
    """Mostly valid integers in ``[minimum, min(hi, maximum)]`` (plain and numpy); sometimes
    out-of-range integers from ``[lo, hi]`` (ValueError) or non-integers (TypeError)."""
    top = hi if maximum is None else min(hi, maximum)
    valid = st.integers(minimum, top)
    valid = st.one_of(valid, valid, valid, valid.flatmap(
        lambda v: st.sampled_from([np.int64(v), np.int32(v), np.uint16(v)])))
    out_of_range = [v for v in range(lo, hi + 1) if v < minimum or v > top]
    bad = [Bad(v, ValueError) for v in out_of_range] * 2 + list(INT_TYPE_BAD)
    if not nullable:
        bad.append(Bad(None, TypeError))
    return mostly(valid, st.sampled_from(bad), allow_bad=allow_bad)


FLOAT_TYPE_BAD = [Bad("0.1", TypeError), Bad(True, TypeError), Bad([0.1], TypeError),
                  Bad(1j, TypeError)]


def float_arg(values, *, minimum=None, strict=False, maximum=None, allow_bad=True):
    """Valid values from ``values``; sometimes out-of-range ones, NaN/Inf and wrong types."""
    def classify(v):
        f = float(v)
        if not math.isfinite(f):
            return Bad(v, ValueError)
        if minimum is not None and (f < minimum or (strict and f <= minimum)):
            return Bad(v, ValueError)
        if maximum is not None and f > maximum:
            return Bad(v, ValueError)
        return v
    pool = [classify(v) for v in list(values) + [math.nan, math.inf, -math.inf,
                                                  np.float32(0.5), np.float64(2.0), 3, 0, -1]]
    good = [v for v in pool if not isinstance(v, Bad)]
    bad = [v for v in pool if isinstance(v, Bad)] + FLOAT_TYPE_BAD
    return mostly(st.sampled_from(good), st.sampled_from(bad), allow_bad=allow_bad)


def rng_arg(allow_bad=True):
    valid = st.one_of(st.none(), st.integers(0, 2**40), st.integers(0, 50),
                      st.integers(0, 50).map(np.random.default_rng),
                      st.integers(0, 50).map(np.random.SeedSequence))
    return mostly(valid, st.sampled_from([Bad(-1, ValueError), Bad(1.5, TypeError),
                                          Bad("seed", TypeError), Bad(True, TypeError)]),
                  allow_bad=allow_bad)


def thread_arg(allow_bad=True):
    valid = st.sampled_from([None, None, 1, 2, np.int64(2)])
    return mostly(valid, st.sampled_from([Bad(0, ValueError), Bad(-1, ValueError),
                                          Bad(4096, ValueError), Bad(1.5, TypeError),
                                          Bad("2", TypeError), Bad(True, TypeError)]),
                  allow_bad=allow_bad)


def unwrap(expect, name, value):
    """The raw value of a possibly-:class:`Bad` argument, recording it in ``expect``."""
    if isinstance(value, Bad):
        expect.add(name, *value.types)
        return value.value
    return value


# ------------------------------------------------------------------------------------------------
# numpy models of the operators (independent of the library's kernels): _helpers.dense_stack

def assert_close_products(out, M, Z_or_v, kind):
    """``out`` against the numpy forward/adjoint with an error bound from the absolute values."""
    if kind == "forward":
        ref, bound = ref_forward(M, Z_or_v), ref_forward(np.abs(M), np.abs(Z_or_v))
    else:
        ref, bound = ref_adjoint(M, Z_or_v), ref_adjoint(np.abs(M), np.abs(Z_or_v))
    assert out.dtype == np.float64 and out.shape == ref.shape
    assert np.all(np.isfinite(out))
    err = np.abs(out - ref)
    assert np.all(err <= 1e-12 * bound + 1e-300), float(np.max(err - 1e-12 * bound))


@st.composite
def operators(draw, kinds=OP_KINDS, max_d=6, max_m=30):
    kind = draw(st.sampled_from(kinds), label="operator kind")
    d = draw(st.integers(1, max_d), label="d")
    d2 = draw(st.integers(1, max_d), label="d2")
    m = draw(st.integers(1, max_m), label="m")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return make_operator(kind, d, d2, m, seed)


# ================================================================================================
# operator methods

@_settings(150)
@given(op=operators(), data=st.data())
def test_forward_property(op, data):
    m, d1, d2 = op.shape
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="values seed"))
    shape = draw_shape(data, (d1, d2), "Z")
    base = rng.standard_normal(shape) * 10.0 ** data.draw(st.integers(-3, 3), label="Z scale")
    Z, seen, dtype_bad, planted = draw_array(data, base, label="Z")
    expect = Expect()
    expect_array(expect, "Z", seen, dtype_bad, planted, lambda s: s == (d1, d2))
    n_threads = unwrap(expect, "n_threads", data.draw(thread_arg(), label="n_threads"))
    M = dense_stack(op)

    def check(out):
        assert_close_products(out, M, seen, "forward")
        # the caller's array is never modified
        if isinstance(Z, np.ndarray):
            np.testing.assert_array_equal(np.asarray(Z, dtype=np.float64), seen)

    run_case("op.forward", expect, lambda: op.forward(Z, n_threads=n_threads), check)


@_settings(150)
@given(op=operators(), data=st.data())
def test_adjoint_property(op, data):
    m, d1, d2 = op.shape
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="values seed"))
    shape = draw_shape(data, (m,), "v", max_side=35)
    base = rng.standard_normal(shape) * 10.0 ** data.draw(st.integers(-3, 3), label="v scale")
    v, seen, dtype_bad, planted = draw_array(data, base, label="v")
    expect = Expect()
    expect_array(expect, "v", seen, dtype_bad, planted, lambda s: s == (m,))
    n_threads = unwrap(expect, "n_threads", data.draw(thread_arg(), label="n_threads"))
    M = dense_stack(op)

    def check(out):
        assert_close_products(out, M, seen, "adjoint")
        if op.symmetric and not isinstance(op, wn.IdentitySensing):  # (A = Id: M_i = e_j e_k^T)
            np.testing.assert_allclose(out, out.T, rtol=1e-13, atol=1e-300)

    run_case("op.adjoint", expect, lambda: op.adjoint(v, n_threads=n_threads), check)


@_settings(60)
@given(op=operators(), data=st.data())
def test_adjoint_identity_property(op, data):
    """<A(Z), v> = <Z, A*(v)> to rounding, for every operator kind and size."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m, d1, d2 = op.shape
    Z = rng.standard_normal((d1, d2))
    v = rng.standard_normal(m)
    lhs = float(op.forward(Z) @ v)
    rhs = float(np.sum(Z * op.adjoint(v)))
    scale = float(np.abs(dense_stack(op)).sum() * np.abs(Z).max() * np.abs(v).max())
    assert abs(lhs - rhs) <= 1e-12 * scale
    CASES[("adjoint identity", "ok")] += 1


# ================================================================================================
# constructors

def _check_sizes_expect(expect, data, names, lo=-2, hi=6):
    out = {}
    for name in names:
        out[name] = unwrap(expect, name, data.draw(int_arg(lo, hi, minimum=1), label=name))
    return out


def _dtype_arg(allow_bad=True):
    return mostly(st.sampled_from(["float64", "float32", np.float64, np.float32,
                                   np.dtype("float32")]),
                  st.sampled_from([Bad("float16", ValueError), Bad(np.float16, ValueError),
                                   Bad("complex128", ValueError), Bad("bogus", ValueError),
                                   Bad(5, TypeError)]), k=4, allow_bad=allow_bad)


def _dtype_name(dtype):
    return str(np.dtype(dtype))


@_settings(120)
@given(data=st.data())
def test_gaussian_sensing_property(data):
    expect = Expect()
    a = _check_sizes_expect(expect, data, ["d", "m"])
    d2 = unwrap(expect, "d2", data.draw(
        st.one_of(st.none(), int_arg(-1, 5, minimum=1, nullable=True)), label="d2"))
    dtype = unwrap(expect, "dtype", data.draw(_dtype_arg(), label="dtype"))
    packed = data.draw(st.sampled_from([False, False, True]), label="packed")
    if packed and d2 is not None:
        expect.add("packed", ValueError)
    seed = unwrap(expect, "rng", data.draw(rng_arg(), label="rng"))
    n_threads = unwrap(expect, "n_threads", data.draw(thread_arg(), label="n_threads"))

    def call():
        return wn.gaussian_sensing(a["d"], a["m"], d2=d2, dtype=dtype, packed=packed, rng=seed,
                                   n_threads=n_threads)

    def check(op):
        d, m = int(a["d"]), int(a["m"])
        dd2 = d if d2 is None else int(d2)
        assert op.shape == (m, d, dd2)
        assert op.symmetric == (d2 is None)
        assert op.data.dtype == np.dtype(_dtype_name(dtype))
        assert op.data.flags.c_contiguous and np.all(np.isfinite(op.data))
        M = dense_stack(op)
        if op.symmetric:
            np.testing.assert_array_equal(M, M.transpose(0, 2, 1))
        if isinstance(seed, (int, np.integer)):
            # one realization for every storage and thread count: compare with float64 full
            ref = wn.gaussian_sensing(d, m, d2=d2, rng=int(seed), n_threads=1)
            M64 = ref.data.reshape(m, d, dd2)
            if op.data.dtype == np.float32:
                np.testing.assert_array_equal(M, M64.astype(np.float32).astype(np.float64))
            else:
                np.testing.assert_array_equal(M, M64)
        Z = np.random.default_rng(0).standard_normal((d, dd2))
        assert_close_products(op.forward(Z), M, Z, "forward")

    run_case("gaussian_sensing", expect, call, check)


@_settings(80)
@given(data=st.data())
def test_entry_sampling_property(data):
    expect = Expect()
    a = _check_sizes_expect(expect, data, ["d", "m"])
    d2 = unwrap(expect, "d2", data.draw(
        st.one_of(st.none(), int_arg(-1, 5, minimum=1, nullable=True)), label="d2"))
    seed = unwrap(expect, "rng", data.draw(rng_arg(), label="rng"))

    def check(op):
        d, m = int(a["d"]), int(a["m"])
        dd2 = d if d2 is None else int(d2)
        assert op.shape == (m, d, dd2) and op.symmetric == (d2 is None)
        assert np.all((op.rows >= 0) & (op.rows < d)) and np.all((op.cols >= 0) & (op.cols < dd2))
        assert math.isclose(op.scale, math.sqrt(d * dd2 / m), rel_tol=1e-15)
        Z = np.random.default_rng(1).standard_normal((d, dd2))
        ref = op.scale * Z[op.rows, op.cols]
        if op.symmetric:
            ref = 0.5 * (ref + op.scale * Z[op.cols, op.rows])
        np.testing.assert_allclose(op.forward(Z), ref, rtol=1e-14, atol=1e-300)

    run_case("entry_sampling", expect, lambda: wn.entry_sampling(a["d"], a["m"], d2=d2, rng=seed),
             check)


@_settings(60)
@given(data=st.data())
def test_rank_one_sensing_property(data):
    expect = Expect()
    a = _check_sizes_expect(expect, data, ["d", "m"])
    seed = unwrap(expect, "rng", data.draw(rng_arg(), label="rng"))

    def check(op):
        d, m = int(a["d"]), int(a["m"])
        assert op.shape == (m, d, d) and op.symmetric
        assert op.vectors.shape == (m, d)
        assert math.isclose(op.scale, 1 / math.sqrt(m), rel_tol=1e-15)
        Z = np.random.default_rng(2).standard_normal((d, d))
        ref = op.scale * np.einsum("ij,jk,ik->i", op.vectors, Z, op.vectors)
        assert_close_products(op.forward(Z), dense_stack(op), Z, "forward")
        np.testing.assert_allclose(op.forward(Z), ref, rtol=1e-12, atol=1e-12)

    run_case("rank_one_sensing", expect, lambda: wn.rank_one_sensing(a["d"], a["m"], rng=seed),
             check)


@_settings(60)
@given(data=st.data())
def test_identity_sensing_property(data):
    expect = Expect()
    d = unwrap(expect, "d", data.draw(int_arg(-2, 6, minimum=1), label="d"))
    d2 = unwrap(expect, "d2", data.draw(
        st.one_of(st.none(), int_arg(-1, 5, minimum=1, nullable=True)), label="d2"))

    def check(op):
        dd2 = int(d) if d2 is None else int(d2)
        assert op.shape == (int(d) * dd2, int(d), dd2) and op.symmetric == (d2 is None)
        Z = np.random.default_rng(3).standard_normal((int(d), dd2))
        np.testing.assert_array_equal(op.forward(Z), Z.ravel())
        np.testing.assert_array_equal(op.adjoint(Z.ravel()), Z)

    run_case("identity_sensing", expect, lambda: wn.identity_sensing(d, d2=d2), check)


@_settings(150)
@given(data=st.data())
def test_dense_sensing_property(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="values seed"))
    m = data.draw(st.integers(1, 6), label="m")
    d1 = data.draw(st.integers(1, 5), label="d1")
    d2 = data.draw(st.sampled_from([d1, d1, data.draw(st.integers(1, 5), label="d2")]))
    ab = data.draw(st.booleans(), label="allow bad arguments")  # half the cases: all valid
    form = data.draw(st.sampled_from(["stack", "flat", "random"] if ab else ["stack", "flat"]),
                     label="form")
    sym_values = data.draw(st.booleans(), label="symmetric values") and d1 == d2
    base = rng.standard_normal((m, d1, d2))
    if sym_values:
        base = base + base.transpose(0, 2, 1)
    if form == "flat" and d1 == d2:
        base = base.reshape(m, d1 * d1)
    elif form == "random":
        base = rng.standard_normal(draw_shape(data, base.shape, "M", max_side=5))
    M, seen, dtype_bad, planted = draw_array(data, base, label="M", allow_bad=ab)

    expect = Expect()
    symmetric = data.draw(mostly(st.sampled_from([None, None, True, False, np.bool_(True)]),
                                 st.sampled_from([Bad("yes", TypeError), Bad(1, TypeError)]),
                                 allow_bad=ab), label="symmetric")
    symmetric = unwrap(expect, "symmetric", symmetric)
    dtype = data.draw(st.one_of(st.none(), st.none(), _dtype_arg(allow_bad=ab)), label="dtype")
    dtype = unwrap(expect, "dtype", dtype)
    packed = data.draw(st.booleans(), label="packed")

    stack = None
    if dtype_bad:
        expect.add("M", TypeError)
    else:
        shape = seen.shape
        if len(shape) == 2 and shape[0] >= 0 and math.isqrt(shape[1]) ** 2 == shape[1]:
            dd = math.isqrt(shape[1])
            stack_shape = (shape[0], dd, dd)
        elif len(shape) == 3:
            stack_shape = shape
        else:
            stack_shape = None
        if stack_shape is None or 0 in stack_shape:
            expect.add("M", ValueError)
        elif planted:
            expect.add("M", ValueError)
        else:
            stack = seen.reshape(stack_shape)
    resolved = None
    if stack is not None and "symmetric" not in expect.bad:
        square = stack.shape[1] == stack.shape[2]
        if symmetric is None:
            scale = max(float(np.abs(stack).max()), 1e-300)
            resolved = square and bool(
                np.abs(stack - stack.transpose(0, 2, 1)).max() <= 1e-12 * scale)
        else:
            resolved = bool(symmetric)
            if resolved and not square:
                expect.add("symmetric", ValueError)
        if packed and not resolved:
            expect.add("packed", ValueError)

    def call():
        return wn.dense_sensing(M, symmetric=symmetric, dtype=dtype, packed=packed)

    def check(op):
        mm, a1, a2 = stack.shape
        assert op.shape == (mm, a1, a2) and op.symmetric == resolved
        assert op.packed == packed
        if dtype is not None:
            assert op.data.dtype == np.dtype(_dtype_name(dtype))
        elif isinstance(M, np.ndarray) and M.dtype in (np.float64, np.float32):
            assert op.data.dtype == M.dtype
        else:
            assert op.data.dtype == np.float64
        # no copy for a float64/float32 C-contiguous M (SPEC 6.2), read-only arrays included
        in_place = (isinstance(M, np.ndarray) and M.dtype in (np.float64, np.float32)
                    and M.flags.c_contiguous and not packed
                    and (dtype is None or np.dtype(_dtype_name(dtype)) == M.dtype))
        if isinstance(M, np.ndarray):
            assert np.shares_memory(op.data, M) == in_place
        ref = stack.astype(op.data.dtype).astype(np.float64)
        Zr = np.random.default_rng(4).standard_normal((a1, a2))
        if packed:
            # only sym(M_i) is stored; it is exact for symmetric M_i (and the family's meaning)
            Ms = 0.5 * (stack + stack.transpose(0, 2, 1))
            Ms = Ms.astype(op.data.dtype).astype(np.float64)
            assert_close_products(op.forward(Zr), Ms, Zr, "forward")
            assert_close_products(op.adjoint(np.ones(mm)), Ms, np.ones(mm), "adjoint")
        else:
            assert_close_products(op.forward(Zr), ref, Zr, "forward")
            v = np.random.default_rng(5).standard_normal(mm)
            assert_close_products(op.adjoint(v), ref, v, "adjoint")

    run_case("dense_sensing", expect, call, check)


@_settings(100)
@given(data=st.data())
def test_low_rank_target_property(data):
    expect = Expect()
    d = unwrap(expect, "d", data.draw(int_arg(-1, 7, minimum=1), label="d"))
    d2 = unwrap(expect, "d2", data.draw(
        st.one_of(st.none(), int_arg(-1, 7, minimum=1, nullable=True)), label="d2"))
    rank = unwrap(expect, "rank", data.draw(int_arg(-1, 8, minimum=1), label="rank"))
    if not {"d", "d2", "rank"} & set(expect.bad):
        if int(rank) > min(int(d), int(d) if d2 is None else int(d2)):
            expect.add("rank", ValueError)
    kappa = unwrap(expect, "kappa", data.draw(
        float_arg([1.0, 1.5, 10.0, 1e6, 0.5, -3.0, 0.0], minimum=1.0), label="kappa"))
    spectrum = unwrap(expect, "spectrum", data.draw(mostly(
        st.sampled_from(["linspace", "geomspace"]),
        st.sampled_from([Bad("logspace", ValueError), Bad(None, TypeError)])), label="spectrum"))
    seed = unwrap(expect, "rng", data.draw(rng_arg(), label="rng"))

    def check(Z):
        dd, r = int(d), int(rank)
        dd2 = dd if d2 is None else int(d2)
        assert Z.shape == (dd, dd2) and Z.dtype == np.float64
        k = float(kappa)
        sig = (np.linspace if spectrum == "linspace" else np.geomspace)(1.0, 1.0 / k, r)
        s = np.linalg.svd(Z, compute_uv=False)
        np.testing.assert_allclose(s[:r], sig, rtol=1e-10, atol=1e-12)
        assert np.all(s[r:] <= 1e-12)
        if d2 is None:
            np.testing.assert_array_equal(Z, Z.T)
            # symmetric positive semidefinite: eigenvalues are the singular values
            np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(Z))[::-1][:r], sig,
                                       rtol=1e-10, atol=1e-12)

    run_case("low_rank_target", expect,
             lambda: wn.low_rank_target(d, rank, kappa, d2=d2, spectrum=spectrum, rng=seed),
             check)


@_settings(60)
@given(data=st.data())
def test_random_stiefel_property(data):
    expect = Expect()
    d = unwrap(expect, "d", data.draw(int_arg(-1, 8, minimum=1), label="d"))
    r = unwrap(expect, "r", data.draw(int_arg(-1, 9, minimum=1), label="r"))
    if not {"d", "r"} & set(expect.bad) and int(r) > int(d):
        expect.add("r", ValueError)
    seed = unwrap(expect, "rng", data.draw(rng_arg(), label="rng"))

    def check(X):
        assert X.shape == (int(d), int(r)) and X.flags.c_contiguous
        np.testing.assert_allclose(X.T @ X, np.eye(int(r)), atol=1e-13)

    run_case("random_stiefel", expect, lambda: wn.random_stiefel(d, r, rng=seed), check)


# ================================================================================================
# Stiefel tools

def _polar_np(Y):
    U, _, Vt = np.linalg.svd(Y, full_matrices=False)
    return U @ Vt


def _qr_np(Y):
    Q, R = np.linalg.qr(Y)
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def _scaled_move(X, G, eta):
    """A positive multiple of ``X - eta G`` that does not overflow (the polar and QR factors do
    not change under positive scaling)."""
    if abs(eta) <= 1.0:
        Y = X - eta * G
    else:
        Y = X / abs(eta) - math.copysign(1.0, eta) * G
    return Y / max(float(np.abs(Y).max()), 1e-300)


def _eta_arg(allow_bad=True):
    """Finite steps of every magnitude (tiny, huge, subnormal, numpy scalars, ints); sometimes
    NaN/Inf and wrong types."""
    finite = st.one_of(
        st.floats(-10, 10), st.floats(-1e300, 1e300),
        st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1.0, 1e8, 1e15, 1e100, 1e200, 1.7e308,
                         -1e200, np.float32(0.25), np.float16(2.0), 1, np.int64(3)]))
    bad = st.sampled_from([Bad(math.nan, ValueError), Bad(math.inf, ValueError),
                           Bad(-math.inf, ValueError), Bad("0.1", TypeError),
                           Bad(True, TypeError), Bad(None, TypeError),
                           Bad(np.array([0.1, 0.2]), TypeError), Bad(1j, TypeError)])
    return mostly(finite, bad, k=3, allow_bad=allow_bad)


@st.composite
def stiefel_case(draw):
    d = draw(st.integers(1, 7), label="d")
    r = draw(st.integers(1, d), label="r")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return d, r, seed


def _point_and_direction_args(data, d, r, seed, gname, *, tangent):
    """X (orthonormal values, in a drawn dtype/layout; integer dtypes get columns of a
    permutation matrix) and G, with shape/value/dtype mutations and the expectation. Half of the
    cases draw valid arguments only (``allow_bad`` is returned for the caller's other draws)."""
    rng = np.random.default_rng(seed)
    expect = Expect()
    ab = data.draw(st.booleans(), label="allow bad arguments")
    X0 = wn.random_stiefel(d, r, rng=rng)
    xshape = draw_shape(data, (d, r), "X", allow_bad=ab)
    kinds = ("float64",) * 6 + NUMERIC_OK + (NUMERIC_BAD if ab else ())
    kind = data.draw(st.sampled_from(kinds), label="X kind")
    if kind in ("int64", "int8", "uint8", "bool"):
        base = np.eye(d)[:, rng.permutation(d)[:r]] if xshape == (d, r) else \
            np.ones(xshape)
    else:
        base = X0 if xshape == (d, r) else rng.standard_normal(xshape)
    X, Xs, xbad, xplanted = draw_array(data, base, kinds=(kind,), label="X", allow_bad=ab)
    expect_array(expect, "X", Xs, xbad, xplanted, lambda s: len(s) == 2 and s[1] <= s[0])
    gshape = draw_shape(data, xshape, gname, allow_bad=ab)
    Gb = rng.standard_normal(gshape) * 10.0 ** data.draw(st.integers(-3, 3), label="G scale")
    if tangent and gshape == (d, r) and xshape == (d, r):
        Gb = Gb - X0 @ (0.5 * (X0.T @ Gb + Gb.T @ X0))
    G, Gs, gbad, gplanted = draw_array(data, Gb, label=gname, allow_bad=ab)
    x_ok = "X" not in expect.bad
    expect_array(expect, gname, Gs, gbad, gplanted, lambda s: (not x_ok) or s == np.shape(Xs))
    return expect, X, Xs, G, Gs, ab


@_settings(120)
@given(case=stiefel_case(), data=st.data())
def test_tangent_projection_property(case, data):
    d, r, seed = case
    expect, X, Xs, G, Gs, _ = _point_and_direction_args(data, d, r, seed, "G", tangent=False)

    def check(P):
        ref = Gs - Xs @ (0.5 * (Xs.T @ Gs + Gs.T @ Xs))
        aX, aG = np.abs(Xs), np.abs(Gs)
        bound = aG + aX @ (aX.T @ aG + aG.T @ aX)
        assert P.shape == Gs.shape and np.all(np.isfinite(P))
        assert np.all(np.abs(P - ref) <= 1e-13 * bound + 1e-300)

    run_case("tangent_projection", expect, lambda: wn.tangent_projection(X, G), check)


@_settings(150)
@given(case=stiefel_case(), kind=st.sampled_from(["polar", "qr"]), data=st.data())
def test_polar_and_qr_retraction_property(case, kind, data):
    d, r, seed = case
    expect, X, Xs, G, Gs, ab = _point_and_direction_args(data, d, r, seed, "G", tangent=True)
    eta = unwrap(expect, "eta", data.draw(_eta_arg(ab), label="eta"))
    fn = wn.polar_retraction if kind == "polar" else wn.qr_retraction

    def check(Xn):
        assert Xn.shape == Xs.shape and Xn.dtype == np.float64
        assert np.all(np.isfinite(Xn))
        d_, r_ = Xs.shape
        # on the manifold for every step, however ill-conditioned X - eta G is
        np.testing.assert_allclose(Xn.T @ Xn, np.eye(r_), atol=1e-12)
        # backward error: Xn is the factor of X - eta G (scaled to max |Y| = 1) to rounding:
        # Y = Xn H with H = Xn^T Y symmetric positive semidefinite (polar) or upper triangular
        # with a non-negative diagonal (QR)
        Y = _scaled_move(Xs, Gs, float(eta))
        H = Xn.T @ Y
        tol = 1e-12 * d_
        assert np.abs(Y - Xn @ H).max() <= tol
        if kind == "polar":
            assert np.abs(H - H.T).max() <= tol
            assert np.linalg.eigvalsh(0.5 * (H + H.T)).min() >= -tol
        else:
            assert np.abs(np.tril(H, -1)).max() <= tol and np.diag(H).min() >= -tol
        # forward error where the factor is well determined
        s = np.linalg.svd(Y, compute_uv=False)
        cond = s[0] / s[-1] if s[-1] > 0 else np.inf
        note(f"cond(X - eta G) = {cond:.3g}")
        if cond <= 1e6:
            ref = _polar_np(Y) if kind == "polar" else _qr_np(Y)
            np.testing.assert_allclose(Xn, ref, atol=1e-13 * cond ** 2 + 1e-12)

    run_case(f"{kind}_retraction", expect, lambda: fn(X, G, eta), check)


@_settings(150)
@given(case=stiefel_case(), data=st.data())
def test_cayley_retraction_property(case, data):
    d, r, seed = case
    expect, X, Xs, Gt, Gts, ab = _point_and_direction_args(data, d, r, seed, "euclidean_gradient",
                                                           tangent=False)
    eta = unwrap(expect, "eta", data.draw(_eta_arg(ab), label="eta"))

    def check(Xn):
        a = 0.5 * float(eta)
        W = Gts @ Xs.T - Xs @ Gts.T
        assert Xn.shape == Xs.shape and np.all(np.isfinite(Xn))
        # (I + aW)^{-1}(I - aW) is orthogonal (W is skew): it preserves X^T X
        np.testing.assert_allclose(Xn.T @ Xn, Xs.T @ Xs, atol=1e-9 * max(1.0, np.abs(Xs).max()))
        # the defining equation (I + aW) Xn = (I - aW) X, scaled to stay finite
        xmax, wmax = np.abs(Xs).max(), np.abs(W).max()
        if abs(a) <= 1:
            res = (Xn - Xs) + a * (W @ (Xn + Xs))
            scale = xmax + abs(a) * wmax * xmax * d
        else:
            res = (Xn - Xs) / a + W @ (Xn + Xs)
            scale = xmax / abs(a) + wmax * xmax * d
        assert np.abs(res).max() <= 1e-9 * scale + 1e-300, np.abs(res).max() / scale

    run_case("cayley_retraction", expect, lambda: wn.cayley_retraction(X, Gt, eta), check)


# ================================================================================================
# wn.solve

SOLVE_OPS = ("gauss_sym", "gauss_rect", "gauss_packed_f32", "entry_sym", "entry_rect",
             "completion", "sparse_rect", "rank_one", "identity", "identity_rect", "user_dense")


# method="wn_rgd": how a variant is selected -> (the variant, the options that select it)
WN_VARIANTS = {"default": ("lbfgs", {}), "lbfgs": ("lbfgs", {"variant": "lbfgs"}),
               "paper": ("paper", {"variant": "paper"}),
               "preconditioned": ("preconditioned", {"variant": "preconditioned"}),
               "preconditioned=True": ("preconditioned", {"preconditioned": True})}
# the label each variant reports (res.variant, the end of res.message)
WN_LABELS = {"lbfgs": "WN-LBFGS", "paper": "the paper's Algorithm 1",
             "preconditioned": "Theta-preconditioned"}


def _wn_rgd_options(variant, select):
    """``method="wn_rgd"``, ``variant`` selected by the options ``select``: (valid option dicts,
    bad option dicts), each including ``select``."""
    if variant == "lbfgs":
        good = [{}, {"memory": 0}, {"memory": 2}, {"damping": 0.0}, {"damping": 3.0},
                {"power_steps": 0}, {"power_steps": 3}, {"memory": 1, "damping": 0.5}]
        bad = [({"memory": -1}, "memory", (ValueError,), False),
               ({"memory": 1.5}, "memory", (TypeError,), False),
               ({"damping": -1.0}, "damping", (ValueError,), False),
               ({"damping": math.nan}, "damping", (ValueError,), False),
               ({"power_steps": -1}, "power_steps", (ValueError,), False),
               ({"power_steps": 21}, "power_steps", (ValueError,), False),
               # the options of the other variants are not options of WN-LBFGS
               ({"mu": 1.0}, "mu", (TypeError,), False),
               ({"retraction": "qr"}, "retraction", (TypeError,), False),
               ({"theta0": 0.5}, "theta0", (TypeError,), False),
               ({"variant": "newton"}, "variant", (ValueError,), False),
               ({"variant": 3}, "variant", (TypeError, ValueError), False)]
        if "variant" in select:   # preconditioned=True contradicts an explicit other variant
            bad += [({"preconditioned": True}, "variant", (ValueError,), False)]
    else:
        good = [{}, {"retraction": "qr"}, {"retraction": "cayley"}, {"mu": 1.0},
                {"theta0": 0.5}, {"start": "spectral"}, {"penalty": 1e-3},
                {"retraction": "qr", "mu": 0.5, "theta0": -0.5}]
        if variant == "preconditioned":
            good += [{"mu": "auto"}]
        bad = [({"retraction": "bogus"}, "retraction", (ValueError,), False),
               ({"retraction": 3}, "retraction", (TypeError,), False),
               ({"mu": math.nan}, "mu", (ValueError,), False),
               ({"mu": -1.0}, "mu", (ValueError,), False),
               ({"mu": 0.0}, "mu", (ValueError,), False),
               ({"mu": "fast"}, "mu", (ValueError,), False),
               ({"penalty": -1.0}, "penalty", (ValueError,), False),
               ({"start": "bogus"}, "start", (ValueError,), False),
               ({"theta0": 5.0}, "theta0", (ValueError,), True),
               ({"theta0": math.inf}, "theta0", (ValueError,), True),
               # WN-LBFGS's options are not options of the alternating variants
               ({"memory": 5}, "memory", (TypeError,), False),
               ({"damping": 1.0}, "damping", (TypeError,), False)]
        if variant == "paper":   # preconditioned=True contradicts variant="paper"
            bad += [({"preconditioned": True}, "variant", (ValueError,), False)]
    good = [{**select, **o} for o in good]
    bad = [({**select, **o}, name, types, start_only) for o, name, types, start_only in bad]
    return good, bad


def _method_options(method, symmetric, wn_variant="default"):
    """Per method: (valid option dicts, bad option dicts with the bad name and exception types).
    Options validated only for the random start are marked ``start_only``. For ``wn_rgd`` the
    valid options depend on the variant: ``wn_variant`` is a key of ``WN_VARIANTS``."""
    good, bad = [{}], []
    if method == "wn_rgd":
        good, bad = _wn_rgd_options(*WN_VARIANTS[wn_variant])
    elif method == "snn":
        good += [{"widths": [1]}, {"widths": (2, 1)}, {"init_jitter": 0.0}]
        bad += [({"widths": []}, "widths", (ValueError,), False),
                ({"widths": [0, 2]}, "widths", (ValueError,), False),
                ({"widths": "ab"}, "widths", (TypeError,), False),
                ({"widths": [1.5]}, "widths", (TypeError,), False),
                ({"init_scale": 0.0}, "init_scale", (ValueError,), True),
                ({"init_jitter": -1.0}, "init_jitter", (ValueError,), True)]
    else:
        good += [{"init_scale": 0.1}]
        bad += [({"init_scale": 0.0}, "init_scale", (ValueError,), True),
                ({"init_scale": -1.0}, "init_scale", (ValueError,), True),
                ({"init_scale": math.nan}, "init_scale", (ValueError,), True)]
        if not symmetric and method != "column_wn":
            good += [{"imbalanced": True}]
        if method == "precgd":
            good += [{"damping_scale": 2.0}]
            bad += [({"damping_scale": -1.0}, "damping_scale", (ValueError,), False),
                    ({"damping_scale": math.nan}, "damping_scale", (ValueError,), False)]
        if method == "scaledgd":
            good += [{"damping": 1e-3}]
            bad += [({"damping": -1.0}, "damping", (ValueError,), False),
                    ({"damping": math.inf}, "damping", (ValueError,), False)]
    if method != "snn":
        bad += [({"diagnostics": "bogus"}, "diagnostics", (ValueError,), False)]
    bad += [({"bogus_option": 1}, "bogus_option", (TypeError,), False),
            ({"learning_rate": 0.1}, "learning_rate", (TypeError,), False)]
    return good, bad


def _model_x(method, op, factors):
    """The iterate from the factors, in numpy (None for the SNN, whose x is a network output)."""
    f = factors
    if method == "wn_rgd":
        if op.symmetric:
            return f["X"] @ f["Theta"] @ f["X"].T
        return f["X_L"] @ f["Theta"] @ f["X_R"].T
    if method == "column_wn":
        Y = f["W"] * (f["g"] / np.sqrt(np.sum(f["W"] ** 2, axis=0)))
        return Y @ Y.T
    if method == "snn":
        return None
    if op.symmetric:
        return f["Y"] @ f["Y"].T
    return f["U"] @ f["V"].T


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow inside absurd-step runs
@_settings(300)
@given(data=st.data())
def test_solve_property(data):
    expect = Expect()
    kind = data.draw(st.sampled_from(SOLVE_OPS), label="operator kind")
    d = data.draw(st.integers(1, 6), label="d")
    d2 = data.draw(st.integers(1, 6), label="d2")
    m = data.draw(st.integers(1, 40), label="m")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    op = make_operator(kind, d, d2, m, seed)
    mm, d1, dd2 = op.shape
    rng = np.random.default_rng(seed)
    r_star = data.draw(st.integers(1, min(d1, dd2)), label="r*")
    Zs = wn.low_rank_target(d1, r_star, 3.0, d2=None if op.symmetric else dd2, rng=rng)
    y0 = op.forward(Zs)

    # half of the cases draw valid arguments only (the success path must be well covered); the
    # other half mix in bad ones, each argument rarely
    ab = data.draw(st.booleans(), label="allow bad arguments")
    rare = (lambda: data.draw(st.integers(0, 9), label="make bad?") == 0) if ab else (
        lambda: False)
    # op
    op_arg = op
    if ab and data.draw(st.integers(0, 30), label="bad op?") == 0:
        op_arg = data.draw(st.sampled_from([None, np.zeros((mm, d1, dd2)), "op"]), label="op")
        expect.add("op", TypeError)
    # y
    yshape = draw_shape(data, (mm,), "y", max_side=45, allow_bad=ab)
    ybase = y0 if yshape == (mm,) else rng.standard_normal(yshape)
    y, ys, ybad, yplanted = draw_array(data, ybase, label="y", allow_bad=ab)
    expect_array(expect, "y", ys, ybad, yplanted, lambda s: s == (mm,))
    # rank
    rank_raw = data.draw(int_arg(-1, min(d1, dd2) + 2, minimum=1, maximum=min(d1, dd2),
                                 allow_bad=ab), label="rank")
    rank = unwrap(expect, "rank", rank_raw)
    # method (+ the operator decides the family)
    method_raw = data.draw(mostly(st.sampled_from(list(NATIVE_METHODS)), st.sampled_from([
        Bad("bogus", ValueError), Bad("WN_RGD", ValueError), Bad(3, TypeError),
        Bad(None, TypeError)]), allow_bad=ab), label="method")
    method = unwrap(expect, "method", method_raw)
    method_ok = not isinstance(method_raw, Bad)
    if method_ok and method == "column_wn" and not op.symmetric:
        expect.add("method", ValueError)
        method_ok = False
    if method_ok and method == "snn" and d1 != dd2:
        expect.add("method", ValueError)
        method_ok = False
    # scalars
    max_iter = unwrap(expect, "max_iter", data.draw(int_arg(-3, 6, minimum=0, allow_bad=ab),
                                                    label="max_iter"))
    tol = unwrap(expect, "tol", data.draw(float_arg([0.0, 1e-10, 1e-3, 0.5, 2.0, -1e-3],
                                                    minimum=0.0, allow_bad=ab), label="tol"))
    gtol = unwrap(expect, "gtol", data.draw(mostly(
        st.sampled_from([0.0, 0.0, 1e-12]),
        st.sampled_from([Bad(-1.0, ValueError), Bad(math.nan, ValueError)]), allow_bad=ab),
        label="gtol"))
    xtol = unwrap(expect, "xtol", data.draw(mostly(
        st.sampled_from([0.0, 0.0, 1e-12]),
        st.sampled_from([Bad(-1.0, ValueError), Bad("0", TypeError)]), allow_bad=ab),
        label="xtol"))
    step_size = unwrap(expect, "step_size", data.draw(st.one_of(
        st.just(None), st.just(None),
        float_arg([1e-3, 0.05, 0.5, 1e3, 1e30, 1e300, 0.0, -0.1], minimum=0.0, strict=True,
                  allow_bad=ab)), label="step_size"))
    max_time = unwrap(expect, "max_time", data.draw(mostly(
        st.sampled_from([None, None, 0.0, 30.0]),
        st.sampled_from([Bad(-1.0, ValueError), Bad(math.nan, ValueError),
                         Bad(math.inf, ValueError), Bad("1", TypeError)]), allow_bad=ab),
        label="max_time"))
    n_threads = unwrap(expect, "n_threads", data.draw(thread_arg(allow_bad=ab),
                                                      label="n_threads"))
    rng_val = unwrap(expect, "rng", data.draw(rng_arg(allow_bad=ab), label="rng"))
    # x_true
    xt_choice = data.draw(st.sampled_from(["none", "good"]), label="x_true")
    if rare():
        xt_choice = data.draw(st.sampled_from(["shape", "nan", "complex"]), label="bad x_true")
    x_true = None
    if xt_choice == "good":
        x_true = Zs
    elif xt_choice == "shape":
        x_true = np.zeros((d1 + 1, dd2))
        expect.add("x_true", ValueError)
    elif xt_choice == "nan":
        x_true = Zs.copy()
        x_true[0, 0] = np.nan
        expect.add("x_true", ValueError)
    elif xt_choice == "complex":
        x_true = Zs.astype(complex)
        expect.add("x_true", TypeError)
    # callback
    calls = []
    cb_choice = data.draw(st.sampled_from(["none", "none", "count", "stop"]), label="callback")
    if rare():
        cb_choice = "bad"
    callback = None
    if cb_choice == "count":
        def callback(intermediate):
            calls.append(intermediate.nit)
    elif cb_choice == "stop":
        def callback(intermediate):
            calls.append(intermediate.nit)
            raise StopIteration
    elif cb_choice == "bad":
        callback = 5
        expect.add("callback", TypeError)
    # method options (wn_rgd: a variant first, then options valid or not for it)
    options, start_only_bad = {}, None
    wn_variant = None
    if method_ok and method == "wn_rgd":
        wn_variant = data.draw(st.sampled_from(sorted(WN_VARIANTS)), label="wn_rgd variant")
    # operators of observed entries prefer another variant when the caller picks none
    preferred = op.preferred_options.get("wn_rgd", {}).get("variant")
    wn_default_preferred = wn_variant == "default" and preferred is not None
    if method_ok and wn_default_preferred:
        good, bad = _wn_rgd_options(preferred, {})
        # an option only the general default takes selects that one instead: no error then
        bad = [b for b in bad if b[1] not in ("memory", "damping")]
    elif method_ok:
        good, bad = _method_options(method, op.symmetric, wn_variant or "default")
        if ab and data.draw(st.integers(0, 3), label="bad option?") == 0:
            options, name, types, start_only = data.draw(st.sampled_from(bad), label="option")
            if start_only:
                start_only_bad = (name, types)
            else:
                expect.add(name, *types)
        else:
            options = data.draw(st.sampled_from(good), label="option")
    # init (warm start): built from a valid zero-iteration solve when the call allows it
    init_choice = data.draw(st.sampled_from(["none", "none", "good"]), label="init")
    if rare():
        init_choice = data.draw(st.sampled_from(["list", "keys", "shape", "nan"]),
                                label="bad init")
    init = None
    init_usable = (method_ok and not isinstance(rank_raw, Bad) and "op" not in expect.bad
                   and not any(k in expect.bad for k in options))
    if init_choice != "none" and init_usable:
        clean_opts = {k: v for k, v in options.items()
                      if start_only_bad is None or k != start_only_bad[0]}
        f0 = wn.solve(op, y0, int(rank), method=method, max_iter=0, rng=1, **clean_opts).factors
        init = {k: np.array(v) for k, v in f0.items()}
        if init_choice == "list":
            init = list(init.values())
            expect.add("init", TypeError)
        elif init_choice == "keys":
            init.pop(sorted(init)[0])
            expect.add("init", ValueError)
        elif init_choice == "shape":
            k = sorted(init)[-1]
            init[k] = np.zeros(init[k].shape + (2,))
            expect.add("init", ValueError)
        elif init_choice == "nan":
            k = sorted(init)[0]
            init[k] = init[k].copy()
            init[k].flat[0] = np.nan
            expect.add("init", ValueError)
    if start_only_bad is not None and init is None:
        expect.add(start_only_bad[0], *start_only_bad[1])
    # (a bad start-only option with a warm start is unused: either outcome is accepted below)
    tolerate = start_only_bad is not None and init is not None

    def call():
        return wn.solve(op_arg, y, rank, method=method, max_iter=max_iter, tol=tol,
                        step_size=step_size, rng=rng_val, init=init, x_true=x_true,
                        callback=callback, n_threads=n_threads, gtol=gtol, xtol=xtol,
                        max_time=max_time, **options)

    def check(res):
        x = res.x
        assert x.shape == (d1, dd2) and x.dtype == np.float64
        assert np.all(np.isfinite(x)), "non-finite iterate returned"
        assert res.stop_reason in STOP_REASONS
        status, success, message = STOP_REASONS[res.stop_reason]
        if method == "wn_rgd":
            # the message names the variant that ran: "<stop message> [<variant label>]"
            variant = preferred if wn_default_preferred else WN_VARIANTS[wn_variant][0]
            assert WN_LABELS[variant] in res.variant, (variant, res.variant)
            message = f"{message} [{res.variant}]"
        assert (res.status, res.success, res.message) == (status, success, message)
        assert 0 <= res.nit <= int(max_iter)
        hist = res.history
        for key in ("loss", "grad_norm", "step_size", "time", "nfev"):
            assert hist[key].shape == (res.nit + 1,), key
        # passes so far, with each iterate (a diverged or failed last trial is counted in nfev)
        assert np.all(np.diff(hist["nfev"]) >= 1) and 1 <= hist["nfev"][0]
        assert hist["nfev"][-1] <= res.nfev
        if res.stop_reason not in ("diverged", "step_failed"):
            assert hist["nfev"][-1] == res.nfev
        assert np.all(np.isfinite(hist["loss"]))
        assert np.all(np.diff(hist["time"]) >= 0)
        # the loss and residual at the returned x, in numpy
        M = dense_stack(op)
        x_eval = 0.5 * (x + x.T) if (method == "snn" and op.symmetric) else x
        r = ref_forward(M, x_eval) - ys
        sumsq = float(r @ r)
        if method == "snn":
            fun = sumsq / (2 * mm)
        else:
            fun = (0.25 if op.symmetric else 0.5) * sumsq
        penalty = float(options.get("penalty", 0.0)) if method == "wn_rgd" else 0.0
        if penalty:   # the objective of a penalized run: + penalty ||Theta||_* (= ||Z||_*)
            fun += penalty * float(np.linalg.svd(res.factors["Theta"], compute_uv=False).sum())
        # rounding bound per measurement: |dr_i| <= delta_i (the native path forms x from the
        # factors in another order; entries of x are exact only to eps * max |x|)
        ax = np.abs(x_eval)
        delta = 1e-12 * (ref_forward(np.abs(M), ax + ax.max()) + np.abs(ys))
        factor = 1 / (2 * mm) if method == "snn" else (0.25 if op.symmetric else 0.5)
        allowed = factor * float(np.sum(2 * np.abs(r) * delta + delta ** 2))
        assert abs(res.fun - fun) <= allowed + 1e-300, (res.fun, fun, allowed)
        assert res.fun == hist["loss"][-1]
        ynorm = float(np.linalg.norm(ys))
        rel = math.sqrt(sumsq) / ynorm if ynorm > 0 else math.sqrt(sumsq)
        assert abs(res.residual_norm - rel) <= (1e-12 * rel + float(np.linalg.norm(delta))
                                                / (ynorm if ynorm > 0 else 1.0))
        # the iterate is the model of the returned factors
        xf = _model_x(method, op, res.factors)
        if xf is not None:
            np.testing.assert_allclose(x, xf, rtol=1e-12, atol=1e-12 * (1 + np.abs(xf).max()))
        if method == "wn_rgd":
            for k in ("X", "X_L", "X_R"):
                if k in res.factors:
                    Xk = res.factors[k]
                    np.testing.assert_allclose(Xk.T @ Xk, np.eye(Xk.shape[1]), atol=1e-10)
        # stopping rules
        if res.stop_reason == "tol":
            assert res.residual_norm <= float(tol)
        if res.stop_reason == "max_iter":
            assert res.nit == int(max_iter)
        if res.stop_reason == "callback":
            assert cb_choice == "stop" and calls == [res.nit]
        if cb_choice == "count":
            assert calls == list(range(1, len(calls) + 1)) and len(calls) <= res.nit
        if x_true is not None:
            err = np.linalg.norm(x - Zs) / np.linalg.norm(Zs)
            assert math.isclose(hist["rel_error"][-1], err, rel_tol=1e-9, abs_tol=1e-12)
        if init is not None and res.nit == 0:
            for k, v in init.items():
                if method == "wn_rgd" and k == "Theta":
                    np.testing.assert_allclose(res.factors[k], 0.5 * (v + v.T))
                else:
                    np.testing.assert_array_equal(res.factors[k], v)

    # with a warm start the bad start-only option is unused: rejecting it (naming it) and ignoring
    # it are both acceptable; every other bad argument still must be reported
    run_case("wn.solve", expect, call, check, optional=start_only_bad if tolerate else None)


# ------------------------------------------------------------------------------------------------
# the sanity of the harness itself


def test_expectation_harness_catches_a_wrong_message():
    e = Expect()
    e.add("rank", ValueError)

    def bad():
        raise ValueError("something is wrong")  # names no argument

    with pytest.raises(AssertionError, match="names none"):
        run_case("harness", e, bad, lambda r: None)
    CASES.pop(("harness", "ValueError"), None)
    assert _names_argument("init['X'] must have orthonormal columns", "init")
    assert not _names_argument("init_scale must be > 0", "init")
    assert _names_argument("rank must be >= 1, got 0", "rank")
