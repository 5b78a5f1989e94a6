"""``xentbench gate --record`` and ``xentbench history``: change points in a history against a fixed anchor,
and the combinations that their own A/A runs show unstable.

The series are synthetic, seeded: log-normal noise of 0.5% a run (the spread
of one run's median ratio in this project's recorded A/A gates is 0.1-1.5%,
``experiments/gate_history.py``), steps planted at known runs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xentbench import cli
from xentbench.gate import history
from xentbench.gate.measure import Outcome

SHAPES = ("32x10", "256x1000", "4096x1000")
FUNCTIONS = ("softmax", "log_softmax", "sparse", "dense", "sigmoid", "sparse_grad", "dense_grad")


def planted(runs=30, steps=(), slow="sparse", spread=0.005, seed=0, outliers=()):
    """``{combination: log-ratios}`` of the quick grid: noise, plus a 2% step of ``slow``'s shapes at each
    run of ``steps`` and 8% at each run of ``outliers`` (a disturbed run, every combination)."""
    rng = np.random.default_rng(seed)
    level = np.log1p(0.02) * np.searchsorted(sorted(steps), np.arange(runs), side="right")
    bump = np.where(np.isin(np.arange(runs), outliers), np.log1p(0.08), 0.0)
    return {f"{f} {s}": rng.normal(0, spread, runs) + bump + (level if f == slow else 0.0)
            for f in FUNCTIONS for s in SHAPES}


def steps_of(logs):
    return {f: [s.at for s in history.change_points(np.column_stack([x for n, x in logs.items()
                                                                     if history.function_of(n) == f]))]
            for f in FUNCTIONS}


@pytest.mark.parametrize("seed", range(5))
def test_planted_steps_are_located_within_one_run(seed):
    found = steps_of(planted(steps=(8, 16, 24), seed=seed))
    assert len(found["sparse"]) == 3 and all(abs(at - k) <= 1 for at, k in zip(found["sparse"], (8, 16, 24)))
    assert all(not found[f] for f in FUNCTIONS if f != "sparse")


@pytest.mark.parametrize("seed", range(5))
def test_aa_history_has_no_change_point_even_with_a_disturbed_run(seed):
    assert all(not at for at in steps_of(planted(seed=seed, outliers=(11,))).values())


def test_a_step_under_min_step_is_not_reported():
    x = np.log1p(0.005) * (np.arange(30) >= 15) + np.random.default_rng(0).normal(0, 0.0005, 30)
    assert history.change_points(x, min_step=0.001)[0].at == 15  # it is there
    assert history.change_points(x) == []  # and under the 1% reported


def write_history(path, logs, heads, anchor="a" * 40, aa=False):
    """Runs as ``gate --record`` writes them: one gate per run of ``logs``."""
    for i, head in enumerate(heads):
        outcomes = []
        for name, x in logs.items():
            f, shape = name.split()
            o = Outcome(f, *map(int, shape.split("x")), "float32", "numba", timing="same")
            o.ratio, o.low, o.high, o.rounds = math.exp(x[i]), math.exp(x[i]) - 0.01, math.exp(x[i]) + 0.01, 20
            o.name  # noqa: B018  (the short name of an unknown function is itself)
            outcomes.append(o)
        header = {"base_hash": head if aa else anchor, "head_hash": head, "backend": "numba", "repo": None,
                  "dtype": "float32", "threshold": 0.05, "cpu": "test"}
        history.record(path, outcomes, header)


def test_history_names_the_commit_where_the_slowdown_began(tmp_path, capsys):
    path = tmp_path / "history.jsonl"
    heads = [f"{i:040x}" for i in range(30)]
    write_history(path, planted(steps=(8, 16, 24)), heads)
    plot, js = tmp_path / "history.png", tmp_path / "steps.json"
    assert cli.main(["history", str(path), "--plot", str(plot), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert f"the slowdown began at {heads[8]} (run 9): sparse" in out
    data = json.loads(js.read_text())
    assert [s["commit"] for s in data["steps"]["sparse"]] == [heads[8], heads[16], heads[24]]
    assert all(0.015 < s["after"] / s["before"] - 1 < 0.025 for s in data["steps"]["sparse"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_history_cannot_read_exits_2(tmp_path, capsys):
    assert cli.main(["history", str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"anchor": 1}\nnot json\n')
    assert cli.main(["history", str(bad)]) == 2
    assert "bad.jsonl:2: not a JSON line" in capsys.readouterr().err


def test_unstable_combinations_from_their_own_aa_runs(tmp_path):
    path = tmp_path / "history.jsonl"
    logs = planted(runs=12, seed=3, spread=0.002)  # 0.2% a run: well within the line
    logs["sigmoid 4096x1000"] = np.random.default_rng(1).normal(0, 0.03, 12)  # 3% a run: beyond the 2.5% line
    write_history(path, {k: v[:4] for k, v in logs.items()}, [f"{i:040x}" for i in range(4)], aa=True)
    assert history.unstable(path, "numba", "float32", 0.05) == {}  # fewer than MIN_AA_RUNS A/A runs
    write_history(path, {k: v[4:] for k, v in logs.items()}, [f"{i:040x}" for i in range(4, 12)], aa=True)
    write_history(path, planted(runs=12, steps=(6,)), [f"{i:040x}" for i in range(12)])  # not A/A: not noise
    found = history.unstable(path, "numba", "float32", 0.05)
    assert list(found) == ["sigmoid 4096x1000"] and "of 12 A/A runs" in found["sigmoid 4096x1000"]
    assert history.unstable(None, "numba", "float32", 0.05) == {}
