"""The asv suite and ``xentbench bench``: cheap checks (no benchmark is timed here).

``asv check`` imports the suite and checks every benchmark's signature; the
rest checks the grid, the inputs, the peer adapters against the truth, and the
``-b`` regular expressions that ``xentbench bench`` builds from its filters.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xentbench import accuracy, bench, peers, suite, timing

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common():
    """``benchmarks.common``, imported without importing every backend up front."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XENTBENCH_PREIMPORT", "none")
        return importlib.import_module("benchmarks.common")


def test_asv_check_finds_no_problem():
    env = dict(os.environ, XENTBENCH_PREIMPORT="none")
    done = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_every_function_has_time_peakmem_and_track(common):
    package = importlib.import_module("benchmarks")
    modules = [importlib.import_module(f"benchmarks.{m}")
               for m in ("bench_losses", "bench_grads", "bench_activations", "bench_accuracy")]
    classes = [c for m in modules for c in vars(m).values()
               if isinstance(c, type) and c.__module__ == m.__name__]
    assert package and common.missing_benchmarks(classes) == []
    without_track = [c for c in classes if not c.__module__.endswith("bench_accuracy")]
    missing = common.missing_benchmarks(without_track)
    assert len(missing) == len(accuracy.FUNCTIONS) and all("track_" in m for m in missing)


def test_bench_filters_cover_the_suite():
    assert set(suite.SUITE.values()) == set(accuracy.FUNCTIONS)
    assert {c for group in bench.GROUPS.values() for c in group} == set(suite.SUITE) | {
        "NumbaFirstCall", "LossOptions", "OptionsCost", "OptionsSpeedup", "LinearLossGrad", "LinearMemory",
        "LinearSpeedup"}
    batches, classes, dtypes = bench.QUICK
    for b in batches:
        for c in classes:
            for d in dtypes:
                assert suite.timing_skip_reason(b, c, d) is None
                assert suite.accuracy_skip_reason(b, c, d) is None


def test_grid_covers_image_and_language_model_shapes():
    float32 = [(b, c) for b, c, d in suite.grid(suite.timing_skip_reason) if d == "float32"]
    assert len(float32) == 21
    assert (256, 128256) in float32 and (65536, 1000) in float32 and (1, 2) in float32
    assert suite.timing_skip_reason(4096, 32000, "float32")  # 500 MiB of logits
    for dtype in ("float64", "float16", "bfloat16"):
        assert len([1 for *_, d in suite.grid(suite.timing_skip_reason) if d == dtype]) == 5
    accuracy_grid = suite.grid(suite.accuracy_skip_reason, suite.ACCURACY_BATCHES)
    assert (32, 128256, "float16") in accuracy_grid and (4096, 32000, "float32") not in accuracy_grid
    assert (32, 128256, "bfloat16") in accuracy_grid


def test_skipped_combinations_raise_not_implemented(common):
    from benchmarks.bench_losses import SparseLoss
    from benchmarks.bench_accuracy import Softmax

    with pytest.raises(NotImplementedError, match="256 MiB"):
        SparseLoss().setup("numpy", 65536, 128256, "float32")
    with pytest.raises(NotImplementedError):
        Softmax().setup("numpy", 65536, 10, "float32")


def test_inputs_are_fixed_and_realistic(common):
    labels, logits = common.inputs("sparse_softmax_cross_entropy_with_logits", 256, 1000, "float32")
    again = common._make_logits(256, 1000, "float32")
    np.testing.assert_array_equal(logits, again[0])
    np.testing.assert_array_equal(labels, again[1])
    assert logits.dtype == np.float32 and labels.dtype == np.int64
    assert 2 < float(np.std(logits - logits.mean(axis=1, keepdims=True))) < 4
    bump = logits[np.arange(256), labels] - logits.mean(axis=1)
    assert 4 < float(bump.mean()) < 6  # the bump at the label
    dense, _ = common.inputs("softmax_cross_entropy_with_logits", 256, 1000, "float16")
    assert dense.dtype == np.float16
    np.testing.assert_allclose(dense.astype(np.float64).sum(axis=1), 1, rtol=1e-2)
    (only,) = common.inputs("softmax", 32, 10, "float64")
    assert only.shape == (32, 10) and only.dtype == np.float64


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_shared_inputs_come_back_in_their_dtype(common, tmp_path, monkeypatch, dtype):
    """The second benchmark to ask for an input loads the first one's file: bfloat16 too,
    which ``np.save`` writes as raw 2-byte voids (``xentbench bench`` failed every bfloat16
    accuracy benchmark on that before)."""
    monkeypatch.setenv("XENTBENCH_CACHE_DIR", str(tmp_path))
    made, _ = common._logits(32, 10, dtype)  # writes the shared files
    loaded, labels = common._logits(32, 10, dtype)  # reads them
    assert loaded.dtype == np.dtype(dtype) == made.dtype and labels.dtype == np.int64
    np.testing.assert_array_equal(loaded.view(np.uint16), made.view(np.uint16))
    assert float(np.abs(loaded.astype(np.float32)).max()) > 1  # values, not bits read as numbers


