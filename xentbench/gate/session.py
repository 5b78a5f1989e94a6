"""One gate over two materialised versions: every combination measured, then each call confirmed.

    settings = Settings(threshold=0.05, budget=None, rounds=FIRST_ROUNDS, method="median",
                        mode="inprocess", fixed_rounds=None, module=None)
    outcomes = judge([base_folder, head_folder], combos, "float32", "numba", settings, progress)

``xentbench gate`` runs it once; ``--bisect`` once per step. See the
package's docstring for the method.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xentbench import machine
from xentbench.gate.measure import (
    CONFIRMATIONS, MAX_SHARE, MIN_SHARE, Outcome, Pair, WorkerDied, confirm, default_share, extra_share, isolate,
    measure)
from xentbench.gate.stats import CONFIDENCE


@dataclass(frozen=True)
class Settings:
    """The options of ``xentbench gate`` that govern how a combination is measured and decided."""

    threshold: float
    budget: float | None  # seconds of rounds for the whole grid; None: each combination's default_share
    rounds: int
    method: str
    mode: str
    fixed_rounds: int | None = None
    module: str | None = None  # --repo: the folders hold this backend module, not impls/

    def budget_for(self, combos) -> float:
        return self.budget if self.budget is not None else sum(map(default_share, combos))


def judge(folders, combos, dtype: str, backend: str, settings: Settings, progress) -> list[Outcome]:
    """Measure every combination of ``combos`` (``measure.combinations``) in BASE (``folders[0]``) and HEAD, then
    confirm each call of slower or faster in fresh workers; the outcomes, in the order of ``combos``.

    ``GateError`` (or ``RuntimeError`` from a worker) when the gate cannot run.
    """
    budget = settings.budget_for(combos)
    scale = budget / sum(map(default_share, combos))  # --budget over the default one
    outcomes: list[Outcome] = []
    pair = None
    try:
        with tempfile.TemporaryDirectory(prefix="xentbench-gate-") as work:
            pair = Pair(folders, settings.mode, module=settings.module)
            spent = 0.0
            for i, combo in enumerate(combos):  # the budget left, spread in proportion to the default shares
                own = default_share(combo)
                share = max(MIN_SHARE, min(MAX_SHARE * scale * own,
                                           (budget - spent) * own / sum(map(default_share, combos[i:]))))
                outcome = Outcome.of(combo, dtype, backend)
                progress.start(outcome.name)
                try:
                    measure(pair, outcome, Path(work), share, settings.threshold, settings.method, settings.rounds,
                            settings.fixed_rounds, extra_share(combo))
                except WorkerDied:  # which version crashed it: a failure, not a gate that cannot run
                    pair.close()
                    pair = None
                    isolate(folders, outcome, Path(work), settings.module)
                    pair = Pair(folders, settings.mode, module=settings.module)
                spent += outcome.timing_seconds
                outcomes.append(outcome)
                progress.done(outcome)
            pair.close()
            pair = None
            for k in range(CONFIRMATIONS):  # each call confirmed by fresh workers, the first loading HEAD first
                called = [o for o in outcomes if o.timing in ("slower", "faster") and not settings.fixed_rounds]
                if not called:
                    break
                progress.add(len(called))
                pair = Pair(folders, settings.mode, swapped=k % 2 == 0, module=settings.module)
                for outcome in called:
                    progress.start(f"confirm {outcome.name}")
                    confirm(pair, outcome, Path(work), extra_share(outcome.combo), settings.threshold,
                            settings.method, settings.rounds)
                    progress.done(outcome)
                pair.close()
                pair = None
    finally:
        if pair is not None:
            pair.close()
    return outcomes


def short(name: str) -> str:
    """A commit's hash in 12 digits; a folder's name as it is."""
    return name[:12] if len(name) == 40 and all(c in "0123456789abcdef" for c in name) else name


def header_of(args, settings: Settings, combos, base_commit: str, head_commit: str) -> dict:
    """What the table, the Markdown, the JSON and the history say about the run as a whole."""
    return {"base": args.base, "base_commit": short(base_commit), "base_hash": base_commit,
            "head": args.head, "head_commit": short(head_commit), "head_hash": head_commit,
            "backend": args.backend, "repo": str(args.repo) if args.repo else None,
            "dtype": args.dtype, "quick": args.quick, "threshold": args.threshold,
            "budget": settings.budget_for(combos), "mode": args.mode, "method": args.method,
            "confidence": CONFIDENCE, "confirmations": CONFIRMATIONS,
            "cpu": machine.cpu(), "vector_width": machine.vector_width(), "cores": os.cpu_count()}
