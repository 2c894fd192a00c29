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
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import time
import uuid
import warnings
import weakref

import numpy as np

try:
    import dask.array as da
    import distributed
    from distributed.protocol import to_serialize
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("wnsense_native.distributed needs the 'dask' extra: "
                      "pip install 'wnsense_native[dask]'") from exc

from . import _core
from ._random import as_generator, native_seed
from ._validation import _check_numeric_dtype, all_finite, check_float, check_int
from .operators import (_DTYPES, ResidualPass, SensingOperator, _asymmetry,
                        _is_symmetric, _observed_entries, _packed_rows, _sizes, _stack_sizes,
                        _storage_key)

__all__ = ["gaussian_sensing", "dense_sensing", "completion_sensing", "npy_array",
           "ShardedDense", "ShardedCompletion", "environment"]

logger = logging.getLogger("wnsense_native")

# Bumped when the driver <-> shard calls change: workers must run the same protocol.
PROTOCOL = 1


def _version():
    from . import __version__
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


# ------------------------------------------------------------------------------------------------
# worker side: the shard actors

class _Shard:
    """What every shard actor has: the measurements it was sent (by key), its thread count."""

    def __init__(self, spec):
        self.spec = spec
        self.n_threads = int(spec.get("n_threads") or 0) or _worker_threads()
        self.y = {}

    def _y(self, key):
        if key is None:
            return None
        try:
            return self.y[key]
        except KeyError:
            raise RuntimeError(f"shard {self.spec['index']}: measurements {key!r} were never "
                               "sent to it (or were released)") from None

    def drop_y(self, key):
        self.y.pop(key, None)
        return True

    def seconds(self):
        """Seconds the last pass computed here (``op.shard_seconds()``)."""
        return getattr(self, "_seconds", float("nan"))

    def ping(self, reply_bytes, *args):
        """Transport probe (bench/bench_distributed.py): takes a pass's arguments, computes
        nothing, answers ``reply_bytes`` of payload."""
        return np.zeros(int(reply_bytes) // 8)

    def info(self):
        return {**environment(), "nbytes": self.nbytes(), "n_threads": self.n_threads,
                "index": self.spec["index"]}

    def __sizeof__(self):  # the scheduler and dashboard count the actor's memory
        return self.nbytes() + 1024


class _DenseShard(_Shard):
    """Rows ``[a, b)`` of a dense operator (whole reduction slices) on one worker."""

    def __init__(self, spec):
        super().__init__(spec)
        a, b = spec["rows"]
        d1, d2 = spec["d1"], spec["d2"]
        self.asymmetry = None
        self.packed = spec["packed"]
        self.bounds = np.asarray(spec["bounds"], dtype=np.int64) - a  # local slice bounds
        if spec["kind"] == "gaussian":
            p = d1 * (d1 + 1) // 2 if spec["packed"] else d1 * d2
            self.data = np.empty((b - a, p), dtype=np.dtype(spec["dtype"]))
            _core.fill_gaussian(self.data, d1, d2, spec["packed"], spec["symmetric"],
                                spec["seed"], self.n_threads, a, spec["m"])
        else:
            self.data = np.empty((0, d1 * d2))  # until load()

    def load(self, block):
        """Take this shard's rows from its chunk of the user's dask array (a task on this
        worker hands it over, so the actor itself has no lineage in the scheduler)."""
        s = self.spec
        a, b = s["rows"]
        self.data = self._from_block(block, b - a, s["d1"], s["d2"], np.dtype(s["dtype"]))
        self.packed = False
        if s["packed"] and s["symmetric"] is True:
            self.pack()
        return True

    def _from_block(self, block, n, d1, d2, store):
        """This shard's rows from its chunk of the user's dask array, checked against what the
        array declared (the scheduler only knows its metadata)."""
        j = self.spec["index"]
        block = np.asarray(block)
        declared = np.dtype(self.spec["declared_dtype"])
        if block.dtype != declared:
            raise TypeError(f"array: shard {j}'s chunk has dtype {block.dtype}, the dask array "
                            f"declares {declared} (chunks of unequal dtype)")
        if block.shape != (n,) + tuple(self.spec["declared_shape"]):
            raise ValueError(f"array: shard {j}'s chunk has shape {block.shape}, the dask array "
                             f"declares {n} rows of {d1} x {d2} (chunks of unequal shape)")
        flat = block.reshape(n, d1 * d2)
        data = _aligned(flat.astype(store, copy=False))  # in place when it already is
        if not all_finite(data):
            raise ValueError(f"array contains NaN or Inf (in shard {j}'s rows "
                             f"{self.spec['rows'][0]}..{self.spec['rows'][1] - 1})")
        if self.spec["symmetric"] is None and d1 == d2:
            self.asymmetry = _asymmetry(data.reshape(n, d1, d2))
        return data

    def pack(self):
        """Convert the full rows to the packed upper triangle, a slice of rows at a time (the
        single-node ``dense_sensing(packed=True)`` conversion, element for element)."""
        d = self.spec["d1"]
        n = self.data.shape[0]
        packed = np.empty((n, d * (d + 1) // 2), dtype=self.data.dtype)
        for i in range(0, n, 256):
            packed[i:i + 256] = _packed_rows(self.data[i:i + 256].reshape(-1, d, d),
                                             packed.dtype)
        self.data = packed
        self.packed = True
        return True

    def nbytes(self):
        return int(self.data.nbytes)

    def info(self):
        return {**super().info(), "rows": self.data.shape[0], "dtype": str(self.data.dtype),
                "asymmetry": self.asymmetry}

    def set_y(self, key, part):
        if part.shape != (self.data.shape[0],):
            raise ValueError(f"shard {self.spec['index']}: y part of shape {part.shape} for "
                             f"{self.data.shape[0]} rows")
        self.y[key] = np.array(part, dtype=np.float64)  # a copy: inproc comms pass references
        return True

    def _fold_first(self, sumsq, AV, AtU):
        """The shard holding slice 0 starts the fold: its slices in one partial."""
        return (_fold_sumsq(sumsq), None if AV is None else _fold(AV)[None],
                None if AtU is None else _fold(AtU)[None])

    def residual(self, L, R, ykey, right, left, right_is_R, symmetrize, fold_first, want_r):
        s = self.spec
        L, R, right, left = _aligned(L), _aligned(R), _aligned(right), _aligned(left)
        t = time.perf_counter()
        r, sumsq, AV, AtU = _core.dense_residual_slices(
            self.data, s["d1"], s["d2"], self.packed, L, R, self._y(ykey),
            R if right_is_R else right, left, symmetrize, self.bounds, self.n_threads)
        if fold_first:
            sumsq, AV, AtU = self._fold_first(sumsq, AV, AtU)
        self._seconds = time.perf_counter() - t
        return (r if want_r else None), sumsq, AV, AtU

    def adjoint_products(self, v, right, left, symmetrize, fold_first):
        s = self.spec
        v, right, left = _aligned(v), _aligned(right), _aligned(left)
        AV, AtU = _core.dense_adjoint_slices(self.data, s["d1"], s["d2"], self.packed, v, right,
                                             left, symmetrize, self.bounds, self.n_threads)
        if fold_first:
            _, AV, AtU = self._fold_first((), AV, AtU)
        return AV, AtU

    def forward(self, Z):
        s = self.spec
        return _core.dense_forward(self.data, s["d1"], s["d2"], self.packed, _aligned(Z),
                                   self.n_threads)


class _EntriesShard(_Shard):
    """Observed entries whose rows (``side == "row"``) or columns (``"col"``) lie in
    ``[lo, hi)``, in entry order, as a native ``SparseMeasurements`` of the full shape; it owns
    those rows (columns) of the thin products."""

    def __init__(self, spec):
        super().__init__(spec)
        self.lo, self.hi = spec["range"]
        self.rows = self.cols = self.order = np.empty(0, dtype=np.int64)

    def load(self, rows, cols):
        """Take this shard's entries (sent straight to this worker by the driver)."""
        self.rows = _aligned(np.asarray(rows, dtype=np.int64))
        self.cols = _aligned(np.asarray(cols, dtype=np.int64))
        s = self.spec
        self.native = _core.SparseMeasurements(len(self.rows), s["d1"], s["d2"], self.rows,
                                               self.cols, None, None, 1.0, s["symmetric"])
        self.order = self.native.order()  # sorted position -> this shard's entry index
        return True

    def nbytes(self):
        return int(self.rows.nbytes + self.cols.nbytes + 5 * self.order.nbytes)

    def set_y(self, key, part):
        if part.shape != self.rows.shape:
            raise ValueError(f"shard {self.spec['index']}: y part of shape {part.shape} for "
                             f"{len(self.rows)} entries")
        self.y[key] = np.ascontiguousarray(part[self.order], dtype=np.float64)  # sorted order
        return True

    def _own(self, products):
        return [np.ascontiguousarray(P[self.lo:self.hi]) for P in products]

    def residual(self, L, R, ykey, Bs, fold_first, want_r):
        t = time.perf_counter()
        L, R, Bs = _aligned(L), _aligned(R), _aligned(Bs)
        by_row = self.spec["side"] == "row"
        r, row_ss, row_out, col_out = self.native.residual_sides(
            L, R, self._y(ykey), Bs if by_row else [], [] if by_row else Bs, self.n_threads)
        sumsq = None
        if by_row:  # the rows' ||r||^2, in row order; the first shard starts the fold
            own = row_ss[self.lo:self.hi]
            sumsq = _fold_sumsq(own) if fold_first else np.ascontiguousarray(own)
        r_out = None
        if want_r:
            r_out = np.empty_like(r)
            r_out[self.order] = r
        own = self._own(row_out if by_row else col_out)
        self._seconds = time.perf_counter() - t
        return r_out, sumsq, own

    def adjoint_products(self, v, Bs):
        Bs = _aligned(Bs)
        by_row = self.spec["side"] == "row"
        v_sorted = np.ascontiguousarray(v[self.order], dtype=np.float64)
        row_out, col_out = self.native.adjoint_sides(v_sorted, Bs if by_row else [],
                                                     [] if by_row else Bs, self.n_threads)
        return self._own(row_out if by_row else col_out)

    def forward(self, Z):
        return self.native.forward(_aligned(Z))


def _load_shard(actor_key, *data):
    """A task on the shard's worker: hand ``data`` (computed or scattered there) to its actor."""
    return distributed.get_worker().state.actors[actor_key].load(*data)


# ------------------------------------------------------------------------------------------------
# driver side

class _LostShard(Exception):
    def __init__(self, index, cause):
        super().__init__(index, cause)
        self.index, self.cause = index, cause


def _live_workers(client) -> list[str]:
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def _check_client(client) -> list[str]:
    """The sorted addresses of the client's workers; a clear error for anything else."""
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    if client.asynchronous:
        raise TypeError("client must be a synchronous distributed.Client (asynchronous=False): "
                        "the operators block until each pass is done")
    if client.status != "running":
        raise ValueError(f"client is not running (status {client.status!r}); pass a connected "
                         "distributed.Client")
    workers = _live_workers(client)
    if not workers:
        raise RuntimeError("client: the cluster has no workers; start some before building the "
                           "operator")
    return workers


def _check_workers(client, workers):
    alive = _check_client(client)
    if workers is None:
        return alive
    if isinstance(workers, str) or not hasattr(workers, "__iter__"):
        raise TypeError(f"workers must be a list of worker addresses, got "
                        f"{type(workers).__name__}")
    workers = list(workers)
    unknown = [w for w in workers if w not in alive]
    if not workers or unknown:
        raise ValueError(f"workers must be addresses of the client's workers {alive}, got "
                         f"{workers}")
    return workers


class _Measurements:
    """Measurements sent once to the shards (what ``_prepare(y)`` returns): a key the shards
    file their parts under, and the driver's reference to ``y`` (to re-send the parts of a
    rebuilt shard). The parts are dropped when the handle is garbage-collected."""

    def __init__(self, op, y):
        self.key = f"y-{uuid.uuid4().hex[:16]}"
        self.values = y
        weakref.finalize(self, _drop_measurements, weakref.ref(op), self.key)


def _drop_measurements(op_ref, key):
    op = op_ref()
    if op is not None:
        op._drop_y(key)


class _ShardedOperator(SensingOperator):
    """Shards as dask actors: placement, environment checks, calls, faults, close and pickle.

    Subclasses define ``_specs`` (one dict per shard), ``_actor`` (the actor class), ``_data(j,
    addr)`` (futures of the data ``actor.load`` takes, or None), ``_y_part(j, y)``, ``_recipe()`` and
    ``_from_recipe(client, recipe, workers)``."""

    timeout = 600.0  # seconds a call may take before the worker counts as hung
    recover = True   # rebuild a lost shard from its recipe and re-run the call

    def _start(self, client, workers, timeout, recover, n_threads):
        self._client = client
        self._closed = False
        self._detached = False
        self.timeout = None if timeout is None else check_float("timeout", timeout, minimum=0.0,
                                                                strict_minimum=True)
        if not isinstance(recover, (bool, np.bool_)):
            raise TypeError(f"recover must be a bool, got {type(recover).__name__}")
        self.recover = bool(recover)
        self._n_threads = 0 if n_threads is None else check_int("n_threads", n_threads,
                                                                minimum=1, maximum=1024)
        self.rebuilds = 0
        self.traffic = {"calls": 0, "passes": 0, "bytes_out": 0, "bytes_in": 0}
        self._measurements = weakref.WeakValueDictionary()
        self._futures = [None] * len(self._specs)
        for spec in self._specs:
            spec["n_threads"] = self._n_threads
        self.placement = [workers[j % len(workers)] for j in range(len(self._specs))]
        self._envs = {}  # worker address -> what it reported (or the error)
        self._direct = True
        try:
            self._infos = [None] * len(self._specs)
            self._probe(sorted(set(self.placement)))
            for j in range(len(self._specs)):
                self._launch(j)
            self._infos = self._call_all("info", [()] * len(self._specs))
        except BaseException:  # bad data, a lost worker, Ctrl-C: release what was built
            self.close(wait=False)
            raise

    # -- environment -----------------------------------------------------------------------
    def _probe(self, addresses):
        """Ask the workers what they run before any shard is sent (a task whose function a
        worker cannot unpickle stays pending for ever; ``client.run`` reports the error)."""
        got = self._client.run(environment, workers=list(addresses), on_error="return")
        self._envs.update(got)
        bad = {a: v for a, v in got.items() if isinstance(v, BaseException)}
        missing = sorted(set(addresses) - set(got))
        if bad or missing:
            detail = "; ".join([f"{a}: {v!r}" for a, v in sorted(bad.items())]
                               + [f"{a}: no answer" for a in missing])
            raise RuntimeError("worker(s) cannot run wnsense_native (is the same version "
                               f"installed on every worker?): {detail}")
        here = environment()
        for addr, env in sorted(got.items()):
            if env["version"] != here["version"] or env["protocol"] != here["protocol"]:
                raise RuntimeError(
                    f"worker {addr} runs wnsense_native {env['version']} (protocol "
                    f"{env['protocol']}), the driver {here['version']} (protocol "
                    f"{here['protocol']}): install the same version on every worker")
        isas = sorted({env["kernel_isa"] for env in got.values()})
        prints = sorted({env["fingerprint"] for env in got.values()})
        if isas != [here["kernel_isa"]] or prints != [here["fingerprint"]]:
            warnings.warn(
                f"workers use the native kernels {isas} (numeric fingerprints {prints}), the "
                f"driver {here['kernel_isa']!r} ({here['fingerprint']}): results agree to "
                "rounding but are no longer bit-identical with the single-node operator (nor "
                "across shard counts when the workers differ among themselves)",
                RuntimeWarning, stacklevel=4)

    # -- shards ----------------------------------------------------------------------------
    def _launch(self, j):
        """Create shard ``j``'s actor on its worker (the future, held until close, keeps it
        alive), then load its data with a task pinned there. The data never is a dependency of
        the actor: the scheduler forgets its graph once loaded, so a rebuild meets no task still
        pinned to a worker that died (such a task would wait for that worker for ever)."""
        addr = self.placement[j]
        fut = self._client.submit(self._actor, self._specs[j], actor=True, workers=[addr],
                                  allow_other_workers=False, pure=False,
                                  key=f"wnsense-shard-{uuid.uuid4().hex[:16]}-{j}")
        self._futures[j] = fut
        self._await(fut, j, addr)
        data = self._data(j, addr)
        if data is None:
            return
        task = self._client.submit(_load_shard, fut.key, *data, workers=[addr],
                                   allow_other_workers=False, pure=False,
                                   key=f"wnsense-load-{uuid.uuid4().hex[:16]}-{j}")
        del data  # the load task holds them until it is done
        try:
            self._await(task, j, addr)
        finally:
            task.release()

    def _await(self, fut, j, addr):
        """Wait for a construction future, watching that its pinned worker is alive; raise the
        shard's own error (bad data: ``TypeError``/``ValueError`` naming the input)."""
        start = last_check = time.monotonic()
        while fut.status == "pending":
            time.sleep(0.005)
            now = time.monotonic()
            if self.build_timeout is not None and now - start > self.build_timeout:
                raise RuntimeError(f"shard {j} was not built on worker {addr} within "
                                   f"{self.build_timeout} s (build_timeout)")
            if now - last_check > 0.5:
                last_check = now
                if addr not in _live_workers(self._client):
                    raise RuntimeError(f"worker {addr} left the cluster while building shard "
                                       f"{j}")
        if fut.status == "finished":
            return
        exc = fut.exception() if fut.status == "error" else None
        if isinstance(exc, (TypeError, ValueError)):  # the user's data, named
            msg = str(exc)
            if not msg.startswith(self._source):
                msg = f"{self._source}: computing shard {j}'s part failed: {exc!r}"
            raise type(exc)(msg) from None
        why = repr(exc) if exc is not None else f"its future is {fut.status!r}"
        raise RuntimeError(f"worker {addr} could not build shard {j}: {why}") from exc

    def _release_shard(self, j):
        if self._futures[j] is not None:
            self._futures[j].release()
            self._futures[j] = None

    def _rebuild(self, j, cause):
        """Rebuild shard ``j`` from its recipe on a live worker other than the one that failed
        (same rows, same bits), and re-send every live measurement vector."""
        old = self.placement[j]
        self._release_shard(j)
        # candidates: live workers that run the same bits as the lost one (the same package and
        # fingerprint), the least loaded first
        alive = [a for a in _live_workers(self._client) if a != old]
        got = self._client.run(environment, workers=alive, on_error="return") if alive else {}
        want = self._envs.get(old)
        same = [a for a in alive if isinstance(got.get(a), dict) and isinstance(want, dict)
                and all(got[a][k] == want[k] for k in ("version", "protocol", "fingerprint"))]
        if not same:
            raise RuntimeError(f"{type(self).__name__}: shard {j} was lost with worker {old} "
                               f"({cause!r}) and no other live worker runs the same native "
                               "build to rebuild it on") from cause
        load = {a: sum(p == a for p in self.placement) for a in same}
        self.placement[j] = min(same, key=lambda a: (load[a], a))
        logger.warning("%s: shard %d lost with worker %s (%r); rebuilding it on %s",
                       type(self).__name__, j, old, cause, self.placement[j])
        self._probe([self.placement[j]])
        self._launch(j)
        self._infos[j] = self._call("info", {j: ()}, _rebuilt=True)[j]
        for key, handle in list(self._measurements.items()):
            self._call("set_y", {j: (key, self._y_part(j, handle.values))}, _rebuilt=True)
        self.rebuilds += 1

    # -- calls -----------------------------------------------------------------------------
    def _require_open(self):
        if self._detached:
            raise RuntimeError(f"this {type(self).__name__} was unpickled without its cluster: "
                               "call op.attach(client) first")
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    async def _rpc_one(self, j, method, args):
        """One actor method call over a direct connection to the shard's worker (not a
        ``distributed.Actor`` handle: it binds to the default client, goes through the
        scheduler, and never resolves when the remote raises something other than OSError)."""
        fut = self._futures[j]
        if fut is None or fut.status != "finished":
            raise _LostShard(j, RuntimeError(f"its actor is {getattr(fut, 'status', 'gone')!r} "
                                             "(the worker left the cluster)"))
        msg = dict(actor=fut.key, function=method, args=[to_serialize(a) for a in args],
                   kwargs={})

        async def send():
            if self._direct:
                return await self._client.rpc(self.placement[j]).actor_execute(**msg)
            return await self._client.scheduler.proxy(msg={"op": "actor_execute", **msg},
                                                      worker=self.placement[j])
        call = asyncio.ensure_future(send())
        try:
            # Watch the actor's future meanwhile: a connection to a dead worker's address is
            # retried for distributed.comm.timeouts.connect (30 s), but the scheduler reports
            # the loss within milliseconds.
            while True:
                done, _ = await asyncio.wait([call], timeout=0.05)
                if done:
                    break
                if fut.status != "finished":
                    call.cancel()
                    raise _LostShard(j, RuntimeError(
                        f"its worker left the cluster during the call (actor {fut.status})"))
            resp = call.result()
        except asyncio.CancelledError:
            call.cancel()
            raise
        except (OSError, KeyError) as exc:  # CommClosedError is an OSError; KeyError: no actor
            raise _LostShard(j, exc) from exc
        if resp["status"] != "OK":
            raise resp["exception"]
        return resp["result"]

    async def _rpc_many(self, method, calls, timeout):
        tasks = {j: asyncio.ensure_future(self._rpc_one(j, method, args))
                 for j, args in calls.items()}
        try:
            done, pending = await asyncio.wait(list(tasks.values()), timeout=timeout)
        except asyncio.CancelledError:  # Ctrl-C in the driver: sync() cancels us
            for t in tasks.values():
                t.cancel()
            raise
        for t in pending:
            t.cancel()
        out = {}
        for j, t in tasks.items():
            if t in pending:
                out[j] = ("timeout", None)
            elif t.cancelled():
                out[j] = ("lost", _LostShard(j, RuntimeError("call cancelled")))
            elif isinstance(t.exception(), _LostShard):
                out[j] = ("lost", t.exception())
            elif t.exception() is not None:
                out[j] = ("error", t.exception())
            else:
                out[j] = ("ok", t.result())
        return out

    def _call_all(self, method, args_per_shard):
        """One call per shard, all in flight at once; results in shard order."""
        out = self._call(method, dict(enumerate(args_per_shard)))
        return [out[j] for j in range(len(args_per_shard))]

    def _call(self, method, calls, _rebuilt=False):
        """``calls``: {shard: args}, in flight together in one ``sync`` into the client's event
        loop. A lost shard is rebuilt from its recipe and its call re-run once; a silent one
        raises after ``timeout``. Returns {shard: result}."""
        self._require_open()
        self.traffic["calls"] += len(calls)
        self.traffic["bytes_out"] += sum(_payload_bytes(a) for a in calls.values())
        out = self._client.sync(self._rpc_many, method, calls, self.timeout)
        results, lost = {}, []
        for j, (status, value) in sorted(out.items()):
            if status == "ok":
                results[j] = value
            elif status == "lost":
                lost.append(value)
            elif status == "timeout":
                raise RuntimeError(
                    f"{type(self).__name__}: shard {j} on worker {self.placement[j]} did not "
                    f"answer within {self.timeout} s (op.timeout): the worker may be hung or "
                    "overloaded")
            else:
                raise value
        for exc in lost:
            if _rebuilt or not (self.recover and self._can_rebuild()):
                raise RuntimeError(
                    f"{type(self).__name__}: shard {exc.index} on worker "
                    f"{self.placement[exc.index]} was lost ({exc.cause!r})"
                    + ("" if self.recover and self._can_rebuild() else
                       "; recover=False or no recipe to rebuild it: build the operator again")
                ) from exc.cause
            self._rebuild(exc.index, exc.cause)
            results.update(self._call(method, {exc.index: calls[exc.index]}, _rebuilt=True))
        self.traffic["bytes_in"] += sum(_payload_bytes(v) for v in results.values())
        return results

    def _can_rebuild(self):
        return True

    # -- measurements ----------------------------------------------------------------------
    def _prepare(self, y):
        """Send each shard its part of ``y`` once; the handle is what the passes use."""
        if y is None or isinstance(y, _Measurements):
            return y
        y = np.ascontiguousarray(y, dtype=np.float64)
        if y.shape != (self._m,):
            raise ValueError(f"y must have shape ({self._m},), got {y.shape}")
        handle = _Measurements(self, y)
        self._call_all("set_y", [(handle.key, self._y_part(j, y))
                                 for j in range(len(self._specs))])
        self._measurements[handle.key] = handle
        return handle

    def _drop_y(self, key):
        """Drop the shards' parts of a released measurement vector (fire and forget, from
        whatever thread the handle dies in)."""
        if self._closed or self._detached or self._client.status != "running":
            return
        try:
            calls = {j: (key,) for j in range(len(self._specs))}
            self._client.loop.add_callback(
                lambda: asyncio.ensure_future(self._rpc_many("drop_y", calls, self.timeout)))
        except Exception:  # noqa: BLE001 - the loop is gone: so are the shards
            pass

    def _measured(self, y):
        """``(handle, temporary)`` for a pass's ``y``: a prepared handle, None, or a raw array
        (public ``op.residual``), sent for this pass only."""
        if y is None or isinstance(y, _Measurements):
            return y, False
        return self._prepare(y), True

    # -- lifetime --------------------------------------------------------------------------
    @property
    def n_shards(self) -> int:
        return len(self._specs)

    def shard_seconds(self) -> list[float]:
        """Seconds each shard spent computing its part of the last pass (the rest of a pass's
        wall time is transport and the driver's fold: the overhead of sharding)."""
        return self._call_all("seconds", [()] * self.n_shards)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def nbytes(self) -> int:
        """Resident bytes of the shards on the workers."""
        return sum(int(i["nbytes"]) for i in self._infos if i is not None)

    def close(self, wait=True, timeout=10.0):
        """Release the shards (the actors and their memory on the workers). Idempotent.
        ``wait``: return once the scheduler has forgotten them (releases are batched)."""
        if self._detached or self._closed:
            self._closed = True
            return
        self._closed = True
        keys = [f.key for f in self._futures if f is not None]
        for j in range(len(self._futures)):
            self._release_shard(j)
        if not wait or not keys or self._client.status != "running":
            return

        def still_known(keys, dask_scheduler=None):
            return [k for k in keys if k in dask_scheduler.tasks]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._client.run_on_scheduler(still_known, keys):
                    return
            except Exception:  # noqa: BLE001 - the cluster went away: nothing left to release
                return
            time.sleep(0.01)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = ("detached" if self._detached else "closed" if self._closed
                 else f"{self.n_shards} shards")
        return f"{SensingOperator.__repr__(self)[:-1]}, {state})"

    # -- pickle ----------------------------------------------------------------------------
    def __reduce__(self):
        return (_unpickled, (type(self), self._recipe_state if self._detached else
                             self._recipe()))

    def attach(self, client, workers=None):
        """Build the shards of an unpickled operator on ``client``'s cluster (same bits as the
        original). Returns the operator."""
        if not self._detached:
            raise RuntimeError(f"this {type(self).__name__} is already attached to a cluster")
        new = self._from_recipe(client, self._recipe_state, workers)
        self.__dict__.update(new.__dict__)
        new.__dict__.clear()  # its shards now belong to self
        new._detached = True
        self._detached = False
        return self


def _unpickled(cls, recipe):
    """A detached operator: shape and flags, no shards (``op.attach(client)``)."""
    op = cls.__new__(cls)
    m, d1, d2 = recipe["shape"]
    SensingOperator.__init__(op, m, d1, d2, recipe["symmetric"])
    op._recipe_state = recipe
    op._detached, op._closed = True, False
    op._specs, op._infos, op._futures = [], [], []
    op._restore_attributes(recipe)
    return op


class ShardedDense(_ShardedOperator):
    """A dense operator whose rows live on the workers in shards of whole reduction slices
    (built by :func:`gaussian_sensing` or :func:`dense_sensing`).

    Attributes: ``shape``, ``symmetric``, ``packed``, ``dtype``, ``n_shards``, ``nbytes``
    (resident on the workers), ``slice_groups`` (the reduction slices of each shard),
    ``placement`` (worker address per shard), ``traffic`` (calls and payload bytes so far),
    ``timeout``, ``recover``, ``rebuilds``, ``closed``."""

    _actor = _DenseShard
    _source = "array"

    def __init__(self, client, *, m, d1, d2, symmetric, packed, dtype, shards, recipe, chunk=None,
                 workers=None, timeout=600.0, build_timeout=None, recover=True, n_threads=None):
        super().__init__(m, d1, d2, bool(symmetric))
        self.packed = bool(packed)
        self._dtype = np.dtype(dtype)
        self._recipe_dict = recipe
        self.build_timeout = build_timeout
        self._chunk = chunk  # j -> the dask array chunk of shard j (array-backed operators)
        alive = _check_workers(client, workers)
        bounds = _core.slice_bounds(m)
        n_slices = len(bounds) - 1
        shards = min(len(alive), n_slices) if shards is None else check_int(
            "shards", shards, minimum=1)
        if shards > n_slices:
            raise ValueError(f"shards must be in [1, {n_slices}] for m = {m} (a shard holds whole "
                             f"reduction slices of at least 256 rows), got {shards}")
        self.slice_groups = _groups(n_slices, shards)
        self._specs = [{"index": j, "kind": recipe["kind"], "rows": (int(bounds[s0]),
                                                                    int(bounds[s1])),
                        "bounds": bounds[s0:s1 + 1].tolist(), "m": m, "d1": d1, "d2": d2,
                        "symmetric": symmetric, "packed": self.packed, "dtype": str(self._dtype),
                        "seed": recipe.get("seed"), "declared_dtype": recipe.get("declared"),
                        "declared_shape": recipe.get("declared_shape")}
                       for j, (s0, s1) in enumerate(self.slice_groups)]
        self._start(client, alive, timeout, recover, n_threads)
        if symmetric is None:
            self._resolve_symmetry()

    def _resolve_symmetry(self):
        """``symmetric=None``: detected on the workers while they load their rows (the
        single-node test, combined over shards); then packed if asked."""
        stats = [i["asymmetry"] for i in self._infos]
        sym = (self._d1 == self._d2 and all(s is not None for s in stats)
               and _is_symmetric(max(s[0] for s in stats), max(s[1] for s in stats)))
        self.symmetric = bool(sym)
        for spec in self._specs:
            spec["symmetric"] = self.symmetric
        self._recipe_dict["symmetric"] = self.symmetric
        if self.packed:
            if not self.symmetric:
                self.close(wait=False)
                raise ValueError("packed=True needs symmetric measurement matrices")
            self._call_all("pack", [()] * self.n_shards)
            self._infos = self._call_all("info", [()] * self.n_shards)

    def _restore_attributes(self, recipe):
        self.packed = recipe["packed"]
        self._dtype = np.dtype(recipe["dtype"])
        self._recipe_dict = recipe

    @property
    def dtype(self):
        return self._dtype

    def _data(self, j, addr):
        if self._specs[j]["kind"] == "gaussian":
            return None  # generated by the actor itself
        return [self._client.compute(self._chunk(j), workers=[addr])]

    def _can_rebuild(self):
        return self._chunk is not None or self._specs[0]["kind"] == "gaussian"

    def _y_part(self, j, y):
        a, b = self._specs[j]["rows"]
        return y[a:b]

    # -- the protocol ----------------------------------------------------------------------
    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        handle, temporary = self._measured(y)
        want_r = temporary  # public op.residual(L, R, y): r in the result
        sym = self.symmetric
        right_is_R = right is R
        calls = {j: (L, R, None if handle is None else handle.key, None if right_is_R else right,
                     left, right_is_R, sym, j == 0, want_r) for j in range(self.n_shards)}
        out = self._call("residual", calls)
        self.traffic["passes"] += 1
        sumsq, AV, AtU = 0.0, None, None
        for j in range(self.n_shards):  # shard order is slice order
            r_j, ss_j, AV_j, AtU_j = out[j]
            sumsq = _fold_sumsq(ss_j, sumsq)
            if right is not None:
                AV = _fold(AV_j, AV)
            if left is not None:
                AtU = _fold(AtU_j, AtU)
        r = np.concatenate([out[j][0] for j in range(self.n_shards)]) if want_r else None
        return ResidualPass(r, sumsq, AV, AtU)

    def _slice_adjoint(self, v, right, left, symmetrize):
        calls = {j: (self._y_part(j, v), right, left, symmetrize, j == 0)
                 for j in range(self.n_shards)}
        out = self._call("adjoint_products", calls)
        AV = AtU = None
        for j in range(self.n_shards):
            if right is not None:
                AV = _fold(out[j][0], AV)
            if left is not None:
                AtU = _fold(out[j][1], AtU)
        return AV, AtU

    def _adjoint_products(self, v, right, left, n_threads=0):
        return self._slice_adjoint(np.ascontiguousarray(v, dtype=np.float64), right, left,
                                   self.symmetric)

    def _forward_factored(self, L, R, n_threads=0):
        out = self._call("residual", {j: (L, R, None, None, None, False, self.symmetric, False,
                                          True) for j in range(self.n_shards)})
        return np.concatenate([out[j][0] for j in range(self.n_shards)])

    def _forward(self, Z, n_threads):
        out = self._call_all("forward", [(Z,)] * self.n_shards)
        return np.concatenate(out)

    def _adjoint(self, v, n_threads):
        # A*(v) itself (not symmetrized), as the single-node dense_adjoint: the slices' d1 x d2
        # adjoints (times the identity, exactly) folded in slice order
        return self._slice_adjoint(v, np.eye(self._d2), None, False)[0]

    # -- pickle ----------------------------------------------------------------------------
    def _recipe(self):
        if self._specs[0]["kind"] != "gaussian" and self._recipe_dict.get("array") is None:
            raise TypeError("this operator has no recipe to pickle")
        return {**self._recipe_dict, "shape": self.shape, "symmetric": self.symmetric,
                "packed": self.packed, "dtype": str(self._dtype), "shards": self.n_shards,
                "n_threads": self._n_threads or None, "timeout": self.timeout,
                "recover": self.recover}

    @staticmethod
    def _from_recipe(client, rec, workers):
        m, d1, d2 = rec["shape"]
        common = dict(client=client, shards=rec["shards"], workers=workers,
                      timeout=rec["timeout"], recover=rec["recover"], n_threads=rec["n_threads"])
        if rec["kind"] == "gaussian":
            return gaussian_sensing(d1, m, d2=None if rec["symmetric"] else d2,
                                    dtype=rec["dtype"], packed=rec["packed"],
                                    _seed=rec["seed"], **common)
        return dense_sensing(rec["array"], symmetric=rec["symmetric"], packed=rec["packed"],
                             **common)


class ShardedCompletion(_ShardedOperator):
    """Matrix completion ``M_i = e_{rows_i} e_{cols_i}^T`` (symmetrized when ``symmetric``) with
    the entries on the workers twice: by ranges of rows (they give ``||r||^2`` and the row side
    of the thin products) and by ranges of columns (the column side), built by
    :func:`completion_sensing`. The driver keeps the entry arrays (the recipe) and, per shard,
    the indices of its entries (to split ``y``): ``O(m)`` integers, as ``y`` itself.

    Attributes: those of :class:`ShardedDense` (no ``packed``/``dtype``), ``row_ranges`` and
    ``col_ranges`` (the rows and columns of each row and column shard; balanced by entries)."""

    _actor = _EntriesShard
    _source = "rows"
    # the single-node completion operator's facts (and so its defaults, the same iterates)
    observes_entries = True
    unit_scale = True

    def __init__(self, client, rows, cols, d1, d2, *, symmetric, shards, workers=None,
                 timeout=600.0, build_timeout=None, recover=True, n_threads=None):
        super().__init__(len(rows), d1, d2, symmetric)
        self.rows, self.cols = rows, cols  # the recipe (driver references, not copies)
        self.build_timeout = build_timeout
        self._requested = shards
        alive = _check_workers(client, workers)
        shards = len(alive) if shards is None else check_int("shards", shards, minimum=1)
        if shards > min(d1, d2):
            raise ValueError(f"shards must be in [1, {min(d1, d2)}] (a shard owns whole rows and "
                             f"whole columns), got {shards}")
        self._specs, self._members = [], []
        self.row_ranges = self._ranges("row", rows, d1, shards)
        self.col_ranges = self._ranges("col", cols, d2, shards)
        self._start(client, alive, timeout, recover, n_threads)

    def _ranges(self, side, index, d, shards):
        """Contiguous ranges of rows (columns) holding about ``m / shards`` entries each; a
        shard per non-empty range, holding its entries in entry order."""
        counts = np.bincount(index, minlength=d)
        cum = np.cumsum(counts)
        cuts = np.searchsorted(cum, [len(index) * j / shards for j in range(1, shards)],
                               side="left") + 1
        edges = np.unique(np.concatenate(([0], np.clip(cuts, 0, d), [d])))
        ranges = []
        order = np.argsort(index, kind="stable")
        starts = np.concatenate(([0], cum))
        for lo, hi in zip(edges[:-1], edges[1:]):
            members = np.sort(order[starts[lo]:starts[hi]])  # entry order within the range
            if members.size == 0:
                ranges.append((int(lo), int(hi), None))
                continue
            ranges.append((int(lo), int(hi), len(self._specs)))
            self._specs.append({"index": len(self._specs), "side": side, "range": (int(lo),
                                                                                   int(hi)),
                                "d1": self._d1, "d2": self._d2, "symmetric": self.symmetric})
            self._members.append(members)
        return ranges

    def _restore_attributes(self, recipe):
        self.rows, self.cols = recipe["rows"], recipe["cols"]

    def _data(self, j, addr):
        members = self._members[j]
        return self._client.scatter([self.rows[members], self.cols[members]], workers=[addr],
                                    hash=False)

    def _y_part(self, j, y):
        return np.ascontiguousarray(y[self._members[j]])

    def _shards(self, side):
        ranges = self.row_ranges if side == "row" else self.col_ranges
        return [j for _, _, j in ranges if j is not None]

    def _sides(self, right, left):
        """The thin matrices each side multiplies: rectangular, the row side gives
        ``A*(r) @ right`` and the column side ``A*(r)^T @ left``; symmetric, both sides of both
        (``sym(A*(r)) @ B`` is their mean)."""
        if self.symmetric:
            both = [B for B in (right, left) if B is not None]
            return both, both
        return ([right] if right is not None else []), ([left] if left is not None else [])

    def _assemble(self, side, get, i, k):
        """Product ``i`` of one side from its shards' ranges (``get(j, i)``), zeros where a
        range has no entries (as the single-node sums)."""
        ranges = self.row_ranges if side == "row" else self.col_ranges
        parts = [np.zeros((hi - lo, k)) if j is None else get(j, i) for lo, hi, j in ranges]
        return np.concatenate(parts) if len(parts) > 1 else np.array(parts[0], copy=True)

    def _products(self, get, right, left):
        """``(AV, AtU)`` from the sides' products (``get(j, i)``: product ``i``, in the order of
        :meth:`_sides`, of shard ``j``); symmetric: the mean of the two sides, as on one node."""
        AV = AtU = None
        if self.symmetric:
            out = [0.5 * (self._assemble("row", get, i, B.shape[1])
                          + self._assemble("col", get, i, B.shape[1]))
                   for i, B in enumerate(self._sides(right, left)[0])]
            if right is not None:
                AV = out.pop(0)
            if left is not None:
                AtU = out.pop(0)
            return AV, AtU
        if right is not None:
            AV = self._assemble("row", get, 0, right.shape[1])
        if left is not None:
            AtU = self._assemble("col", get, 0, left.shape[1])
        return AV, AtU

    # -- the protocol ----------------------------------------------------------------------
    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        handle, temporary = self._measured(y)
        key = None if handle is None else handle.key
        row_B, col_B = self._sides(right, left)
        rows, cols = self._shards("row"), (self._shards("col") if col_B else [])
        calls = {j: (L, R, key, row_B, j == rows[0], temporary) for j in rows}
        calls.update({j: (L, R, key, col_B, False, False) for j in cols})
        out = self._call("residual", calls)
        self.traffic["passes"] += 1
        sumsq = 0.0
        for j in rows:  # the rows' ||r||^2 in row order (ranges without entries add 0.0)
            sumsq = _fold_sumsq(out[j][1], sumsq)
        AV, AtU = self._products(lambda j, i: out[j][2][i], right, left)
        r = None
        if temporary:
            r = np.empty(self._m)
            for j in rows:
                r[self._members[j]] = out[j][0]
        return ResidualPass(r, sumsq, AV, AtU)

    def _adjoint_products(self, v, right, left, n_threads=0):
        v = np.ascontiguousarray(v, dtype=np.float64)
        row_B, col_B = self._sides(right, left)
        calls = {j: (self._y_part(j, v), row_B) for j in self._shards("row")} if row_B else {}
        if col_B:
            calls.update({j: (self._y_part(j, v), col_B) for j in self._shards("col")})
        out = self._call("adjoint_products", calls)
        return self._products(lambda j, i: out[j][i], right, left)

    def _forward_factored(self, L, R, n_threads=0):
        rows = self._shards("row")
        out = self._call("residual", {j: (L, R, None, [], j == rows[0], True) for j in rows})
        z = np.empty(self._m)
        for j in rows:
            z[self._members[j]] = out[j][0]
        return z

    def _forward(self, Z, n_threads):
        rows = self._shards("row")
        out = self._call("forward", {j: (Z,) for j in rows})
        z = np.empty(self._m)
        for j in rows:
            z[self._members[j]] = out[j]
        return z

    def _adjoint(self, v, n_threads):
        return self._adjoint_products(v, np.eye(self._d2), None)[0]

    # -- pickle ----------------------------------------------------------------------------
    def _recipe(self):
        return {"shape": self.shape, "symmetric": self.symmetric, "rows": self.rows,
                "cols": self.cols, "n_threads": self._n_threads or None, "timeout": self.timeout,
                "recover": self.recover, "requested_shards": self._requested}

    @staticmethod
    def _from_recipe(client, rec, workers):
        return completion_sensing(rec["rows"], rec["cols"], rec["shape"][1:], client=client,
                                  symmetric=rec["symmetric"], shards=rec["requested_shards"],
                                  workers=workers, timeout=rec["timeout"],
                                  recover=rec["recover"], n_threads=rec["n_threads"])


# ------------------------------------------------------------------------------------------------
# constructors

def gaussian_sensing(d, m, *, client, d2=None, dtype="float64", packed=False, rng=None,
                     shards=None, workers=None, timeout=600.0, build_timeout=None, recover=True,
                     n_threads=None, _seed=None) -> ShardedDense:
    """:func:`wnsense_native.gaussian_sensing` with the rows generated on the workers.

    The driver draws the native seed from ``rng`` exactly as the single-node constructor does,
    and each shard generates its rows ``[a, b)`` of that ensemble on its worker: the operator
    equals ``wn.gaussian_sensing(d, m, d2=d2, dtype=dtype, packed=packed, rng=rng)`` row for
    row, whatever the number of shards, and only a seed and row ranges cross the network.

    ``shards``: how many (default: one per worker, at most the number of reduction slices of
    ``m``, ``ceil(m / 256)`` up to 64). ``workers``: the worker addresses to place them on
    (round robin; default all, sorted). ``timeout``: seconds a call may take before its worker
    counts as hung (``RuntimeError``); ``build_timeout``: the same for generating a shard
    (default: no limit). ``recover``: regenerate a lost shard on another worker (same bits).
    ``n_threads``: threads of the native kernels on each worker (default the worker's
    ``nthreads``).
    """
    d1, d2_, symmetric = _sizes(d, d2)
    m = check_int("m", m, minimum=1)
    dtype = _storage_key(dtype)
    if packed and not symmetric:
        raise ValueError("packed=True needs a symmetric ensemble (d2=None)")
    seed = native_seed(as_generator(rng)) if _seed is None else int(_seed)
    recipe = {"kind": "gaussian", "seed": seed}
    return ShardedDense(client, m=m, d1=d1, d2=d2_, symmetric=symmetric, packed=bool(packed),
                        dtype=_DTYPES[dtype], shards=shards, recipe=recipe, workers=workers,
                        timeout=timeout, build_timeout=build_timeout, recover=recover,
                        n_threads=n_threads)


def dense_sensing(array, *, client, symmetric=None, packed=False, shards=None, workers=None,
                  timeout=600.0, build_timeout=None, recover=True,
                  n_threads=None) -> ShardedDense:
    """:func:`wnsense_native.dense_sensing` of a dask array, kept resident on the workers.

    ``array``: a ``dask.array.Array`` of shape ``(m, d1, d2)`` or ``(m, d*d)`` with known chunk
    sizes. It is rechunked along the measurements into one chunk per shard (whole reduction
    slices), and each chunk is computed on the worker that keeps it: the only data movement is
    that of the array's own graph (e.g. reading files), once. Storage is the array's dtype when
    it is float64 or float32, else float64 (as on one node); ``packed=True`` stores the upper
    triangle of the symmetric ``M_i``. ``symmetric=None`` detects symmetry on the workers while
    they load their rows (the single-node test, 1e-12 relative). Each chunk is checked against
    the array's declared dtype and shape and for NaN/Inf. A lost shard is recomputed from the
    array's graph. Other options as :func:`gaussian_sensing`.
    """
    if not isinstance(array, da.Array):
        raise TypeError(f"array must be a dask.array.Array, got {type(array).__name__} (wrap an "
                        "in-memory or memory-mapped array with dask.array.from_array, or use "
                        "wnsense_native.dense_sensing on one node)")
    _check_numeric_dtype("array", np.empty(0, dtype=array.dtype))
    if any(isinstance(s, float) and math.isnan(s) for s in array.shape):
        raise ValueError(f"array must have known chunk sizes, got shape {array.shape} (call "
                         "array.compute_chunk_sizes() first)")
    m, d1, d2 = _stack_sizes("array", array.shape)
    if symmetric is not None and not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be None or a bool, got {type(symmetric).__name__}")
    if symmetric and d1 != d2:
        raise ValueError(f"symmetric=True needs square M_i, got {d1} x {d2}")
    if packed and symmetric is False:
        raise ValueError("packed=True needs symmetric measurement matrices")
    if packed and d1 != d2:
        raise ValueError(f"packed=True needs square symmetric M_i, got {d1} x {d2}")
    store = array.dtype if array.dtype in (np.float64, np.float32) else np.dtype(np.float64)
    bounds = _core.slice_bounds(m)
    n_slices = len(bounds) - 1
    alive = _check_workers(client, workers)
    n = min(len(alive), n_slices) if shards is None else check_int("shards", shards, minimum=1)
    if n > n_slices:
        raise ValueError(f"shards must be in [1, {n_slices}] for m = {m} (a shard holds whole "
                         f"reduction slices of at least 256 rows), got {n}")
    rows = [int(bounds[s1] - bounds[s0]) for s0, s1 in _groups(n_slices, n)]
    # one chunk per shard (whole measurements; reshaped on the worker, after its checks)
    chunks = array.rechunk((tuple(rows),) + tuple((s,) for s in array.shape[1:]))
    chunks = chunks.to_delayed().ravel().tolist()
    recipe = {"kind": "array", "array": array, "declared": str(array.dtype),
              "declared_shape": tuple(int(s) for s in array.shape[1:])}
    return ShardedDense(client, m=m, d1=d1, d2=d2,
                        symmetric=None if symmetric is None else bool(symmetric),
                        packed=bool(packed), dtype=store, shards=n, recipe=recipe,
                        chunk=lambda j: chunks[j], workers=alive, timeout=timeout,
                        build_timeout=build_timeout, recover=recover, n_threads=n_threads)


def completion_sensing(rows, cols, shape, *, client, symmetric=False, shards=None, workers=None,
                       timeout=600.0, build_timeout=None, recover=True,
                       n_threads=None) -> ShardedCompletion:
    """:func:`wnsense_native.completion_sensing` with the entries on the workers.

    The entries are split into ``shards`` ranges of rows and ``shards`` ranges of columns
    holding about ``m / shards`` entries each (default: one of each per worker); every pass is
    bit-identical to the single-node operator's, whatever the split. ``symmetric=True`` (square
    ``shape``) selects the symmetric family. Validation as on one node (``TypeError`` /
    ``ValueError`` naming ``rows``, ``cols``, ``shape``). The driver keeps ``rows`` and
    ``cols`` (the recipe: a lost shard is rebuilt from them) and the indices of each shard's
    entries. Other options as :func:`gaussian_sensing`.
    """
    rows, cols, d1, d2, symmetric = _observed_entries(rows, cols, shape, symmetric)
    return ShardedCompletion(client, rows, cols, d1, d2, symmetric=symmetric, shards=shards,
                             workers=workers, timeout=timeout, build_timeout=build_timeout,
                             recover=recover, n_threads=n_threads)


def npy_array(path, *, rows_per_chunk=None):
    """A dask array over an ``.npy`` file that every worker reads by path (a shared filesystem,
    or one machine): each chunk memory-maps the file on the worker that computes it, so the
    data go from disk to that worker only; the graph (and a pickled operator's recipe) holds
    only the path. For ``dense_sensing(npy_array(path), client=...)``."""
    path = os.fspath(path)
    mm = np.load(path, mmap_mode="r", allow_pickle=False)
    shape, dtype = mm.shape, mm.dtype
    del mm
    if len(shape) == 0 or shape[0] == 0:
        raise ValueError(f"path: {path} holds an empty or 0-d array, shape {shape}")
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    if rows_per_chunk is None:
        rows_per_chunk = max(1, (256 << 20) // max(row_bytes, 1))  # ~256 MB chunks
    rows_per_chunk = check_int("rows_per_chunk", rows_per_chunk, minimum=1)
    import dask
    parts = []
    for a in range(0, shape[0], rows_per_chunk):
        b = min(shape[0], a + rows_per_chunk)
        block = dask.delayed(_read_rows, pure=True)(path, a, b)
        parts.append(da.from_delayed(block, shape=(b - a,) + tuple(shape[1:]), dtype=dtype))
    return da.concatenate(parts) if len(parts) > 1 else parts[0]


def _read_rows(path, a, b):
    """Rows ``[a, b)`` of an ``.npy`` file, read through a memory map (on a worker)."""
    return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[a:b])
