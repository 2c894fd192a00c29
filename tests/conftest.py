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
