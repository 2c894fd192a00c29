"""Driver side: the shards of an operator as Dask actors (placement, environment checks, calls
over direct connections, faults and rebuilds, traffic accounting, measurements, close and
pickle), shared by :class:`~.dense.ShardedDense` and :class:`~.completion.ShardedCompletion`."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
import warnings
import weakref

import numpy as np

try:
    import distributed
    from distributed.protocol import to_serialize
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("wnsense_native.distributed needs the 'dask' extra: "
                      "pip install 'wnsense_native[dask]'") from exc

from .._validation import check_float, check_int
from ..operators import SensingOperator
from ._actors import _load_shard
from ._common import _payload_bytes, environment

logger = logging.getLogger("wnsense_native")


class _LostShard(Exception):
    def __init__(self, index, cause):
        super().__init__(index, cause)
        self.index, self.cause = index, cause


def _live_workers(client) -> list[str]:
    if client.status != "running":
        raise RuntimeError(f"the operator's distributed.Client is closed (status "
                           f"{client.status!r}): build the operator again on a running client")
    return sorted(client.scheduler_info(n_workers=-1).get("workers", {}))


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
    """Measurements sent once to the shards (what ``prepare(y)`` returns): a key the shards
    file their parts under, and the driver's reference to ``y`` (to re-send the parts of a
    rebuilt shard). The parts are dropped when the handle is garbage-collected."""

    def __init__(self, pool, y):
        self.key = f"y-{uuid.uuid4().hex[:16]}"
        self.values = y
        weakref.finalize(self, _drop_measurements, weakref.ref(pool), self.key)


def _drop_measurements(pool_ref, key):
    pool = pool_ref()
    if pool is not None:
        pool.drop_y(key)


class ShardPool:
    """The shards of one operator as Dask actors, held by the operator (``op.pool``): placement,
    the workers' environment, the calls over direct connections, faults and rebuilds, traffic
    accounting, the measurements sent to the shards, and release.

    The operator (``owner``, held weakly) gives what depends on its kind: ``_data(j, addr,
    client)`` (futures of the data ``actor.load`` takes, or None), ``_y_part(j, y)`` (shard
    ``j``'s part of a measurement vector) and ``_can_rebuild()``. ``specs`` (one dict per shard) and
    ``actor`` (the actor class) are the operator's."""

    def __init__(self, owner, client, workers, *, specs, actor, source, timeout, recover,
                 n_threads, build_timeout=None):
        self.owner = weakref.ref(owner)
        self.name = type(owner).__name__
        self.client, self.specs, self.actor, self.source = client, specs, actor, source
        self.build_timeout = build_timeout
        self._closed = False
        self.timeout = None if timeout is None else check_float("timeout", timeout, minimum=0.0,
                                                                strict_minimum=True)
        if not isinstance(recover, (bool, np.bool_)):
            raise TypeError(f"recover must be a bool, got {type(recover).__name__}")
        self.recover = bool(recover)
        self.n_threads = 0 if n_threads is None else check_int("n_threads", n_threads,
                                                               minimum=1, maximum=1024)
        self.rebuilds = 0
        self.traffic = {"calls": 0, "passes": 0, "bytes_out": 0, "bytes_in": 0}
        self._measurements = weakref.WeakValueDictionary()
        self._futures = [None] * len(self.specs)
        for spec in self.specs:
            spec["n_threads"] = self.n_threads
        self.placement = [workers[j % len(workers)] for j in range(len(self.specs))]
        self._envs = {}  # worker address -> what it reported (or the error)
        try:
            self.infos = [None] * len(self.specs)
            self._probe(sorted(set(self.placement)))
            for j in range(len(self.specs)):
                self._launch(j)
            self.infos = self.call_all("info", [()] * len(self.specs))
        except BaseException:  # bad data, a lost worker, Ctrl-C: release what was built
            self.close(wait=False)
            raise

    # -- environment -----------------------------------------------------------------------
    def _probe(self, addresses):
        """Ask the workers what they run before any shard is sent (a task whose function a
        worker cannot unpickle stays pending for ever; ``client.run`` reports the error)."""
        got = self.client.run(environment, workers=list(addresses), on_error="return")
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
        fut = self.client.submit(self.actor, self.specs[j], actor=True, workers=[addr],
                                  allow_other_workers=False, pure=False,
                                  key=f"wnsense-shard-{uuid.uuid4().hex[:16]}-{j}")
        self._futures[j] = fut
        self._await(fut, j, addr)
        data = self.owner()._data(j, addr, self.client)
        if data is None:
            return
        task = self.client.submit(_load_shard, fut.key, *data, workers=[addr],
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
                if addr not in _live_workers(self.client):
                    raise RuntimeError(f"worker {addr} left the cluster while building shard "
                                       f"{j}")
        if fut.status == "finished":
            return
        exc = fut.exception() if fut.status == "error" else None
        if isinstance(exc, (TypeError, ValueError)):  # the user's data, named
            msg = str(exc)
            if not msg.startswith(self.source):
                msg = f"{self.source}: computing shard {j}'s part failed: {exc!r}"
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
        alive = [a for a in _live_workers(self.client) if a != old]
        got = self.client.run(environment, workers=alive, on_error="return") if alive else {}
        want = self._envs.get(old)
        same = [a for a in alive if isinstance(got.get(a), dict) and isinstance(want, dict)
                and all(got[a][k] == want[k] for k in ("version", "protocol", "fingerprint"))]
        if not same:
            raise RuntimeError(f"{self.name}: shard {j} was lost with worker {old} "
                               f"({cause!r}) and no other live worker runs the same native "
                               "build to rebuild it on") from cause
        load = {a: sum(p == a for p in self.placement) for a in same}
        self.placement[j] = min(same, key=lambda a: (load[a], a))
        logger.warning("%s: shard %d lost with worker %s (%r); rebuilding it on %s",
                       self.name, j, old, cause, self.placement[j])
        self._probe([self.placement[j]])
        self._launch(j)
        self.infos[j] = self.call("info", {j: ()}, _rebuilt=True)[j]
        for key, handle in list(self._measurements.items()):
            self.call("set_y", {j: (key, self.owner()._y_part(j, handle.values))}, _rebuilt=True)
        self.rebuilds += 1

    # -- calls -----------------------------------------------------------------------------
    def _require_open(self):
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        if self.client.status != "running":
            raise RuntimeError(f"{self.name}: its distributed.Client is closed (status "
                               f"{self.client.status!r}); build the operator again on a "
                               "running client")

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

        call = asyncio.ensure_future(self.client.rpc(self.placement[j]).actor_execute(**msg))
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

    def call_all(self, method, args_per_shard):
        """One call per shard, all in flight at once; results in shard order."""
        out = self.call(method, dict(enumerate(args_per_shard)))
        return [out[j] for j in range(len(args_per_shard))]

    def call(self, method, calls, _rebuilt=False):
        """``calls``: {shard: args}, in flight together in one ``sync`` into the client's event
        loop. A lost shard is rebuilt from its recipe and its call re-run once; a silent one
        raises after ``timeout``. Returns {shard: result}."""
        self._require_open()
        self.traffic["calls"] += len(calls)
        self.traffic["bytes_out"] += sum(_payload_bytes(a) for a in calls.values())
        out = self.client.sync(self._rpc_many, method, calls, self.timeout)
        results, lost = {}, []
        for j, (status, value) in sorted(out.items()):
            if status == "ok":
                results[j] = value
            elif status == "lost":
                lost.append(value)
            elif status == "timeout":
                raise RuntimeError(
                    f"{self.name}: shard {j} on worker {self.placement[j]} did not "
                    f"answer within {self.timeout} s (op.timeout): the worker may be hung or "
                    "overloaded")
            else:
                raise value
        for exc in lost:
            if _rebuilt or not (self.recover and self.owner()._can_rebuild()):
                raise RuntimeError(
                    f"{self.name}: shard {exc.index} on worker "
                    f"{self.placement[exc.index]} was lost ({exc.cause!r})"
                    + ("" if self.recover and self.owner()._can_rebuild() else
                       "; recover=False or no recipe to rebuild it: build the operator again")
                ) from exc.cause
            self._rebuild(exc.index, exc.cause)
            results.update(self.call(method, {exc.index: calls[exc.index]}, _rebuilt=True))
        self.traffic["bytes_in"] += sum(_payload_bytes(v) for v in results.values())
        return results

    # -- measurements ----------------------------------------------------------------------
    def prepare(self, y):
        """Send each shard its part of ``y`` once; the handle is what the passes use."""
        if y is None or isinstance(y, _Measurements):
            return y
        y = np.ascontiguousarray(y, dtype=np.float64)
        m = self.owner().shape[0]
        if y.shape != (m,):
            raise ValueError(f"y must have shape ({m},), got {y.shape}")
        handle = _Measurements(self, y)
        self.call_all("set_y", [(handle.key, self.owner()._y_part(j, y))
                                 for j in range(len(self.specs))])
        self._measurements[handle.key] = handle
        return handle

    def drop_y(self, key):
        """Drop the shards' parts of a released measurement vector (fire and forget, from
        whatever thread the handle dies in)."""
        if self._closed or self.client.status != "running":
            return
        try:
            calls = {j: (key,) for j in range(len(self.specs))}
            self.client.loop.add_callback(
                lambda: asyncio.ensure_future(self._rpc_many("drop_y", calls, self.timeout)))
        except Exception:  # noqa: BLE001 - the loop is gone: so are the shards
            pass

    def measured(self, y):
        """``(handle, temporary)`` for a pass's ``y``: a prepared handle, None, or a raw array
        (public ``op.residual``), sent for this pass only."""
        if y is None or isinstance(y, _Measurements):
            return y, False
        return self.prepare(y), True

    # -- lifetime --------------------------------------------------------------------------
    @property
    def n_shards(self) -> int:
        return len(self.specs)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def nbytes(self) -> int:
        """Resident bytes of the shards on the workers."""
        return sum(int(i["nbytes"]) for i in self.infos if i is not None)

    def close(self, wait=True, timeout=10.0):
        """Release the shards (the actors and their memory on the workers). Idempotent.
        ``wait``: return once the scheduler has forgotten them (releases are batched)."""
        if self._closed:
            return
        self._closed = True
        keys = [f.key for f in self._futures if f is not None]
        for j in range(len(self._futures)):
            self._release_shard(j)
        if not wait or not keys or self.client.status != "running":
            return

        def still_known(keys, dask_scheduler=None):
            return [k for k in keys if k in dask_scheduler.tasks]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.client.run_on_scheduler(still_known, keys):
                    return
            except Exception:  # noqa: BLE001 - the cluster went away: nothing left to release
                return
            time.sleep(0.01)


class _ShardedOperator(SensingOperator):
    """A sensing operator whose shards live in a :class:`ShardPool` it holds (``op.pool``).

    Subclasses define ``_specs`` (one dict per shard), ``_actor`` (the actor class), ``_source``
    (the argument a bad chunk is reported under), ``_data(j, addr, client)``, ``_y_part(j, y)``,
    ``_can_rebuild()``, ``_recipe()`` and ``_from_recipe(client, recipe, workers)``, and call
    :meth:`_start` once their specs are made."""

    _pool = None
    _detached = False
    _closed = False            # a detached operator's own flag (an attached one: its pool's)
    build_timeout = None

    def _start(self, client, workers, timeout, recover, n_threads):
        self._detached = False
        self._pool = ShardPool(self, client, workers, specs=self._specs, actor=self._actor,
                               source=self._source, timeout=timeout, recover=recover,
                               n_threads=n_threads, build_timeout=self.build_timeout)

    def _can_rebuild(self):
        return True

    @property
    def pool(self) -> ShardPool:
        """The shards (None while the operator is detached: unpickled, not yet attached)."""
        return self._pool

    def _live_pool(self) -> ShardPool:
        if self._detached:
            raise RuntimeError(f"this {type(self).__name__} was unpickled without its cluster: "
                               "call op.attach(client) first")
        return self._pool

    # -- the pool's state, as the operator's attributes ------------------------------------
    @property
    def timeout(self):
        """Seconds a call may take before the worker counts as hung (None: no limit)."""
        return self._pool.timeout if self._pool is not None else 600.0

    @timeout.setter
    def timeout(self, value):
        self._live_pool().timeout = value

    @property
    def recover(self) -> bool:
        """Rebuild a lost shard from its recipe and re-run the call."""
        return self._pool.recover if self._pool is not None else True

    @recover.setter
    def recover(self, value):
        self._live_pool().recover = bool(value)

    @property
    def rebuilds(self) -> int:
        return self._pool.rebuilds if self._pool is not None else 0

    @property
    def traffic(self) -> dict:
        return self._pool.traffic if self._pool is not None else {}

    @property
    def placement(self) -> list:
        return self._pool.placement if self._pool is not None else []

    @property
    def _client(self):
        return self._live_pool().client

    @property
    def _infos(self):
        return self._pool.infos if self._pool is not None else []

    @property
    def _n_threads(self) -> int:
        return self._pool.n_threads if self._pool is not None else 0

    # -- calls and measurements ------------------------------------------------------------
    def _call(self, method, calls):
        return self._live_pool().call(method, calls)

    def _call_all(self, method, args_per_shard):
        return self._live_pool().call_all(method, args_per_shard)

    def _prepare(self, y):
        """Send each shard its part of ``y`` once; the handle is what the passes use."""
        return self._live_pool().prepare(y)

    def _measured(self, y):
        return self._live_pool().measured(y)

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
        return self._pool.closed if self._pool is not None else self._closed

    @property
    def nbytes(self) -> int:
        """Resident bytes of the shards on the workers."""
        return self._pool.nbytes if self._pool is not None else 0

    def close(self, wait=True, timeout=10.0):
        """Release the shards (the actors and their memory on the workers). Idempotent.
        ``wait``: return once the scheduler has forgotten them (releases are batched)."""
        if self._pool is None:
            self._closed = True
            return
        self._pool.close(wait=wait, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = ("detached" if self._detached else "closed" if self.closed
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
        self._pool.owner = weakref.ref(self)   # its shards now belong to self
        new.__dict__.clear()
        new._detached = True
        self._detached = False
        return self


def _unpickled(cls, recipe):
    """A detached operator: shape and flags, no shards (``op.attach(client)``)."""
    op = cls.__new__(cls)
    m, d1, d2 = recipe["shape"]
    SensingOperator.__init__(op, m, d1, d2, recipe["symmetric"])
    op._recipe_state = recipe
    op._detached, op._closed, op._pool = True, False, None
    op._specs = []
    op._restore_attributes(recipe)
    return op
