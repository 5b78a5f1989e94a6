"""``xentbench gate``: the decision rule on synthetic ratios, and whole gates on planted changes.

The end-to-end gates run on the ``numpy`` backend (no compilation) and one
on ``numba``, each on one shape, with copies of this commit's ``impls/``; the
HEAD copies plant a known change: a 30% busy wait after each call, a result
off by 1e-3 relative, a raise. The copies are materialised into a temporary
cache folder per test session.
"""

from __future__ import annotations

import json
import math
import signal
import time

import numpy as np
import pytest

from xentbench import checkout, cli, gate
from xentbench.gate import measure as gate_measure, output, session as gate_session, stats as gate_stats, versions
from xentbench.gate.measure import confirm, measure

SPARSE = "sparse_softmax_cross_entropy_with_logits"
LINEAR = "linear_cross_entropy_and_grad"
#: a fused linear + cross-entropy of about 1 ms a call (numpy), batch x hidden x vocabulary
TINY_LINEAR = (64, 32, 1000)


# --------------------------------------------------------------------------- the decision rule

def samples(ratio, spread, n, seed=0):
    return list(np.random.default_rng(seed).normal(math.log(ratio), spread, n))


@pytest.mark.parametrize("method", sorted(gate_stats.METHODS))
@pytest.mark.parametrize("ratio, spread, n, verdict", [
    (1.00, 0.02, 40, "same"),
    (1.10, 0.03, 40, "slower"),  # the planted 10% slowdown
    (1.05, 0.01, 60, "slower"),  # 5%, measured precisely
    (0.90, 0.03, 40, "faster"),
    (1.00, 0.30, 12, "undecided"),  # too noisy for so few rounds
    (1.01, 0.005, 40, "same"),  # a change under half the threshold is never called
])
def test_decision(method, ratio, spread, n, verdict):
    decision = gate_stats.decide(samples(ratio, spread, n), 0.05, method)
    assert decision.verdict == verdict, decision
    assert decision.low <= decision.ratio <= decision.high
    assert decision.rounds == n


def test_median_interval_is_the_sign_tests():
    assert gate_stats.order_statistic_rank(10, 0.999) == 0  # 2 / 2**10 > 0.001: no interval at all
    assert gate_stats.order_statistic_rank(11, 0.999) == 1
    assert gate_stats.order_statistic_rank(40, 0.999) == 10
    # a few wild rounds (another tenant) move the median's interval by a rank, not by their size
    x = samples(1.10, 0.02, 40) + [math.log(10.0)] * 3
    assert gate_stats.decide(x, 0.05, "median").verdict == "slower"


def test_undecided_is_not_a_regression():
    outcome = gate.Outcome(SPARSE, 32, 10, "float32", "numba", timing="undecided")
    assert not outcome.regression and outcome.verdict == "undecided"
    assert gate.Outcome(SPARSE, 32, 10, "float32", "numba", timing="slower").regression


class FakePair:
    """A worker whose HEAD takes ``ratio`` times BASE's time, with a little noise."""

    def __init__(self, ratio):
        self.ratio, self.rng = ratio, np.random.default_rng(1)

    def load(self, function, backend, dtype, inputs, outputs):
        return [{"ok": True, "error": None, "estimate": 1e-3, "first": 1e-3}] * 2

    def round(self, order, number, lead_in, samples):
        return [1e-3, 1e-3 * self.ratio * math.exp(self.rng.normal(0, 0.005))]


@pytest.mark.parametrize("later, verdict", [
    ((1.10, 1.10), "slower"),
    ((1.00,), "undecided"),
    ((0.90,), "undecided"),
    ((1.10, 1.00), "undecided"),  # the second fresh worker does not make the call: it does not stand
])
def test_a_call_stands_only_when_every_fresh_worker_makes_it_again(tmp_path, later, verdict):
    outcome = gate.Outcome(SPARSE, 32, 10, "float32", "numba")
    measure(FakePair(1.10), outcome, tmp_path, 10.0, 0.05, "median")
    assert outcome.timing == "slower" and outcome.rounds == gate.FIRST_ROUNDS
    for ratio in later:  # as the gate does: a worker confirms only what still stands
        confirm(FakePair(ratio), outcome, tmp_path, 10.0, 0.05, "median")
    assert outcome.timing == verdict and outcome.regression == (verdict == "slower")
    assert outcome.first["timing"] == "slower" and outcome.rounds == (1 + len(later)) * gate.FIRST_ROUNDS
    assert [c["timing"] for c in outcome.confirmations][:-1] == ["slower"] * (len(later) - 1)
    assert outcome.low <= min([outcome.first["low"]] + [c["low"] for c in outcome.confirmations])
    row = next(output.rows([outcome]))
    then = ", then ".join(c["timing"] for c in outcome.confirmations)
    assert row[1] == ("slower (confirmed)" if verdict == "slower" else
                      f"undecided (slower, then {then} in fresh workers)")


