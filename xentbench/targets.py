"""The Numba backend's performance targets, checked against the results of one run.

The targets are those of the fast-kernels issue (see benchmarks/NOTES.md), of
the first call (issue 16), of the loss options (issue 19: numba's paired
cost with them, and its paired speed-up over PyTorch with the same options)
and of the fused linear + cross-entropy (issue 30: paired speed-ups over
PyTorch and over the BLAS alone, memory above the inputs);
each is checked at every shape of the run where it applies, and the report
shows, per target, whether it is met, how many cases were checked and the
worst case. Ratios are between backends measured in the same ``xentbench
bench`` run: ``time(baseline) / time(numba)``, above 1 when numba is faster;
the paired ones (``benchmarks/bench_paired.py``: both timed in turns in one
process) where the run has them for that function, else those of the
separate ``time_`` benchmarks.

A target with no recorded case (a peer not installed, a partial run) is
"not measured", never "met", and says which ``xentbench bench`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentbench.analysis import paired_speedups, roofline_fraction, speedups
from xentbench.suite import FOCUS, HALF_DTYPES, LINEAR_GEMM, OUT_SUFFIX, REFERENCE, SHORT_NAMES

FORWARD = ("sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits")
FUSED = ("sparse_softmax_cross_entropy_with_logits_and_grad", "softmax_cross_entropy_with_logits_and_grad")
BUILDING_BLOCKS = ("softmax", "log_softmax", "sigmoid_cross_entropy_with_logits")
#: the shapes of the issue's table of peers (batch, classes)
ISSUE_SHAPES = ((4096, 1000), (256, 32000), (65536, 10), (32, 128256), (1, 128256))
#: the roofline target applies from this size of the logits up (below it, the
#: call's fixed cost, some microseconds, is a visible part of the time)
ROOFLINE_MIN_BYTES = 4 << 20
#: half precision (float16, bfloat16) costs at most this many times float32's time at the
#: same shape (the kernels widen and narrow as they load and store: no extra pass over memory)
HALF_MAX_COST = 1.5
#: from this many classes up, half precision costs at most float32's time: it reads half the bytes
HALF_CHEAPER_FROM = 1000
#: the functions that write one value per logit, and the shapes at which they must reach 60%
#: of the roofline when ``out=`` is given (the outputs the allocator maps afresh on every call)
ONE_PER_LOGIT = ("softmax", "log_softmax", "sigmoid_cross_entropy_with_logits") + (
    "sparse_softmax_cross_entropy_with_logits_and_grad", "softmax_cross_entropy_with_logits_and_grad")
OUT_SHAPES = ((65536, 1000), (256, 128256))
FIRST_CALL_MAX_S = 1.0
#: the first call with an empty on-disk cache (it compiles), per function, float32 and float64,
#: and per half-precision dtype: issue 28's targets (each call compiles only its own kernels,
#: benchmarks/NOTES.md entry 26)
COLD_CALL_MAX_S = 2.0
COLD_HALF_CALL_MAX_S = 3.0
#: the loss options (issue 19): numba's time with them at most this many times its own time without
#: them (paired, ``bench_options.OptionsCost``), from this many classes up ...
OPTIONS_MAX_COST = 1.1
OPTIONS_COST_FROM = 1000
#: ... and at least this many times as fast as PyTorch's ``F.cross_entropy`` with the same options
#: (paired, ``bench_options.OptionsSpeedup``)
OPTIONS_MIN_SPEEDUP = 1.5
#: the fused linear + cross-entropy (issue 30), forward and backward, float32, paired: numba at least this fast
#: against PyTorch's unfused form and its chunked path, and this share of the BLAS's rate on the same products...
LINEAR_MIN_SPEEDUP = {"torch": 1.0, "torch-chunked": 1.4, LINEAR_GEMM: 0.8}
#: ...and its memory above the inputs at most its results (grad_weight and grad_hidden) and this much more
LINEAR_SLACK_BYTES = 64 << 20
LINEAR_PAIRED = "`xentbench bench --backend paired --function linear`"


@dataclass(frozen=True)
class Verdict:
    target: str
    met: bool | None  # None: nothing recorded to check
    checked: int  # cases checked
    worst: str  # the worst case, in words


def _times(run, dtype: str) -> dict:
    """``{(function, batch, classes): {backend: seconds}}`` of ``dtype``."""
    out: dict = {}
    for (function, backend, batch, classes, dt), t in run.timings.items():
        if dt == dtype:
            out.setdefault((function, batch, classes), {})[backend] = t
    return out


#: what measures the cases of each group of functions: their paired benchmarks (against
#: TensorFlow and the peers; the peers need ``pip install -e '.[peers]'``)
PAIRED_RUN = {FORWARD: "`xentbench bench --backend paired --function SparseLoss --function DenseLoss`",
              FUSED: "`xentbench bench --backend paired --function grad`",
              BUILDING_BLOCKS: "`xentbench bench --backend paired --function softmax --function log_softmax "
                               "--function sigmoid`"}


def _verdict(target: str, cases: list, minimum: float, describe, measure: str) -> Verdict:
    """``cases``: ``(value, what)``; met when every value is at least ``minimum``; ``measure``:
    what records the cases (Markdown), named when there are none."""
    if not cases:
        return Verdict(target, None, 0, f"not measured in this run; {measure} measures it")
    value, what = min(cases, key=lambda c: c[0])
    return Verdict(target, bool(value >= minimum), len(cases), describe(value, what))


def ratios(run, function: str, against: str) -> tuple[dict, bool]:
    """``({(batch, classes): ratio}, paired)``: numba over TF (``against="tf"``) or
    the faster peer (``"peer"``), float32; paired (``analysis.paired_speedups``)
    if the run has paired ratios of ``function`` against it, else from the
    separate timings (``analysis.speedups``)."""
    paired = paired_speedups(run, function, "float32").get(against)
    if paired:
        return paired, True
    return speedups(run, function, "float32").get((FOCUS, against), {}), False


def _ratio_target(run, functions, against: str, minimum: float, everywhere: bool) -> Verdict:
    """numba at least ``minimum`` times as fast as TF (``against="tf"``) or the
    faster peer (``"peer"``), float32, at every shape or at the issue's shapes
    and those with at least 1000 classes (``ratios``)."""
    cases = []
    for function in functions:
        by_shape, paired = ratios(run, function, against)
        cases += [(ratio, f"{SHORT_NAMES[function]} {batch}x{classes}" + (" (paired)" if paired else ""))
                  for (batch, classes), ratio in by_shape.items()
                  if everywhere or (batch, classes) in ISSUE_SHAPES or classes >= 1000]
    who = "the faster peer" if against == "peer" else "TensorFlow"
    where = ("at every float32 shape" if everywhere
             else "at the issue's shapes and every shape with >= 1000 classes")
    target = f"{' and '.join(SHORT_NAMES[f] for f in functions)}: >= {minimum:g}x {who}, {where}"
    return _verdict(target, cases, minimum, lambda v, w: f"{v:.2f}x at {w}", PAIRED_RUN[functions])


def _roofline_cases(run, roof, backend: str, keep) -> list:
    """``(fraction, what)`` of ``backend``'s float32 timings whose ``(function, batch, classes)`` ``keep`` keeps."""
    cases = []
    for key, (fraction, bound, level, bandwidth) in roofline_fraction(run, roof).items():
        function, b, batch, classes, dtype = key
        if b == backend and dtype == "float32" and keep(function, batch, classes):
            cases.append((fraction, f"{SHORT_NAMES[function]} {batch}x{classes} ({bound}-bound in {level}; "
                                    f"{bandwidth:.0%} of the bandwidth ceiling alone)"))
    return cases


