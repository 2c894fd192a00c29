"""Sensing operators whose measurements live in shards on a Dask cluster (optional extra ``dask``).

::

    import distributed
    import wnsense_native as wn
    import wnsense_native.distributed as wnd

    client = distributed.Client("tcp://scheduler:8786")     # or distributed.LocalCluster()
    with wnd.gaussian_sensing(1000, 200_000, client=client, dtype="float32", packed=True,
                              rng=1) as op:                 # 400 GB, generated on the workers
        y = op.forward(Zs)
        res = wn.solve(op, y, rank=10)                       # unchanged: every method

Operators: :func:`gaussian_sensing` (each worker generates its own rows of the seeded ensemble;
only a seed and row ranges cross the network), :func:`dense_sensing` (a dask array of measurement
matrices, computed once onto the workers that keep it) and :func:`completion_sensing` (observed
entries). They subclass :class:`~wnsense_native.SensingOperator` and serve the solvers through the
thin-factor protocol of :mod:`wnsense_native.operators`: per pass only the factors go out and
the thin products come back; no operator data moves after construction.

**How a pass runs.** Every shard is a Dask actor pinned to one worker (the scheduler never sees
its rows as task data, so they are never moved, replicated, spilled or stolen). A pass is one
``actor_execute`` call per shard over a direct connection to its worker, all shards in flight
at once inside one ``client.sync``: no scheduler hop and none of the 10-20 ms batching floor of
``client.submit`` + ``gather``. The workers run the native kernels with their own thread count
(``n_threads`` of the constructors; default the worker's ``nthreads``: the nanny sets
``OMP_NUM_THREADS=1`` in worker processes, so OpenMP's default there would be one thread).

**Determinism.** A dense shard holds whole reduction slices (``_core.slice_bounds(m)``, fixed by
``m``) and returns its per-slice partials; the driver folds them in slice order exactly as the
single-node kernel does, so a pass (and a whole ``wn.solve``) is bit-identical to
``wn.gaussian_sensing`` / ``wn.dense_sensing`` on one node, whatever the number of shards or
workers. Completion entries are held twice, by ranges of rows and by ranges of columns; each
shard returns the per-row ``||r||^2`` and the row (or column) side of the thin products for the
rows (columns) it owns, summed in the single-node order (``SparseMeasurements.residual_sides``),
and the driver concatenates and folds: bit-identical to ``wn.completion_sensing`` as well
(symmetric completion included). Bit-identity needs the same native build and kernel ISA on the
driver and every worker; the constructors check it (see *Environment*) and warn otherwise
(results then agree to rounding).

**Faults.** Every call watches the shards' actor futures: a worker that dies (before or during a
pass) is noticed within milliseconds. A shard with a recipe (the seed of a generated ensemble,
the dask array's graph, the driver's entry arrays) is rebuilt on another live worker and the
call re-run (same bits; ``op.rebuilds`` counts them); ``recover=False`` or no recipe gives a
``RuntimeError``. A worker that does not answer within ``op.timeout`` seconds gives a
``RuntimeError`` (it is not known to be dead, so it is not replaced). Ctrl-C cancels the calls in
flight and raises ``KeyboardInterrupt`` at once; a native pass already running on a worker
finishes there and its reply is dropped.

**Lifetime and pickling.** ``op.close()`` (or ``with op:``) releases the shards and their memory
on the workers; so does garbage collection of the operator. Pickling an operator pickles its
recipe (seed and layout, the dask array's graph, the entry arrays), never rows or keys: the
unpickled operator is *detached* until ``op.attach(client)`` rebuilds its shards (same bits).

**Environment.** Before any shard is sent, every worker chosen reports its ``wnsense_native``
version, protocol, native kernel ISA and a numeric fingerprint (a hash of generator rows and
kernel passes on a tiny problem): a worker that cannot import the package, or runs another
version, is refused with a ``RuntimeError`` (a task whose function cannot be unpickled would
otherwise stay pending for ever); a different ISA or fingerprint gives a ``RuntimeWarning`` that
bit-identity is lost.

**Costs per pass** (``op.traffic`` counts the payload): out, every shard gets ``L``, ``R`` and the
thin matrices (``right`` is not sent again when it is ``R``, as in WN-RGD); back, a dense shard
sends its per-slice thin products (the one holding slice 0 sends them folded), a completion shard
the rows of the products it owns. Nothing ``d1 x d2`` crosses the network except in the public
dense maps ``forward(Z)`` / ``adjoint(v)``, meant for small sizes.

**Layout of this package.** :mod:`._common` (layout, folds, environment), :mod:`._actors` (the
worker side), :mod:`._pool` (the driver side: actors, calls, faults, pickling), :mod:`.dense` and
:mod:`.completion` (the operators and their constructors).
"""
from __future__ import annotations

try:
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("wnsense_native.distributed needs the 'dask' extra: "
                      "pip install 'wnsense_native[dask]'") from exc

from ._common import PROTOCOL, environment  # noqa: F401
from .completion import ShardedCompletion, completion_sensing
from .dense import ShardedDense, dense_sensing, gaussian_sensing, npy_array

__all__ = ["gaussian_sensing", "dense_sensing", "completion_sensing", "npy_array",
           "ShardedDense", "ShardedCompletion", "environment"]
