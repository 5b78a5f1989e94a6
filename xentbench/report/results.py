"""Loading the results: one commit's asv result file in the report's terms (``Run``).

``xentbench.asvresults`` reads asv's files; this module sorts each value into
the report's tables by the suite's naming scheme (``xentbench.suite``), and
turns every problem with the files into a ``ReportError`` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xentbench import accuracy, asvresults
from xentbench.suite import (
    LINEAR_BENCHMARKS, LINEAR_MEMORY, LINEAR_MODULE, LINEAR_SPEEDUP, LINEAR_TIME, OPTIONS_COST, OPTIONS_SPEEDUP, OPTIONS_TIME, OUT_SUFFIX, STARTUP, SUITE,
    is_accuracy, is_half_cost, is_out, is_speedup)


#: ``bench_linear``'s figures by ``(class, kind)``: seconds, bytes, MiB of growth, paired speed-up
LINEAR_FIGURES = {(LINEAR_TIME, "time"): "time", (LINEAR_TIME, "peakmem"): "peakmem",
                  (LINEAR_MEMORY, "track"): "growth", (LINEAR_SPEEDUP, "track"): "speedup"}


class ReportError(Exception):
    """A report that cannot be made (the message says why); exit code 2."""


def input_bytes(function: str, batch: int, classes: int, dtype: str) -> int:
    """Bytes of the arguments of one call: logits plus labels (int64 class indices for sparse)."""
    logits = batch * classes * np.dtype(dtype).itemsize
    if function in accuracy.SPARSE:
        return logits + batch * 8
    if function in accuracy.DENSE or function == "sigmoid_cross_entropy_with_logits":
        return 2 * logits
    return logits


@dataclass
class Run:
    """One commit's recorded results on one machine, as the report uses them."""

    machine: str
    commit: str
    date: float | None  # commit date, ms since the epoch (asv's)
    machine_info: dict
    env: dict
    timings: dict  # (function, backend, batch, classes, dtype) -> seconds; backend "numba+out": out= given
    peakmem: dict  # same key -> bytes
    errors: dict  # (function, backend, dtype) -> max relative error over the shapes recorded
    paired: dict  # (function, baseline, batch, classes, dtype) -> numba's paired speed-up over baseline
    latency: dict  # (function, dtype, mode) -> seconds, mode in ("cold", "cached")
    # the loss options (bench_options, float32), keyed (function, options, batch, classes):
    options_times: dict  # -> {backend: seconds per call with the options}
    options_cost: dict  # -> numba's time with the options / its time without, paired
    options_speedup: dict  # -> numba's paired speed-up over PyTorch with the same options
    failed: list  # names of benchmarks that recorded no value (failed or skipped)
    files: list
    #: (function, batch, classes, dtype) -> numba's time on half-precision dtype / on float32, paired
    half_cost: dict = field(default_factory=dict)
    #: the fused linear + cross-entropy (bench_linear, float32): (what, backend, batch, hidden, vocabulary) ->
    #: value, ``what`` one of ``LINEAR_FIGURES``
    linear: dict = field(default_factory=dict)
    #: timing key -> (calls a sample, samples), as asv recorded them (absent from older files)
    samples: dict = field(default_factory=dict)
    #: timing key -> seconds of the timings that are one call (``asv --quick``): they show that a
    #: combination runs, not how fast, so they are kept out of ``timings`` and every judgement
    single_calls: dict = field(default_factory=dict)

    def peakmem_functions(self) -> set:
        return {k[0] for k in self.peakmem}

    @property
    def short(self) -> str:
        return self.commit[:8]


def _classify(result) -> tuple[str | None, str | None]:
    """``(section, function)`` of one asv result, by the suite's naming scheme (``xentbench.suite``)."""
    if result.class_name == STARTUP and result.kind == "track":
        return "latency", result.params.get("function")
    if result.module == LINEAR_MODULE and result.class_name in LINEAR_BENCHMARKS:
        return "linear", "linear_cross_entropy_and_grad"  # every one of them measures it
    options = {OPTIONS_TIME: "options_times", OPTIONS_COST: "options_cost", OPTIONS_SPEEDUP: "options_speedup"}
    if result.class_name in options:
        return options[result.class_name], result.params.get("function")
    function = SUITE.get(result.class_name)
    if function is None:
        return None, None
    if result.kind in ("time", "peakmem"):
        return result.kind, function
    if is_half_cost(result):
        return "half_cost", function
    if is_accuracy(result):
        return "accuracy", function
    if is_speedup(result):
        return "paired", function
    return None, function


