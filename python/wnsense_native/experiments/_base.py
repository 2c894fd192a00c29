"""Machinery shared by the experiments: parameters, the run context (seeding, solving, progress,
printing), threshold crossings, tables and the CSV / JSON writers.

An experiment is a function ``impl(ctx, **params) -> dict`` registered with its parameters
(:class:`Param`); :func:`wnsense_native.experiments.run_experiment` resolves the parameters
(defaults, ``full=True`` defaults, explicit values), builds the :class:`Context` and writes the
files. Every solve goes through :meth:`Context.solve`, which records the run (history included)
for the CSV and turns "this method is not registered in this build" into a skipped run.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from . import _plot
from ._plot import thin_indices  # noqa: F401  (re-exported: the CSV thinning uses it too)

NOTSET = object()


class ExperimentError(Exception):
    """A problem the user can fix (bad parameter combination, missing optional package); the CLI
    prints its message as one line and exits non-zero."""


# ------------------------------------------------------------------------------------------------
# parameters

@dataclass(frozen=True)
class Param:
    """One experiment parameter; also becomes the CLI flag ``--name-with-dashes``.

    ``kind``: "int", "float", "ints", "floats" (comma-separated lists), "choice", "bool", "str".
    ``minimum``: smallest allowed value (ints / floats; lists element-wise). ``full``: the default
    under ``--full`` (the paper's size); NOTSET means the same as ``default``.
    """

    name: str
    kind: str
    default: object
    help: str
    full: object = NOTSET
    minimum: float | None = None
    strict: bool = False  # minimum is exclusive
    choices: tuple = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_for(self, full: bool):
        return self.default if (not full or self.full is NOTSET) else self.full

    def check(self, value):
        """Validate and normalize a value given from Python (the CLI parses strings first)."""
        if self.kind in ("ints", "floats"):
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                value = [value]
            value = [self._scalar(v, self.kind[:-1]) for v in value]
            if not value:
                raise ExperimentError(f"{self.flag} needs at least one value")
            return tuple(value)
        if self.kind in ("int", "float"):
            return self._scalar(value, self.kind)
        if self.kind == "choice":
            if value not in self.choices:
                raise ExperimentError(f"{self.flag} must be one of {', '.join(self.choices)}, "
                                      f"got {value!r}")
            return value
        if self.kind == "bool":
            return bool(value)
        return str(value)

    def _scalar(self, v, kind):
        try:
            if kind == "int":
                if isinstance(v, (bool, np.bool_)):
                    raise TypeError
                if isinstance(v, str):
                    v = int(v.strip())
                elif isinstance(v, (float, np.floating)):
                    if not float(v).is_integer():
                        raise ValueError
                    v = int(v)
                else:
                    v = int(v)
            else:
                v = float(v.strip() if isinstance(v, str) else v)
        except (TypeError, ValueError):
            raise ExperimentError(f"{self.flag} expects {'an integer' if kind == 'int' else 'a number'}"
                                  f", got {v!r}") from None
        if kind == "float" and not math.isfinite(v):
            raise ExperimentError(f"{self.flag} must be finite, got {v}")
        if self.minimum is not None:
            bad = v <= self.minimum if self.strict else v < self.minimum
            if bad:
                rel = ">" if self.strict else ">="
                raise ExperimentError(f"{self.flag} must be {rel} {self.minimum:g}, got {v:g}")
        return v

    def parse_cli(self, text: str):
        """Parse the CLI string form (lists are comma-separated)."""
        if self.kind in ("ints", "floats"):
            return self.check([t for t in text.split(",") if t.strip()] or [""])
        return self.check(text)


@dataclass
class Experiment:
    name: str
    description: str
    impl: object  # impl(ctx, **params) -> dict
    params: list = field(default_factory=list)
    full_note: str = ""
    requires: tuple = ()  # (module, message if missing)
    distributed: bool = False  # its operator can be sharded on a Dask cluster (--scheduler/--workers)


@dataclass(frozen=True)
class MethodSpec:
    """A line of an experiment: ``key`` (CSV/JSON), ``label`` (tables, legends), the ``wn.solve``
    method name and its options."""

    key: str
    label: str
    method: str
    options: dict = field(default_factory=dict)
    note: str = ""
    short: str = ""  # the label in printed tables and run lines (100 columns), when shorter


# ------------------------------------------------------------------------------------------------
# small helpers

def first_reach(history: dict, threshold: float, key: str = "rel_error"):
    """``(iteration, seconds)`` of the first history entry ``<= threshold``, or None."""
    e = history.get(key)
    if e is None or len(e) == 0:
        return None
    hit = np.flatnonzero(np.asarray(e) <= threshold)
    if hit.size == 0:
        return None
    i = int(hit[0])
    t = history.get("time")
    return i, (float(t[i]) if t is not None else float("nan"))


def passes_to(history: dict, threshold: float, key: str = "rel_error"):
    """Passes over the sensing data (``history["nfev"]``) when ``key`` first reaches
    ``threshold``, or None."""
    hit = first_reach(history, threshold, key)
    if hit is None or "nfev" not in history:
        return None
    return int(history["nfev"][hit[0]])


def fmt_num(x, spec=".2e", missing="—"):
    if x is None:
        return missing
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(xf):
        return missing
    return format(xf, spec)


def fmt_reach(reach, missing="—"):
    """``(iteration, seconds)`` -> two table cells."""
    if reach is None:
        return missing, missing
    it, sec = reach
    return str(it), (f"{sec:.3f}" if sec < 10 else f"{sec:.1f}")


def format_table(headers, rows) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for j, c in enumerate(row):
            widths[j] = max(widths[j], len(c))
    numeric = [all(_looks_numeric(row[j]) for row in cells) if cells else False
               for j in range(len(headers))]

    def line(row):
        out = []
        for j, c in enumerate(row):
            out.append(c.rjust(widths[j]) if numeric[j] else c.ljust(widths[j]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def _looks_numeric(s: str) -> bool:
    if s in ("—", "-", ""):
        return True
    try:
        float(s)
        return True
    except ValueError:
        return False


def jsonable(obj):
    """Convert numpy scalars/arrays, tuples and non-finite floats (-> None) for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, (int, str)):
        return obj
    return str(obj)


