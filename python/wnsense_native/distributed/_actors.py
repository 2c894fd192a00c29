"""Worker side: the shard actors (one per shard, pinned to a worker) and their load task."""
from __future__ import annotations

import time

import numpy as np

try:
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("wnsense_native.distributed needs the 'dask' extra: "
                      "pip install 'wnsense_native[dask]'") from exc

from .. import _core
from .._validation import all_finite
from ..operators import _asymmetry, _packed_rows
from ._common import _aligned, _fold, _fold_sumsq, _worker_threads, environment


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

    def residual(self, L, R, ykey, right, left, flags):
        s = self.spec
        L, R, right, left = _aligned(L), _aligned(R), _aligned(right), _aligned(left)
        t = time.perf_counter()
        r, sumsq, AV, AtU = _core.dense_residual_slices(
            self.data, s["d1"], s["d2"], self.packed, L, R, self._y(ykey),
            R if flags.right_is_R else right, left, flags.symmetrize, self.bounds, self.n_threads)
        if flags.fold_first:
            sumsq, AV, AtU = self._fold_first(sumsq, AV, AtU)
        self._seconds = time.perf_counter() - t
        return (r if flags.want_r else None), sumsq, AV, AtU

    def adjoint_products(self, v, right, left, flags):
        s = self.spec
        v, right, left = _aligned(v), _aligned(right), _aligned(left)
        AV, AtU = _core.dense_adjoint_slices(self.data, s["d1"], s["d2"], self.packed, v, right,
                                             left, flags.symmetrize, self.bounds, self.n_threads)
        if flags.fold_first:
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
        rows = _aligned(np.asarray(rows, dtype=np.int64))
        cols = _aligned(np.asarray(cols, dtype=np.int64))
        s = self.spec
        self.native = _core.SparseMeasurements(len(rows), s["d1"], s["d2"], rows, cols, None,
                                               None, 1.0, s["symmetric"])
        # the native operator holds its own checked copies: keep its read-only views, not the
        # received arrays as well (16 bytes per entry for the shard's life)
        self.rows, self.cols = self.native.rows, self.native.cols
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

    def residual(self, L, R, ykey, Bs, flags):
        t = time.perf_counter()
        L, R, Bs = _aligned(L), _aligned(R), _aligned(Bs)
        by_row = self.spec["side"] == "row"
        r, row_ss, row_out, col_out = self.native.residual_sides(
            L, R, self._y(ykey), Bs if by_row else [], [] if by_row else Bs, self.n_threads)
        sumsq = None
        if by_row:  # the rows' ||r||^2, in row order; the first shard starts the fold
            own = row_ss[self.lo:self.hi]
            sumsq = _fold_sumsq(own) if flags.fold_first else np.ascontiguousarray(own)
        r_out = None
        if flags.want_r:
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
