"""The report's section on the fused linear + cross-entropy (``benchmarks/bench_linear.py``): its speed
against PyTorch and the BLAS, and its memory against PyTorch's unfused form and chunked path."""

from __future__ import annotations

from xentbench import targets
from xentbench.report.context import Context
from xentbench.report.formatting import backends_in_order, fmt_bytes, fmt_ratio, fmt_seconds
from xentbench.suite import FOCUS, LINEAR_GEMM, LINEAR_PEERS

MIB = 2**20


def flops(batch: int, hidden: int, vocabulary: int) -> int:
    """The forward and backward's multiply-adds, twice: ``h W^T``, ``G W`` and ``G^T h``."""
    return 6 * batch * hidden * vocabulary


def inputs_bytes(batch: int, hidden: int, vocabulary: int) -> int:
    """float32 ``hidden`` and ``weight``, int64 labels."""
    return (batch + vocabulary) * hidden * 4 + batch * 8


def _targets() -> str:
    return ", ".join(f"{minimum:.0%} of SGEMM" if peer == LINEAR_GEMM else f"{minimum:g}x {peer}"
                     for peer, minimum in targets.LINEAR_MIN_SPEEDUP.items())


def section_linear(ctx: Context) -> None:
    """Per shape: each backend's time, numba's paired speed-ups, its share of the BLAS's rate; then
    each backend's memory above its inputs, against the allowance and the logits' size."""
    run, doc = ctx.run, ctx.doc
    doc.h(2, "Fused linear + cross-entropy")
    if not run.linear:
        doc.p("No fused linear + cross-entropy benchmarks in this run (`xentbench bench --function linear`).")
        return
    figures: dict = {}
    for (what, backend, *shape), value in run.linear.items():
        figures.setdefault(tuple(shape), {}).setdefault(what, {})[backend] = value
    shapes = sorted(figures)
    doc.p(f"`linear_cross_entropy_and_grad(labels, hidden, weight)`: the loss of `hidden @ weight.T` and its "
          f"gradients, float32, `benchmarks/bench_linear.py`; each backend's time per call (asv's median), "
          f"**{LINEAR_GEMM}** the three matrix products alone through the BLAS {FOCUS}'s path uses, whose "
          f"6 N D V flops over that time are the **SGEMM rate** judged against. **vs torch**: {FOCUS}'s speed-up "
          f"over PyTorch's `F.linear` + `F.cross_entropy` (it holds the N x V logits); **vs torch-chunked**: over "
          f"its `F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())`; **share of SGEMM**: the "
          f"products' time over {FOCUS}'s; all three measured paired (in turns in one process). Targets: at "
          f"least {_targets()}.")
    backends = backends_in_order({b for f in figures.values() for b in f.get("time", {})})
    rows = []
    for shape in shapes:
        times, speedups = figures[shape].get("time", {}), figures[shape].get("speedup", {})
        share, products = speedups.get(LINEAR_GEMM), times.get(LINEAR_GEMM)
        rows.append([targets.shape_label(shape)] + [fmt_seconds(times.get(b)) for b in backends]
                    + [fmt_ratio(speedups.get(p)) for p in LINEAR_PEERS]
                    + [f"{share:.0%}" if share else "-", f"{flops(*shape) / products / 1e9:.0f}" if products else "-"])
    doc.table(["N x D x V"] + [f"{b} time" for b in backends] + [f"vs {p}" for p in LINEAR_PEERS]
              + ["share of SGEMM", "SGEMM GFLOP/s"], rows)
    _memory(ctx, figures, shapes)


def _memory(ctx: Context, figures: dict, shapes: list) -> None:
    doc = ctx.doc
    backends = backends_in_order({b for f in figures.values() for b in f.get("growth", {})})
    if not backends:
        return
    doc.h(3, "Memory above the inputs")
    doc.p(f"The peak resident memory of one call over the resident memory before it (`LinearMemory.track_growth`: "
          f"Linux's high-water mark reset before the call), the results included. **allowed**: {FOCUS}'s target, "
          f"its gradients (grad_weight and grad_hidden) and {targets.LINEAR_SLACK_BYTES // MIB} MiB; **logits**: "
          f"the N x V float32 logits that the unfused form holds, and their gradient again.")
    rows, panel = [], {}
    for shape in shapes:
        growth = figures[shape].get("growth", {})
        rows.append([targets.shape_label(shape)] + [fmt_bytes(growth[b] * MIB) if b in growth else "-"
                                                   for b in backends]
                    + [fmt_bytes(targets.linear_allowance(*shape)), fmt_bytes(shape[0] * shape[2] * 4)])
        for b, mib in growth.items():
            panel.setdefault(b, []).append((inputs_bytes(*shape), mib * MIB, "float32"))
    doc.table(["N x D x V"] + [f"{b} growth" for b in backends] + ["allowed", "logits"], rows)
    ctx.plot("memory", "linear_memory.png", "fused linear + cross-entropy: memory above the inputs",
             {"linear_cross_entropy_and_grad": panel}, xlabel="input (hidden + weight + labels), bytes",
             ylabel="peak growth of the call, bytes")
    doc.img("linear_memory.png", "memory of the fused linear + cross-entropy")
