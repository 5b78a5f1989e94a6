"""``xentbench gate --repo`` and ``--bisect``: a plugin's own repository, and the culprit commit.

The plugin repository is made here, in a temporary folder: a package
``toyloss`` whose sparse loss is NumPy's log-sum-exp, one commit after
another. The slow commit adds two extra passes over the logits (about 2x the
time), so that no verdict can flake; the gates run on one small shape.
``search``, the bisection itself, is tested with a made-up step judge.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from xentbench import cli, machine
from xentbench.gate import bisect, history, output
from xentbench.gate.measure import Outcome

SPARSE = "sparse_softmax_cross_entropy_with_logits"

TOY = '''"""A toy backend: the sparse loss through a row's log-sum-exp."""
import numpy as np

dtypes = ("float32", "float64")
PASSES = {passes}


def _lse(logits):
    m = logits.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[:, 0]


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    for _ in range(PASSES):  # each pass the whole log-sum-exp again
        lse = _lse(logits)
    picked = np.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return (lse - picked).astype(logits.dtype)
'''


def git(repo, *args) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo, message, passes=None) -> str:
    """A commit of the plugin repository: ``toyloss`` with ``passes`` passes, or an empty commit."""
    if passes is None:
        git(repo, "commit", "-q", "--allow-empty", "-m", message)
    else:
        (repo / "src" / "toyloss").mkdir(parents=True, exist_ok=True)
        (repo / "src" / "toyloss" / "__init__.py").write_text(TOY.format(passes=passes))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The repository and its commits: a good one, an empty one, the slow one, two after it."""
    repo = tmp_path_factory.mktemp("plugin")
    git(repo, "init", "-q")
    commits = {"good": commit(repo, "toyloss", passes=1), "empty": commit(repo, "nothing")}
    commits["slow"] = commit(repo, "an extra pass", passes=3)
    commits["after"] = commit(repo, "docs")
    commits["bad"] = commit(repo, "more docs")
    return repo, commits


def gate(tmp_path, plugin_repo, base, head, *options):
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    code = cli.main(["gate", base, head, "--repo", str(plugin_repo), "--backend", "toyloss", "--cache-dir",
                     str(tmp_path / "cache"), "--markdown", str(md), "--json", str(js), *options])
    return code, (md.read_text() if md.exists() else ""), (json.loads(js.read_text()) if js.exists() else None)


def test_an_empty_commit_of_a_plugin_passes(plugin, tmp_path):
    repo, commits = plugin
    code, md, data = gate(tmp_path, repo, commits["good"], commits["empty"], "--function", SPARSE,
                          "--function", "softmax", "--shape", "32x1000")
    assert code == 0, md
    sparse, softmax = data["combinations"]
    assert sparse["verdict"] in ("same", "undecided") and sparse["accuracy"] == "unchanged"
    assert softmax["verdict"] == "not implemented" and not softmax["regression"]  # the plugin lacks it
    assert data["repo"] == str(repo) and data["head_hash"] == commits["empty"]
    # materialised from the src/ layout, one folder per revision, holding only the package
    assert sorted(p.name for p in (tmp_path / "cache" / f"{commits['empty']}-head-toyloss").iterdir()) == ["toyloss"]


def test_an_extra_pass_fails_the_gate_and_is_named(plugin, tmp_path):
    repo, commits = plugin
    code, md, data = gate(tmp_path, repo, commits["empty"], commits["slow"], "--function", SPARSE,
                          "--shape", "32x1000")
    assert code == 1
    (c,) = data["combinations"]
    assert c["verdict"] == "slower" and c["ratio"] > 2
    assert "sparse 32x1000 | slower (confirmed)" in md[md.index("### Not same"):md.index("<details>")]


@pytest.mark.parametrize("case, message", [
    ("not a repository", "not a git repository"),
    ("no such module", "module 'nosuchloss' not found at"),
    ("bisect backwards", "is not an ancestor of BAD"),
])
def test_what_cannot_run_exits_2_with_one_line(plugin, tmp_path, capsys, case, message):
    repo, commits = plugin
    base, head, where, module = commits["good"], commits["bad"], str(repo), "toyloss"
    extra = []
    if case == "not a repository":
        where = str(tmp_path)
    elif case == "no such module":
        module = "nosuchloss"
    else:
        base, head, extra = head, base, ["--bisect"]
    argv = ["gate", base, head, "--repo", where, "--backend", module, "--function", SPARSE, "--shape", "32x10",
            "--cache-dir", str(tmp_path / "cache"), *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


# --------------------------------------------------------------------------- bisection

def judge_of(culprit: int, undecided=()):
    """A step judge over commits 0..n-1 whose commit ``culprit`` regressed, and stays regressed; it answers
    undecided for the indices in ``undecided``. It records what it was asked."""
    asked = []

    def step(i):
        asked.append(i)
        return "undecided" if i in undecided else "bad" if i >= culprit else "good"
    step.asked = asked
    return step


@pytest.mark.parametrize("count", [1, 2, 3, 8, 9, 16])
def test_search_finds_every_culprit_in_one_plus_log2_steps(count):
    for culprit in range(count):
        step = judge_of(culprit)
        found = bisect.search(count, step)
        assert found.culprit == culprit and found.bad == culprit and found.undecided is None
        assert step.asked[0] == count - 1  # BAD first
        assert len(step.asked) <= 1 + (count - 1).bit_length()
    assert len(bisect.search(8, judge_of(3)).steps) == 4  # 8 commits: at most 4 gate steps


def test_search_without_a_regression_or_with_an_undecided_step():
    found = bisect.search(8, judge_of(99))  # BAD is not slower
    assert found.culprit is None and found.bad is None and found.steps == [(7, "good")]
    found = bisect.search(8, judge_of(99, undecided={7}))
    assert found.culprit is None and found.bad is None and found.undecided == 7
    # a step that stays undecided ends the search: the range (good, bad] is reported, not guessed
    found = bisect.search(8, judge_of(2, undecided={3}))
    assert found.culprit is None and found.undecided == 3 and (found.good, found.bad) == (-1, 7)
    line = bisect.report(found, [f"{i:040x}" for i in range(8)], "a" * 40, "BAD")
    assert "undecided" in line and f"{3:040x}" in line and "after aaaaaaaaaaaa" in line


def test_bisect_names_the_culprit_of_a_plugin_repository(plugin, tmp_path, capsys):
    repo, commits = plugin
    md = tmp_path / "culprit.md"
    js = tmp_path / "bisect.json"
    code = cli.main(["gate", commits["good"], commits["bad"], "--bisect", "--repo", str(repo), "--backend",
                     "toyloss", "--function", SPARSE, "--shape", "32x1000", "--cache-dir", str(tmp_path / "cache"),
                     "--markdown", str(md), "--json", str(js)])
    assert code == 1
    out = capsys.readouterr().out
    assert f"bisect: culprit {commits['slow']}" in out  # the full hash
    assert output.MARKER in out and "sparse 32x1000 | slower (confirmed)" in md.read_text()
    data = json.loads(js.read_text())
    assert data["culprit"] == commits["slow"]
    # 4 commits after GOOD: BAD, then the second, then the first (good): 3 steps
    assert [(s["commit"], s["verdict"]) for s in data["steps"]] == [
        (commits["bad"], "bad"), (commits["slow"], "bad"), (commits["empty"], "good")]


def test_record_appends_the_run_and_history_lists_unstable_combinations(plugin, tmp_path):
    repo, commits = plugin
    path = tmp_path / "history.jsonl"
    options = ("--function", SPARSE, "--shape", "32x1000", "--budget", "1", "--record", str(path))
    gate(tmp_path, repo, commits["good"], commits["empty"], *options)
    gate(tmp_path, repo, commits["empty"], commits["empty"], *options)  # an A/A run: the noise
    first, aa = history.load(path)
    assert (first["anchor"], first["head"], first["aa"]) == (commits["good"], commits["empty"], False)
    assert aa["aa"] and aa["anchor"] == aa["head"] == commits["empty"] and aa["backend"] == "toyloss"
    assert list(first["ratios"]) == ["sparse 32x1000"] and 0.8 < first["ratios"]["sparse 32x1000"]["ratio"] < 1.25
    # five more A/A runs in which this combination moved by 5-8%: beyond the slower line of 2.5%
    for ratio in (1.06, 0.95, 1.08, 0.93, 1.00):
        o = Outcome(SPARSE, 32, 1000, "float32", "toyloss", timing="same", ratio=ratio, low=ratio, high=ratio)
        history.record(path, [o], {"base_hash": "b" * 40, "head_hash": "b" * 40, "backend": "toyloss",
                                   "repo": None, "dtype": "float32", "threshold": 0.05, "cpu": machine.cpu()})
    o.ratio = 1.3  # and one of another machine: not this machine's noise
    history.record(path, [o], {"base_hash": "b" * 40, "head_hash": "b" * 40, "backend": "toyloss",
                               "repo": None, "dtype": "float32", "threshold": 0.05, "cpu": "another CPU"})
    code, md, data = gate(tmp_path, repo, commits["good"], commits["empty"], "--function", SPARSE,
                          "--shape", "32x1000", "--budget", "1", "--history", str(path))
    assert code == 0 and list(data["unstable"]) == ["sparse 32x1000"]
    unstable = md[md.index("### Unstable"):md.index("<details>")]
    assert "sparse 32x1000 |" in unstable and "A/A changes up to" in unstable and "of 6 A/A runs" in unstable
    assert "### Not same" not in md or "sparse 32x1000" not in md[md.index("### Not same"):md.index("### Unstable")]


def test_an_undecided_step_is_gated_again_with_more_budget(plugin, tmp_path, monkeypatch, capsys):
    """The step judge of ``--bisect`` with the measuring faked: the empty commit reads undecided, then, given
    RETRY_BUDGET times the budget, same; one that stays undecided ends the search unguessed."""
    repo, commits = plugin
    asked = []

    def fake_judge(folders, combos, dtype, backend, settings, progress, stays_undecided=False):
        commit = folders[1].name.split("-")[0]
        asked.append((commit, settings.budget))
        again = sum(c == commit for c, _ in asked) > 1
        timing = ("slower" if commit in (commits["slow"], commits["after"], commits["bad"]) else
                  "same" if again and not stays_undecided else "undecided")
        return [Outcome(f, b, c, dtype, backend, timing=timing) for f, b, c in combos]

    argv = ["gate", commits["good"], commits["bad"], "--bisect", "--repo", str(repo), "--backend", "toyloss",
            "--function", SPARSE, "--shape", "32x1000", "--budget", "2", "--cache-dir", str(tmp_path / "cache")]
    monkeypatch.setattr(bisect, "judge", fake_judge)
    assert cli.main(argv) == 1
    assert f"bisect: culprit {commits['slow']}" in capsys.readouterr().out
    assert asked == [(commits["bad"], 2.0), (commits["slow"], 2.0), (commits["empty"], 2.0),
                     (commits["empty"], 2.0 * bisect.RETRY_BUDGET)]

    asked.clear()
    monkeypatch.setattr(bisect, "judge", lambda *a: fake_judge(*a, stays_undecided=True))
    assert cli.main(argv) == 1  # BAD regressed; the culprit is not named
    out = capsys.readouterr().out
    assert "bisect: culprit" not in out and f"bisect: undecided: {commits['empty']} stayed undecided" in out
    assert f"after {commits['good']} up to {commits['slow']} (2 commits" in out