@pytest.mark.parametrize("peer", ["torch", "jax"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_peers_compute_the_same_functions(common, peer, dtype):
    try:
        backend = peers.get_backend(peer)
    except NotImplementedError as exc:
        pytest.skip(str(exc))
    for function in accuracy.FUNCTIONS:
        args = common.inputs(function, 8, 100, dtype)
        got = getattr(backend, function)(*args)
        for part in got if isinstance(got, tuple) else (got,):
            assert part.dtype == np.dtype(dtype)
        error = common.truth(function, 8, 100, dtype).error(got)
        assert error <= accuracy.tolerance(dtype), (peer, function, dtype, error)


OPTIONS, SPARSE, DENSE = "bench_options", "sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits"


@pytest.mark.parametrize("label, selection, selected", [
    ("bench_losses.SparseLoss.time_forward('numba', 32, 1000, 'float32')", {}, True),
    ("bench_losses.SparseLoss.time_forward('numpy', 32, 1000, 'float32')", {}, False),
    ("bench_losses.SparseLoss.time_forward('numpy', 32, 1000, 'float32')", {"backend": "numpy"}, True),
    ("bench_losses.SparseLoss.time_forward('numba', 4096, 32000, 'float32')", {}, False),  # 500 MiB
    ("bench_losses.SparseLoss.peakmem_forward('numba', 65536, 1000, 'float32')", {}, True),
    ("bench_losses.SparseLoss.time_forward('numba', 1, 2, 'float64')", {}, False),  # small grid
    ("bench_grads.SparseLossGrad.peakmem_forward_backward('numba', 1, 2, 'float32')",
     {"functions": ["sparse"]}, True),
    ("bench_losses.DenseLoss.time_forward('numba', 1, 2, 'float32')", {"functions": ["sparse"]}, False),
    ("bench_accuracy.DenseLossGrad.track_error('numba', 32, 10, 'float64')",
     {"functions": ["softmax_cross_entropy_with_logits_and_grad"], "kinds": ["track"]}, True),
    ("bench_accuracy.DenseLossGrad.track_error('numba', 4096, 32000, 'float32')", {}, False),
    ("bench_accuracy.Softmax.track_error('numba', 256, 10, 'float32')", {}, False),
    ("bench_losses.SparseLoss.time_forward('numba', 32, 1000, 'float32')", {"kinds": ["track"]}, False),
    ("bench_activations.Softmax.time_forward('numba', 32, 1000, 'float32')", {"quick": True}, True),
    ("bench_activations.Softmax.time_forward('numba', 4096, 1000, 'float32')", {"quick": True}, False),
    ("bench_out.Softmax.time_out('numba', 4096, 1000, 'bfloat16')", {}, True),  # the reuse case
    ("bench_out.SparseLossGrad.time_out('numba', 65536, 1000, 'float32')", {"kinds": ["track"]}, False),
    ("bench_activations.Softmax.time_forward('numba', 32, 1000, 'float16')", {"quick": True}, False),
    ("bench_activations.LogSoftmax.time_forward('numba', 32, 1000, 'float32')",
     {"functions": ["softmax"]}, False),
    ("bench_startup.NumbaFirstCall.track_first_call('softmax', 'bfloat16', 'cold')", {}, True),
    ("bench_startup.NumbaFirstCall.track_first_call('softmax', 'float32', 'cold')", {"backend": "torch"}, False),
    ("bench_startup.NumbaFirstCall.track_first_call('softmax', 'float32', 'cold')", {"quick": True}, False),
    ("bench_startup.NumbaFirstCall.track_first_call('sparse_softmax_cross_entropy_with_logits', 'float32', 'cold')",
     {"quick": True}, True),
    ("bench_startup.NumbaFirstCall.track_first_call('sparse_softmax_cross_entropy_with_logits', 'float16', 'cold')",
     {"quick": True}, False),
    ("bench_paired.SparseLoss.track_speedup('torch', 32, 1000, 'float32')", {}, False),  # numba's run
    ("bench_paired.SparseLoss.track_speedup('torch', 32, 1000, 'float32')", {"backend": "paired"}, True),
    ("bench_paired.DenseLoss.track_speedup('tensorflow', 65536, 1000, 'float32')", {"backend": "paired"}, True),
    ("bench_paired.DenseLoss.track_speedup('numba', 32, 1000, 'float32')", {"backend": "paired"}, False),
    ("bench_paired.DenseLoss.track_speedup('jax', 32, 1000, 'float64')", {"backend": "paired"}, False),
    ("bench_paired.DenseLoss.track_speedup('jax', 65536, 128256, 'float32')", {"backend": "paired"}, False),
    ("bench_paired.DenseLoss.track_speedup('jax', 32, 1000, 'float32')",
     {"backend": "paired", "functions": ["sparse"]}, False),
    ("bench_paired.DenseLoss.track_speedup('jax', 32, 1000, 'float32')",
     {"backend": "paired", "kinds": ["time"]}, False),
    ("bench_paired.Softmax.track_speedup('jax', 32, 1000, 'float32')", {"backend": "paired", "quick": True}, True),
    ("bench_paired.Softmax.track_speedup('jax', 4096, 1000, 'float32')", {"backend": "paired", "quick": True},
     False),
    ("bench_losses.SparseLoss.time_forward('torch', 32, 1000, 'float32')", {"backend": "paired"}, False),
    # the loss options: time_call in its backend's run, track_cost in numba's, track_speedup in the paired run
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'smoothing', 256, 1000)", {}, True),
    (f"{OPTIONS}.LossOptions.time_call('torch', '{DENSE}', 'weights', 4096, 1000)", {"backend": "torch"}, True),
    (f"{OPTIONS}.LossOptions.time_call('naive', '{SPARSE}_and_grad', 'weights+smoothing+ignore+mean', 256, 32000)",
     {"backend": "naive"}, True),
    (f"{OPTIONS}.LossOptions.time_call('torch', '{DENSE}', 'weights', 4096, 1000)", {}, False),  # numba's run
    (f"{OPTIONS}.LossOptions.time_call('jax', '{DENSE}', 'weights', 4096, 1000)", {"backend": "jax"}, False),
    (f"{OPTIONS}.LossOptions.time_call('numba', '{DENSE}', 'ignore', 256, 1000)", {}, False),  # sparse only
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'ignore', 4096, 32000)", {}, False),  # 500 MiB
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'mean', 256, 1000)", {"kinds": ["track"]}, False),
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'mean', 256, 1000)", {"functions": ["options"]}, True),
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'mean', 256, 1000)", {"functions": ["sparse"]}, False),
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'mean', 256, 1000)", {"quick": True}, True),
    (f"{OPTIONS}.LossOptions.time_call('numba', '{SPARSE}', 'mean', 4096, 1000)", {"quick": True}, False),
    (f"{OPTIONS}.OptionsCost.track_cost('{DENSE}_and_grad', 'z_loss', 4096, 1000)", {}, True),
    (f"{OPTIONS}.OptionsCost.track_cost('{DENSE}_and_grad', 'z_loss', 4096, 1000)", {"backend": "paired"}, False),
    (f"{OPTIONS}.OptionsCost.track_cost('{DENSE}_and_grad', 'z_loss', 4096, 1000)", {"backend": "torch"}, False),
    (f"{OPTIONS}.OptionsCost.track_cost('{DENSE}_and_grad', 'z_loss', 4096, 1000)", {"kinds": ["time"]}, False),
    (f"{OPTIONS}.OptionsCost.track_cost('{DENSE}_and_grad', 'z_loss', 4096, 1000)",
     {"functions": ["OptionsCost"]}, True),
    (f"{OPTIONS}.OptionsCost.track_cost('{DENSE}_and_grad', 'z_loss', 4096, 1000)",
     {"functions": ["OptionsSpeedup"]}, False),
    (f"{OPTIONS}.OptionsSpeedup.track_speedup('{SPARSE}', 'weights+smoothing+ignore+mean', 256, 1000)",
     {"backend": "paired"}, True),
    (f"{OPTIONS}.OptionsSpeedup.track_speedup('{SPARSE}', 'weights+smoothing+ignore+mean', 256, 1000)", {}, False),
    (f"{OPTIONS}.OptionsSpeedup.track_speedup('{SPARSE}', 'weights+smoothing+ignore+mean', 256, 32000)",
     {"backend": "paired", "quick": True}, False),
    (f"{OPTIONS}.OptionsSpeedup.track_speedup('{DENSE}', 'ignore', 256, 1000)", {"backend": "paired"}, False),
    (f"{OPTIONS}.OptionsSpeedup.track_speedup('{SPARSE}', 'smoothing', 256, 1000)",
     {"backend": "paired", "functions": ["grad"]}, False),
    # half precision against float32, paired: in numba's run, on the half-precision time grid
    ("bench_half.DenseLoss.track_cost('numba', 32, 32000, 'float16')", {}, True),
    ("bench_half.Softmax.track_cost('numba', 4096, 1000, 'bfloat16')", {"kinds": ["track"]}, True),
    ("bench_half.Softmax.track_cost('numba', 4096, 1000, 'bfloat16')", {"kinds": ["time"]}, False),
    ("bench_half.Softmax.track_cost('numba', 4096, 1000, 'bfloat16')", {"functions": ["sparse"]}, False),
    ("bench_half.Softmax.track_cost('numba', 4096, 32000, 'bfloat16')", {}, False),  # over SMALL_MAX_ELEMENTS
    ("bench_half.Softmax.track_cost('numba', 32, 1000, 'float32')", {}, False),
    ("bench_half.Softmax.track_cost('torch', 32, 1000, 'float16')", {"backend": "torch"}, False),
    ("bench_half.Softmax.track_cost('numba', 32, 1000, 'float16')", {"backend": "paired"}, False),
])
def test_filters_select_what_they_say(label, selection, selected):
    import re

    selection = dict({"backend": "numba"}, **selection)
    regexes = bench.bench_regexes(**selection)
    assert any(re.search(r, label) for r in regexes) == selected


