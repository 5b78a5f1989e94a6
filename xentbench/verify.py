"""Cross-check every available backend against the extended-precision truth, beside TensorFlow.

Runs each of the seven functions of every backend over a grid of shapes and
dtypes, and the losses again with each of their options (``xentbench.inputs``'s
``LOSS_OPTIONS`` and ``SIGMOID_OPTIONS``, a row ``<function>+options``
each), judges every result against the extended-precision truth
(``xentbench.accuracy``'s error model: *pass* within the tolerance, *less
accurate than TensorFlow* within the backward-stable bound, *FAIL* beyond it),
and prints, within 100 columns: one table (backend x function, the worst error
in ulps per dtype, the verdict), a note for every row that is not a plain
pass, what the reference does on this machine (its settings and the known
quirks the probe of ``xentbench.quirks`` found), and last the overall verdict.
Exit status 1 if any backend fails or raises, 0 otherwise, and 2 before any
check when a backend asked for by ``--backend`` is unknown or cannot import
(the message says why). A quirk of the reference is reported, not failed: the
grid's inputs are finite and within 6e4, where no known quirk shows. Without
``--backend``, a registered backend that cannot import is reported in its
rows, as is one that raises; the others still run.

Progress goes to stderr (``xentbench.console``): a bar on a terminal, a plain
line every few seconds in a log. TensorFlow's start-up messages are left out
unless ``-v`` (or ``XENTBENCH_TF_LOGS=1``).
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from dataclasses import dataclass

import numpy as np

import impls
from xentbench import accuracy, console, inputs, quirks
from xentbench.suite import REFERENCE, SHORT_NAMES

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
#: The project's own backends: held to no worse than TensorFlow, a "less accurate" result fails them.
STRICT = set(impls.BUILTIN) - {REFERENCE}
#: The terminal width the output fits.
WIDTH = 100
#: The losses checked with their options, the shapes and the regime they are checked on (the
#: wide logits test the row statistics, which the options leave alone).
OPTION_FUNCTIONS = tuple(sorted(accuracy.SPARSE | accuracy.DENSE)) + ("sigmoid_cross_entropy_with_logits",)
OPTION_SHAPES = (((7, 2), -1), ((100, 1000), -1), ((4, 6, 5), 1))
OPTION_REGIME = "moderate"
#: The fused linear + cross-entropy's ``(batch, hidden size, vocabulary)``, and its options: none,
#: then all of them at once (the softcap as Gemma 2's, 30).
LINEAR_SHAPES = ((1, 8, 3), (64, 32, 1000), (16, 64, 32000))
LINEAR_OPTIONS = (None, ("all", dict(label_smoothing=0.1, ignore_index=inputs.IGNORE_INDEX, z_loss=1e-3,
                                     reduction="mean", softcap=30.0)))


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
    parser.add_argument("--json", action="store_true",
                        help="print the rows as JSON instead of the table (the report's accuracy table reads it)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"show TensorFlow's start-up messages (also {console.TF_LOGS}=1)")


def make_inputs(function: str, shape, axis: int, dtype, rng, regime: str = "moderate"):
    """Seeded logits and the labels ``function`` takes (``None`` where it takes none); for the fused
    linear + cross-entropy ``(hidden, weight, bias)`` in the logits' place, logits of a few units
    (moderate) or of a few tens (wide: where a softcap of 30 bites)."""
    if function in impls.LINEAR_FUNCTIONS:
        batch, size, vocabulary = shape
        scale = (2 if regime == "moderate" else 50) / np.sqrt(size)
        return rng.integers(0, vocabulary, batch), (rng.standard_normal((batch, size)).astype(dtype),
                                                    (rng.standard_normal((vocabulary, size)) * scale).astype(dtype),
                                                    rng.standard_normal(vocabulary).astype(dtype))
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
    if function in impls.LINEAR_FUNCTIONS:
        return fn(labels, *logits, **(options or {}))
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
    """One row per backend x function: its verdict, and its worst errors in ulps per dtype and regime.

    Every result is judged against the extended-precision truth (``accuracy.judge``).
    A row's ``status``: ``pass``; ``less accurate`` (beyond the tolerance, within the
    backward-stable bound: correct for the input's precision, but less accurate than
    TensorFlow) for a plugin or a peer, ``FAIL`` for the project's own backends, which
    must be no worse than TensorFlow; ``FAIL`` beyond the bound; ``error`` with what the
    backend raised, returned wrongly (``impls.BackendError``) or that it hung; ``not
    implemented`` where a plugin does not offer the function (per dtype, an ``n/i``
    cell); or ``unavailable`` with the reason. ``ulps`` maps ``(dtype, regime)`` to the
    worst error in ulps; ``worst`` maps a dtype to its worst case beyond the tolerance
    (``Case``); ``verdict`` is the status in words (``verdict``).
    A name that is neither registered nor a module path is a ``ValueError`` (``impls.get``).
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
    cases += [(f, shape, -1, dtype, regime, option) for shape in LINEAR_SHAPES for dtype in DTYPES
              for regime in REGIMES for option in LINEAR_OPTIONS for f in impls.LINEAR_FUNCTIONS]
    rows_of = ([(f, None) for f in accuracy.FUNCTIONS] + [(f, "options") for f in OPTION_FUNCTIONS]
               + [(f, None) for f in impls.LINEAR_FUNCTIONS])
    results = {(name, row_name(f, o)): dict(backend=name, function=row_name(f, o), ulps={}, worst={},
                                            missing=set(), strict=name in STRICT,
                                            status="pass" if backend.implements(f) else "not implemented")
               for name, backend in loaded.items() for f, o in rows_of}
    steps = console.track(cases, "verify", lambda c: f"{row_name(c[0], c[5])} {np.dtype(c[3]).name} {c[1]} {c[4]}")
    shared = None  # the two fused functions' adjacent cases share their inputs and truth
    for done, (function, shape, axis, dtype, regime, option) in enumerate(steps, 1):
        name_of_options, options = option or (None, None)
        linear = function in impls.LINEAR_FUNCTIONS
        if linear and shared and shared[0] == (shape, dtype, regime, name_of_options):
            _, labels, logits, want = shared
        else:
            rng = np.random.default_rng([seed, done])
            labels, logits = make_inputs(function, shape, axis, dtype, rng, regime)
            if options and (function in accuracy.SPARSE or linear):
                labels = inputs.ignoring(labels, options)
            if linear:
                want = accuracy.linear_truth(labels, *logits, options=options)
                shared = (shape, dtype, regime, name_of_options), labels, logits, want
        axis = -1 if function not in accuracy.WITH_AXIS else axis
        if linear:
            if function == "linear_cross_entropy":  # the loss alone
                want = accuracy.Truth(function, *(parts[:1] for parts in (want.values, want.scales, want.bounds)),
                                      want.dtype)
            option = None  # one row per linear function, with and without its options
        else:
            want = accuracy.truth(function, labels, logits, axis, options=options)
        tf = accuracy.judge(want, call(reference, function, labels, logits, axis, options)) if reference else None
        key = np.dtype(dtype).name
        case = f"{'x'.join(map(str, shape))} {regime} logits"
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
                row["status"] = f"error: {type(exc).__name__}: {exc} ({key} {case})"
                continue
            judged = accuracy.judge(want, got, tf)
            row["ulps"][key, regime] = max(row["ulps"].get((key, regime), 0.0), judged.ulps)
            if judged.status != "pass" and Case.rank(judged) > Case.rank(row["worst"].get(key)):
                row["worst"][key] = Case(judged.status, judged.ulps, None if tf is None else tf.ulps, judged.stability,
                                         case)
    for row in results.values():
        if row["status"] == "pass" and row["missing"] and not row["ulps"]:  # nothing ran: no verdict to give
            row["status"] = "not implemented"
        if row["status"] == "pass" and row["worst"]:
            statuses = [c.status for c in row["worst"].values()]
            row["status"] = "FAIL" if "FAIL" in statuses or row["strict"] else "less accurate"
        row["verdict"] = verdict(row)
    return list(results.values()) + rows


