"""``xentbench compare`` and ``xentbench.asvresults`` on small hand-made asv result files.

Each test writes the results of two commits in asv's own format (result
format version 2, as asv 0.6 writes it) and checks the verdict and the exit
status: 1 for a planted slowdown, memory growth, accuracy loss or failure, 0
within the noise, 2 (a message naming the file, no traceback) for a corrupt
file or a missing commit.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest

from xentbench import asvresults, compare

BASE = "a" * 40
HEAD = "b" * 40
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
           "stats_q_25", "stats_q_75", "stats_number", "stats_repeat"]
PARAMS = [["'numba'", "'numpy'"], ["32"], ["1000"], ["'float32'"]]
TIME = "bench_losses.SparseLoss.time_forward"
PEAKMEM = "bench_losses.SparseLoss.peakmem_forward"
TRACK = "bench_accuracy.SparseLoss.track_error"
STARTUP = "bench_startup.NumbaFirstCall.track_first_call"
PAIRED = "bench_paired.SparseLoss.track_speedup"
PAIRED_PARAMS = [["'tensorflow'", "'torch'"], ["32"], ["1000"], ["'float32'"]]


def row(values, spread=0.01, version="v1"):
    """One asv result row over PARAMS: ``values`` per backend, quartiles at +-spread."""
    n = len(values)
    q25 = [None if v is None or math.isnan(v) else v * (1 - spread) for v in values]
    q75 = [None if v is None or math.isnan(v) else v * (1 + spread) for v in values]
    return [values, PARAMS, version, 0, 1.0, [None] * n, [None] * n, q25, q75, [1] * n, [3] * n]


def plain_row(values, version="v1"):
    return [values, PARAMS, version, 0, 1.0]


def baseline():
    return {
        TIME: row([1.0e-3, 2.0e-3]),
        PEAKMEM: plain_row([500e6, 600e6]),
        TRACK: plain_row([6.0e-8, 3.6e-8]),
        STARTUP: [[0.5, 2.0], [["'sparse_softmax_cross_entropy_with_logits'"], ["'cached'", "'cold'"]], "v1", 0, 1.0],
        PAIRED: [[12.0, 1.6], PAIRED_PARAMS, "v1", 0, 1.0],
    }


def write(results_dir, commit, results, machine="ci-box"):
    folder = results_dir / machine
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "machine.json").write_text(json.dumps({"machine": machine, "version": 1}))
    data = {"commit_hash": commit, "env_name": "existing-py_venv_bin_python", "date": 1700000000000,
            "params": {"machine": machine, "python": "3.11"}, "python": "3.11", "requirements": {},
            "env_vars": {}, "result_columns": COLUMNS, "results": results, "durations": {}, "version": 2}
    path = folder / f"{commit[:8]}-existing-py_venv_bin_python.json"
    path.write_text(json.dumps(data))
    return path


def write_benchmarks_json(results_dir):
    names = ["backend", "batch", "classes", "dtype"]
    meta = {TIME: {"type": "time", "unit": "seconds", "param_names": names},
            PEAKMEM: {"type": "peakmemory", "unit": "bytes", "param_names": names},
            TRACK: {"type": "track", "unit": "relative error", "param_names": names},
            STARTUP: {"type": "track", "unit": "seconds", "param_names": ["function", "cache"]},
            PAIRED: {"type": "track", "unit": "speedup", "param_names": names},
            "version": 2}
    (results_dir / "benchmarks.json").write_text(json.dumps(meta))


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A results directory with BASE recorded; tests write HEAD."""
    monkeypatch.chdir(tmp_path)  # not a git repository: revisions are hash prefixes
    folder = tmp_path / "results"
    write(folder, BASE, baseline())
    write_benchmarks_json(folder)
    return folder


def run_compare(results_dir, *extra, base=BASE[:8], head=HEAD[:8]):
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args([base, head, "--results-dir", str(results_dir), *extra])
    return compare.run(args)


def test_identical_results_pass(results, capsys):
    write(results, HEAD, baseline())
    assert run_compare(results) == 0
    assert "OK" in capsys.readouterr().out


def test_planted_slowdown_fails(results, capsys):
    head = baseline()
    head[TIME] = row([1.5e-3, 2.0e-3])  # numba 50% slower, well outside the quartiles
    write(results, HEAD, head)
    assert run_compare(results, "--factor", "1.15") == 1
    out = capsys.readouterr().out
    assert "Slower" in out and "REGRESSION" in out
    assert f"{TIME}('numba', 32, 1000, 'float32')" in out
    assert f"{TIME}('numpy', 32, 1000, 'float32')" not in out


def test_planted_accuracy_loss_fails(results, capsys):
    head = baseline()
    head[TRACK] = plain_row([6.0e-8, 7.2e-8])  # numpy's error doubled
    write(results, HEAD, head)
    assert run_compare(results) == 1
    out = capsys.readouterr().out
    assert "Less accurate" in out and f"{TRACK}('numpy', 32, 1000, 'float32')" in out


def test_any_accuracy_loss_beyond_epsilon_fails(results):
    head = baseline()
    head[TRACK] = plain_row([6.0e-8 * (1 + 1e-4), 3.6e-8])  # 0.01% worse: real, however small
    write(results, HEAD, head)
    assert run_compare(results) == 1


def test_accuracy_within_epsilon_and_better_pass(results, capsys):
    head = baseline()
    head[TRACK] = plain_row([6.0e-8 * (1 + 1e-9), 1.0e-8])  # a last-digit wobble; numpy better
    write(results, HEAD, head)
    assert run_compare(results) == 0
    assert "More accurate: 1" in capsys.readouterr().out