def _roofline_measure(roof, run_: str) -> str:
    return run_ + (", then `xentbench report --measure` on that machine," if roof is None else "")


def _roofline_target(run, roof) -> Verdict:
    cases = _roofline_cases(run, roof, FOCUS, lambda f, b, c: b * c * 4 >= ROOFLINE_MIN_BYTES)
    return _verdict(f">= 60% of the roofline, every function, float32 logits >= "
                    f"{ROOFLINE_MIN_BYTES >> 20} MiB", cases, 0.6, lambda v, w: f"{v:.0%} at {w}",
                    _roofline_measure(roof, "`xentbench bench --backend numba --kind time`"))


def _roofline_out_target(run, roof) -> Verdict:
    shapes = " and ".join(f"{b}x{c}" for b, c in OUT_SHAPES)
    cases = _roofline_cases(run, roof, FOCUS + OUT_SUFFIX,
                            lambda f, b, c: f in ONE_PER_LOGIT and (b, c) in OUT_SHAPES)
    return _verdict(f"with out= given: >= 60% of the roofline at {shapes}, every function that writes one "
                    "value per logit, float32", cases, 0.6, lambda v, w: f"{v:.0%} at {w}",
                    _roofline_measure(roof, "`xentbench bench --backend numba --kind time`"))