def test_selection_is_exactly_the_grid(common):
    """The -b expressions select every combination setup runs and none it skips."""
    import itertools
    import re

    from benchmarks.bench_accuracy import SparseLoss as Accurate
    from benchmarks.bench_losses import SparseLoss as Timed

    for cls, method in ((Timed, "time_forward"), (Accurate, "track_error")):
        regexes = bench.bench_regexes("jax", ["SparseLoss"])
        for params in itertools.product(*cls.params):
            label = f"bench_x.SparseLoss.{method}({', '.join(repr(p) for p in params)})"
            label = label.replace("bench_x", "bench_losses" if cls is Timed else "bench_accuracy")
            chosen = any(re.search(r, label) for r in regexes)
            skip = (suite.timing_skip_reason if cls is Timed else suite.accuracy_skip_reason)(*params[1:])
            assert chosen == (params[0] == "jax" and skip is None), label


def test_options_selection_is_exactly_their_grid(common):
    """Of the 4 functions x 6 option sets x 2 batches x 2 classes, 66 run: not 4096 x 32000 (500 MiB of
    logits, 24 combinations), nor ``ignore`` with dense labels at the 3 other shapes (2 x 3)."""
    import itertools
    import re

    from benchmarks import bench_options

    assert {name for name, cls in vars(bench_options).items()
            if isinstance(cls, type) and cls.__module__ == bench_options.__name__
            and not name.startswith("_")} == set(bench.GROUPS["options"])
    for backend, cls, method in (("numba", bench_options.LossOptions, "time_call"),
                                 ("numba", bench_options.OptionsCost, "track_cost"),
                                 ("paired", bench_options.OptionsSpeedup, "track_speedup")):
        regexes = bench.bench_regexes(backend, ["options"])
        chosen = [params for params in itertools.product(*cls.params)
                  if any(re.search(r, f"bench_options.{cls.__name__}.{method}({', '.join(map(repr, params))})")
                         for r in regexes)]
        assert len(chosen) == 66, (cls, len(chosen))
        shapes = [p[-2:] for p in chosen]
        assert (4096, 32000) not in shapes and shapes.count((256, 1000)) == 22
        assert (DENSE, "ignore") not in [p[-4:-2] for p in chosen]
    for backend in ("naive", "numpy", "numba", "tensorflow", "torch"):
        (regex,) = bench.bench_regexes(backend, ["options"], ["time"])
        assert f"('{backend}', " in regex
    assert bench.bench_regexes("jax", ["options"]) == []