def run_from(rf) -> Run:
    """An ``asvresults.ResultFile`` in the report's terms."""
    run = Run(machine=rf.machine, commit=rf.commit_hash, date=rf.date, machine_info={},
              env={"name": rf.env_name}, timings={}, peakmem={}, errors={}, paired={}, latency={},
              options_times={}, options_cost={}, options_speedup={}, failed=[], files=[str(rf.path)])
    for r in rf:
        if r.status == "skipped":  # asv's n/a: off the grid, or not selected in that run
            continue
        if r.status == "failed":
            run.failed.append(r.label)
            continue
        section, function = _classify(r)
        if section is None or function is None:
            continue
        p = r.params
        try:
            if section == "latency":
                run.latency[(function, p.get("dtype", "float32"), p["cache"])] = r.value  # float32 before dtypes
                continue
            if section.startswith("options_"):
                key = (function, p["options"], int(p["batch"]), int(p["classes"]))
                if section == "options_times":
                    run.options_times.setdefault(key, {})[p["backend"]] = r.value
                elif section == "options_cost":
                    run.options_cost[key] = r.value
                else:
                    run.options_speedup[key] = r.value
                continue
            if section == "linear":
                run.linear[(LINEAR_FIGURES[r.class_name, r.kind], p["backend"], int(p["batch"]), int(p["hidden"]),
                            int(p["vocabulary"]))] = r.value
                continue
            if section == "half_cost":
                run.half_cost[(function, int(p["batch"]), int(p["classes"]), str(p["dtype"]))] = r.value
                continue
            backend = p["backend"] + (OUT_SUFFIX if is_out(r) else "")  # the reuse case beside the backend
            key = (function, backend, int(p["batch"]), int(p["classes"]), str(p["dtype"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"{rf.path}: {r.label}: parameters not in the suite's scheme "
                              f"(backend, batch, classes, dtype): {exc}") from None
        if section == "time" and r.number == 1 and r.repeat == 1:
            run.single_calls[key] = r.value
        elif section == "time":
            run.timings[key] = r.value
            if r.number is not None and r.repeat is not None:
                run.samples[key] = (int(r.number), int(r.repeat))
        elif section == "peakmem":
            run.peakmem[key] = r.value
        elif section == "paired":
            run.paired[key] = r.value
        else:
            short = (function, key[1], key[4])
            run.errors[short] = max(run.errors.get(short, 0.0), r.value)
    return run


def load_run(results_dir: Path, commit: str, machine: str | None, repo: Path) -> Run:
    """Everything recorded for ``commit`` (a revision or hash prefix), in the report's terms."""
    try:
        run = run_from(asvresults.load_commit(results_dir, commit, machine, repo=repo))
    except asvresults.ResultsError as exc:
        raise ReportError(str(exc)) from None
    if not (run.timings or run.errors or run.peakmem or run.paired or run.latency or run.options_times
            or run.options_cost or run.options_speedup or run.half_cost or run.linear or run.single_calls):
        raise ReportError(f"{run.files[0]}: no result of the xentbench suite in it "
                          f"({len(run.failed)} failed)")
    return run


def newest_commit(results_dir: Path, machine: str | None) -> str:
    """The commit of the newest result file (by commit date), for when HEAD has none."""
    try:
        files = [asvresults.load(p) for p in asvresults.result_files(results_dir, machine)]
    except asvresults.ResultsError as exc:
        raise ReportError(str(exc)) from None
    if not files:
        raise ReportError(f"{results_dir}: no asv results"
                          + (f" for machine {machine!r}" if machine else "") + "; run `xentbench bench` first")
    return max(files, key=lambda f: (f.date or 0, f.path.stat().st_mtime)).commit_hash

