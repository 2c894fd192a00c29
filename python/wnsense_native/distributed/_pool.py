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
        if self._client.status != "running":
            raise RuntimeError(f"{type(self).__name__}: its distributed.Client is closed (status "
                               f"{self._client.status!r}); build the operator again on a "
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

        call = asyncio.ensure_future(self._client.rpc(self.placement[j]).actor_execute(**msg))
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
