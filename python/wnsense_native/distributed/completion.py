"""Matrix completion with its entries on the workers: :class:`ShardedCompletion` and
:func:`completion_sensing`."""
from __future__ import annotations

import numpy as np

from .._validation import check_int
from ..operators import ResidualPass, _observed_entries
from ._actors import _EntriesShard
from ._common import PassFlags, _fold_sumsq
from ._pool import _check_workers, _ShardedOperator


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

    def _data(self, j, addr, client):
        members = self._members[j]
        return client.scatter([self.rows[members], self.cols[members]], workers=[addr],
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
        calls = {j: (L, R, key, row_B, PassFlags(fold_first=j == rows[0], want_r=temporary))
                 for j in rows}
        calls.update({j: (L, R, key, col_B, PassFlags()) for j in cols})
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
        out = self._call("residual", {
            j: (L, R, None, [], PassFlags(fold_first=j == rows[0], want_r=True)) for j in rows})
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
