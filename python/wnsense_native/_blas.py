"""numpy's BLAS kept to one thread while a native solve runs.

Why: OpenBLAS's worker threads busy-wait (about 0.1 s) after every call they take part in. The
small matrix products a solver makes between two native passes (``X @ Theta``, ``S @ X``) wake
them, and they then spin on the cores the native OpenMP team needs. Measured on 2 cores
(d = 100, m = 20000, float64): the fused residual+adjoint pass took 50-55 ms with 2 OpenMP
threads after a numpy product, 30 ms with numpy's BLAS on one thread, 58 ms with one OpenMP
thread. The products in a solver's loop are small (``d x d`` times ``d x r`` at most), so a
single BLAS thread costs nothing there.

Only OpenBLAS libraries already loaded into the process are touched (numpy's wheels bundle one),
found through ``/proc/self/maps`` and called with ctypes; with another BLAS, or without ``/proc``,
nothing changes. The setting is process-wide: nested and concurrent solves share one limit (the
first to enter sets it, the last to leave restores the previous thread count), and numpy calls
made by other Python threads meanwhile also run on one BLAS thread.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading

# (setter, getter) symbol pairs of OpenBLAS builds: numpy's bundled scipy-openblas (64-bit
# integer interface, prefixed names) first, then system OpenBLAS.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)

_lock = threading.Lock()
_libraries: list | None = None   # [(set_fn, get_fn)], found on first use
_depth = 0
_saved: list[int] = []


def _loaded_openblas_paths() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    paths = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/") and "openblas" in fields[5].lower():
            paths.add(fields[5])
    return sorted(paths)


def _find_openblas() -> list:
    found = []
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, nothing is re-initialized
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            set_fn, get_fn = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if set_fn is not None and get_fn is not None:
                set_fn.argtypes, set_fn.restype = [ctypes.c_int], None
                get_fn.argtypes, get_fn.restype = [], ctypes.c_int
                found.append((set_fn, get_fn))
                break
    return found


def _openblas() -> list:
    """The (setter, getter) pairs, found on first use; call with ``_lock`` held."""
    global _libraries
    if _libraries is None:
        _libraries = _find_openblas()
    return _libraries


def openblas_threads() -> list[int]:
    """Current thread counts of the loaded OpenBLAS libraries (empty if none was found)."""
    with _lock:
        return [get() for _, get in _openblas()]


@contextlib.contextmanager
def single_threaded_blas():
    """Run the body with every loaded OpenBLAS on one thread; restore the count afterwards."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved[:] = [get() for _, get in _openblas()]
            for set_fn, _ in _openblas():
                set_fn(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (set_fn, _), n in zip(_libraries, _saved):
                    set_fn(n)
