"""Out of core on one box (issue 14.4): ``wn.dense_sensing`` over a read-only memory map of an
``.npy`` file streams it, without a copy, in a process whose memory limit is below the file's
size.

The limit is ``RLIMIT_DATA``: since Linux 4.7 it caps the process's private writable memory
(heap, anonymous maps, thread stacks), which is where a copy of the operator would go, but not a
read-only shared file mapping, whose pages the kernel can always drop and re-read. (``RLIMIT_AS``
would count the mapping itself, and ``RLIMIT_RSS`` is not enforced on Linux.) The child also
checks that the limit bites: copying the operator into memory fails with ``MemoryError``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wnsense_native import _core

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="RLIMIT_DATA semantics are Linux's"),
    # AddressSanitizer maps terabytes of private shadow memory at start-up: RLIMIT_DATA counts it
    pytest.mark.skipif(bool(os.environ.get("WNSENSE_SANITIZER")),
                       reason="the sanitizer's shadow memory does not fit under RLIMIT_DATA"),
]

D, M_ROWS = 30, 50_000          # a 360 MB float64 (m, d, d) stack
LIMIT = 200 * 2**20             # the solving process's private memory: 200 MiB

CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_DATA, (int(sys.argv[2]), int(sys.argv[2])))
import numpy as np
import wnsense_native as wn

M = np.load(sys.argv[1], mmap_mode="r")
op = wn.dense_sensing(M)                 # symmetry detected a block at a time
Zs = wn.low_rank_target(M.shape[1], 2, rng=0)
y = op.forward(Zs)
res = wn.solve(op, y, 3, rng=1, max_iter=200, tol=1e-9, x_true=Zs)
try:
    np.array(M)                          # a copy: must not fit under the limit
    copy = "fitted"
except MemoryError:
    copy = "MemoryError"
print(json.dumps({"shares_memory": bool(np.shares_memory(op.data, M)),
                  "writeable": bool(op.data.flags.writeable), "symmetric": op.symmetric,
                  "nbytes": int(op.nbytes), "rel_error": float(res.history["rel_error"][-1]),
                  "stop": res.stop_reason, "copy": copy}))
"""


def test_a_memory_mapped_npy_larger_than_the_memory_limit_is_solved(tmp_path):
    path = tmp_path / "M.npy"
    f = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(M_ROWS, D, D))
    block = np.empty((5000, D * D))
    for a in range(0, M_ROWS, len(block)):      # rows [a, a + 5000) of one seeded ensemble
        _core.fill_gaussian(block, D, D, False, True, 5, 0, a, M_ROWS)
        f[a:a + len(block)] = block.reshape(-1, D, D)
    f.flush()
    del f
    assert path.stat().st_size > 1.7 * LIMIT
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(LIMIT)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["copy"] == "MemoryError"          # the limit is real ...
    assert out["shares_memory"] and not out["writeable"]   # ... and the file was never copied
    assert out["symmetric"] and out["nbytes"] == path.stat().st_size - 128
    assert out["stop"] == "tol" and out["rel_error"] < 1e-8
