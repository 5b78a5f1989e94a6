"""Writes the tiny asv results that tests/test_report.py reports on (run it to regenerate).

    python tests/data/make_report_fixture.py

``tests/data/report_asv/results/``: asv 0.6 result files (format version 2) of
two made-up commits on a made-up machine ``testbox``, in the naming scheme of
``xentbench/suite.py``: two of the seven functions (``SparseLoss``,
``Softmax``), four backends (numba, tensorflow and the peers torch and jax),
batch 32 and 4096, classes 10 and 1000, float32 and float64; accuracy
(``track_error``), the Numba first-call latency, and the paired speed-ups of
the sparse loss (``bench_paired``, float32, against TensorFlow and the peers); and the loss options
(``bench_options``: the sparse and dense losses x three option sets x batch 256 and 4096 x classes
1000 and 32000, 4096 x 32000 and ``ignore`` with dense labels skipped; ``time_call`` for numba,
tensorflow and torch, one of torch's failed in the newer commit; ``track_cost`` and ``track_speedup``
from the round figures of ``OPTIONS_COST`` and ``OPTIONS_SPEEDUP``). One combination is skipped
(asv's NaN) and one failed (asv's null), as in real runs. The numbers are
made up but plausible, and distinct, so that a test can find each one in the
report. ``report_asv/roofline/testbox.json`` holds round machine limits.
"""

import itertools
import json
import math
from pathlib import Path

HERE = Path(__file__).parent / "report_asv"
COMMITS = {"a1b2c3d4e5f60718293a4b5c6d7e8f9012345678": 1_700_000_000_000,
           "0fedcba987654321f0e1d2c3b4a5968778695a4b": 1_699_000_000_000}
BACKENDS = ["numba", "tensorflow", "torch", "jax"]
BASELINES = ["tensorflow", "torch", "jax"]  # of the paired benchmarks
BATCHES, CLASSES, DTYPES = [32, 4096], [10, 1000], ["float32", "float64"]
PER_ELEMENT = {"numba": 0.9e-9, "tensorflow": 2.1e-9, "torch": 1.3e-9, "jax": 1.7e-9}  # s per logit
OVERHEAD = {"numba": 3e-6, "tensorflow": 45e-6, "torch": 9e-6, "jax": 14e-6}
CLASSES_OF = {"SparseLoss": ("bench_losses", "forward"), "Softmax": ("bench_activations", "forward")}
OPTIONS_FUNCTIONS = ["sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits"]
OPTIONS = ["smoothing", "ignore", "weights+smoothing+ignore+mean"]
OPTIONS_BATCHES, OPTIONS_CLASSES = [256, 4096], [1000, 32000]
OPTIONS_BACKENDS = ["numba", "tensorflow", "torch"]
#: numba's cost ratio (with / without the options) and its speed-up over torch, in the newer commit: the
#: option set's figure, plus the dense loss's and the shape's; the older commit's cost is 0.1 more, its
#: speed-up 0.2 less
OPTIONS_COST = {"smoothing": 1.02, "ignore": 1.05, "weights+smoothing+ignore+mean": 1.08}
OPTIONS_SPEEDUP = {"smoothing": 2.4, "ignore": 2.1, "weights+smoothing+ignore+mean": 1.95}
DENSE_COST, DENSE_SPEEDUP = 0.04, -0.1
SHAPE_COST = {(256, 1000): 0.0, (256, 32000): 0.01, (4096, 1000): 0.02}
SHAPE_SPEEDUP = {(256, 1000): -0.3, (256, 32000): 0.2, (4096, 1000): 0.0}
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
           "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]


def grid_params():
    return [[repr(b) for b in BACKENDS], [repr(b) for b in BATCHES], [repr(c) for c in CLASSES],
            [repr(d) for d in DTYPES]]