def test_a_full_run_includes_the_options(common):
    """No --function: each run carries its part of bench_options."""
    import re

    label = f"{OPTIONS}.OptionsCost.track_cost('{SPARSE}', 'smoothing', 256, 1000)"
    runs = dict(bench.plan(argparse.Namespace(bench=[], backend=None, function=None, kind=None, quick=False)))
    assert [b for b, regexes in runs.items() if any(re.search(r, label) for r in regexes)] == ["numba"]
    speedup = label.replace("OptionsCost.track_cost", "OptionsSpeedup.track_speedup")
    assert [b for b, regexes in runs.items() if any(re.search(r, speedup) for r in regexes)] == ["paired"]


def test_every_function_has_a_paired_benchmark(common):
    from benchmarks import bench_paired

    classes = {name: cls for name, cls in vars(bench_paired).items()
               if isinstance(cls, type) and cls.__module__ == bench_paired.__name__}
    assert {name: cls.function for name, cls in classes.items()} == suite.SUITE
    assert all(callable(getattr(cls, "track_speedup", None)) for cls in classes.values())
    assert common.Paired.unit == "speedup" and common.Paired.params[0] == list(suite.BASELINES)


def test_half_cost_times_half_precision_against_float32_paired(common):
    """``bench_half``: one benchmark per function, ``time(dtype) / time(float32)`` of numba's
    call on the suite's inputs of each dtype, measured by ``PairedCalls``."""
    from benchmarks import bench_half

    classes = {name: cls for name, cls in vars(bench_half).items()
               if isinstance(cls, type) and cls.__module__ == bench_half.__name__}
    assert {name: cls.function for name, cls in classes.items()} == suite.SUITE
    benchmark = classes["DenseLoss"]()
    with pytest.raises(NotImplementedError, match="float16 runs only"):
        benchmark.setup("numba", 1, 2, "float16")
    benchmark.setup("numba", 32, 10, "float16")
    labels, logits = (call.args for call in benchmark.calls)
    assert [a.dtype.name for a in labels + logits] == ["float32", "float32", "float16", "float16"]
    cost = benchmark.track_cost("numba", 32, 10, "float16")
    assert common.HalfCost.unit == suite.COST_UNIT and 0 < cost < 100


