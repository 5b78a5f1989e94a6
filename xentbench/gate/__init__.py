"""Gate a change: BASE's and HEAD's impls/ timed in turns, decided by statistics; exit 1 on a regression.

    xentbench gate BASE HEAD [--quick] [--function F] [--threshold 0.05] [--markdown FILE] [--json FILE]
    xentbench gate BASE HEAD --repo PATH --backend MODULE     # a plugin's own repository (``versions``)
    xentbench gate GOOD BAD --bisect                          # the first commit that regressed (``bisect``)
    xentbench gate ANCHOR HEAD --record FILE                  # append the ratios to a history (``history``)

BASE and HEAD are git revisions (``origin/main``, ``HEAD``, a hash) or
folders holding an ``impls/``. Their ``impls/`` are materialised
(``checkout.materialise``) into a cache folder (``--cache-dir``) per tree of
``impls/`` (``versions``), so each version keeps its own Numba disk cache and
two revisions with the same ``impls/`` compile it once, and measured
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
by default each combination's ``measure.default_share``, 4 s; spread over the
combinations left in proportion to those, at most ``MAX_SHARE`` times its even
share) lasts, or, while its median ratio lies beyond half the threshold (a
change is likely), up to ``measure.extra_share`` (``EXTRA_SHARE`` times 4 s).
A call of *slower* or *faster* is then confirmed (``measure.confirm``):
``CONFIRMATIONS`` fresh workers, one after the other (the first loads the two
copies the other way round), each time the combination again with a
sequential decision of its own (up to ``measure.extra_share``, beyond
``--budget``), and the call stands only when every one
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

The fused linear + cross-entropy (``--function linear``, as in ``bench``; not in
the default grid): ``linear_cross_entropy_and_grad``, forward and backward, on
``make_linear``'s float32 inputs, batch x hidden x vocabulary ``LINEAR_SHAPES``
(256x512x32000 and 256x1024x32000, 0.2-0.4 s a call, a few minutes for both;
``--quick``: the first; ``--shape NxDxV``: any of ``bench``'s linear grid, up to
seconds a call). Timed as the others, after the first calls, with the rounds of
long calls (``SLOW_ROUNDS`` a batch, ``MIN_SAMPLES`` samples of one call a turn,
one untimed call before each turn below ``timing.LONG_CALL``, none from it up),
each combination's default share of ``--budget`` and its ``extra_share``
``LINEAR_BUDGET_PER_COMBINATION`` (100 s: two batches on a quiet machine); its
accuracy is not judged (its extended-precision truth would take minutes;
``xentbench verify`` checks it).

History (``xentbench.gate.history``): ``--record FILE`` appends the run's
per-combination ratios as one JSON line; ``xentbench history FILE`` finds the
change points of each combination's series against a fixed anchor, and the
gate lists apart the combinations that FILE's A/A runs (BASE and HEAD the same
commit) show *unstable* (``--history``, default the ``--record`` file).

Exit status: 0 nothing slower, less accurate or failed; 1 a regression; 2 the
gate cannot run (an unknown revision, a worker that does not start).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from xentbench import checkout, machine
from xentbench.gate import bisect, history, output
from xentbench.gate.measure import (
    BUDGET_PER_COMBINATION, CONFIRMATIONS, DEFAULT_MODE, FIRST_ROUNDS, LINEAR_BUDGET_PER_COMBINATION, LINEAR_SHAPES,
    MODES, QUICK_SHAPES, GateError, Outcome, combinations, select_functions)
from xentbench.gate.session import Settings, header_of, judge
from xentbench.gate.stats import DEFAULT_METHOD, DEFAULT_THRESHOLD, METHODS
from xentbench.gate.versions import default_cache_dir, library
from xentbench.suite import DTYPES, FOCUS
from xentbench.targets import shape_label

__all__ = ["add_arguments", "run", "GateError", "Outcome", "combinations", "select_functions", "QUICK_SHAPES",
           "LINEAR_SHAPES", "FIRST_ROUNDS", "DEFAULT_MODE", "CONFIRMATIONS"]


# --------------------------------------------------------------------------- the command

def _shape(text: str) -> tuple[int, ...]:
    """``"256x1000"`` -> ``(256, 1000)``; the fused linear's ``"256x512x32000"`` -> ``(256, 512, 32000)``."""
    return tuple(int(n) for n in text.lower().split("x"))