def options_results(newer: bool) -> dict:
    """``{benchmark: (values, params)}`` of ``bench_options`` for one commit; NaN off the grid."""
    nan = float("nan")
    shapes = list(itertools.product(OPTIONS_FUNCTIONS, OPTIONS, OPTIONS_BATCHES, OPTIONS_CLASSES))
    cost, speedup = [], []
    for f, o, n, c in shapes:
        dense = f == "softmax_cross_entropy_with_logits"
        if (n, c) not in SHAPE_COST or (dense and o == "ignore"):
            cost.append(nan)
            speedup.append(nan)
            continue
        cost.append(round(OPTIONS_COST[o] + DENSE_COST * dense + SHAPE_COST[(n, c)] + (0 if newer else 0.1), 4))
        speedup.append(round(OPTIONS_SPEEDUP[o] + DENSE_SPEEDUP * dense + SHAPE_SPEEDUP[(n, c)]
                             - (0 if newer else 0.2), 4))
    times = []
    for b in OPTIONS_BACKENDS:
        for (f, o, n, c), ratio, speed in zip(shapes, cost, speedup):
            numba = (OVERHEAD["numba"] + n * c * PER_ELEMENT["numba"]) * ratio
            t = {"numba": numba, "torch": numba * speed,
                 "tensorflow": (OVERHEAD["tensorflow"] + n * c * PER_ELEMENT["tensorflow"]) * 1.3}[b]
            times.append(nan if math.isnan(ratio) else float(f"{t:.6g}"))
    if newer:  # failed: torch, dense, smoothing, 4096 x 1000
        times[OPTIONS_BACKENDS.index("torch") * len(shapes) + shapes.index(
            ("softmax_cross_entropy_with_logits", "smoothing", 4096, 1000))] = None
    params = [[repr(f) for f in OPTIONS_FUNCTIONS], [repr(o) for o in OPTIONS], [repr(n) for n in OPTIONS_BATCHES],
              [repr(c) for c in OPTIONS_CLASSES]]
    return {"bench_options.LossOptions.time_call": (times, [[repr(b) for b in OPTIONS_BACKENDS]] + params),
            "bench_options.OptionsCost.track_cost": (cost, params),
            "bench_options.OptionsSpeedup.track_speedup": (speedup, params)}