@dataclass(frozen=True)
class Case:
    """A row's worst case of one dtype beyond the tolerance."""

    status: str  # accuracy.VERDICTS' "less accurate" or "FAIL"
    ulps: float
    tf_ulps: float | None  # TensorFlow's error on the same inputs (None: not available)
    stability: float  # the error over the backward-stable bound
    case: str  # the shape, regime and options

    @staticmethod
    def rank(judged) -> tuple:
        """Worse verdicts first, then the larger error over the bound (``-1`` for none)."""
        return (-1, 0.0) if judged is None else (accuracy.VERDICTS.index(judged.status), judged.stability)

    def times_tensorflow(self) -> float | None:
        """How many times TensorFlow's error in ulps (taken as at least half an ulp, correct rounding's)."""
        return None if self.tf_ulps is None else self.ulps / max(self.tf_ulps, 0.5)

    def describe(self, dtype: str) -> str:
        tf = "" if self.tf_ulps is None else f" (TensorFlow {accuracy.format_ulps(self.tf_ulps)})"
        return (f"{dtype} {accuracy.format_ulps(self.ulps)} ulp{tf}, {times(self.stability)} the backward-stable "
                f"bound, {self.case}")


def verdict(row: dict) -> str:
    """The row's status in words: ``FAIL`` with every failing dtype, "less accurate" with its ratio to
    TensorFlow's error in ulps (the table's cell stops before " by")."""
    status, worst = row["status"], row.get("worst", {})
    if status == "FAIL":
        failing = [d for d, c in worst.items() if c.status == "FAIL" or row["strict"]]
        return f"FAIL: {', '.join(failing)}"
    if status == "less accurate":
        ratios = [r for r in (c.times_tensorflow() for c in worst.values()) if r is not None]
        return "pass, less accurate than TensorFlow" + (f" by {times(max(ratios))}" if ratios else "")
    return status.partition(":")[0]