class NoisyPair(FakePair):
    """HEAD 4.5% slower, with noise that 20 rounds do not see through; a round takes 2 ms."""

    def round(self, order, number, lead_in, samples):
        time.sleep(0.002)
        return [1e-3, 1e-3 * 1.045 * math.exp(self.rng.normal(0, 0.05))]


def test_a_likely_change_gets_the_extra_share(tmp_path):
    plain = gate.Outcome(SPARSE, 32, 10, "float32", "numba")
    measure(NoisyPair(1.0), plain, tmp_path, 0.05, 0.05, "median")  # one batch of 20 rounds, then out of time
    assert plain.timing == "undecided" and plain.rounds == gate.FIRST_ROUNDS and plain.ratio > 1.025
    leaning = gate.Outcome(SPARSE, 32, 10, "float32", "numba")
    measure(NoisyPair(1.0), leaning, tmp_path, 0.05, 0.05, "median", extra_share=10.0)
    assert leaning.timing == "slower" and leaning.rounds > plain.rounds  # its median > 1.025: more rounds


def test_functions_and_grid():
    assert gate.select_functions(["sparse"]) == [SPARSE, SPARSE + "_and_grad"]
    assert gate.select_functions(["SparseLoss"]) == [SPARSE]
    assert len(gate.select_functions([])) == 7
    with pytest.raises(gate.GateError):
        gate.select_functions(["nope"])
    assert len(gate.combinations([SPARSE], "float32", quick=False)) == 21
    assert [(b, c) for _, b, c in gate.combinations([SPARSE], "float32", quick=True)] == list(gate.QUICK_SHAPES)


def test_linear_is_asked_for_by_benchs_word_and_has_a_grid_of_its_own():
    for word in ("linear", "linear_grad", "LinearLossGrad", LINEAR):
        assert gate.select_functions([word]) == [LINEAR], word
    assert LINEAR not in gate.select_functions([]) + gate.select_functions(["grad"])  # the default run as it was
    assert gate.select_functions(["sparse", "linear"])[-1] == LINEAR
    assert gate.combinations([LINEAR], "float32", quick=False) == [(LINEAR, 256, 512, 32000),
                                                                   (LINEAR, 256, 1024, 32000)]
    assert gate.combinations([LINEAR], "float32", quick=True) == [(LINEAR, 256, 512, 32000)]
    assert gate.combinations([LINEAR], "float32", False, [(2048, 512, 32000), (256, 1000)]) == [
        (LINEAR, 2048, 512, 32000)]  # --shape: any of bench's linear grid
    assert gate.combinations([LINEAR], "float32", False, [(256, 512, 1000)]) == []  # not on it
    assert gate.combinations([LINEAR], "float64", quick=False) == []  # float32 only
    outcome = gate.Outcome.of((LINEAR, 256, 512, 32000), "float32", "numba")
    assert (outcome.batch, outcome.hidden, outcome.classes) == (256, 512, 32000)
    assert outcome.name == "linear_grad 256x512x32000" and outcome.combo == (LINEAR, 256, 512, 32000)
    assert gate.Outcome.of((SPARSE, 32, 10), "float32", "numba").name == "sparse 32x10"


