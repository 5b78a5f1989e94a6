"""Cross-check every available backend against TensorFlow and the float64 truth.

Runs each of the seven functions of every backend over a grid of shapes and
dtypes, and the losses again with each of their options (``xentbench.inputs``'s
``LOSS_OPTIONS`` and ``SIGMOID_OPTIONS``, a row ``<function>+options``
each), measures the largest relative error against the extended-precision
truth and against TensorFlow (the measure and the tolerances of
``xentbench.accuracy``), prints one table (backend x function), then what the reference does on
this machine (its settings and the known quirks the probe of
``xentbench.quirks`` found), and exits 1 if any backend fails its tolerance
or raises, 0 otherwise, and 2 before any check when a backend asked for by
``--backend`` is unknown or cannot import (the message says why). A quirk of
the reference is reported, not failed: the grid's inputs are finite, and a
quirk concerns NaN and infinities. Without ``--backend``, a registered backend
that cannot import is reported in its rows, as is one that raises; the others
still run.

Progress goes to stderr (``xentbench.console``): a bar on a terminal, a plain
line every few seconds in a log. TensorFlow's start-up messages are left out
unless ``-v`` (or ``XENTBENCH_TF_LOGS=1``).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

import impls
from xentbench import accuracy, console, inputs, quirks

#: (logits shape, class axis): empty batch, one class, binary, small and large
#: class counts, and a 3-D batch with the class axis in the middle.
SHAPES = (((0, 10), -1), ((1, 1), -1), ((7, 2), -1), ((1000, 10), -1),
          ((100, 1000), -1), ((8, 32000), -1), ((4, 6, 5), 1))
DTYPES = (np.float16, accuracy.BFLOAT16.type, np.float32, np.float64)
#: Two input regimes: "moderate" logits, uniform in [-5, 5], where even the
#: naive formulas are valid (their docstring), and "wide" logits, normal with
#: std 1000, which only the stable backends are expected to survive.
REGIMES = {"moderate": lambda rng, shape: rng.uniform(-5, 5, shape),
           "wide": lambda rng, shape: rng.standard_normal(shape) * 1000}
UNSTABLE = {"naive"}
#: The losses checked with their options, the shapes and the regime they are checked on (the
#: wide logits test the row statistics, which the options leave alone).
OPTION_FUNCTIONS = tuple(sorted(accuracy.SPARSE | accuracy.DENSE)) + ("sigmoid_cross_entropy_with_logits",)
OPTION_SHAPES = (((7, 2), -1), ((100, 1000), -1), ((4, 6, 5), 1))
OPTION_REGIME = "moderate"


def options_of(function: str, shape, axis: int) -> list:
    """``(name, options)`` of every option set ``function`` is checked with on logits of ``shape``."""
    if function == "sigmoid_cross_entropy_with_logits":
        return [(name, make(shape[-1])) for name, make in inputs.SIGMOID_OPTIONS.items()]
    classes = shape[-1 if function in accuracy.SPARSE else axis]
    found = [(name, inputs.loss_options(name, function, classes)) for name in inputs.LOSS_OPTIONS]
    return [(name, options) for name, options in found if options]


def row_name(function: str, options) -> str:
    """A function's row in the table: its name, with ``+options`` for its checks with options (one word)."""
    return function if options is None else f"{function}+options"
#: Seconds one call may take before its backend is failed as hanging (the largest case takes ~0.1 s).
CALL_TIMEOUT = 60.0


def add_arguments(parser) -> None:
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="check only this backend: a registered name (built-in, a plugin's entry point) "
                             "or a module path such as mypkg.myloss (repeatable; default: all registered)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=CALL_TIMEOUT, metavar="SECONDS",
                        help=f"time limit of one call (default {CALL_TIMEOUT:g}); a backend that hangs fails")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"show TensorFlow's start-up messages (also {console.TF_LOGS}=1)")


def make_inputs(function: str, shape, axis: int, dtype, rng, regime: str = "moderate"):
    """Seeded logits and the labels ``function`` takes (``None`` where it takes none)."""
    logits = np.clip(REGIMES[regime](rng, shape), -6e4, 6e4).astype(dtype)  # float16 max: 65504
    if function in accuracy.SPARSE:
        axis = -1
        return rng.integers(0, shape[axis], size=shape[:-1]), logits
    if function in accuracy.DENSE:
        raw = rng.random(shape)
        return (raw / raw.sum(axis=axis, keepdims=True)).astype(dtype), logits
    if function == "sigmoid_cross_entropy_with_logits":
        return rng.random(shape).astype(dtype), logits
    return None, logits


def call(backend, function: str, labels, logits, axis: int, options=None):
    fn = getattr(backend, function)
    if labels is None:
        return fn(logits, axis=axis)
    if function in accuracy.DENSE:
        return fn(labels, logits, axis=axis, **(options or {}))
    return fn(labels, logits, **(options or {}))