def times(ratio: float) -> str:
    return f"{ratio:.2g}x" if ratio < 100 else f"{ratio:.0f}x" if ratio < 1e5 else f"{ratio:.1e}x"


def notes(row: dict) -> list[str]:
    """What a row that is not a plain pass means: its worst case per dtype, or its error."""
    name = f"{row['backend']} {row['function']}"
    if row["status"] in ("FAIL", "less accurate"):
        why = ("the project's own backends must be no worse than TensorFlow" if row["strict"]
               and all(c.status != "FAIL" for c in row["worst"].values()) else
               "beyond what a backward-stable algorithm gives" if row["status"] == "FAIL" else
               "beyond the tolerance, within what the input's precision allows")
        return [f"{name}: {row['verdict']} ({why}): "
                + "; ".join(c.describe(d) for d, c in row["worst"].items())]
    if row["status"].startswith(("error", "unavailable")):
        return [f"{name}: {row['status']}"]
    return []


def format_table(rows: list[dict]) -> str:
    """The terminal table: one line per backend x function, worst ulps per dtype, the verdict; then notes."""
    names = [np.dtype(d).name for d in DTYPES]
    header = ["backend", "function"] + [n.replace("float", "f") for n in names] + ["verdict"]
    lines = [header]
    for row in rows:
        cells = []
        for n in names:
            errs = [e for (d, _), e in row.get("ulps", {}).items() if d == n]
            cells.append("n/i" if n in row.get("missing", ()) else accuracy.format_ulps(max(errs)) if errs else "-")
        function, plus, options = row["function"].partition("+")
        lines.append([row["backend"], SHORT_NAMES.get(function, function) + plus + options] + cells
                     + [row["verdict"].partition(" by ")[0] if "verdict" in row else row["status"].partition(":")[0]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) if i < 2 or i == len(header) - 1 else cell.rjust(w)
                     for i, (cell, w) in enumerate(zip(line, widths))).rstrip() for line in lines]
    legend = [f"the worst error against the extended-precision truth, in ulps of the result's dtype; verdicts: "
              f"pass within the tolerance ({', '.join(f'{n} {accuracy.tolerance(n):.0e}' for n in names)} "
              f"relative), less accurate than TensorFlow within what a backward-stable algorithm gives, FAIL "
              f"beyond (xentbench/accuracy.py); n/i: not implemented by that backend for that dtype"]
    if any(r["backend"] in UNSTABLE for r in rows):
        legend.append(f"{', '.join(sorted(UNSTABLE))}: checked on moderate logits only (unstable by design)")
    details = [n for row in rows for n in notes(row)]
    return "\n".join(out + [""] + wrap(legend + details))


def plain(row: dict) -> dict:
    """A row as JSON holds it: backend, function, verdict, and the worst ulps by ``"dtype regime"``."""
    return dict(backend=row["backend"], function=row["function"], verdict=row.get("verdict", row["status"]),
                ulps={f"{d} {r}": e for (d, r), e in row.get("ulps", {}).items()})


def wrap(paragraphs: list[str]) -> list[str]:
    """Each paragraph wrapped to ``WIDTH`` columns, continuation lines indented."""
    return [line for p in paragraphs for line in textwrap.wrap(p, WIDTH, subsequent_indent="  ",
                                                                  break_on_hyphens=False)]


def overall(rows: list[dict]) -> str:
    """The one-line verdict of the whole run: the last line ``verify`` prints."""
    named = {s: [f"{r['backend']}.{r['function']}" for r in rows if r["status"].startswith(s)]
             for s in ("FAIL", "error", "less accurate")}
    bad = named["FAIL"] + named["error"]
    if bad:
        return f"verify: FAIL ({len(bad)} of {len(rows)} rows): {', '.join(bad)}"
    less = f"; less accurate than TensorFlow: {', '.join(named['less accurate'])}" if named["less accurate"] else ""
    return f"verify: pass ({len(rows)} rows{less})"


def format_reference() -> str:
    """The section "the reference on this machine": TensorFlow's settings, then each quirk found."""
    first, *rest = quirks.summary()
    return "\n".join(wrap([f"the reference on this machine: {first}"] + [f"- {line}" for line in rest]))


def run(args) -> int:
    console.import_tensorflow(verbose=args.verbose)  # before anything imports it, to quiet its start-up
    try:
        for name in args.backend or ():  # fail fast: one asked for by name must load, before ~900 checks
            impls.get(name)
    except (ValueError, impls.BackendUnavailable) as exc:
        print(f"xentbench verify: cannot run: {exc}", file=sys.stderr)
        return 2
    rows = check(args.backend or impls.names(), seed=args.seed, timeout=args.timeout)
    if args.json:
        print(json.dumps([plain(row) for row in rows]))
    else:
        print(format_table(rows))
        print()
        print(format_reference())
        print(overall(rows))
    failed = [r for r in rows if r["status"].startswith(("FAIL", "error"))]
    return 1 if failed else 0
