"""The fused linear + cross-entropy's benchmarks (``benchmarks/bench_linear.py``): what ``xentbench bench``
selects, how memory growth is measured, and how the report and the targets read the results."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xentbench import bench, targets, timing
from xentbench.console import Steps
from xentbench.report.context import Context
from xentbench.report.document import Doc
from xentbench.report.linear import section_linear
from xentbench.report.results import Run

MIB = 2**20
SMALL = (256, 512, 32000)


def selected(backend: str, quick: bool = False) -> set[str]:
    """The ``name(params)`` of bench_linear that ``xentbench bench --function linear`` runs for ``backend``."""
    regexes = [re.compile(r) for r in bench.bench_regexes(backend, ["linear"], quick=quick)]
    names = [f"bench_linear.{cls}.{method}({b!r}, {n}, {d}, {v})"
             for cls, method in (("LinearLossGrad", "time_forward_backward"),
                                 ("LinearLossGrad", "peakmem_forward_backward"),
                                 ("LinearMemory", "track_growth"), ("LinearSpeedup", "track_speedup"))
             for b in ("numba", "numpy", "torch", "torch-chunked", "gemm", "tensorflow")
             for n in (256, 2048) for d in (512, 1024) for v in (32000, 128256)]
    return {name for name in names if any(r.match(name) for r in regexes)}


def test_each_run_selects_its_own_backends_on_the_grid_without_the_largest_shape():
    numba = selected("numba")
    assert {n.split("(")[1].split(",")[0] for n in numba} == {"'numba'", "'gemm'"}
    assert not any("LinearMemory" in n and "gemm" in n for n in numba)  # the products alone: time only
    assert len([n for n in numba if n.startswith("bench_linear.LinearMemory")]) == 7  # 8 shapes less 2048x1024x128256
    assert not any("2048, 1024, 128256" in n for n in numba)
    torch = selected("torch")
    assert {n.split("(")[1].split(",")[0] for n in torch} == {"'torch'", "'torch-chunked'"}
    paired = selected("paired")
    assert {n.split(".")[1] for n in paired} == {"LinearSpeedup"} and len(paired) == 3 * 7
    assert selected("tensorflow") == set()  # it holds the logits by design: verified, not timed
    assert {n.split("(")[1] for n in selected("paired", quick=True)} == {
        f"{b!r}, 256, 512, 32000)" for b in ("torch", "torch-chunked", "gemm")}


def test_the_default_run_leaves_them_out():  # seconds a call, PyTorch's chunked path tens: asked for by name
    for backend in ("numba", "torch", "paired"):
        assert not any("bench_linear" in regex for regex in bench.bench_regexes(backend))


def test_the_function_names_and_the_group_select_the_same_classes():
    assert bench.classes_for("linear") == bench.classes_for("linear_cross_entropy_and_grad") == [
        "LinearLossGrad", "LinearMemory", "LinearSpeedup"]


def test_peak_growth_sees_an_allocation_that_is_freed_before_it_returns():
    def allocate():
        block = np.ones(64 * MIB // 8)  # written: resident
        del block

    grown = timing.peak_growth(allocate)
    assert 60 * MIB <= grown <= 80 * MIB
    assert timing.peak_growth(lambda: None) < 8 * MIB  # the earlier peak was reset


def test_long_calls_get_no_lead_in():
    assert timing.lead_in_calls(0.001) == 10  # LEAD_IN = 10 ms of 1 ms calls
    assert timing.lead_in_calls(0.5) == 1
    assert timing.lead_in_calls(timing.LONG_CALL) == 0


def run_with(linear: dict) -> Run:
    return Run(machine="box", commit="0" * 40, date=None, machine_info={}, env={}, timings={}, peakmem={},
               errors={}, paired={}, latency={}, options_times={}, options_cost={}, options_speedup={}, failed=[],
               files=[], linear=linear)


FIGURES = {("time", "numba", *SMALL): 0.2, ("time", "torch", *SMALL): 0.25, ("time", "gemm", *SMALL): 0.15,
           ("speedup", "torch", *SMALL): 1.1, ("speedup", "torch-chunked", *SMALL): 9.0,
           ("speedup", "gemm", *SMALL): 0.7, ("growth", "numba", *SMALL): 113.0,
           ("growth", "torch-chunked", *SMALL): 69.0}


def test_the_targets_are_judged_on_the_paired_ratios_and_the_growth():
    verdicts = {v.target: v for v in targets.evaluate(run_with(FIGURES), None) if "linear" in v.target}
    met = {t.split(": ")[1].split(",")[0]: v.met for t, v in verdicts.items()}
    assert met == {">= 1x PyTorch's F.linear + F.cross_entropy": True,
                   ">= 1.4x PyTorch's chunked F.linear_cross_entropy": True,
                   ">= 0.8x the BLAS's rate on its three products (share of SGEMM)": False,
                   "memory above the inputs <= the gradients + 64 MiB": True,  # 113 <= (32000 + 256) 512 4 B + 64 MiB
                   "memory above the inputs <= PyTorch's chunked path's": False}
    assert targets.linear_allowance(*SMALL) == 32256 * 512 * 4 + 64 * MIB


def test_an_unmeasured_target_is_not_met():
    verdicts = [v for v in targets.evaluate(run_with({}), None) if "linear" in v.target]
    assert len(verdicts) == 5 and all(v.met is None and "xentbench bench" in v.worst for v in verdicts)


def test_the_section_shows_the_times_ratios_and_the_sgemm_rate(tmp_path):
    ctx = Context(run=run_with(FIGURES), old=None, roof=None, roof_source="", folder=tmp_path, dtype="float32",
                  doc=Doc(), progress=Steps(quiet=True))
    section_linear(ctx)
    md = ctx.doc.markdown()
    row = next(line for line in md.splitlines() if line.startswith("| 256x512x32000"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in md.splitlines() if line.startswith("| N x D x V") and "vs torch" in line)
    columns = dict(zip([c.strip() for c in header.strip("|").split("|")], cells))
    assert columns["numba time"] == "200 ms" and columns["vs torch"] == "1.10x" and columns["share of SGEMM"] == "70%"
    assert columns["SGEMM GFLOP/s"] == f"{6 * 256 * 512 * 32000 / 0.15 / 1e9:.0f}"  # 168: 6 N D V / the gemm time
    assert "113 MiB" in md and [job[0] for job in ctx.jobs] == ["memory"]


def test_no_results_say_which_command_measures_them(tmp_path):
    ctx = Context(run=run_with({}), old=None, roof=None, roof_source="", folder=tmp_path, dtype="float32",
                  doc=Doc(), progress=Steps(quiet=True))
    section_linear(ctx)
    assert "`xentbench bench --function linear`" in ctx.doc.markdown() and not ctx.jobs


@pytest.mark.parametrize("who", ["numba", "gemm"])
def test_the_benchmark_calls_run_on_a_small_shape(who):
    from benchmarks import bench_linear
    bench_linear.call(who, 4, 8, 16)()
    with pytest.raises(NotImplementedError, match="over"):
        bench_linear.call(who, 2048, 1024, 128256)