# ------------------------------------------------------------------------------------------------
# the run context

class Run:
    """One solve: identification, the SolveResult (in memory only) and derived numbers."""

    def __init__(self, config, config_values, spec: MethodSpec, result):
        self.config = config
        self.config_values = dict(config_values)
        self.spec = spec
        self.result = result

    @property
    def history(self):
        return self.result.history

    def value(self, name) -> str:
        """The config value ``name`` as a table cell (``:g``, as in the config label)."""
        return f"{self.config_values[name]:g}"

    @property
    def key(self):
        return self.spec.key

    @property
    def label(self):
        return self.spec.label

    @property
    def final_rel_error(self):
        e = self.history.get("rel_error")
        return float(e[-1]) if e is not None and len(e) else None

    def reach(self, threshold):
        return first_reach(self.history, threshold)

    def record(self, thresholds=()) -> dict:
        res = self.result
        out = {
            "config": self.config, **{f"config_{k}": v for k, v in self.config_values.items()},
            "method": self.spec.key, "label": self.spec.label, "solver": self.spec.method,
            "options": dict(self.spec.options), "available": True,
            "nit": int(res.nit), "time": float(res.time), "stop_reason": res.stop_reason,
            "final_rel_error": self.final_rel_error,
            "final_residual": float(res.residual_norm), "final_loss": float(res.fun),
        }
        out["nfev"] = int(res.nfev)
        for thr in thresholds:
            r = self.reach(thr)
            out[f"iters_to_{thr:g}"] = None if r is None else r[0]
            out[f"seconds_to_{thr:g}"] = None if r is None else r[1]
            out[f"passes_to_{thr:g}"] = passes_to(self.history, thr)
        return out


