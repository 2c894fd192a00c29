"""Helpers shared by the benchmark scripts: timing and the memory-bandwidth roofline."""
from __future__ import annotations

import time

import numpy as np

from wnsense_native import _core


def best_time(fn, repeat=7, warmup=1):
    """Minimum wall time of ``fn()`` over ``repeat`` runs (the least disturbed run)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def read_bandwidth(nbytes=800_000_000, n_threads=None, repeat=7):
    """Read bandwidth in bytes/s of a float64 array of ``nbytes`` (4 streams per thread)."""
    x = np.ones(nbytes // 8)
    nt = 0 if n_threads is None else n_threads
    return x.nbytes / best_time(lambda: _core.stream_read_sum(x, nt), repeat)


def table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)