def test_a_linear_combination_has_a_larger_default_share():
    """Its batch of 12 rounds takes 20-40 s: the 4 s of the seven functions' combinations would leave it
    one batch, whose interval is the batch's range; the default grid's budget stays 4 s a combination."""
    settings = gate_session.Settings(0.05, None, gate.FIRST_ROUNDS, "median", gate.DEFAULT_MODE)
    assert settings.budget_for(gate.combinations([SPARSE], "float32", quick=False)) == 21 * 4.0
    assert settings.budget_for(gate.combinations([SPARSE, LINEAR], "float32", quick=True)) == 3 * 4.0 + 100.0
    assert gate_measure.extra_share((SPARSE, 32, 10)) == 20.0  # EXTRA_SHARE x 4 s, as it was
    assert gate_measure.extra_share((LINEAR, *TINY_LINEAR)) == 100.0


# --------------------------------------------------------------------------- whole gates

#: a busy wait of 30% of each call's own time after it
SLOW = '''
import time as _t
def _slow(method):
    def call(self, *args, **kwargs):
        start = _t.perf_counter()
        result = method(self, *args, **kwargs)
        end = start + (_t.perf_counter() - start) * 1.3
        while _t.perf_counter() < end:
            pass
        return result
    return call
'''
PLANTS = {
    "slow": SLOW + "Backend.sparse_softmax_cross_entropy_with_logits = "
                   "_slow(Backend.sparse_softmax_cross_entropy_with_logits)\n",
    # the fused linear alone: its chunks call the backend's module, not these methods
    "slow_linear": SLOW + "Backend.linear_cross_entropy_and_grad = _slow(Backend.linear_cross_entropy_and_grad)\n",
    "inaccurate": '''
def _off(method):
    return lambda self, *args, **kwargs: method(self, *args, **kwargs) * (1 + 1e-3)
Backend.softmax = _off(Backend.softmax)
''',
    "crashes": '''
def _crashes(self, *args, **kwargs):
    import ctypes
    return ctypes.string_at(0)  # reads address 0: SIGSEGV, the worker process dies
Backend.sparse_softmax_cross_entropy_with_logits = _crashes
''',
    "raises": '''
def _raises(self, *args, **kwargs):
    raise RuntimeError("planted failure")
Backend.sparse_softmax_cross_entropy_with_logits = _raises
''',
}


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Folders holding this commit's impls/: ``base`` as is, and one per plant."""
    root = checkout.find_root()
    folders = {}
    for name in ["base", *PLANTS]:
        folder = checkout.materialise("HEAD", tmp_path_factory.mktemp(name), root)
        if name in PLANTS:
            with open(folder / "impls" / "__init__.py", "a") as f:
                f.write("\n" + PLANTS[name])
        folders[name] = folder
    return folders


def run_gate(tmp_path, base, head, *options, cache=True):
    """``xentbench gate``; materialised commits in a temporary folder unless ``cache`` is False (then in
    the user's cache folder, where the Numba kernels of an earlier run are found)."""
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    cache_dir = ["--cache-dir", str(tmp_path / "cache")] if cache else []
    code = cli.main(["gate", str(base), str(head), "--markdown", str(md), "--json", str(js), *cache_dir, *options])
    return code, (md.read_text() if md.exists() else ""), (json.loads(js.read_text()) if js.exists() else None)


def test_planted_slowdown_fails_the_gate(copies, tmp_path):
    code, md, data = run_gate(tmp_path, copies["base"], copies["slow"], "--backend", "numpy",
                              "--function", SPARSE, "--shape", "32x1000", "--shape", "256x10")
    assert code == 1
    assert data["exit"] == 1 and data["counts"]["slower"] == 2
    for c in data["combinations"]:
        assert c["verdict"] == "slower" and c["regression"]
        # called by the first worker, then again by each fresh one (the first of them loaded HEAD first)
        assert [c["first"]["timing"]] + [k["timing"] for k in c["confirmations"]] == ["slower"] * 3
        assert data["confirmations"] == gate.CONFIRMATIONS == 2
        assert 1.15 < c["ratio"] < 1.5 and c["low"] <= c["ratio"] <= c["high"]
        assert len(c["log_ratios"]) == c["rounds"] == sum(k["rounds"] for k in [c["first"], *c["confirmations"]])
        assert all(k["rounds"] >= gate.FIRST_ROUNDS for k in c["confirmations"])
    lines = md.splitlines()
    assert lines[0] == output.MARKER  # the workflow finds its one comment by it
    assert lines[1].startswith("**xentbench gate REGRESSION: 2 of 2")
    assert ":x:" not in md and ":white_check_mark:" not in md  # shortcodes render only on GitHub
    regressions = md[md.index("### Not same"):md.index("<details>")]
    assert "sparse 32x1000 | slower (confirmed) |" in regressions
    assert "sparse 256x10 | slower (confirmed) |" in regressions
    assert "</details>" in md