class Context:
    """What an experiment implementation works with.

    ``ctx.rng(k)``: independent, reproducible generator number ``k`` for this seed.
    ``ctx.solve(...)``: run ``wn.solve`` and record the run (or None when the method is missing).
    ``ctx.echo(...)``: print (unless quiet), tqdm-safe.
    """

    def __init__(self, experiment: Experiment, *, seed=0, out=".", plot=True, progress=False,
                 verbose=True, csv_full=False, max_time=None, n_threads=None,
                 file_stem=None, stream=None, name=None, client=None):
        self.name = name or experiment.name
        self.seed = int(seed)
        self.out = os.fspath(out)
        self.plot = bool(plot)
        self.progress_bar = bool(progress) and _tqdm() is not None
        self.verbose = bool(verbose)
        self.csv_full = bool(csv_full)
        self.max_time = max_time
        self.n_threads = n_threads
        self.client = client  # a distributed.Client: Gaussian operators are sharded on it
        self.file_stem = file_stem or f"wnsense_{self.name}"
        self.stream = stream
        self.runs: list[Run] = []
        self.unavailable: dict[str, str] = {}
        self._bar = None
        self.notes: list[str] = []
        self.thresholds: tuple = ()
        self.plot_path: str | None = None
        self.csv_points = 2000   # CSV rows per run (thinned) unless csv_full
        self.run_lines = True    # a line per run; experiments of hundreds of runs print less
        self._open_line = False  # the start of a run's line is printed, its end is due

    # -- randomness --------------------------------------------------------------------------
    def rng(self, *keys) -> np.random.Generator:
        return np.random.default_rng([self.seed, *[int(k) for k in keys]])

    # -- output ------------------------------------------------------------------------------
    def echo(self, msg=""):
        if not self.verbose:
            return
        stream = self.stream or sys.stdout
        if self._bar is not None:
            tq = _tqdm()
            tq.write(str(msg), file=stream)
        else:
            print(msg, file=stream, flush=True)

    def note(self, msg):
        """A remark kept in the JSON summary and printed."""
        self.notes.append(msg)
        self.echo(msg)

    def make_plot(self, draw) -> str | None:
        """Call ``draw(path)`` to write the PNG, unless plots are off or matplotlib is missing
        (then say how to enable them). A failing plot is reported, never fatal: the numbers and
        files are the experiment's real output."""
        if not self.plot:
            return None
        if not _plot.available():
            self.note(_plot.INSTALL_HINT)
            return None
        path = self.path("png")
        try:
            draw(path)
        except Exception as exc:  # noqa: BLE001 - plotting must not lose the results
            self.note(f"plot failed ({type(exc).__name__}: {exc}); results are in the CSV/JSON")
            return None
        self.plot_path = path
        return path

    def path(self, ext) -> str:
        return os.path.join(self.out, f"{self.file_stem}.{ext}")

    # -- progress over the runs of the experiment ---------------------------------------------
    @contextlib.contextmanager
    def progress(self, total):
        """A progress bar over ``total`` runs (when asked for and tqdm is installed)."""
        if self.progress_bar and self.verbose:
            self._bar = _tqdm()(total=total, desc=self.name, unit="run", leave=False,
                                file=sys.stderr)
        try:
            yield
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    # -- solving ------------------------------------------------------------------------------
    def solve(self, config, config_values, spec: MethodSpec, op, y, rank, *, x_true, rng,
              max_iter, tol=1e-10, step_size=None, xtol=0.0) -> Run | None:
        """``wn.solve`` with the spec's method and options, recorded; None (and the method marked
        unavailable) when this build has no such method."""
        import wnsense_native as wn
        from ..solvers import NATIVE_METHODS

        if spec.key not in self.unavailable and spec.method not in NATIVE_METHODS:
            msg = f"{spec.label}: not available in this build (no method {spec.method!r})"
            self.unavailable[spec.key] = msg
            self.echo(f"  skipped: {msg}")
        if spec.key in self.unavailable:
            self._advance(config, spec)
            return None
        if self.run_lines and self.verbose and self._bar is None:
            # no progress bar: name the run as it starts (a long run is not silence), finish
            # the line when it ends
            stream = self.stream or sys.stdout
            print(f"  {config:<12} {spec.short or spec.label:<24} ", end="", file=stream,
                  flush=True)
            self._open_line = True
        res = wn.solve(op, y, rank, method=spec.method, max_iter=int(max_iter), tol=tol,
                       step_size=step_size, rng=rng, x_true=x_true, xtol=xtol,
                       max_time=self.max_time, n_threads=self.n_threads,
                       progress=self._bar is not None, **spec.options)
        return self.add_run(Run(config, config_values, spec, res))

    def add_run(self, run: Run) -> Run:
        """Record a run (from :meth:`solve`, or computed outside ``wn.solve``, e.g. a numpy
        baseline)."""
        self.runs.append(run)
        tail = (f"{run.result.nit:>7d} it {run.result.time:7.2f} s  rel error "
                f"{fmt_num(run.final_rel_error)}  ({run.result.stop_reason})")
        if self._open_line:
            self._open_line = False
            print(tail, file=self.stream or sys.stdout, flush=True)
        elif self.run_lines:
            self.echo(f"  {run.config:<12} {run.spec.short or run.label:<24} {tail}")
        self._advance(run.config, run.spec)
        return run

    def _advance(self, config, spec):
        if self._bar is not None:
            self._bar.set_postfix_str(f"{config} {spec.key}", refresh=False)
            self._bar.update(1)

    def find(self, config=None, key=None):
        for r in self.runs:
            if (config is None or r.config == config) and (key is None or r.key == key):
                return r
        return None

    # -- files --------------------------------------------------------------------------------
    def write_csv(self) -> str:
        path = self.path("csv")
        base = ["experiment", "config", "method", "label", "iteration", "rel_error", "loss",
                "residual_norm", "grad_norm", "step_size", "time"]
        extra = []
        for r in self.runs:
            for k in r.history:
                if k not in base and k not in extra:
                    extra.append(k)
        header = base + extra
        max_points = 0 if self.csv_full else self.csv_points
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for r in self.runs:
                h = r.history
                n = len(h.get("loss", []))
                for i in thin_indices(n, max_points):
                    row = [self.name, r.config, r.key, r.label, int(i)]
                    for col in header[5:]:
                        a = h.get(col)
                        row.append("" if a is None or i >= len(a) else format(float(a[i]), ".10g"))
                    w.writerow(row)
        return path

    def write_json(self, summary) -> str:
        """Write ``summary``, already made JSON-safe by :func:`jsonable`."""
        path = self.path("json")
        with open(path, "w") as fh:
            json.dump(summary, fh, indent=2, allow_nan=False)
            fh.write("\n")
        return path


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm
