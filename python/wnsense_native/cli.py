"""Command line: ``wnsense`` / ``python -m wnsense_native``.

    wnsense demo [--quick] [--out DIR] [--no-plot] ...      the headline comparison (Fig. 2a-like)
    wnsense reproduce --list                                 the paper's experiments, with run times
    wnsense reproduce NAME [--seed S] [--out DIR] [--full] [--no-plot] [--max-iter N] [size flags]
    wnsense solve --operator M.npy --y y.npy --rank R [--method wn_rgd] [--out x.npy]

``solve`` and ``reproduce fig2b`` also take ``--scheduler ADDRESS`` (shard the operator on an
existing Dask cluster) or ``--workers N`` (a local cluster of N worker processes on 127.0.0.1,
started and closed by the command); both need the optional extra ``dask``.

Every error the user can cause (bad flags, unknown experiment, unreadable or malformed files,
impossible sizes) ends the program with a one-line message on stderr and a non-zero exit status;
set WNSENSE_DEBUG=1 to see the traceback of an unexpected error.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

DEFAULT_OUT = "wnsense_results"  # one folder for every file a command writes
EXIT_USAGE = 2
EXIT_FAILURE = 1


class CLIError(Exception):
    """An error with a message for the user (printed as one line)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: message``) instead of usage + message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (see --help)\n")


def _one_line(msg) -> str:
    return " ".join(str(msg).split())


# ------------------------------------------------------------------------------------------------
# argument types

def _int_at_least(minimum, what="an integer"):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v
    return parse


def _float_at_least(minimum, strict=False):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if (v <= minimum) if strict else (v < minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, "
                                             f"got {v:g}")
        return v
    return parse


def _param_type(param):
    from .experiments import ExperimentError

    def parse(text):
        try:
            return param.parse_cli(text)
        except ExperimentError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = param.kind  # argparse names the type in some messages
    return parse


# ------------------------------------------------------------------------------------------------
# parser

def _add_common(p, *, full=True):
    g = p.add_argument_group("common options")
    g.add_argument("--seed", type=_int_at_least(0, "a non-negative integer"), default=0,
                   help="random seed (default 0); the same seed gives the same numbers")
    g.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"directory for the CSV / JSON / PNG files, created if missing (default: "
                        f"{DEFAULT_OUT}/)")
    g.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    if full:
        g.add_argument("--full", action="store_true",
                       help="the paper's full problem size where the experiment has one")
    prog = g.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="force the progress bar (needs tqdm; default: on a terminal)")
    prog.add_argument("--no-progress", dest="progress", action="store_false",
                      help="no progress bar")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    g.add_argument("--csv-full", action="store_true",
                   help="write every iteration to the CSV (default: long runs thinned to ~2000 "
                        "rows per run)")
    g.add_argument("--max-time", type=_float_at_least(0, strict=True), metavar="SECONDS",
                   help="wall-clock limit per solve")
    g.add_argument("--threads", type=_int_at_least(1), metavar="N",
                   help="threads of the native kernels (default: OpenMP's default)")


def _add_cluster(p):
    g = p.add_argument_group("Dask cluster (optional extra 'dask'; the results are the same bit "
                             "for bit)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--scheduler", metavar="ADDRESS",
                   help="shard the operator on the workers of an existing Dask cluster "
                        "(e.g. tcp://10.0.0.5:8786)")
    x.add_argument("--workers", type=_int_at_least(1), metavar="N",
                   help="start a local Dask cluster of N worker processes on 127.0.0.1 for this "
                        "command (closed when it ends) and shard the operator on it")


def _add_params(p, exp):
    from .experiments._base import NOTSET

    g = p.add_argument_group(f"{exp.name} parameters (defaults shown; --full changes some)")
    for param in exp.params:
        default = param.default
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
            if isinstance(default, tuple) else default
        help_ = f"{param.help} (default: {shown if shown != '' else 'see description'}"
        if param.full is not NOTSET:
            full = param.full
            fshown = ",".join(map(str, full)) if isinstance(full, tuple) else full
            help_ += f"; --full: {fshown}"
        help_ += ")"
        if param.kind == "bool":
            g.add_argument(param.flag, dest=param.name, action=argparse.BooleanOptionalAction,
                           default=None, help=help_)
        else:
            metavar = {"ints": "N[,N...]", "floats": "X[,X...]", "int": "N", "float": "X",
                       "choice": "{" + ",".join(param.choices) + "}", "str": "NAME"}[param.kind]
            g.add_argument(param.flag, dest=param.name, type=_param_type(param), default=None,
                           metavar=metavar, help=help_)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .experiments import DEMO, DEMO_QUICK_MAX_ITER, EXPERIMENTS

    parser = _Parser(prog="wnsense", description="Overparameterized low-rank matrix sensing "
                     "with weight-normalized Riemannian GD: demo, paper experiments, solver.")
    parser.add_argument("--version", action="version", version=f"wnsense_native {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="the headline comparison: WN-RGD vs GD (Fig. 2a-like), "
                          "table + convergence plot",
                          description="Fig. 2a-like comparison on the population operator: "
                          "WN-RGD, its Theta-preconditioned variant (this project's addition) "
                          "and GD with small init; d=10, r*=3, r=5, kappa in {50,75,100}. Prints "
                          "a table and writes wnsense_demo.png/.csv/.json into --out "
                          f"(default {DEFAULT_OUT}/).")
    demo.add_argument("--quick", action="store_true",
                      help=f"tiny iteration budget (smoke test: {DEMO_QUICK_MAX_ITER} "
                           f"iterations per run)")
    _add_common(demo, full=False)
    _add_params(demo, DEMO)
    demo.set_defaults(func=_cmd_demo)

    rep = sub.add_parser("reproduce", help="run one experiment of the paper (--list for names)",
                         description="Run one of the paper's experiments (each claim is checked "
                         "next to a control that would pass without the phenomenon); writes "
                         f"wnsense_NAME.csv/.json (and .png) into --out (default {DEFAULT_OUT}/). "
                         "--list shows the experiments and their run time at default size.")
    rep.add_argument("--list", action="store_true", help="list the experiments and exit")
    names = rep.add_subparsers(dest="experiment", metavar="NAME",
                               title="experiments (python -m wnsense_native reproduce NAME -h)")
    for exp in EXPERIMENTS.values():
        p = names.add_parser(exp.name, help=exp.description, description=exp.description
                             + (f". {exp.full_note}" if exp.full_note else ""))
        _add_common(p)
        _add_params(p, exp)
        if exp.distributed:
            _add_cluster(p)
        p.set_defaults(func=_cmd_reproduce)
    rep.set_defaults(func=_cmd_reproduce)

    sol = sub.add_parser("solve", help="recover a low-rank matrix from your own .npy files",
                         description="Solve y = A(Z) for a low-rank Z: --operator holds the "
                         "measurement matrices M_i as an (m, d, d), (m, d1, d2) or (m, d*d) "
                         "array, --y the m measurements.")
    sol.add_argument("--operator", required=True, metavar="FILE.npy",
                     help="measurement matrices, shape (m,d,d), (m,d1,d2) or (m,d*d)")
    sol.add_argument("--y", required=True, metavar="FILE.npy", help="measurements, shape (m,)")
    sol.add_argument("--rank", required=True, type=_int_at_least(1), help="search rank r")
    sol.add_argument("--method", default="wn_rgd",
                     help="wn_rgd (default), gd, or another method of wnsense_native.solve")
    sol.add_argument("--max-iter", type=_int_at_least(0), default=1000,
                     help="iteration budget (default 1000)")
    sol.add_argument("--tol", type=_float_at_least(0), default=1e-10,
                     help="stop at this relative residual ||A(x)-y||/||y|| (default 1e-10)")
    sol.add_argument("--step-size", type=_float_at_least(0, strict=True),
                     help="constant step (default: the safeguarded Armijo rule)")
    sol.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="method option, e.g. retraction=qr, preconditioned=true, "
                          "init_scale=1e-4 (repeatable)")
    sol.add_argument("--symmetric", choices=("auto", "yes", "no"), default="auto",
                     help="treat the M_i as symmetric (default: detect)")
    sol.add_argument("--x-true", metavar="FILE.npy", help="ground truth, to report the error")
    sol.add_argument("--seed", type=_int_at_least(0, "a non-negative integer"), default=0)
    sol.add_argument("--max-time", type=_float_at_least(0, strict=True), metavar="SECONDS")
    sol.add_argument("--threads", type=_int_at_least(1), metavar="N")
    sol.add_argument("--progress", action="store_true", help="progress bar (needs tqdm)")
    sol.add_argument("--out", metavar="FILE",
                     help="save the recovered matrix (.npy) or matrix + factors (.npz)")
    _add_cluster(sol)
    sol.set_defaults(func=_cmd_solve)
    return parser


# ------------------------------------------------------------------------------------------------
# commands

def _progress_wanted(args) -> bool:
    if args.quiet:
        return False
    if args.progress is not None:
        if args.progress and not _have_tqdm():
            print("note: --progress needs tqdm (pip install wnsense_native[progress])",
                  file=sys.stderr)
        return bool(args.progress)
    return _have_tqdm() and sys.stderr.isatty()


def _have_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def _experiment_kwargs(args, exp):
    params = {p.name: getattr(args, p.name) for p in exp.params
              if getattr(args, p.name, None) is not None}
    return dict(seed=args.seed, out=args.out, plot=not args.no_plot,
                progress=_progress_wanted(args), verbose=not args.quiet,
                csv_full=args.csv_full, max_time=args.max_time, n_threads=args.threads,
                **params)


def _cmd_demo(args) -> int:
    from .experiments import DEMO, run_demo

    kw = _experiment_kwargs(args, DEMO)
    run_demo(quick=args.quick, **kw)
    if args.quick and not args.quiet:
        print("(--quick: a smoke run with a tiny iteration budget; run without --quick for the "
              "real comparison)")
    return 0


@contextlib.contextmanager
def _dask_client(args):
    """The ``distributed.Client`` of ``--scheduler`` / ``--workers`` (None without them); a
    cluster started here is closed on exit."""
    if not (getattr(args, "scheduler", None) or getattr(args, "workers", None)):
        yield None
        return
    flag = "--scheduler" if args.scheduler else "--workers"
    try:
        import distributed
    except ImportError:
        raise CLIError(f"{flag} needs the optional extra 'dask': "
                       f"pip install 'wnsense_native[dask]'") from None
    with contextlib.ExitStack() as stack:
        if args.scheduler:
            try:
                client = distributed.Client(args.scheduler, timeout=10, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise CLIError(f"--scheduler: cannot connect to {args.scheduler} "
                               f"({_one_line(exc)})") from None
        else:
            threads = max(1, (os.cpu_count() or 1) // args.workers)
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=args.workers, threads_per_worker=threads, processes=True,
                host="127.0.0.1", dashboard_address="127.0.0.1:0",
                worker_dashboard_address="127.0.0.1:0"))
            client = distributed.Client(cluster, set_as_default=False)
        stack.callback(client.close)
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        if not getattr(args, "quiet", False):
            print(f"dask: {n} worker(s) at {client.scheduler.address}", flush=True)
        yield client


def _cmd_reproduce(args) -> int:
    from .experiments import EXPERIMENTS, list_experiments, run_experiment

    if args.list or getattr(args, "experiment", None) is None:
        if not args.list:
            raise CLIError("reproduce needs an experiment NAME (reproduce --list shows them)")
        _print_list()
        return 0
    exp = EXPERIMENTS[args.experiment]
    with _dask_client(args) as client:
        run_experiment(exp.name, full=args.full, client=client, **_experiment_kwargs(args, exp))
    return 0


