"""What ``xentbench gate`` shows and writes: the progress display, the console table, Markdown and JSON.

The progress display goes to stderr, as every command's (``xentbench.console``),
and adds what ``console.Bar`` lacks, an ETA and each combination's verdict:
``rich``'s bar (the combination being measured, elapsed time, ETA) on a
terminal; elsewhere (CI logs, pipes) one plain line per combination with the
same counts and ETA. The table and the verdict go to stdout.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
    TimeElapsedColumn
from rich.table import Table

#: the order of the verdicts in summaries
ORDER = ("failed", "less accurate", "slower", "undecided", "faster", "same", "fixed", "still failing",
         "more accurate", "not implemented", "n/a")


def _console() -> Console:
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)


class Progress:
    """A progress display with an ETA: ``rich`` on a terminal, plain lines elsewhere.

    The ETA leaves compilation out: a function's first combination compiles
    its kernels (or loads them from the cache), which its later shapes do
    not, so extrapolating the first combinations' time overstated a quick
    gate's 82 s as 349-418 s. It extrapolates the time per combination
    without the first calls' compilation, and says so; the compilation so
    far is shown apart.
    """

    def __init__(self, total: int):
        self.total, self.finished, self.started = total, 0, time.perf_counter()
        self.compiled: dict[int, float] = {}  # outcome -> its seconds of compilation so far
        self.console = Console(stderr=True)
        self.rich = None
        if self.console.is_terminal:
            self.rich = RichProgress(TextColumn("[bold]gate"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.description}"), TimeElapsedColumn(),
                                     TextColumn("{task.fields[eta]}"), console=self.console, transient=True)
            self.task = self.rich.add_task("", total=total, eta="")
            self.rich.start()

    def add(self, more: int) -> None:
        """``more`` steps beyond those announced (the confirmations)."""
        self.total += more
        if self.rich:
            self.rich.update(self.task, total=self.total)

    def start(self, name: str) -> None:
        if self.rich:
            self.rich.update(self.task, description=name)

    def eta(self) -> float:
        """Seconds left: the time per finished step, compilation left out, times the steps left."""
        measuring = time.perf_counter() - self.started - sum(self.compiled.values())
        return max(0.0, measuring) / max(1, self.finished) * (self.total - self.finished)

    def _eta_text(self) -> str:
        return f"ETA {self.eta():.0f}s + compilation (so far {sum(self.compiled.values()):.0f}s)"

    def done(self, outcome) -> None:
        self.finished += 1
        self.compiled[id(outcome)] = outcome.compile_seconds
        if self.rich:
            self.rich.update(self.task, advance=1, eta=self._eta_text())
            return
        elapsed = time.perf_counter() - self.started
        self.console.out(f"[{self.finished}/{self.total}] {outcome.name}: {outcome.verdict}{_ratio_text(outcome)} "
                         f"({outcome.rounds} rounds, {outcome.seconds:.1f}s; elapsed {elapsed:.0f}s, "
                         f"{self._eta_text()})", highlight=False)

    def stop(self) -> None:
        if self.rich:
            self.rich.stop()
            self.rich = None


def _ratio_text(o) -> str:
    return "" if o.ratio is None else f" {o.ratio:.3f}x [{o.low:.3f}, {o.high:.3f}]"


def _time(seconds) -> str:
    if seconds is None:
        return "-"
    for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale or suffix == "us":
            return f"{seconds / scale:.3g}{suffix}"


def _error(value) -> str:
    return "-" if value is None else f"{value:.2e}" if math.isfinite(value) else str(value)


def counts(outcomes) -> dict[str, int]:
    found: dict[str, int] = {}
    for o in outcomes:
        found[o.verdict] = found.get(o.verdict, 0) + 1
    return {v: found[v] for v in ORDER if v in found}


def verdict_line(outcomes, header) -> str:
    """The one-line verdict: what fails the gate, then the rest."""
    regressions = [o for o in outcomes if o.regression]
    summary = ", ".join(f"{n} {v}" for v, n in counts(outcomes).items())
    state = "REGRESSION" if regressions else "OK"
    return (f"{state}: {len(regressions)} of {len(outcomes)} combinations slower, less accurate or failed "
            f"({summary}); BASE {header['base']} ({header['base_commit']}) vs HEAD {header['head']} "
            f"({header['head_commit']}), threshold {header['threshold']:.0%}")


def rows(outcomes):
    """``(name, verdict, HEAD/BASE [CI], rounds, BASE time, HEAD time, BASE error, HEAD error)``, worst first."""
    rank = {v: i for i, v in enumerate(ORDER)}
    for o in sorted(outcomes, key=lambda o: (rank.get(o.verdict, 99), -(o.ratio or 0))):
        yield (o.name, o.verdict + _why(o),
               _ratio_text(o).strip() or "-", str(o.rounds), _time(o.base_time), _time(o.head_time),
               _error(o.base_error), _error(o.head_error))


def _why(o) -> str:
    """What the verdict word leaves out: the error raised, or a call the confirming worker did not repeat."""
    if o.failure == "not implemented":
        return ""
    if o.failure:
        return f" ({o.errors[1] or o.errors[0]})"
    if o.first and o.first["timing"] != o.timing:
        then = ", then ".join(c["timing"] for c in o.confirmations)
        return f" ({o.first['timing']}, then {then} in fresh workers)"
    if o.first:
        return " (confirmed)"
    return ""


COLUMNS = ("combination", "verdict", "HEAD/BASE [CI]", "rounds", "BASE", "HEAD", "BASE error", "HEAD error")


def print_table(outcomes, header) -> None:
    console = _console()
    table = Table(*COLUMNS, title=f"xentbench gate: {header['backend']} {header['dtype']}, "
                                  f"{header['confidence']:.1%} intervals of the median ratio")
    for row in rows(outcomes):
        table.add_row(*row)
    console.print(table)
    console.print(f"{header['seconds']:.0f}s on {header['cpu']}, {header['vector_width']}", highlight=False)
    for name, why in (header.get("unstable") or {}).items():
        console.print(f"unstable: {name}: {why}", highlight=False)
    console.print(verdict_line(outcomes, header), highlight=False)


#: the first line of every gate comment: the workflow finds its comment by it and updates it in place
MARKER = "<!-- xentbench-gate -->"


def markdown(outcomes, header) -> str:
    """A pull-request comment: the verdict, then every combination not *same* (worst first), the unstable
    ones apart, and all of them collapsed. Plain Markdown and HTML: no emoji shortcodes, which render only
    on GitHub."""
    lines = [MARKER, f"**xentbench gate {verdict_line(outcomes, header)}**", ""]
    table_head = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    unstable = header.get("unstable") or {}
    changed = [o for o in outcomes if o.verdict != "same" and o.name not in unstable]
    if changed:
        lines += ["### Not same", ""] + table_head + ["| " + " | ".join(r) + " |" for r in rows(changed)] + [""]
    undecided = [o for o in outcomes if o.verdict == "undecided"]
    if undecided:
        lines += [f"{len(undecided)} combination(s) stayed **undecided** within the time budget "
                  "(neither passed nor failed): " + ", ".join(o.name for o in undecided), ""]
    apart = [o for o in outcomes if o.name in unstable]
    if apart:
        lines += ["### Unstable", "", "Their own A/A runs (the history file) move beyond the slower line; "
                  "their verdicts stand, each call confirmed as any other.", ""] + table_head
        lines += ["| " + " | ".join(r) + " |" for r in rows(apart)] + [""]
        lines += [f"* {o.name}: {unstable[o.name]}" for o in apart] + [""]
    lines += ["<details><summary>All combinations, how they were measured</summary>", "",
              f"{header['backend']} backend, {header['dtype']}; BASE and HEAD timed in alternating turns "
              f"({header['mode']}), {header['confidence']:.1%} {header['method']} interval of the per-round "
              f"ratio HEAD/BASE; slower when the interval lies above +{header['threshold'] / 2:.1%}, same when "
              f"within ±{header['threshold']:.0%}; a call of slower or faster stands only when each of "
              f"{header['confirmations']} fresh workers makes it again. "
              f"{header['seconds']:.0f}s on {header['cpu']}.", ""]
    lines += table_head + ["| " + " | ".join(r) + " |" for r in rows(outcomes)]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def to_json(outcomes, header) -> str:
    combos = []
    for o in outcomes:
        item = asdict(o)
        item["verdict"], item["regression"] = o.verdict, o.regression
        combos.append(item)
    return json.dumps({**header, "counts": counts(outcomes), "combinations": combos}, indent=1,
                      allow_nan=True) + "\n"