def test_planted_linear_slowdown_fails_the_gate(copies, tmp_path, monkeypatch):
    """The fused linear's forward and backward made 30% slower, and nothing else: called slower at a tiny
    shape picked by ``--shape BATCHxHIDDENxVOCABULARY`` (a grid with it stands in for bench's linear grid)."""
    monkeypatch.setattr(gate_measure, "linear_grid", lambda: [TINY_LINEAR])
    code, md, data = run_gate(tmp_path, copies["base"], copies["slow_linear"], "--backend", "numpy",
                              "--function", "linear", "--shape", "64x32x1000")
    assert code == 1, md
    (c,) = data["combinations"]
    assert (c["function"], c["batch"], c["hidden"], c["classes"]) == (LINEAR, 64, 32, 1000)
    assert c["errors"] == [None, None] and c["failure"] is None and c["accuracy"] == "n/a"
    assert c["verdict"] == "slower" and c["regression"]
    assert [c["first"]["timing"]] + [k["timing"] for k in c["confirmations"]] == ["slower"] * 3
    assert 1.15 < c["ratio"] < 1.5 and c["low"] <= c["ratio"] <= c["high"]
    assert 1e-5 < c["base_time"] < c["head_time"] < 0.1  # one call's seconds, not a sample's
    assert "linear_grad 64x32x1000 | slower (confirmed) |" in md


def test_bfloat16_logits_reach_the_worker_as_bfloat16(copies, tmp_path):
    """NumPy saves bfloat16 as raw 2-byte records; the worker reads them back as bfloat16."""
    code, _, data = run_gate(tmp_path, copies["base"], copies["inaccurate"], "--backend", "numpy", "--function",
                             SPARSE, "--dtype", "bfloat16", "--shape", "32x1000", "--budget", "1")
    assert code == 0 and data["dtype"] == "bfloat16"
    (c,) = data["combinations"]
    assert c["failure"] is None and c["errors"] == [None, None] and c["timing"] != "n/a"
    assert c["base_error"] is not None and c["accuracy"] == "unchanged"


def test_accuracy_regression_and_failure(copies, tmp_path):
    code, md, data = run_gate(tmp_path, copies["base"], copies["inaccurate"], "--backend", "numpy",
                              "--function", "softmax", "--shape", "32x1000", "--budget", "1")
    assert code == 1
    (c,) = data["combinations"]
    assert c["accuracy"] == "less accurate" and c["verdict"] == "less accurate"
    assert c["head_error"] > 100 * c["base_error"]
    assert "softmax 32x1000 | less accurate" in md

    code, md, data = run_gate(tmp_path, copies["base"], copies["raises"], "--backend", "numpy",
                              "--function", SPARSE, "--shape", "32x1000")
    assert code == 1
    (c,) = data["combinations"]
    assert c["verdict"] == "failed" and "planted failure" in c["errors"][1] and c["errors"][0] is None
    assert "sparse 32x1000 | failed (RuntimeError: planted failure)" in md
    # a crash (here a segfault) in HEAD's code is a failure of HEAD, not a gate that cannot run; the
    # combinations after it are measured by a fresh worker
    code, md, data = run_gate(tmp_path, copies["base"], copies["crashes"], "--backend", "numpy",
                              "--function", SPARSE, "--function", "softmax", "--shape", "32x1000", "--budget", "1")
    assert code == 1
    crashed, softmax = data["combinations"]
    assert crashed["verdict"] == "failed" and crashed["errors"][0] is None
    assert "crashed" in crashed["errors"][1] and str(-signal.SIGSEGV) in crashed["errors"][1]
    assert softmax["function"] == "softmax" and softmax["verdict"] in ("same", "undecided")
    # the other way round: fixed, not a regression
    code, _, data = run_gate(tmp_path, copies["raises"], copies["base"], "--backend", "numpy",
                             "--function", SPARSE, "--shape", "32x1000")
    assert code == 0 and data["combinations"][0]["verdict"] == "fixed"