def within(seconds: float, fn, *args):
    """``fn(*args)``, or ``TimeoutError`` if it has not returned after ``seconds``.

    The call runs on a daemon thread, left behind if it hangs: a backend that
    never returns fails its row and the other backends are still checked.
    """
    box: dict = {}

    def target():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no result after {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def check(backends: list[str], seed: int = 0, timeout: float = CALL_TIMEOUT) -> list[dict]:
    """One row per backend x function: worst errors per dtype, against truth and TF.

    A row's status is ``pass``; ``FAIL`` with the worst case (dtype, shape,
    regime, error against the tolerance); ``error`` with what the backend
    raised, returned wrongly (``impls.BackendError``) or that it hung;
    ``not implemented`` where a plugin does not offer the function (per dtype,
    an ``n/i`` cell); or ``unavailable`` with the reason. A name that is
    neither registered nor a module path is a ``ValueError`` (``impls.get``).
    """
    loaded, rows = {}, []
    for name in backends:
        try:
            loaded[name] = impls.get(name)
        except impls.BackendUnavailable as exc:  # cannot import here
            rows.append(dict(backend=name, function="(all seven)", status=f"unavailable: {exc.__cause__ or exc}"))
    reference = loaded.get("tensorflow")
    if reference is None:
        try:
            reference = impls.get("tensorflow")
        except impls.BackendUnavailable:
            reference = None
    cases = [(f, shape, axis, dtype, regime, None) for f in accuracy.FUNCTIONS for shape, axis in SHAPES
             for dtype in DTYPES for regime in REGIMES]
    cases += [(f, shape, axis, dtype, OPTION_REGIME, option) for f in OPTION_FUNCTIONS
              for shape, axis in OPTION_SHAPES for option in options_of(f, shape, axis) for dtype in DTYPES]
    rows_of = [(f, None) for f in accuracy.FUNCTIONS] + [(f, "options") for f in OPTION_FUNCTIONS]
    results = {(name, row_name(f, o)): dict(backend=name, function=row_name(f, o), truth={}, tf={}, missing=set(),
                                            worst=(0.0, ""),
                                            status="pass" if backend.implements(f) else "not implemented")
               for name, backend in loaded.items() for f, o in rows_of}
    steps = console.track(cases, "verify", lambda c: f"{row_name(c[0], c[5])} {np.dtype(c[3]).name} {c[1]} {c[4]}")
    for done, (function, shape, axis, dtype, regime, option) in enumerate(steps, 1):
        rng = np.random.default_rng([seed, done])
        labels, logits = make_inputs(function, shape, axis, dtype, rng, regime)
        name_of_options, options = option or (None, None)
        if options and function in accuracy.SPARSE:
            labels = inputs.ignoring(labels, options)
        axis = -1 if function not in accuracy.WITH_AXIS else axis
        want = accuracy.truth(function, labels, logits, axis, options=options)
        tf_result = call(reference, function, labels, logits, axis, options) if reference else None
        key = np.dtype(dtype).name
        case = f"{key} {'x'.join(map(str, shape))} {regime} logits"
        if options:
            case += f", options {name_of_options}"
        for name, backend in loaded.items():
            row = results[(name, row_name(function, option))]
            if row["status"] != "pass" or (regime != "moderate" and name in UNSTABLE):
                continue
            try:
                got = within(timeout, call, backend, function, labels, logits, axis, options)
            except impls.NotImplementedByBackend:
                row["missing"].add(key)
                continue
            except Exception as exc:  # a failing backend is reported in its row
                row["status"] = f"error: {type(exc).__name__}: {exc} ({case})"
                continue
            for part, against, err in (
                    ("truth", "the truth", want.error(got)),
                    ("tf", "TensorFlow", None if tf_result is None else want.error(got, reference=tf_result))):
                if err is None:
                    continue
                row[part][key] = max(row[part].get(key, 0.0), err)
                ratio = err / accuracy.tolerance(key)
                if not ratio <= row["worst"][0]:
                    row["worst"] = (ratio, f"{key} error {err:.2g} against {against} is {ratio:.3g}x the "
                                           f"tolerance {accuracy.tolerance(key):g} ({case})")
    for row in results.values():
        if row["status"] == "pass" and not row["worst"][0] <= 1:
            row["status"] = f"FAIL: {row['worst'][1]}"
    return list(results.values()) + rows


def format_table(rows: list[dict]) -> str:
    names = [np.dtype(d).name for d in DTYPES]
    short = [n.replace("float", "f") for n in names]
    header = ["backend", "function"] + [f"truth:{n}" for n in short] + [f"TF:{n}" for n in short] + ["result"]
    lines = [header]
    for row in rows:
        errs = [row.get(part, {}).get(n) for part in ("truth", "tf") for n in names]
        missing = [n in row.get("missing", ()) for part in ("truth", "tf") for n in names]
        lines.append([row["backend"], row["function"]]
                     + ["n/i" if m else "-" if e is None else f"{e:.1e}" for e, m in zip(errs, missing)]
                     + [row["status"]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    tol = ", ".join(f"{n} {accuracy.tolerance(n):.0e}" for n in names)
    notes = [f"max relative error against the extended-precision truth and against TensorFlow;"
             f" tolerances (xentbench/accuracy.py): {tol}",
             f"{', '.join(sorted(UNSTABLE))}: checked on moderate logits only (unstable by design);"
             f" n/i: not implemented by that backend for that dtype"]
    return "\n".join(out + notes)


def format_reference() -> str:
    """The section "the reference on this machine": TensorFlow's settings, then each quirk found."""
    first, *rest = quirks.summary()
    return "\n".join([f"the reference on this machine: {first}"] + [f"  - {line}" for line in rest])


def run(args) -> int:
    console.import_tensorflow(verbose=args.verbose)  # before anything imports it, to quiet its start-up
    try:
        for name in args.backend or ():  # fail fast: one asked for by name must load, before ~900 checks
            impls.get(name)
    except (ValueError, impls.BackendUnavailable) as exc:
        print(f"xentbench verify: cannot run: {exc}", file=sys.stderr)
        return 2
    rows = check(args.backend or impls.names(), seed=args.seed, timeout=args.timeout)
    print(format_table(rows))
    print()
    print(format_reference())
    failed = [r for r in rows if r["status"].startswith(("FAIL", "error"))]
    return 1 if failed else 0