def _float64_target(run) -> Verdict:
    cases = [(times["numpy"] / times[FOCUS], f"{SHORT_NAMES[f]} {b}x{c}")
             for (f, b, c), times in _times(run, "float64").items() if "numpy" in times and FOCUS in times]
    return _verdict("float64: >= 2x NumPy stable, every function and shape", cases, 2.0,
                    lambda v, w: f"{v:.2f}x at {w}", "`xentbench bench --backend numba --backend numpy --kind time`")


def _half_costs(run, dtype: str) -> list:
    """``[(float32's time / dtype's time, what, classes)]``: numba's paired costs
    (``bench_half``, marked *paired*) where the run has some for ``dtype``, else the
    ratios of its separate ``time_`` benchmarks at the same shape."""
    paired = [(1 / cost, f"{SHORT_NAMES[f]} {b}x{c} (paired)", c)
              for (f, b, c, d), cost in run.half_cost.items() if d == dtype and cost > 0]
    if paired:
        return paired
    f32 = _times(run, "float32")
    return [(f32[key][FOCUS] / times[FOCUS], f"{SHORT_NAMES[key[0]]} {key[1]}x{key[2]}", key[2])
            for key, times in _times(run, dtype).items() if FOCUS in times and FOCUS in f32.get(key, {})]


def _half_targets(run, dtype: str) -> list[Verdict]:
    """``dtype`` (float16 or bfloat16) at most float32's time from ``HALF_CHEAPER_FROM``
    classes up, and at most ``HALF_MAX_COST`` times it everywhere, at the same shape
    (``_half_costs``: paired where the run has it)."""
    cases = _half_costs(run, dtype)
    measure = "`xentbench bench --backend numba --kind track`"
    return [_verdict(f"{dtype}: at most float32's time at >= {HALF_CHEAPER_FROM} classes (half the bytes)",
                     [c[:2] for c in cases if c[2] >= HALF_CHEAPER_FROM], 1.0,
                     lambda v, w: f"{1 / v:.2f}x float32's time at {w}", measure),
            _verdict(f"{dtype}: at most {HALF_MAX_COST:g}x float32's time at every shape", [c[:2] for c in cases],
                     1 / HALF_MAX_COST, lambda v, w: f"{1 / v:.2f}x float32's time at {w}", measure)]


def _accuracy_target(run) -> Verdict:
    cases = []
    for (function, backend, dtype), error in run.errors.items():
        reference = run.errors.get((function, REFERENCE, dtype))
        if backend == FOCUS and dtype == "float32" and reference is not None:
            ratio = reference / error if error > 0 else np.inf
            cases.append((ratio, f"{SHORT_NAMES[function]}: {error:.2g} against TensorFlow's {reference:.2g}"))
    return _verdict("float32 error no worse than TensorFlow's on the same inputs (largest over shapes)",
                    cases, 1.0, lambda v, w: w, "`xentbench bench --backend numba --backend tensorflow --kind track`")


def _first_call_target(run, mode: str, limit: float, cache: str, dtypes=None) -> Verdict:
    """The first call's latency in a fresh process (``mode``: "cached" or "cold") within ``limit``, on
    ``dtypes`` (default: every dtype)."""
    cases = [(limit / s, f"{SHORT_NAMES[f]} {d}: {s:.2f} s")
             for (f, d, m), s in run.latency.items() if m == mode and s > 0 and (dtypes is None or d in dtypes)]
    on = "" if dtypes is None else f", {', '.join(dtypes)}"
    return _verdict(f"first call with {cache}{on}: < {limit:g} s", cases, 1.0,
                    lambda v, w: w, "`xentbench bench --backend numba --function startup`")