def main() -> None:
    benchmarks = {"version": 2}
    per_commit = {c: {} for c in COMMITS}
    for k, (commit, _) in enumerate(COMMITS.items()):
        speed = 1.0 if k == 0 else 1.25  # the older commit's numba is 25% slower
        for cls, (module, method) in CLASSES_OF.items():
            extra = 1.0 if cls == "SparseLoss" else 1.6
            for kind in ("time", "peakmem"):
                name = f"{module}.{cls}.{kind}_{method}"
                benchmarks[name] = {"name": name, "param_names": ["backend", "batch", "classes", "dtype"],
                                    "params": grid_params(), "type": "time" if kind == "time" else "peakmemory",
                                    "unit": "seconds" if kind == "time" else "bytes", "version": "1"}
                values = []
                for b, n, c, d in itertools.product(BACKENDS, BATCHES, CLASSES, DTYPES):
                    elements, size = n * c, 4 if d == "float32" else 8
                    if kind == "time":
                        t = (OVERHEAD[b] + elements * PER_ELEMENT[b] * size / 4 * extra) * (speed if b == "numba" else 1)
                        values.append(float(f"{t:.6g}"))
                    else:
                        values.append(400_000_000 + 1_000_000 * BACKENDS.index(b) + 2 * elements * size)
                if kind == "time":
                    values[BACKENDS.index("jax") * 8 + 7] = float("nan")  # skipped: jax 4096 x 1000 float64
                    if k == 0:
                        values[BACKENDS.index("torch") * 8 + 5] = None  # failed: torch 4096 x 10 float64
                per_commit[commit][name] = [values, grid_params(), "1", 0, 1.0]
            name = f"bench_accuracy.{cls}.track_error"
            benchmarks[name] = {"name": name, "param_names": ["backend", "batch", "classes", "dtype"],
                                "params": grid_params(), "type": "track", "unit": "relative error",
                                "version": "1"}
            errors = []
            for i, (b, n, c, d) in enumerate(itertools.product(BACKENDS, BATCHES, CLASSES, DTYPES)):
                base = 6e-8 if d == "float32" else 2e-16
                errors.append(float(f"{base * (1 + 0.37 * BACKENDS.index(b) + 0.05 * (i % 8)):.4g}"))
            per_commit[commit][name] = [errors, grid_params(), "1", 0, 1.0]
        name = "bench_paired.SparseLoss.track_speedup"
        params = [[repr(b) for b in BASELINES], [repr(b) for b in BATCHES], [repr(c) for c in CLASSES], ["'float32'"]]
        benchmarks[name] = {"name": name, "param_names": ["backend", "batch", "classes", "dtype"], "params": params,
                            "type": "track", "unit": "speedup", "version": "1"}
        ratios = []
        for i, (b, n, c) in enumerate(itertools.product(BASELINES, BATCHES, CLASSES)):
            elements = n * c
            time = {k: OVERHEAD[k] + elements * PER_ELEMENT[k] for k in ("numba", b)}
            # the separate timings' ratio, moved by a made-up 3-14% (paired differ from unpaired)
            ratios.append(float(f"{time[b] / (time['numba'] * speed) * (0.86 + 0.01 * i):.4g}"))
        per_commit[commit][name] = [ratios, params, "1", 0, 1.0]
        name = "bench_startup.NumbaFirstCall.track_first_call"
        params = [["'sparse_softmax_cross_entropy_with_logits'", "'softmax'"], ["'cold'", "'cached'"]]
        benchmarks[name] = {"name": name, "param_names": ["function", "cache"], "params": params,
                            "type": "track", "unit": "seconds", "version": "1"}
        per_commit[commit][name] = [[1.73 * speed, 0.0412, 1.31 * speed, 0.0377], params, "1", 0, 1.0]
        for name, (values, params) in options_results(newer=k == 0).items():
            names = (["backend"] if name.endswith("time_call") else []) + ["function", "options", "batch", "classes"]
            unit = {"time_call": "seconds", "track_cost": "cost ratio", "track_speedup": "speedup"}[name.split(".")[-1]]
            benchmarks[name] = {"name": name, "param_names": names, "params": params,
                                "type": "time" if unit == "seconds" else "track", "unit": unit, "version": "1"}
            per_commit[commit][name] = [values, params, "1", 0, 1.0]

    machine = HERE / "results" / "testbox"
    machine.mkdir(parents=True, exist_ok=True)
    (HERE / "results" / "benchmarks.json").write_text(json.dumps(benchmarks, indent=1) + "\n")
    (machine / "machine.json").write_text(json.dumps(
        {"arch": "x86_64", "cpu": "Test CPU", "machine": "testbox", "num_cpu": "2", "os": "Linux",
         "ram": "16000000000", "version": 1}) + "\n")
    for commit, date in COMMITS.items():
        data = {"commit_hash": commit, "env_name": "existing-py", "date": date,
                "params": {"machine": "testbox", "python": "3.11"}, "python": "3.11",
                "requirements": {}, "env_vars": {}, "result_columns": COLUMNS,
                "results": per_commit[commit], "durations": {}, "version": 2}
        (machine / f"{commit[:8]}-existing-py.json").write_text(json.dumps(data) + "\n")
    roof = {"version": 1, "measured_at": "2024-01-01T00:00:00+0000", "threads": 2,
            "cache_bytes": {"L2": 1 << 20, "LLC": 32 << 20},
            "bandwidth": {"L2": {"single": 80e9, "all": 100e9}, "LLC": {"single": 40e9, "all": 60e9},
                          "memory": {"single": 10e9, "all": 20e9}},
            "exp": {"float32": 1e9, "float64": 0.25e9, "float16": 1e9},
            "machine": {"hostname": "testbox", "cpu": "Test CPU 3000", "simd": ["avx2"], "cores": 2,
                        "logical_cpus": 2, "caches": {"L1": 32768, "L2": 524288, "L3": 33554432},
                        "memory_bytes": 16 << 30, "os": "Linux", "python": "3.11.7",
                        "libraries": {"numpy": "2.4.6", "numba": "0.68.1"},
                        "numba_threading_layer": "tbb", "numba_threads": 2,
                        # as xentbench.quirks.summary() words a machine whose reference shows a quirk
                        "reference": ["TensorFlow 2.21.0, oneDNN on (TF_ENABLE_ONEDNN_OPTS=unset; CPU: AVX-512)",
                                      "onednn-softmax-nan (softmax; float16, float32): as found on testbox"]}}
    (HERE / "roofline").mkdir(exist_ok=True)
    (HERE / "roofline" / "testbox.json").write_text(json.dumps(roof, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