def test_paired_ratio_alternates_and_takes_the_median():
    """A fake clock, read twice a turn (start, stop): a timed call of ``first``
    costs 1 unit, of ``second`` 3; a lead-in call (before the clock starts)
    costs 100, which must not count. In round 2 the machine is twice as slow
    for both (a load spike: the pair moves alike); in round 3 only ``second``
    is 4x slower (an outlier: the median ignores it)."""
    now, reads, calls = [0.0], [0], []

    def clock():
        reads[0] += 1
        return now[0]

    def call(name, cost):
        def fn():
            timed, round_ = reads[0] % 2 == 1, reads[0] // 4
            calls.append(name if timed else f"lead-in {name}")
            spike = (2.0 if round_ == 2 else 1.0) * (4.0 if round_ == 3 and name == "second" else 1.0)
            now[0] += cost * spike if timed else 100.0
        return fn

    ratio = timing.paired_ratio(call("first", 1.0), call("second", 3.0), (2, 5), (1, 2), rounds=5, clock=clock)
    assert ratio == 3.0
    # round 0: first (1 lead-in, 2 timed), then second (2 lead-ins, 5 timed); round 1 the other way
    assert calls[:10] == ["lead-in first"] + ["first"] * 2 + ["lead-in second"] * 2 + ["second"] * 5
    assert calls[10:20] == ["lead-in second"] * 2 + ["second"] * 5 + ["lead-in first"] + ["first"] * 2
    assert len(calls) == 5 * 10 and reads[0] == 5 * 4