def test_cannot_run_exits_2(tmp_path, capsys):
    code, md, data = run_gate(tmp_path, "no-such-revision", "HEAD", "--quick")
    assert code == 2 and data is None
    assert "no-such-revision" in capsys.readouterr().err
    assert run_gate(tmp_path, "HEAD", "HEAD", "--function", "nope")[0] == 2


def test_one_materialised_folder_per_tree_of_impls(tmp_path):
    """Two revisions with the same ``impls/`` (here, the A/A of CI's smoke run) share one folder, so that
    the worker's second copy loads the kernels its first compiled into that folder's Numba cache."""
    root = checkout.find_root()
    base, _ = versions.library("HEAD", "base", tmp_path, root)
    head, _ = versions.library("HEAD", "head", tmp_path, root)
    assert base == head and (base / "impls" / "__init__.py").is_file()
    assert base.name == "impls-" + checkout.git(root, "rev-parse", "HEAD:impls")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [base.name]


def test_aa_on_materialised_commits_passes(tmp_path, capsys):
    """The CI smoke run in small: HEAD against HEAD, two copies of one materialised ``impls/``, numba, one
    shape. Compiling the kernels takes seconds the first time; later runs load them from the cache.
    """
    code, md, data = run_gate(tmp_path, "HEAD", "HEAD", "--quick", "--function", SPARSE, "--shape", "32x10",
                              cache=False)
    assert code == 0, md
    (c,) = data["combinations"]
    assert c["verdict"] in ("same", "undecided") and c["accuracy"] == "unchanged"
    assert data["base_commit"] == data["head_commit"] and data["mode"] == gate.DEFAULT_MODE
    err = capsys.readouterr().err
    assert "[1/1] sparse 32x10" in err and "ETA" in err  # the plain progress lines on stderr, not a terminal
    assert md.startswith(output.MARKER + "\n**xentbench gate OK")


def test_linear_aa_on_materialised_commits_passes(tmp_path, monkeypatch):
    """``--function linear``, HEAD against HEAD, numba, on a tiny shape standing in for ``LINEAR_SHAPES``:
    never slower. The first calls (compiling numba's sparse loss and its gradient, or loading them
    from the cache) are left out of the timing."""
    monkeypatch.setattr(gate_measure, "LINEAR_SHAPES", (TINY_LINEAR,))
    code, md, data = run_gate(tmp_path, "HEAD", "HEAD", "--function", "linear", cache=False)
    assert code == 0, md
    (c,) = data["combinations"]
    assert c["function"] == LINEAR and (c["batch"], c["hidden"], c["classes"]) == TINY_LINEAR
    assert c["verdict"] in ("same", "undecided") and c["errors"] == [None, None]
    # numba's second call can take 30-50 ms (its threads starting), which the rounds take for a slow call
    assert c["rounds"] >= gate_measure.SLOW_ROUNDS and 0.8 < c["ratio"] < 1.25
    assert c["base_time"] < 0.05  # a call's time (about 1 ms): no compilation (seconds) in it


def test_the_eta_leaves_compilation_out(monkeypatch, capsys):
    """The first ETAs of a quick gate read 349-418 s for 82 s: the first combination's compilation was
    extrapolated to every combination left."""
    now = [100.0]
    monkeypatch.setattr(output.time, "perf_counter", lambda: now[0])
    progress = output.Progress(4)
    first = gate.Outcome(SPARSE, 32, 10, "float32", "numba", timing="same", compile_seconds=28.0)
    now[0] += 30.0  # 28 s of compilation, 2 s of measuring
    progress.done(first)
    now[0] += 2.0  # the next shape of the same function: its kernels are compiled
    progress.done(gate.Outcome(SPARSE, 256, 1000, "float32", "numba", timing="same"))
    progress.stop()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("elapsed 30s, ETA 6s + compilation (so far 28s))")  # not 90 s
    assert lines[1].endswith("elapsed 32s, ETA 4s + compilation (so far 28s))")