def _print_list():
    """``reproduce --list``: name, expected time at default size, description (100 columns)."""
    import textwrap

    from .experiments import expected_time, list_experiments

    items = list_experiments()
    width = max(len(n) for n, _ in items)
    times = {n: expected_time(n) for n, _ in items}
    twidth = max(len(t) for t in times.values())
    indent = " " * (width + twidth + 4)
    for name, desc in items:
        lines = textwrap.wrap(desc, 100 - len(indent)) or [""]
        print(f"{name.ljust(width)}  {times[name].rjust(twidth)}  {lines[0]}")
        for more in lines[1:]:
            print(indent + more)
    print("(one run at default size, --threads 1, on a busy 2-core machine; --full takes longer)")


def _load_npy(flag, path, *, mmap=False):
    import numpy as np

    if not os.path.exists(path):
        raise CLIError(f"{flag}: no such file: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{flag}: {path} is a directory, expected a .npy file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except PermissionError:
        raise CLIError(f"{flag}: cannot read {path}: permission denied") from None
    except OSError as exc:
        raise CLIError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    if magic.startswith(b"PK\x03\x04"):
        raise CLIError(f"{flag}: {path} is an .npz archive; save a single array with numpy.save")
    if magic != b"\x93NUMPY":
        raise CLIError(f"{flag}: {path} is not a .npy file (no NPY header; write it with "
                       f"numpy.save)")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except PermissionError:
        raise CLIError(f"{flag}: cannot read {path}: permission denied") from None
    except (ValueError, OSError, EOFError) as exc:
        raise CLIError(f"{flag}: {path} is not a readable .npy array ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - numpy raises assorted errors on junk files
        raise CLIError(f"{flag}: {path} is not a readable .npy array "
                       f"({type(exc).__name__}: {_one_line(exc)})") from None
    if not isinstance(arr, np.ndarray):
        if hasattr(arr, "close"):
            arr.close()
        raise CLIError(f"{flag}: {path} is an .npz archive; save a single array with numpy.save")
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise CLIError(f"{flag}: {path} holds a {arr.dtype} array; a real numeric array is needed")
    return arr


def _parse_option(text):
    if "=" not in text:
        raise CLIError(f"--option expects KEY=VALUE, got {text!r}")
    key, value = (s.strip() for s in text.split("=", 1))
    if not key.isidentifier():
        raise CLIError(f"--option: invalid option name {key!r}")
    low = value.lower()
    if low in ("true", "yes", "on"):
        return key, True
    if low in ("false", "no", "off"):
        return key, False
    if low in ("none", "null"):
        return key, None
    for conv in (int, float):
        try:
            return key, conv(value)
        except ValueError:
            pass
    return key, value


def _cmd_solve(args) -> int:
    import numpy as np

    options = dict(_parse_option(o) for o in args.option)
    M = _load_npy("--operator", args.operator, mmap=True)
    if M.ndim not in (2, 3):
        raise CLIError(f"--operator: expected an (m, d, d), (m, d1, d2) or (m, d*d) array, got "
                       f"shape {M.shape}")
    y = _load_npy("--y", args.y)
    y = np.squeeze(y) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1:
        raise CLIError(f"--y: expected a 1-D array of {M.shape[0]} measurements, got shape "
                       f"{y.shape}")
    if y.shape[0] != M.shape[0]:
        raise CLIError(f"--y has {y.shape[0]} measurements but --operator has {M.shape[0]} "
                       f"matrices")
    x_true = _load_npy("--x-true", args.x_true) if args.x_true else None
    symmetric = {"auto": None, "yes": True, "no": False}[args.symmetric]
    if args.out:
        out_dir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(out_dir):
            raise CLIError(f"--out: directory {out_dir} does not exist")
    with _dask_client(args) as client:
        return _solve(args, M, y, x_true, symmetric, options, client)


def _solve(args, M, y, x_true, symmetric, options, client):
    import wnsense_native as wn

    try:
        if client is None:
            op = wn.dense_sensing(M, symmetric=symmetric)
        else:  # the workers read the file by path (one machine, or a shared filesystem)
            from . import distributed as wnd
            op = wnd.dense_sensing(wnd.npy_array(os.path.abspath(args.operator)),
                                   client=client, symmetric=symmetric)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--operator: {_one_line(exc)}") from None
    m, d1, d2 = op.shape
    kind = "symmetric" if op.symmetric else "rectangular"
    where = "" if client is None else f", {op.n_shards} shards on the Dask workers"
    print(f"operator: {m} measurements of {d1} x {d2} matrices ({kind}, {op.dtype}) from "
          f"{args.operator}{where}")
    if x_true is not None and x_true.shape != (d1, d2):
        raise CLIError(f"--x-true: expected shape ({d1}, {d2}), got {x_true.shape}")
    try:
        res = _run_solve(args, op, y, x_true, options)
    finally:
        if client is not None:
            op.close()  # release the shards on the workers
    _report(args, res, d1, d2, x_true, options)
    return 0


def _run_solve(args, op, y, x_true, options):
    import wnsense_native as wn

    return wn.solve(op, y, args.rank, method=args.method, max_iter=args.max_iter, tol=args.tol,
                   step_size=args.step_size, rng=args.seed, x_true=x_true,
                   n_threads=args.threads, max_time=args.max_time,
                   progress=bool(args.progress), **options)


def _report(args, res, d1, d2, x_true, options):
    import numpy as np

    s = np.linalg.svd(res.x, compute_uv=False)
    num_rank = int(np.sum(s > 1e-8 * max(s[0], 1e-300))) if s.size else 0
    print(f"method: {args.method}, search rank {args.rank}"
          + (f", options {options}" if options else ""))
    print(f"stop: {res.stop_reason} ({res.message}) after {res.nit} iterations, "
          f"{res.time:.3g} s, {res.nfev} passes over the data")
    print(f"relative residual ||A(x) - y|| / ||y||: {res.residual_norm:.3e}")
    print(f"final loss: {res.fun:.6e}")
    print(f"recovered x: {d1} x {d2}, numerical rank {num_rank}, "
          f"top singular values {', '.join(f'{v:.4g}' for v in s[:min(5, s.size)])}")
    if x_true is not None:  # recorded by the solve (x_true was passed to it)
        print(f"relative error vs --x-true: {res.history['rel_error'][-1]:.3e}")
    if args.out:
        try:
            if args.out.endswith(".npz"):
                np.savez(args.out, x=res.x, **{f"factor_{k}": v for k, v in res.factors.items()})
            else:
                np.save(args.out, res.x)
        except OSError as exc:
            raise CLIError(f"--out: cannot write {args.out}: {exc.strerror or exc}") from None
        print(f"wrote {args.out}")
    return 0


# ------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    """Entry point of ``wnsense`` and ``python -m wnsense_native``; returns the exit status."""
    from .experiments import ExperimentError

    parser = build_parser()
    args = parser.parse_args(argv)
    if os.environ.get("WNSENSE_PARSE_ONLY"):
        # the README test: the quoted command (subcommand, experiment, flags) is still valid
        print(f"wnsense: parsed {args.command}")
        return 0
    debug = bool(os.environ.get("WNSENSE_DEBUG"))
    t0 = time.perf_counter()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("wnsense: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`: not an error worth a message
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_FAILURE
    except (CLIError, ExperimentError) as exc:
        print(f"wnsense: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        if debug:
            raise
        what = "out of memory" if isinstance(exc, MemoryError) else _one_line(exc)
        print(f"wnsense: error: {what or type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - never show a traceback to the user
        if debug:
            raise
        print(f"wnsense: internal error ({type(exc).__name__}: {_one_line(exc)}) after "
              f"{time.perf_counter() - t0:.1f} s; set WNSENSE_DEBUG=1 for the traceback",
              file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