def test_paired_setup_skips_off_the_grid(common):
    from benchmarks.bench_paired import SparseLoss

    with pytest.raises(NotImplementedError, match="256 MiB"):
        SparseLoss().setup("tensorflow", 65536, 128256, "float32")
    with pytest.raises(NotImplementedError, match="float64 runs only"):
        SparseLoss().setup("tensorflow", 1, 2, "float64")


def test_unknown_function_is_refused():
    with pytest.raises(ValueError, match="unknown function"):
        bench.bench_regexes("numba", functions=["crossentropy"])


def test_bench_dry_run_prints_the_asv_command(capsys):
    parser = __import__("argparse").ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--quick", "--backend", "numba", "--dry-run"])) == 0
    out = capsys.readouterr().out
    assert "XENTBENCH_PREIMPORT=numba " in out and out.count("asv run") == 1
    assert f"GLIBC_TUNABLES={timing.MALLOC_TUNABLES} " in out
    assert "--python=same --set-commit-hash" in out and "--quick" in out


class _FakeAsv:
    """What ``bench._echo`` reads: asv's output, as lines."""

    def __init__(self, text: str):
        self.stdout = io.StringIO(text)


#: asv's output for two time benchmarks, each with the note on every combination, the
#: second with a real error after the note of one combination
ASV_OUTPUT = """\
[ 50.00%] ··· bench_losses.SparseLoss.time_forward                            ok
[ 50.00%] ··· ============ ======= ========= ========= ===========
                 numba        32       10     float32   13.0±10μs
              ============ ======= ========= ========= ===========

[ 50.00%] ···· For parameters: 'numba', 32, 10, 'float32'
               asv: bench_losses.SparseLoss.time_forward: setup hooks re-run between the 44 individually timed calls of each sample
               
               For parameters: 'numba', 32, 1000, 'float32'
               asv: bench_losses.SparseLoss.time_forward: setup hooks re-run between the 36 individually timed calls of each sample

[100.00%] ··· bench_losses.DenseLoss.time_forward                             ok
[100.00%] ···· For parameters: 'numba', 32, 10, 'float32'
               asv: bench_losses.DenseLoss.time_forward: setup hooks re-run between the 40 individually timed calls of each sample
               RuntimeWarning: overflow

"""


def test_asv_output_has_no_dangling_parameter_lines(capsys):
    bench._echo(_FakeAsv(ASV_OUTPUT), compact=True, started=0.0)
    out = capsys.readouterr().out
    assert "setup hooks re-run" not in out
    # the notes' headers go with them; the one followed by a real message stays, before it
    assert out.count("For parameters:") == 1
    assert "For parameters: 'numba', 32, 10, 'float32'\n               RuntimeWarning: overflow" in out
    assert "bench_losses.DenseLoss.time_forward: ok" in out  # the elapsed line after each benchmark


def test_quick_bench_does_not_claim_to_record():
    args = argparse.Namespace(commit=None, quick=True)
    said = bench.intent(args, "a" * 40, "a" * 40, record=False, library=Path("/tmp/lib"))
    assert "recorded as" not in said and "not recorded" in said and "--quick" in said
    args = argparse.Namespace(commit=None, quick=False)
    assert bench.intent(args, "a" * 40, "a" * 40, record=True, library=Path("/tmp/lib")).endswith(
        "to be recorded as aaaaaaaa")


def test_compact_output_keeps_a_row_with_any_value():
    # asv's rows: a combination off the grid reads n/a; a row that ends in n/a may hold values before it
    assert bench._nothing_measured("   numba    32    10      n/a      n/a")
    assert not bench._nothing_measured("   numba  2048  1024  1.48±0s      n/a")  # 2048x1024x128256 is off
    assert not bench._nothing_measured("   numba  2048  1024  185.32421875      n/a")  # a track_ value
    assert not bench._nothing_measured("   numba    32    10   5.47us      n/a")
    assert not bench._nothing_measured("   numba    32    10   failed      n/a")