def add_arguments(parser) -> None:
    parser.add_argument("base", help="the commit compared against (git revision, or a folder holding impls/); "
                                     "with --bisect the last good commit")
    parser.add_argument("head", help="the commit under test (git revision, or a folder holding impls/); "
                                     "with --bisect the first bad commit known")
    parser.add_argument("--backend", default=FOCUS,
                        help=f"the impls backend measured (default {FOCUS}); with --repo the backend's module "
                             "(pkg.module or pkg.module:attribute)")
    parser.add_argument("--repo", type=Path, default=None,
                        help="gate the backend module --backend of this git repository at BASE and HEAD, "
                             "instead of this checkout's impls/")
    parser.add_argument("--bisect", action="store_true",
                        help="find the first commit after BASE (good) up to HEAD (bad) that is slower, less "
                             "accurate or failing")
    parser.add_argument("--record", type=Path, default=None,
                        help="append this run's ratios per combination to this history (JSON lines)")
    parser.add_argument("--history", type=Path, default=None,
                        help="list apart the combinations its A/A runs show unstable (default: the --record file)")
    parser.add_argument("--function", action="append", default=[],
                        help="repeatable: an impls function, class or short name, or a group "
                             "(sparse, dense, grad); default: all seven. linear: the fused linear + "
                             "cross-entropy's forward and backward (linear_cross_entropy_and_grad), float32, "
                             "batch x hidden x vocabulary " + ", ".join(map(shape_label, LINEAR_SHAPES))
                             + " (0.2-0.4 s a call: a few minutes)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="logits dtype (default float32)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only batch x classes {', '.join(map(shape_label, QUICK_SHAPES))} "
                             f"(linear: {shape_label(LINEAR_SHAPES[0])})")
    parser.add_argument("--shape", action="append", default=[], type=_shape, metavar="BATCHxCLASSES",
                        help="repeatable: only these shapes of the grid (e.g. 256x1000); linear: "
                             "BATCHxHIDDENxVOCABULARY, any of bench's linear grid (e.g. 2048x512x32000)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"the smallest change that matters, relative (default {DEFAULT_THRESHOLD:g})")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds of timing rounds for the whole grid (default {BUDGET_PER_COMBINATION:g} "
                             f"per combination, {LINEAR_BUDGET_PER_COMBINATION:g} per linear one)")
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


def _fail(message) -> int:
    print(f"xentbench gate: error: {message}", file=sys.stderr)
    return 2


def source_root(args) -> Path:
    """The git repository whose commits are gated: ``--repo`` (checked), else this checkout."""
    if args.repo is None:
        return checkout.find_root()
    try:
        checkout.git(args.repo, "rev-parse", "--git-dir")
    except checkout.CheckoutError:
        raise GateError(f"--repo {args.repo}: not a git repository") from None
    return args.repo.resolve()


def settings_of(args) -> Settings:
    return Settings(args.threshold, args.budget, args.rounds, args.method, args.mode, args.fixed_rounds,
                    args.backend if args.repo is not None else None)


def run(args) -> int:
    started = time.perf_counter()
    try:
        if not 0 < args.threshold < 1:
            raise GateError("--threshold must be in (0, 1)")
        combos = combinations(select_functions(args.function), args.dtype, args.quick, args.shape)
        if not combos:
            raise GateError("no combination on the grid for these options")
        root = source_root(args)
        cache_dir = args.cache_dir or default_cache_dir()
        settings = settings_of(args)
        if args.bisect:
            return bisect.run(args, combos, settings, root, cache_dir)  # GateError: exit 2 below
        module = settings.module
        (base_dir, base_commit), (head_dir, head_commit) = (
            library(args.base, "base", cache_dir, root, module), library(args.head, "head", cache_dir, root, module))
        if args.history is not None and not args.history.is_file():
            raise GateError(f"--history {args.history}: no such file")
        unstable = history.unstable(args.history or args.record, args.backend, args.dtype, args.threshold,
                                    machine.cpu())
    except (GateError, RuntimeError, FileNotFoundError, ValueError) as exc:
        return _fail(exc)
    header = header_of(args, settings, combos, base_commit, head_commit)
    progress = output.Progress(len(combos))
    try:
        outcomes = judge([base_dir, head_dir], combos, args.dtype, args.backend, settings, progress)
    except (GateError, RuntimeError) as exc:
        return _fail(exc)
    finally:
        progress.stop()
    header["seconds"] = round(time.perf_counter() - started, 1)
    code = 1 if any(o.regression for o in outcomes) else 0
    header["exit"] = code
    header["unstable"] = unstable
    output.print_table(outcomes, header)
    if args.markdown:
        args.markdown.write_text(output.markdown(outcomes, header))
    if args.json:
        args.json.write_text(output.to_json(outcomes, header))
    if args.record:
        history.record(args.record, outcomes, header)
    return code
