"""``xentbench gate GOOD BAD --bisect``: the first commit after GOOD that is slower, less accurate or failing.

Chromium Pinpoint's way: each step gates one commit against GOOD with the
gate's own three-way decision. The first step gates BAD itself, on the whole
grid asked for; the later steps gate only the combinations that regressed
there, each commit halfway between the last good and the first bad one
(``search``), so 8 commits take 1 + 3 steps. A step whose verdict is
undecided (no regression, some combination undecided) is gated again with
``RETRY_BUDGET`` times the budget; one that stays undecided ends the search
with the range still holding the culprit, reported, never guessed.

The commits are BAD's first-parent line back to GOOD (``git rev-list
--first-parent --ancestry-path``): a merged pull request is one step. With
``--repo``, those of that repository.

Exit status: 1 when BAD regressed against GOOD (the culprit named, or the
range narrowed as far as the steps decided), 0 when it did not, 2 when the
search cannot run (GOOD not an ancestor of BAD, an unknown revision).
"""

from __future__ import annotations

import sys
import time
import json
from dataclasses import dataclass, field, replace
from typing import Callable

from xentbench import checkout
from xentbench.gate.output import Progress, markdown, to_json, verdict_line
from xentbench.gate.measure import GateError
from xentbench.gate.session import Settings, header_of, judge
from xentbench.gate.versions import library, resolve

#: an undecided step is gated again with this many times the budget
RETRY_BUDGET = 3


@dataclass
class Search:
    """Where a bisection ended: the culprit's index, or the range ``(good, bad]`` still holding it."""

    culprit: int | None
    good: int  # the last index known good (-1: GOOD itself)
    bad: int | None  # the first index known bad (None: BAD did not regress)
    steps: list = field(default_factory=list)  # (index, verdict) in the order judged
    undecided: int | None = None  # the index whose step stayed undecided


def search(count: int, step: Callable[[int], str]) -> Search:
    """Bisect ``count`` commits after GOOD (index ``count - 1`` is BAD) with ``step(i)``: "bad", "good" or
    "undecided", the verdict of commit ``i`` against GOOD. BAD is judged first."""
    found = Search(None, -1, None)
    verdict = step(count - 1)
    found.steps.append((count - 1, verdict))
    if verdict != "bad":
        found.undecided = count - 1 if verdict == "undecided" else None
        return found
    found.bad = count - 1
    while found.bad - found.good > 1:
        mid = (found.good + found.bad) // 2
        verdict = step(mid)
        found.steps.append((mid, verdict))
        if verdict == "undecided":
            found.undecided = mid
            return found
        if verdict == "bad":
            found.bad = mid
        else:
            found.good = mid
    found.culprit = found.bad
    return found


def commits_between(good: str, bad: str, root) -> list[str]:
    """The full hashes after ``good`` up to ``bad``, oldest first, on ``bad``'s first-parent line."""
    if not checkout.is_ancestor(good, bad, root):
        raise GateError(f"--bisect: GOOD {good[:12]} is not an ancestor of BAD {bad[:12]}")
    listed = checkout.git(root, "rev-list", "--reverse", "--first-parent", "--ancestry-path", f"{good}..{bad}")
    if not listed:
        raise GateError("--bisect: GOOD and BAD are the same commit")
    return listed.split()


def _word(outcomes) -> str:
    if any(o.regression for o in outcomes):
        return "bad"
    return "undecided" if any(o.verdict == "undecided" for o in outcomes) else "good"


def run(args, combos, settings: Settings, root, cache_dir) -> int:
    """The command: print each step, then the culprit's full hash and its step's Markdown."""
    if args.record:
        raise GateError("--record records a gate, not a bisection")
    good = resolve(args.base, root)
    commits = commits_between(good, resolve(args.head, root), root)
    good_dir, _ = library(good, "base", cache_dir, root, settings.module)
    judged: dict[int, tuple] = {}  # index -> (outcomes, header)
    asked = list(combos)

    def step(i: int) -> str:
        nonlocal asked
        started = time.perf_counter()
        head_dir, commit = library(commits[i], "head", cache_dir, root, settings.module)
        print(f"bisect: step {len(judged) + 1}: {commit[:12]} ({i + 1} of {len(commits)} after GOOD) "
              f"against GOOD {good[:12]}, {len(asked)} combination(s)", file=sys.stderr)
        for budget in (settings.budget_for(asked), RETRY_BUDGET * settings.budget_for(asked)):
            progress = Progress(len(asked))
            try:
                outcomes = judge([good_dir, head_dir], asked, args.dtype, args.backend,
                                 replace(settings, budget=budget), progress)
            finally:
                progress.stop()
            word = _word(outcomes)
            if word != "undecided":
                break
        header = header_of(args, settings, asked, good, commit)
        header.update(base=args.base, head=commit, seconds=round(time.perf_counter() - started, 1))
        judged[i] = (outcomes, header)
        print(f"bisect: {commit[:12]}: {word} ({verdict_line(outcomes, header)})", file=sys.stderr)
        if i == len(commits) - 1 and word == "bad":  # later steps: only what regressed in BAD
            asked = [o.combo for o in outcomes if o.regression]
        return word

    found = search(len(commits), step)
    print(report(found, commits, good, args.head), flush=True)
    if found.culprit is not None:
        outcomes, header = judged[found.culprit]
        text = markdown(outcomes, header)
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({
            "good": good, "bad": commits[-1], "culprit": None if found.culprit is None else commits[found.culprit],
            "undecided": None if found.undecided is None else commits[found.undecided],
            "steps": [{"commit": commits[i], "verdict": v, **json.loads(to_json(*judged[i]))}
                      for i, v in found.steps]}, indent=1) + "\n")
    return 0 if found.bad is None else 1


def report(found: Search, commits, good: str, bad_name: str) -> str:
    """The search's outcome in a line: the culprit's full hash, or the range left and why."""
    steps = len(found.steps)
    if found.bad is None:
        word = "undecided" if found.undecided is not None else "not a regression"
        return f"bisect: BAD {bad_name} against GOOD {good[:12]}: {word}; nothing to bisect ({steps} step)"
    if found.culprit is not None:
        return f"bisect: culprit {commits[found.culprit]} (the first regressed commit; {steps} gate steps)"
    first = good if found.good < 0 else commits[found.good]
    return (f"bisect: undecided: {commits[found.undecided]} stayed undecided after a retry with "
            f"{RETRY_BUDGET}x the budget; the culprit lies after {first} up to {commits[found.bad]} "
            f"({found.bad - found.good} commits; {steps} gate steps)")
