"""The report's speed sections: throughput, speed-ups over the baselines, the paired
speed-ups, the loss options and the roofline (see ``xentbench.report.sections`` for the others)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from xentbench import roofline, targets
from xentbench.analysis import paired_speedups, roofline_fraction, speedups, throughput_gbs
from xentbench.report.context import Context
from xentbench.report.formatting import (
    backends_in_order, dtype_key, dtypes_timed, fmt, fmt_bytes, fmt_ratio, fmt_seconds, functions_in_order,
    geomean)
from xentbench.suite import FOCUS, OPTIONS_GRID, OPTIONS_PEER, PEERS, REFERENCE, SHORT_NAMES


def section_throughput(ctx: Context) -> None:
    run, doc = ctx.run, ctx.doc
    doc.h(2, "Throughput")
    doc.p("GB/s of logits processed (batch x classes x itemsize / time, the time being asv's "
          "value: the median of its samples) and elements/s (right axis) against the number of "
          "classes; one panel per "
          "batch size, one line per backend; the dashed black line is this machine's limit for the "
          "shape (see Roofline)" + ("; dotted lines: the compared commit." if ctx.old else "."))
    for function in functions_in_order({k[0] for k in run.timings}):
        for dtype in dtypes_timed(run, function, ctx.dtype):
            keys = sorted(k for k in run.timings if k[0] == function and k[4] == dtype)
            panels, limits, compare = defaultdict(dict), defaultdict(list), defaultdict(dict)
            for key in keys:
                _, b, batch, classes, _ = key
                panels[batch].setdefault(b, []).append((classes, throughput_gbs(key, run.timings[key])))
            for batch, classes in sorted({(k[2], k[3]) for k in keys}):
                if ctx.roof:
                    lim = roofline.limit(ctx.roof, function, batch, classes, dtype)["elements_per_s"]
                    limits[batch].append((classes, lim * np.dtype(dtype).itemsize / 1e9))
            if ctx.old:
                for key, t in ctx.old.timings.items():
                    if key[0] == function and key[4] == dtype:
                        compare[key[2]].setdefault(key[1], []).append((key[3], throughput_gbs(key, t)))
            name = f"throughput_{SHORT_NAMES[function]}_{dtype}.png"
            ctx.plot("throughput", name, f"{function} ({dtype})", np.dtype(dtype).itemsize,
                     dict(panels), dict(limits) if limits else None,
                     dict(compare) if compare else None, f"commit {ctx.old.short}" if ctx.old else "")
            doc.h(3, f"{function} ({dtype})")
            doc.img(name, f"throughput of {function} {dtype}")
            backends = backends_in_order({k[1] for k in keys})
            rows = []
            for batch, classes in sorted({(k[2], k[3]) for k in keys}):
                row = [f"{batch:,}", f"{classes:,}"]
                for b in backends:
                    key = (function, b, batch, classes, dtype)
                    t = run.timings.get(key)
                    cell = "-" if t is None else fmt(throughput_gbs(key, t))
                    if ctx.old and t is not None and key in ctx.old.timings:
                        cell += f" ({fmt(throughput_gbs(key, ctx.old.timings[key]))})"
                    row.append(cell)
                rows.append(row)
            doc.table(["batch", "classes"] + [f"{b} GB/s" for b in backends], rows, numeric_from=0)


def section_speedup(ctx: Context) -> None:
    run, doc, dtype = ctx.run, ctx.doc, ctx.dtype
    doc.h(2, "Speed-up")
    doc.p(f"Time of the baseline / time of the backend ({dtype}, same shape): above 1 the backend "
          f"is faster. **vs TF**: over the TensorFlow reference; **vs peer**: over the faster of "
          f"PyTorch and JAX at that shape. First the geometric mean over the shapes of each dtype, "
          f"then every shape of {dtype}, as a table and as heat maps (grey: not measured).")
    functions = functions_in_order({k[0] for k in run.timings})
    # the summary: geometric means per function x backend x dtype
    summary = []
    for function in functions:
        for dt in dtypes_timed(run, function, ctx.dtype):
            sp = speedups(run, function, dt)
            for b in backends_in_order({k[0] for k in sp}):
                summary.append([SHORT_NAMES[function], dt, b, fmt_ratio(geomean(sp.get((b, "tf"), {}).values())),
                                fmt_ratio(geomean(sp.get((b, "peer"), {}).values()))])
    timed = {k[1] for k in run.timings}
    add_tf = "`xentbench bench --backend tensorflow` for the same commit adds TensorFlow"
    add_peers = ("`pip install -e '.[peers]'`, then `xentbench bench --backend torch --backend jax` for the "
                 "same commit, adds the peers")
    if not summary:
        doc.p("No speed-up to show: a ratio needs a baseline timed at the same shapes, TensorFlow for "
              "*vs TF* and PyTorch or JAX for *vs peer*, and this run timed "
              + (", ".join(backends_in_order(timed)) or "nothing") + f". {add_tf}; {add_peers}.")
        return
    if REFERENCE not in timed:
        doc.p(f"TensorFlow was not timed in this run, so *vs TF* reads -: {add_tf}.")
    if not timed & set(PEERS):
        doc.p(f"No peer (PyTorch, JAX) was timed in this run, so *vs peer* reads -: {add_peers}.")
    doc.table(["function", "dtype", "backend", "vs TF (geomean)", "vs peer (geomean)"], summary,
              numeric_from=3)
    for function in functions:
        sp = speedups(run, function, dtype)
        if not sp:
            continue
        doc.h(3, f"{function} ({dtype})")
        shapes = sorted({s for d in sp.values() for s in d})
        batches = sorted({s[0] for s in shapes})
        classes = sorted({s[1] for s in shapes})
        columns = [c for c in sorted(sp, key=lambda c: (c[1] != "tf", backends_in_order([k[0] for k in sp]).index(c[0])))]
        grids = []
        for b, against in columns:
            grid = np.full((len(batches), len(classes)), np.nan)
            for (batch, cls), r in sp[(b, against)].items():
                grid[batches.index(batch), classes.index(cls)] = r
            grids.append((f"{b} vs {'TensorFlow' if against == 'tf' else 'fastest peer'}", grid))
        name = f"speedup_{SHORT_NAMES[function]}_{dtype}.png"
        ctx.plot("heatmaps", name, f"speed-up, {function} ({dtype})", grids, batches, classes)
        doc.img(name, f"speed-up heat maps of {function}")
        rows = [[f"{batch:,}", f"{cls:,}"] + [fmt_ratio(sp[c].get((batch, cls))) for c in columns]
                for batch, cls in shapes]
        doc.table(["batch", "classes"] + [f"{b} vs {'TF' if a == 'tf' else 'peer'}" for b, a in columns],
                  rows, numeric_from=0)


def section_paired(ctx: Context) -> None:
    run, doc, dtype = ctx.run, ctx.doc, "float32"
    doc.h(2, "Paired speed-up")
    functions = functions_in_order({k[0] for k in run.paired})
    if not functions:
        doc.p("No paired benchmarks in this run (`xentbench bench --backend paired`).")
        return
    doc.p("numba's speed over each baseline measured *paired* (`benchmarks/bench_paired.py`): "
          "numba and the baseline timed in turns, in one process, on the same inputs, and the "
          "median over the rounds of time(baseline) / time(numba). A change in the machine's load "
          "moves both times of a round alike, which the separate timings above, taken minutes "
          "apart, do not share. **vs peer**: over the faster peer at that shape; **unpaired**: "
          "the same ratio from the separate timings, for comparison. The targets are judged on "
          "the paired ratios.")
    summary = []
    for function in functions:
        sp = paired_speedups(run, function, dtype)
        against = [a for a in (REFERENCE, *PEERS, "peer") if a in sp]
        summary.append([SHORT_NAMES[function]] + [fmt_ratio(geomean(sp[a].values())) if a in sp else "-"
                                            for a in (REFERENCE, *PEERS, "peer")])
        unpaired = speedups(run, function, dtype).get((FOCUS, "peer"), {})
        shapes = sorted({s for a in against for s in sp[a]})
        batches, classes = sorted({s[0] for s in shapes}), sorted({s[1] for s in shapes})
        grids = []
        for a in ("tf", "peer"):
            if a in sp:
                grid = np.full((len(batches), len(classes)), np.nan)
                for (batch, cls), r in sp[a].items():
                    grid[batches.index(batch), classes.index(cls)] = r
                grids.append((f"{FOCUS} vs {'TensorFlow' if a == 'tf' else 'faster peer'}, paired", grid))
        doc.h(3, f"{function} ({dtype})")
        if grids:
            name = f"paired_{SHORT_NAMES[function]}_{dtype}.png"
            ctx.plot("heatmaps", name, f"paired speed-up, {function} ({dtype})", grids, batches, classes)
            doc.img(name, f"paired speed-up heat maps of {function}")
        rows = [[f"{batch:,}", f"{cls:,}"] + [fmt_ratio(sp.get(a, {}).get((batch, cls))) for a in against]
                + [fmt_ratio(unpaired.get((batch, cls)))] for batch, cls in shapes]
        doc.table(["batch", "classes"] + [f"vs {'TF' if a == REFERENCE else a}" for a in against]
                  + ["vs peer, unpaired"], rows, numeric_from=0)
    doc.h(3, "Geometric means")
    doc.table(["function", "vs TF", "vs torch", "vs jax", "vs peer"], summary, numeric_from=1)


def section_options(ctx: Context) -> None:
    """Per function, a table over option set x shape: numba's paired cost of the options, its paired
    speed-up over PyTorch with the same options, and each backend's time with them."""
    run, old, doc = ctx.run, ctx.old, ctx.doc
    doc.h(2, "Loss options")
    keys = set(run.options_times) | set(run.options_cost) | set(run.options_speedup)
    if not keys:
        doc.p("No loss-option benchmarks in this run (`xentbench bench --function options`).")
        return
    doc.p(f"The loss options (`benchmarks/bench_options.py`; `impls/_options.py` states their math), "
          f"float32. **{FOCUS} cost**: {FOCUS}'s time with the options / its time without them, measured "
          f"paired (both in turns in one process); the target is at most {targets.OPTIONS_MAX_COST:g}x from "
          f"{targets.OPTIONS_COST_FROM:,} classes up. **vs {OPTIONS_PEER}, paired**: {FOCUS}'s speed over "
          f"PyTorch's `F.cross_entropy` with the same options, measured paired; the target is at least "
          f"{targets.OPTIONS_MIN_SPEEDUP:g}x. Then each backend's time per call with the options (`time_call`, "
          "separate timings). -: not measured; an option set that does not apply (`ignore` to dense labels) "
          "has no row" + (f"; in parentheses the ratios at `{old.short}`." if old else "."))
    order = {name: i for i, name in enumerate(OPTIONS_GRID)}

    def ratio(field: str, key) -> str:
        """``run``'s ratio ``field`` at ``key``, and the compared commit's in parentheses."""
        now, before = getattr(run, field).get(key), getattr(old, field).get(key) if old else None
        return fmt_ratio(now) + (f" ({fmt_ratio(before)})" if now is not None and before is not None else "")

    for function in functions_in_order({k[0] for k in keys}):
        mine = sorted((k for k in keys if k[0] == function), key=lambda k: (order.get(k[1], len(order)), k[1:]))
        backends = backends_in_order({b for k in mine for b in run.options_times.get(k, {})})
        rows = []
        for key in mine:
            _, options, batch, classes = key
            rows.append([options, f"{batch:,}", f"{classes:,}", ratio("options_cost", key),
                         ratio("options_speedup", key)]
                        + [fmt_seconds(run.options_times.get(key, {}).get(b)) for b in backends])
        doc.h(3, f"{function} with options (float32)")
        doc.table(["options", "batch", "classes", f"{FOCUS} cost", f"vs {OPTIONS_PEER}, paired"]
                  + [f"{b} time" for b in backends], rows, numeric_from=1)