def test_nan_error_is_less_accurate(results):
    head = baseline()
    head[TRACK] = plain_row([float("inf"), 3.6e-8])
    write(results, HEAD, head)
    assert run_compare(results) == 1


def test_within_noise_passes(results, capsys):
    head = baseline()
    head[TIME] = row([1.08e-3, 1.9e-3])  # +8%, -5%
    head[PEAKMEM] = plain_row([520e6, 590e6])  # +4%
    head[STARTUP] = [[0.55, 1.9], baseline()[STARTUP][1], "v1", 0, 1.0]
    write(results, HEAD, head)
    assert run_compare(results, "--factor", "1.15") == 0
    out = capsys.readouterr().out
    assert "Slower" not in out and "OK" in out


def test_overlapping_spread_is_noisy_unless_no_stats(results, capsys):
    head = baseline()
    head[TIME] = [[1.3e-3, 2.0e-3], PARAMS, "v1", 0, 1.0, [None] * 2, [None] * 2,
                  [0.9e-3, 1.98e-3], [1.6e-3, 2.02e-3], [1, 1], [3, 3]]  # median +30%, spread overlaps
    write(results, HEAD, head)
    assert run_compare(results) == 0
    assert "within the samples' spread" in capsys.readouterr().out
    assert run_compare(results, "--no-stats") == 1


def test_peakmem_growth_fails(results, capsys):
    head = baseline()
    head[PEAKMEM] = plain_row([500e6, 800e6])
    write(results, HEAD, head)
    assert run_compare(results) == 1
    assert f"{PEAKMEM}('numpy', 32, 1000, 'float32')" in capsys.readouterr().out


def test_first_call_latency_is_judged_by_the_factor(results):
    head = baseline()
    head[STARTUP] = [[0.5, 3.0], baseline()[STARTUP][1], "v1", 0, 1.0]  # cold compile 50% slower
    write(results, HEAD, head)
    assert run_compare(results) == 1


@pytest.mark.parametrize("head_values, code, verdict", [
    ([12.0, 1.2], 1, "slower"),  # numba's speed-up over torch fell from 1.6x to 1.2x: numba got slower
    ([12.0, 2.4], 0, "faster"),
    ([11.0, 1.55], 0, "unchanged"),
])
def test_paired_speedup_falling_is_a_slowdown(results, head_values, code, verdict):
    head = baseline()
    head[PAIRED] = [head_values, PAIRED_PARAMS, "v1", 0, 1.0]
    write(results, HEAD, head)
    assert run_compare(results) == code
    changes = compare.compare(asvresults.load_commit(results, BASE[:8]), asvresults.load_commit(results, HEAD[:8]))
    (torch,) = [c for c in changes if c.label == f"{PAIRED}('torch', 32, 1000, 'float32')"]
    assert torch.verdict == verdict and torch.ratio == pytest.approx(1.6 / head_values[1])


def test_failure_in_head_fails_and_skips_are_not_judged(results, capsys):
    head = baseline()
    head[TIME] = row([None, float("nan")])  # numba failed, numpy skipped
    write(results, HEAD, head)
    assert run_compare(results) == 1
    out = capsys.readouterr().out
    assert "Failed in HEAD (ran in BASE): 1" in out and "1 skipped" in out


def test_changed_benchmark_code_is_not_judged(results, capsys):
    head = baseline()
    head[TIME] = row([5e-3, 9e-3], version="v2")
    write(results, HEAD, head)
    assert run_compare(results) == 0
    assert "2 changed code" in capsys.readouterr().out


def test_truncated_result_file_is_a_clear_error(results, capsys):
    path = write(results, HEAD, baseline())
    path.write_text(path.read_text()[:200])  # cut mid-file, as a killed run leaves it
    assert run_compare(results) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    with pytest.raises(asvresults.ResultsError, match="truncated or corrupt"):
        asvresults.load(path)


def test_malformed_result_file_names_the_file(results, capsys):
    path = write(results, HEAD, {TIME: [[1.0], PARAMS, "v1"]})  # 1 result for 2 combinations
    assert run_compare(results) == 2
    assert str(path) in capsys.readouterr().err


def test_missing_commit_is_a_clear_error(results, capsys):
    assert run_compare(results, head="c" * 8) == 2
    assert "no results" in capsys.readouterr().err


def test_reader_gives_values_per_benchmark_and_params(results):
    rf = asvresults.load_commit(results, BASE[:6])
    assert rf.commit_hash == BASE and rf.machine == "ci-box"
    r = rf.get(TIME, ("'numba'", "32", "1000", "'float32'"))
    assert r.value == 1.0e-3 and r.status == "ok" and r.unit == "seconds" and r.kind == "time"
    assert r.params == {"backend": "numba", "batch": 32, "classes": 1000, "dtype": "float32"}
    assert r.class_name == "SparseLoss" and r.module == "bench_losses" and r.method == "time_forward"
    track = rf.get(TRACK, ("'numpy'", "32", "1000", "'float32'"))
    assert track.unit == "relative error" and track.value == 3.6e-8
    assert rf.get(PEAKMEM, ("'numba'", "32", "1000", "'float32'")).kind == "peakmem"
    assert len(rf) == 2 + 2 + 2 + 2 + 2  # time, peakmem, accuracy, first call, paired


def test_reader_without_benchmarks_json_infers_kinds(tmp_path):
    path = write(tmp_path, BASE, baseline())
    rf = asvresults.load(path)
    assert rf.get(PEAKMEM, ("'numba'", "32", "1000", "'float32'")).unit == "bytes"
    assert rf.get(TIME, ("'numba'", "32", "1000", "'float32'")).param_names[0] == "param1"
