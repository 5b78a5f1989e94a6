"""Gate a change: BASE's and HEAD's impls/ timed in turns, decided by statistics; exit 1 on a regression.

    xentbench gate BASE HEAD [--quick] [--function F] [--threshold 0.05] [--markdown FILE] [--json FILE]

BASE and HEAD are git revisions (``origin/main``, ``HEAD``, a hash) or
folders holding an ``impls/``. Their ``impls/`` are materialised
(``checkout.materialise``) into a cache folder of their own each
(``--cache-dir``), so each copy keeps its own Numba disk cache, and measured
with the instruments of this checkout: the grid, the inputs
(``xentbench.inputs``), the timing and the error measure.

Timing (``--mode inprocess``, the default): one worker process
(``xentbench.gate.worker``) loads both copies, each under its own set of
modules, and gets the same inputs for both. After the first calls
(compilation, untimed), each round gives each version ``LEAD_IN`` seconds of
untimed calls, then times ``SAMPLES`` samples of each (about 1 ms of calls a
sample; fewer samples for long calls), alternating sample by sample, BASE
first in even rounds and HEAD first in odd ones; a version's time in the round
is its fastest sample. One round gives one ratio HEAD/BASE: a change of the
machine's load moves both times of a round alike. ``--mode processes`` runs
one worker per version, alternating whole turns over pipes; on this project's
2-core machine its A/A ratios spread several times wider (``benchmarks/NOTES.md``
entry 13), so it is kept only to measure that.

Decision (``xentbench.gate.stats``): after ``--rounds`` rounds, the
interval of the median log-ratio decides slower, faster, same or undecided
against ``--threshold``; an undecided combination gets more batches of
rounds while its share of ``--budget`` (seconds of timing for the whole grid,
spread over the combinations left, at most ``MAX_SHARE`` times an even
share) lasts, or, while its median ratio lies beyond half the threshold (a
change is likely), up to ``EXTRA_SHARE`` times a combination's default share.
A call of *slower* or *faster* is then confirmed (``measure.confirm``):
``CONFIRMATIONS`` fresh workers, one after the other (the first loads the two
copies the other way round), each time the combination again with a
sequential decision of its own (up to ``EXTRA_SHARE`` times a combination's
default share, beyond ``--budget``), and the call stands only when every one
makes it again; otherwise the combination is undecided. A bias that lives as
long as one worker process (``benchmarks/NOTES.md`` entries 13 and 20) is
drawn afresh by each; a change in the code shows in all. What stays undecided is reported
as undecided: it neither fails nor passes the gate silently.

Accuracy and failures, as ``xentbench compare`` judges them: on the accuracy
grid, the error of each version's result against the extended-precision truth
(``xentbench.accuracy``), HEAD *less accurate* when larger than BASE's by more
than 1e-6 relative; a function that raises in HEAD and not in BASE *failed*,
as does one that crashes the worker (a segfault, an abort: ``measure.isolate``
loads the combination in each version alone to tell which crashed it).

Grid: ``--backend`` (numba), ``--function`` (repeatable: an ``impls`` function,
a benchmark class name, a short name; ``sparse``, ``dense`` and ``grad`` are
groups, as in ``bench``), ``--dtype`` (float32), the suite's timing grid;
``--quick``: batch x classes ``QUICK_SHAPES`` only.

Exit status: 0 nothing slower, less accurate or failed; 1 a regression; 2 the
gate cannot run (an unknown revision, a worker that does not start).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from xentbench import checkout, machine
from xentbench.gate import output
from xentbench.gate.measure import (
    BUDGET_PER_COMBINATION, CONFIRMATIONS, EXTRA_SHARE, DEFAULT_MODE, FIRST_ROUNDS, MAX_SHARE, MIN_SHARE, MODES,
    QUICK_SHAPES, GateError, Outcome, Pair, WorkerDied, combinations, confirm,
    default_cache_dir, isolate, library, measure, select_functions)
from xentbench.gate.stats import CONFIDENCE, DEFAULT_METHOD, DEFAULT_THRESHOLD, METHODS
from xentbench.suite import DTYPES, FOCUS, SHORT_NAMES

__all__ = ["add_arguments", "run", "GateError", "Outcome", "combinations", "select_functions", "QUICK_SHAPES",
           "FIRST_ROUNDS", "DEFAULT_MODE", "CONFIRMATIONS"]


# --------------------------------------------------------------------------- the command

def _shape(text: str) -> tuple[int, int]:
    batch, _, classes = text.lower().partition("x")
    return int(batch), int(classes)


def add_arguments(parser) -> None:
    parser.add_argument("base", help="the commit compared against (git revision, or a folder holding impls/)")
    parser.add_argument("head", help="the commit under test (git revision, or a folder holding impls/)")
    parser.add_argument("--backend", default=FOCUS, help=f"the impls backend measured (default {FOCUS})")
    parser.add_argument("--function", action="append", default=[],
                        help="repeatable: an impls function, class or short name, or a group "
                             "(sparse, dense, grad); default: all seven")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="logits dtype (default float32)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only batch x classes {', '.join(f'{b}x{c}' for b, c in QUICK_SHAPES)}")
    parser.add_argument("--shape", action="append", default=[], type=_shape, metavar="BATCHxCLASSES",
                        help="repeatable: only these shapes of the grid (e.g. 256x1000)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"the smallest change that matters, relative (default {DEFAULT_THRESHOLD:g})")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds of timing rounds for the whole grid (default {BUDGET_PER_COMBINATION:g} "
                             "per combination)")
    parser.add_argument("--rounds", type=int, default=FIRST_ROUNDS,
                        help=f"rounds before the first decision and per extra batch (default {FIRST_ROUNDS})")
    parser.add_argument("--markdown", type=Path, help="write a pull-request comment in Markdown here")
    parser.add_argument("--json", type=Path, help="write every combination's figures and raw ratios here")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                        help=f"two worker processes in turns, or both copies in one (default {DEFAULT_MODE})")
    parser.add_argument("--method", choices=sorted(METHODS), default=DEFAULT_METHOD,
                        help=f"the interval the decision uses (default {DEFAULT_METHOD})")
    parser.add_argument("--fixed-rounds", type=int, default=None,
                        help="experiments: exactly this many rounds per combination, no early decision")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where materialised commits and their Numba caches live "
                             "(default ~/.cache/xentbench/gate)")


def run(args) -> int:
    started = time.perf_counter()
    try:
        if not 0 < args.threshold < 1:
            raise GateError("--threshold must be in (0, 1)")
        combos = combinations(select_functions(args.function), args.dtype, args.quick, args.shape)
        if not combos:
            raise GateError("no combination on the grid for these options")
        root = checkout.find_root()
        cache_dir = args.cache_dir or default_cache_dir()
        (base_dir, base_name), (head_dir, head_name) = (
            library(args.base, "base", cache_dir, root), library(args.head, "head", cache_dir, root))
        if base_dir == head_dir:
            raise GateError("BASE and HEAD are the same folder; give two folders")
        per = BUDGET_PER_COMBINATION
        budget = args.budget if args.budget is not None else per * len(combos)
        folders = [base_dir, head_dir]
    except (GateError, FileNotFoundError) as exc:
        print(f"xentbench gate: error: {exc}", file=sys.stderr)
        return 2
    header = {"base": args.base, "base_commit": base_name, "head": args.head, "head_commit": head_name,
              "backend": args.backend, "dtype": args.dtype, "quick": args.quick, "threshold": args.threshold,
              "budget": budget, "mode": args.mode, "method": args.method, "confidence": CONFIDENCE,
              "confirmations": CONFIRMATIONS,
              "cpu": machine.cpu(), "vector_width": machine.vector_width(), "cores": os.cpu_count()}
    outcomes: list[Outcome] = []
    progress = output.Progress(len(combos))
    pair = None
    try:
        with tempfile.TemporaryDirectory(prefix="xentbench-gate-") as work:
            pair = Pair(folders, args.mode)
            spent = 0.0
            for i, (f, b, c) in enumerate(combos):
                share = max(MIN_SHARE, min(MAX_SHARE * budget / len(combos), (budget - spent) / (len(combos) - i)))
                progress.start(f"{SHORT_NAMES[f]} {b}x{c}")
                outcome = Outcome(f, b, c, args.dtype, args.backend)
                try:
                    measure(pair, outcome, Path(work), share, args.threshold, args.method, args.rounds,
                            args.fixed_rounds, EXTRA_SHARE * per)
                except WorkerDied:  # which version crashed it: a failure, not a gate that cannot run
                    pair.close()
                    pair = None
                    isolate(folders, outcome, Path(work))
                    pair = Pair(folders, args.mode)
                spent += outcome.timing_seconds
                outcomes.append(outcome)
                progress.done(outcome)
            pair.close()
            pair = None
            for k in range(CONFIRMATIONS):  # each call confirmed by fresh workers, the first loading HEAD first
                called = [o for o in outcomes if o.timing in ("slower", "faster") and not args.fixed_rounds]
                if not called:
                    break
                progress.add(len(called))
                pair = Pair(folders, args.mode, swapped=k % 2 == 0)
                for outcome in called:
                    progress.start(f"confirm {outcome.name}")
                    confirm(pair, outcome, Path(work), EXTRA_SHARE * per, args.threshold, args.method,
                            args.rounds)
                    progress.done(outcome)
                pair.close()
                pair = None
    except (GateError, RuntimeError) as exc:
        progress.stop()
        print(f"xentbench gate: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if pair is not None:
            pair.close()
    progress.stop()
    header["seconds"] = round(time.perf_counter() - started, 1)
    code = 1 if any(o.regression for o in outcomes) else 0
    header["exit"] = code
    output.print_table(outcomes, header)
    if args.markdown:
        args.markdown.write_text(output.markdown(outcomes, header))
    if args.json:
        args.json.write_text(output.to_json(outcomes, header))
    return code