def section_roofline(ctx: Context) -> None:
    run, doc, roof = ctx.run, ctx.doc, ctx.roof
    doc.h(2, "Roofline")
    if roof is None:
        doc.p("Not measured for this machine; run `xentbench report --measure` on it.")
        return
    bw = roof["bandwidth"]
    doc.p("Measured on this machine (`xentbench/roofline.py`): read bandwidth of a vectorised "
          "Numba parallel sum over an array in L2, in the last-level cache and in memory (1 GiB), "
          "single-thread and with every thread; exp throughput on one thread, the fastest of NumPy's "
          "`np.exp`, the numba kernels' own vectorised polynomial and `torch.exp` where installed "
          "(column *fastest*; files measured before that list was made have NumPy's only), then that "
          "exp on every thread at once, each on an array of its own: threads that are one core's "
          "hyperthreads share its vector units (files measured before that column have the "
          "one-thread rate times the threads).")
    rows = [[lvl, fmt_bytes(roof["cache_bytes"].get(lvl)) if lvl in roof["cache_bytes"] else "> LLC",
             fmt(bw[lvl]["single"] / 1e9), fmt(bw[lvl]["all"] / 1e9)] for lvl in ("L2", "LLC", "memory")]
    doc.table(["level", "working set up to", "1 thread GB/s", f"{roof['threads']} threads GB/s"], rows,
              numeric_from=1)
    sources = roof.get("exp_source", {})
    doc.table(["exp", "1 thread elements/s", f"{roof['threads']} threads elements/s", "fastest"],
              [[dt, fmt(v), fmt(roofline.exp_ceiling(roof, dt)), sources.get(dt, "numpy")]
               for dt, v in roof["exp"].items()], numeric_from=1)
    doc.p("The limit of a shape is the smaller of (a) the all-thread bandwidth of the level its "
          "working set fits in, divided by the bytes one logit costs (every array the function "
          "reads or writes: `TRAFFIC` in `xentbench/roofline.py`, e.g. 1 logit for the sparse loss, "
          "3 for the dense fused loss+gradient), and (b) the exp rate of every thread at once, "
          "over the exps per element (2 for sigmoid: exp and log1p). Writes are counted at read "
          "bandwidth, so the fractions below are if anything too high. A fraction above 100% "
          "means the backend computes fewer exps than the count assumes, or an exp faster than "
          "every one measured; the column *of bandwidth ceiling* gives the same shape against the "
          "memory ceiling alone, the bound of a backend whose exp costs nothing.")
    fractions = roofline_fraction(run, roof)
    dtype = ctx.dtype
    panels, curves = defaultdict(dict), {}
    for key, t in run.timings.items():
        function, b, batch, classes, dt = key
        if dt != dtype or function not in roofline.TRAFFIC:
            continue
        ws = batch * classes * roofline.TRAFFIC[function] * np.dtype(dt).itemsize
        panels[function].setdefault(b, []).append((ws, batch * classes / t))
    for function in panels:
        xs = sorted({x for pts in panels[function].values() for x, _ in pts})
        grid = np.geomspace(min(xs) / 2, max(xs) * 2, 200)
        bandwidth = [(ws, roofline.ceilings(roof, function, ws, dtype)[0]) for ws in grid]
        curves[function] = dict(bandwidth=bandwidth, exp=roofline.ceilings(roof, function, 1, dtype)[1])
    ordered = {SHORT_NAMES[f]: panels[f] for f in functions_in_order(panels)}
    curves = {SHORT_NAMES[f]: c for f, c in curves.items()}
    if ordered:
        ctx.plot("roofline", f"roofline_{dtype}.png", f"achieved throughput and this machine's limit ({dtype})",
                 ordered, curves)
        doc.img(f"roofline_{dtype}.png", "roofline")
    else:
        doc.p(f"No {dtype} timings recorded, so no roofline plot: `xentbench bench --kind time` measures them.")
    rows = []
    for function in functions_in_order({k[0] for k in fractions}):
        for b in backends_in_order({k[1] for k in fractions if k[0] == function}):
            for dt in sorted({k[4] for k in fractions if k[0] == function and k[1] == b},
                             key=dtype_key(dtype)):
                vals = [(fractions[k][0], k) for k in fractions if k[0] == function and k[1] == b and k[4] == dt]
                best, best_key = max(vals)
                big = [v for v, k in vals if fractions[k][2] == "memory"]
                rows.append([SHORT_NAMES[function], b, dt, f"{float(np.median([v for v, _ in vals])):.1%}",
                             f"{best:.1%}", f"{best_key[2]:,} x {best_key[3]:,} ({fractions[best_key][1]})",
                             f"{fractions[best_key][3]:.1%}", f"{max(big):.1%}" if big else "-"])
    doc.table(["function", "backend", "dtype", "median", "best", "best at (bound)",
               "best: of bandwidth ceiling", "best, working set > LLC"], rows, numeric_from=3)

