"""What driver and workers share: the protocol version, the layout and reductions of the
single-node kernels (folded in their order), the environment a worker reports, aligned arrays."""
from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

import numpy as np

try:
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("wnsense_native.distributed needs the 'dask' extra: "
                      "pip install 'wnsense_native[dask]'") from exc

from .. import _core

# Bumped when the driver <-> shard calls change: workers must run the same protocol.
# 2: the pass options travel as one PassFlags, not as positional booleans.
PROTOCOL = 2


class PassFlags(NamedTuple):
    """What a shard's pass is asked besides its arrays (one argument of the shard calls)."""
    symmetrize: bool = False     # sym(A*(r)) products (the symmetric family)
    fold_first: bool = False     # this shard starts the driver's fold: send its partials folded
    want_r: bool = False         # send the residual vector back (public op.residual)
    right_is_R: bool = False     # ``right`` is ``R`` (not sent twice)


def _version():
    from .. import __version__
    return __version__


# ------------------------------------------------------------------------------------------------
# layout and reductions (the single-node kernels' order)

def _groups(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, balanced ranges of ``n`` groups (slices)."""
    return [((n * j) // shards, (n * (j + 1)) // shards) for j in range(shards)]


def _fold_sumsq(parts, total=0.0) -> float:
    """``total += p`` for each part in order: the native ``fold_sumsq`` (numpy's accumulate is
    sequential, so it is the same chain of additions)."""
    parts = np.asarray(parts, dtype=np.float64).ravel()
    if parts.size == 0:
        return float(total)
    return float(np.add.accumulate(np.concatenate(([total], parts)))[-1])


def _fold(parts, total=None):
    """``total = parts[0]; total += parts[1]; ...``: the native ``fold_products``."""
    for p in parts:
        if total is None:
            total = np.array(p, dtype=np.float64, copy=True)
        else:
            total += p
    return total


def _payload_bytes(obj) -> int:
    """Bytes of the arrays in a call's arguments or reply (what ``op.traffic`` counts)."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(_payload_bytes(o) for o in obj)
    if isinstance(obj, (float, np.floating)):
        return 8
    return 0


# ------------------------------------------------------------------------------------------------
# environment (what a worker reports before it gets a shard)

_FINGERPRINT = None


def _fingerprint() -> str:
    """A hash of the bits the native code produces on a tiny fixed problem (generator rows,
    dense passes in float64 and packed float32, a completion pass): equal on two machines iff
    they generate and reduce the same bits (ISA, compiler, libm)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        h = hashlib.sha1()
        L = np.linspace(-1.0, 1.0, 12).reshape(6, 2)
        R = np.cos(np.arange(12.0)).reshape(6, 2)
        y = np.linspace(0.0, 1.0, 64)
        for dt, packed in ((np.float64, False), (np.float32, True)):
            data = np.empty((64, 21 if packed else 36), dtype=dt)
            _core.fill_gaussian(data, 6, 6, packed, True, 99, 1)
            out = _core.dense_residual(data, 6, 6, packed, L, R, y, R, L, True, 1)
            for a in (data, *out[:1], np.float64(out[1]), *out[2:]):
                h.update(np.ascontiguousarray(a).tobytes())
        rows = np.arange(64, dtype=np.int64) % 6
        cols = (np.arange(64, dtype=np.int64) * 5) % 6
        sm = _core.SparseMeasurements(64, 6, 6, rows, cols, None, None, 1.0, False)
        out = sm.residual_sorted(L, R, y, R, L, 1)
        for a in (out[0], np.float64(out[1]), out[2], out[3]):
            h.update(np.ascontiguousarray(a).tobytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


def environment() -> dict:
    """What this process offers a shard: package version, protocol, kernel ISA, numeric
    fingerprint, pid (the driver compares its own with every worker's)."""
    return {"version": _version(), "protocol": PROTOCOL, "kernel_isa": _core.kernel_isa(),
            "fingerprint": _fingerprint(), "pid": os.getpid()}


def _aligned(a):
    """``a`` as a C-contiguous array aligned to its item size (copied if it is not): arrays a
    worker deserializes from a TCP frame can start at any byte, and the native kernels (Eigen
    maps) must not read doubles at unaligned addresses."""
    if a is None:
        return None
    if isinstance(a, list):
        return [_aligned(b) for b in a]
    a = np.asarray(a)
    return a if a.flags.aligned and a.flags.c_contiguous else np.require(a, requirements="CA")


def _worker_threads() -> int:
    try:
        return max(1, int(distributed.get_worker().state.nthreads))
    except ValueError:  # not on a worker (a test calling the class directly)
        return 1
