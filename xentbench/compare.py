"""Compare the recorded benchmark results of two commits; exit 1 on any regression.

    xentbench compare BASE HEAD [--factor 1.15]

BASE and HEAD are git revisions (or hash prefixes) whose results
``xentbench bench`` recorded under ``.asv/results``. Every benchmark and
parameter combination measured in both is judged:

* time_ and peakmem_ (and track_ benchmarks in seconds or bytes, such as the
  Numba first-call latency): *slower* when HEAD / BASE > FACTOR, *faster* when
  < 1 / FACTOR. For time_ results that carry asv's interquartile range, a
  change also needs the two ranges not to overlap (HEAD's 25th percentile above
  BASE's 75th); one beyond the factor but within that spread is listed as
  *noisy* and does not fail. ``--no-stats`` judges by the factor alone.
* paired speed-ups (track_ in unit "speedup", ``bench_paired``: numba's speed
  over a baseline, higher is better): *slower* when BASE / HEAD > FACTOR,
  *faster* when < 1 / FACTOR; the ratio shown is BASE / HEAD.
* accuracy (track_ in unit "relative error"): *less accurate* when HEAD >
  BASE * (1 + EPS) + 1e-30 with EPS = ``--accuracy-epsilon`` (default 1e-6).
  The figures are deterministic (fixed seeds, fixed inputs, the same
  extended-precision truth), so any real change in the numerics shows; the
  epsilon only absorbs the JSON round trip and threading jitter in a last
  digit. A NaN or infinite error where BASE had a finite one is less accurate
  (the suite records an infinite error as 1e30, which the rule above catches).
* a combination that ran in BASE and fails in HEAD is *failed*.

Timings from separate runs on a shared machine are not a regression
verdict: the load drifts between runs (identical code measured 0.47x-5.4x
apart, issue 15), so ``compare`` is for history; ``xentbench gate`` times
BASE and HEAD in turns and decides by statistics. Accuracy and failures are
deterministic and exact either way.

Exit status: 1 when anything is slower, less accurate or failed; 2 when the
results cannot be read (a missing commit, a corrupt or truncated file: the
message names it); 0 otherwise. Combinations skipped in either commit, present
in only one, or whose benchmark code changed between the two (asv's version
hash) are counted, not judged.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from xentbench import asvresults
from xentbench.asvresults import Result, ResultFile, ResultsError
from xentbench.suite import is_accuracy, is_speedup

DEFAULT_FACTOR = 1.15
DEFAULT_ACCURACY_EPSILON = 1e-6
ACCURACY_FLOOR = 1e-30  # absolute slack: an error of exactly 0 may become 1e-31 by formatting

#: printed with every comparison: what its timings are worth
NOT_A_VERDICT = ("Note: timings from separate runs on a shared machine are not a regression verdict "
                 "(the load drifts between runs); use `xentbench gate BASE HEAD` for that. "
                 "Accuracy and failures are exact.")
#: verdicts that fail the comparison, in the order they are printed
REGRESSIONS = ("slower", "less accurate", "failed")
IMPROVEMENTS = ("faster", "more accurate", "fixed")
SECTIONS = {
    "slower": "Slower (HEAD / BASE > factor)",
    "less accurate": "Less accurate (larger error against the truth)",
    "failed": "Failed in HEAD (ran in BASE)",
    "faster": "Faster",
    "more accurate": "More accurate",
    "fixed": "Fixed (failed in BASE, runs in HEAD)",
    "noisy": "Beyond the factor but within the samples' spread (not failing; --no-stats to count them)",
    "still failing": "Failing in both",
}


@dataclass(frozen=True)
class Change:
    """The verdict on one benchmark and parameter combination."""

    label: str
    verdict: str  # slower, faster, less accurate, more accurate, failed, fixed, noisy,
    #               unchanged, still failing, skipped, changed code, only in base, only in head
    before: Result | None
    after: Result | None
    ratio: float | None = None

    @property
    def regression(self) -> bool:
        return self.verdict in REGRESSIONS


def judge(before: Result, after: Result, factor: float = DEFAULT_FACTOR, use_stats: bool = True,
          epsilon: float = DEFAULT_ACCURACY_EPSILON) -> Change:
    """The verdict on one combination measured (or attempted) in both commits."""
    label = after.label
    if before.version and after.version and before.version != after.version:
        return Change(label, "changed code", before, after)
    statuses = (before.status, after.status)
    if "skipped" in statuses:
        return Change(label, "skipped", before, after)
    if statuses == ("failed", "failed"):
        return Change(label, "still failing", before, after)
    if after.status == "failed":
        return Change(label, "failed", before, after)
    if before.status == "failed":
        return Change(label, "fixed", before, after)
    b, a = before.value, after.value
    if is_accuracy(after):
        ratio = a / b if b else (1.0 if a == b else math.inf)
        if math.isnan(a) or (math.isinf(a) and not math.isinf(b)):
            return Change(label, "less accurate", before, after, ratio)
        if a > b * (1 + epsilon) + ACCURACY_FLOOR:
            return Change(label, "less accurate", before, after, ratio)
        if a * (1 + epsilon) + ACCURACY_FLOOR < b:
            return Change(label, "more accurate", before, after, ratio)
        return Change(label, "unchanged", before, after, ratio)
    if is_speedup(after):
        a, b = b, a  # numba's speed-up falling is numba getting slower
    ratio = a / b if b > 0 else (1.0 if a == b else math.inf)
    if ratio > factor:
        verdict = "slower"
        if use_stats and before.quartiles and after.quartiles and after.quartiles[0] <= before.quartiles[1]:
            verdict = "noisy"
    elif ratio < 1 / factor:
        verdict = "faster"
        if use_stats and before.quartiles and after.quartiles and after.quartiles[1] >= before.quartiles[0]:
            verdict = "noisy"
    else:
        verdict = "unchanged"
    return Change(label, verdict, before, after, ratio)


def compare(base: ResultFile, head: ResultFile, factor: float = DEFAULT_FACTOR, use_stats: bool = True,
            epsilon: float = DEFAULT_ACCURACY_EPSILON) -> list[Change]:
    """Every combination of either file, judged."""
    changes = []
    for key in sorted(set(base.results) | set(head.results)):
        before, after = base.results.get(key), head.results.get(key)
        if after is None:
            changes.append(Change(before.label, "only in base", before, None))
        elif before is None:
            changes.append(Change(after.label, "only in head", None, after))
        else:
            changes.append(judge(before, after, factor, use_stats, epsilon))
    return changes


def format_value(result: Result | None) -> str:
    if result is None:
        return "-"
    if result.status != "ok":
        return result.status
    v = result.value
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if result.unit == "seconds":
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
            if abs(v) >= scale or suffix == "ns":
                return f"{v / scale:.3g}{suffix}"
    if result.unit == "bytes":
        for scale, suffix in ((2**30, "G"), (2**20, "M"), (2**10, "k"), (1, "")):
            if abs(v) >= scale or suffix == "":
                return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def format_table(changes: list[Change]) -> list[str]:
    rows = [("before", "after", "ratio", "benchmark")]
    for c in sorted(changes, key=lambda c: -(c.ratio or 0) if c.ratio is not None else 0):
        ratio = "" if c.ratio is None else f"{c.ratio:.3g}" if math.isfinite(c.ratio) else str(c.ratio)
        rows.append((format_value(c.before), format_value(c.after), ratio, c.label))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return ["  " + "  ".join(r[i].rjust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]


def add_arguments(parser) -> None:
    parser.add_argument("base", help="the commit compared against (git revision or hash prefix)")
    parser.add_argument("head", help="the commit under test")
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                        help=f"time/peakmem ratio beyond which a change counts (default {DEFAULT_FACTOR})")
    parser.add_argument("--accuracy-epsilon", type=float, default=DEFAULT_ACCURACY_EPSILON,
                        help="relative increase of an error figure tolerated as noise "
                             f"(default {DEFAULT_ACCURACY_EPSILON:g})")
    parser.add_argument("--no-stats", action="store_true",
                        help="judge time by the factor alone, not also by the samples' spread")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="asv results directory (default: results_dir of asv.conf.json, .asv/results)")
    parser.add_argument("--machine", default=None, help="asv machine name, when several recorded a commit")
    parser.add_argument("--all", action="store_true", help="also list the unchanged combinations")


def run(args) -> int:
    if args.factor <= 1:
        print("xentbench compare: error: --factor must be > 1", file=sys.stderr)
        return 2
    results_dir = args.results_dir or asvresults.default_results_dir()
    try:
        base = asvresults.load_commit(results_dir, args.base, args.machine)
        head = asvresults.load_commit(results_dir, args.head, args.machine)
    except ResultsError as exc:
        print(f"xentbench compare: error: {exc}", file=sys.stderr)
        return 2
    changes = compare(base, head, args.factor, not args.no_stats, args.accuracy_epsilon)
    print(f"BASE {args.base} = {base.commit_hash[:8]} ({base.path})")
    print(f"HEAD {args.head} = {head.commit_hash[:8]} ({head.path})")
    print(f"factor {args.factor:g} on time and memory, accuracy epsilon {args.accuracy_epsilon:g} "
          f"(relative){'' if not args.no_stats else ', no stats'}")
    print(NOT_A_VERDICT)
    by_verdict: dict[str, list[Change]] = {}
    for c in changes:
        by_verdict.setdefault(c.verdict, []).append(c)
    shown = list(SECTIONS) + (["unchanged"] if args.all else [])
    for verdict in shown:
        group = by_verdict.get(verdict, [])
        if group:
            title = SECTIONS.get(verdict, verdict.capitalize())
            print(f"\n{title}: {len(group)}")
            print("\n".join(format_table(group)))
    counts = {v: len(g) for v, g in by_verdict.items()}
    regressions = sum(counts.get(v, 0) for v in REGRESSIONS)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    print(f"\n{len(changes)} combinations: {summary}")
    if regressions:
        print(f"REGRESSION: {regressions} combination(s) slower than x{args.factor:g}, "
              f"less accurate, or failing in HEAD")
        print(NOT_A_VERDICT)
        return 1
    print("OK: nothing slower, less accurate or failing")
    print(NOT_A_VERDICT)
    return 0