def _options_targets(run) -> list[Verdict]:
    """numba with the loss options against itself without them, and against PyTorch with them."""
    def what(key) -> str:
        function, options, batch, classes = key
        return f"{SHORT_NAMES[function]} {batch}x{classes} with {options}"

    costs = [(1 / cost, what(key)) for key, cost in run.options_cost.items()
             if key[3] >= OPTIONS_COST_FROM and cost > 0]
    speedups = [(ratio, what(key)) for key, ratio in run.options_speedup.items()]
    return [_verdict(f"loss options: numba within {OPTIONS_MAX_COST - 1:.0%} of its own time without them at "
                     f"C >= {OPTIONS_COST_FROM}", costs, 1 / OPTIONS_MAX_COST,
                     lambda v, w: f"{1 / v:.2f}x its time without them at {w}",
                     "`xentbench bench --backend numba --function options`"),
            _verdict(f"loss options: >= {OPTIONS_MIN_SPEEDUP:g}x PyTorch's F.cross_entropy with the same options",
                     speedups, OPTIONS_MIN_SPEEDUP, lambda v, w: f"{v:.2f}x at {w}",
                     "`xentbench bench --backend paired --function options`")]


def shape_label(shape) -> str:
    """``N x D x V`` of the fused linear + cross-entropy, as the targets and the report write it."""
    return "x".join(map(str, shape))


def linear_allowance(batch: int, hidden: int, vocabulary: int) -> int:
    """Bytes numba's fused linear + cross-entropy may add to its float32 inputs: its gradients and
    ``LINEAR_SLACK_BYTES``."""
    return (vocabulary + batch) * hidden * 4 + LINEAR_SLACK_BYTES


def _linear_targets(run) -> list[Verdict]:
    """The fused linear + cross-entropy's: its speed against PyTorch and the BLAS, and its memory."""
    names = {"torch": "PyTorch's F.linear + F.cross_entropy", "torch-chunked": "PyTorch's chunked "
             "F.linear_cross_entropy", LINEAR_GEMM: "the BLAS's rate on its three products (share of SGEMM)"}
    verdicts = [_verdict(f"linear + cross-entropy: >= {minimum:g}x {names[peer]}, paired, every shape",
                         [(v, shape_label(k[2:])) for k, v in run.linear.items() if k[:2] == ("speedup", peer)],
                         minimum, lambda v, w: f"{v:.2f}x at {w}", LINEAR_PAIRED)
                for peer, minimum in LINEAR_MIN_SPEEDUP.items()]
    growth = {k[2:]: v * 2**20 for k, v in run.linear.items() if k[:2] == ("growth", FOCUS)}
    chunked = {k[2:]: v * 2**20 for k, v in run.linear.items() if k[:2] == ("growth", "torch-chunked")}
    return verdicts + [
        _verdict(f"linear + cross-entropy: memory above the inputs <= the gradients + "
                 f"{LINEAR_SLACK_BYTES >> 20} MiB", [(linear_allowance(*shape) / used, f"{used / 2**20:.0f} MiB "
                 f"(allowed {linear_allowance(*shape) / 2**20:.0f}) at {shape_label(shape)}")
                 for shape, used in growth.items() if used > 0], 1.0, lambda v, w: w,
                 "`xentbench bench --backend numba --function linear`"),
        _verdict("linear + cross-entropy: memory above the inputs <= PyTorch's chunked path's",
                 [(chunked[shape] / used, f"{used / 2**20:.0f} MiB against {chunked[shape] / 2**20:.0f} at "
                   f"{shape_label(shape)}") for shape, used in growth.items() if used > 0 and shape in chunked],
                 1.0, lambda v, w: w, "`xentbench bench --backend numba --backend torch --function linear`")]


def evaluate(run, roof: dict | None) -> list[Verdict]:
    """Every target, in the issue's order."""
    return [
        _ratio_target(run, FORWARD, "peer", 1.5, everywhere=False),
        _ratio_target(run, FORWARD, "tf", 8.0, everywhere=True),
        _ratio_target(run, FUSED, "peer", 1.5, everywhere=False),
        _ratio_target(run, FUSED, "tf", 5.0, everywhere=True),
        _ratio_target(run, BUILDING_BLOCKS, "peer", 1.2, everywhere=False),
        _roofline_target(run, roof),
        _roofline_out_target(run, roof),
        _float64_target(run),
        *(verdict for dtype in HALF_DTYPES for verdict in _half_targets(run, dtype)),
        _accuracy_target(run),
        _first_call_target(run, "cached", FIRST_CALL_MAX_S, "the on-disk cache warm"),
        _first_call_target(run, "cold", COLD_CALL_MAX_S, "an empty on-disk cache (it compiles)",
                           ("float32", "float64")),
        _first_call_target(run, "cold", COLD_HALF_CALL_MAX_S, "an empty on-disk cache (it compiles)", HALF_DTYPES),
        *_options_targets(run),
        *_linear_targets(run),
    ]
