"""The report's sections other than speed: the machine, the headline, how the figures were measured, the targets,
accuracy, peak memory, Numba's first-call latency, the comparison with another
commit and how the report was made.

Each ``section_*`` appends its heading, text and tables to ``ctx.doc`` and
queues its figures with ``ctx.plot``; the speed sections are in
``xentbench.report.speed``.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from xentbench import accuracy, machine, targets, timing
from xentbench.analysis import paired_speedups, roofline_fraction, speedups
from xentbench.report.context import Context
from xentbench.report.document import anchor
from xentbench.report.formatting import (
    backends_in_order, fmt_bytes, fmt_error, fmt_ratio, fmt_seconds, functions_in_order, geomean, shapes_by_dtype)
from xentbench.report.results import Run, input_bytes
from xentbench.suite import DTYPES, FOCUS, REFERENCE, SHORT_NAMES

#: the section that says how the figures were measured
MEASURED = "How the figures were measured"
#: the headline's roofline sentence is about logits of this size and more (the targets' threshold)
ROOFLINE_FROM = targets.ROOFLINE_MIN_BYTES
#: Peak memory over the baseline is shown for inputs of at least this size only.
MEMORY_MIN_INPUT = 4 << 20


def _speed_sentence(run: Run, against: str, name: str, dtype: str) -> tuple[str, str] | None:
    """How fast numba is against ``against`` ("tf" or "peer"), from the paired figures where the
    run has them, else from the separate timings; with the section that tables them."""
    functions = functions_in_order({k[0] for k in run.paired} | {k[0] for k in run.timings})
    for paired, section in ((True, "Paired speed-up"), (False, "Speed-up")):
        ratios = {f: (paired_speedups(run, f, dtype) if paired else
                      {a: v for (b, a), v in speedups(run, f, dtype).items() if b == FOCUS}).get(against)
                  for f in functions}
        ratios = {f: r for f, r in ratios.items() if r}
        if not ratios:
            continue
        means = {f: geomean(r.values()) for f, r in ratios.items()}
        low, high = min(means, key=means.get), max(means, key=means.get)
        worst = min(((r, f, shape) for f in ratios for shape, r in ratios[f].items()))
        how = "timed in turns with it" if paired else "from separate timings, not paired"
        text = (f"numba is {fmt_ratio(means[low])} ({SHORT_NAMES[low]}) to {fmt_ratio(means[high])} "
                f"({SHORT_NAMES[high]}) as fast as {name} on {dtype}, geometric means over the shapes, {how}")
        if against == "peer":
            text += (f"; its slowest shape is {fmt_ratio(worst[0])}, {SHORT_NAMES[worst[1]]} at "
                     f"{worst[2][0]:,} x {worst[2][1]:,}")
        return text, section
    return None


def headline(run: Run, roof: dict | None, dtype: str) -> list[tuple[str, str]]:
    """Three to five sentences a person would write (without their full stop), each with the section
    whose table backs it."""
    lines = []
    for against, name in (("tf", "TensorFlow"), ("peer", "the faster of PyTorch and JAX")):
        sentence = _speed_sentence(run, against, name, dtype)
        if sentence:
            lines.append(sentence)
    verdicts = [v.met for v in targets.evaluate(run, roof)]
    judged = [v for v in verdicts if v is not None]
    if judged:
        lines.append((f"It meets {sum(judged)} of the {len(judged)} targets this run can judge and misses "
                      f"{len(judged) - sum(judged)}" + (f"; {len(verdicts) - len(judged)} need other runs"
                                                        if len(verdicts) > len(judged) else ""), "Targets"))
    fractions = {k: v for k, v in roofline_fraction(run, roof).items()
                 if k[1] == FOCUS and k[4] == dtype and k[2] * k[3] * np.dtype(dtype).itemsize >= ROOFLINE_FROM}
    if fractions:
        best, worst = max(fractions, key=lambda k: fractions[k][0]), min(fractions, key=lambda k: fractions[k][0])
        lines.append((f"On logits of {fmt_bytes(ROOFLINE_FROM)} and more it reaches "
                      f"{fractions[best][0]:.0%} of this machine's limit at best ({SHORT_NAMES[best[0]]} at "
                      f"{best[2]:,} x {best[3]:,}) and {fractions[worst][0]:.0%} at worst "
                      f"({SHORT_NAMES[worst[0]]} at {worst[2]:,} x {worst[3]:,})", "Roofline"))
    if run.single_calls:
        lines.append((f"{len(run.single_calls)} timings are single calls, which show that a combination "
                      "runs but not how fast: they are left out of every table, figure and verdict", MEASURED))
    elif not lines:
        lines.append(("No timing in this run compares numba with another implementation", MEASURED))
    return lines


def section_measured(ctx: Context) -> None:
    """Where the figures came from: calls and samples of each timing, the paired rounds, and what
    was left out; so that a reader knows what a figure can carry."""
    run, doc = ctx.run, ctx.doc
    doc.h(2, MEASURED)
    items = []
    if run.timings:
        backends = backends_in_order({k[1] for k in run.timings})
        text = (f"**Times** ({len(run.timings)}, {', '.join(backends)}): seconds per call, asv's median over "
                "samples")
        if run.samples:
            calls = sorted(n for n, _ in run.samples.values())
            repeats = sorted(r for _, r in run.samples.values())
            text += (f" of {_span(calls)} calls each, {_span(repeats)} samples a combination "
                     f"(the counts asv recorded for {len(run.samples)} of them)")
        else:
            text += " (the files record no counts of calls and samples)"
        items.append(text + ". Each backend ran in its own asv process, minutes apart from the others: a "
                     "ratio of two of these times is not paired, and on a shared machine it moved by up "
                     "to 3x between runs of the same code.")
    if run.paired or run.half_cost or run.options_cost or run.options_speedup:
        paired = len(run.paired) + len(run.half_cost) + len(run.options_cost) + len(run.options_speedup)
        items.append(f"**Paired figures** ({paired}: speed-ups, and costs against numba's own time): the two "
                     f"sides timed in turns in one process on the same inputs, the median over {timing.PAIRED_ROUNDS} rounds ({timing.PAIRED_SLOW_ROUNDS} for "
                     f"calls over {timing.SLOW_CALL:g} s) of the ratio of their times; a change in the "
                     "machine's load moves both sides of a round alike. The speed targets are judged on "
                     "these where the run has them.")
    if run.single_calls:
        items.append(f"**Single calls** ({len(run.single_calls)}, from `xentbench bench --quick`): one call "
                     "each, which says that a combination runs, not how fast: a first call's page faults or "
                     "a neighbour's burst is the whole figure. They are left out of every table, figure and "
                     "verdict; `xentbench bench` without `--quick` times them.")
    if run.peakmem:
        items.append(f"**Peak memory** ({len(run.peakmem)}): the benchmark process's peak resident bytes, "
                     "one measurement each.")
    if run.errors:
        items.append(f"**Accuracy** ({len(run.errors)}): deterministic for a given `impls/`: the largest "
                     "relative error over the shapes, against the extended-precision truth.")
    doc.ul(items or ["No figures recorded."])


def _span(values: list) -> str:
    """``a`` or ``a-b`` of sorted counts."""
    return f"{values[0]:,}" if values[0] == values[-1] else f"{values[0]:,}-{values[-1]:,}"


def section_header(ctx: Context) -> None:
    run, doc = ctx.run, ctx.doc
    doc.h(1, f"xentbench report: {run.machine} at {run.short}")
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.date / 1000)) if run.date else "unknown"
    lines = [f"commit `{run.commit}` ({date})",
             f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `xentbench report`"
             f" from {len(run.files)} asv result file(s)"]
    if ctx.old:
        lines.append(f"compared with commit `{ctx.old.commit}` (its numbers in parentheses / dotted lines)")
    doc.ul(lines)
    doc.h(2, "Machine")
    info = (ctx.roof or {}).get("machine", {})
    asv_m = run.machine_info
    libs = info.get("libraries", {})
    rows = [
        ("asv machine", run.machine),
        ("asv environment", run.env.get("name", "-")),
        ("CPU", info.get("cpu") or asv_m.get("cpu", "-")),
        ("cores used", info.get("cores", asv_m.get("num_cpu", "-"))),
        ("SIMD", ", ".join(info.get("simd", [])) or "-"),
        ("caches", ", ".join(f"{k} {fmt_bytes(v)}" for k, v in info.get("caches", {}).items()) or "-"),
        ("memory", fmt_bytes(info["memory_bytes"]) if info.get("memory_bytes") else asv_m.get("ram", "-")),
        ("OS", info.get("os") or asv_m.get("os", "-")),
        ("Python", info.get("python") or run.env.get("python", "-")),
        ("libraries", ", ".join(f"{k} {v}" for k, v in libs.items()) or "-"),
        ("Numba threading layer", info.get("numba_threading_layer", "-")),
        ("Numba threads", info.get("numba_threads", "-")),
        ("the reference on this machine", (info.get("reference") or ["not probed"])[0]),
    ]
    doc.table(["", ""], [(f"**{k}**", v) for k, v in rows], numeric_from=99)
    quirks_found = info.get("reference", [])[1:]
    if quirks_found:
        doc.p("What the reference does with NaN, infinities and overflow here (`xentbench/quirks.py`; a quirk is a "
              "known deviation from the project's semantics, probed when the machine was measured):")
        doc.ul(quirks_found)
    if ctx.roof:
        n = ctx.roof.get("measurements", 1)
        doc.p(f"Machine details and limits from `roofline.json` ({ctx.roof_source}; "
              + (f"the best of {n} measurements, the last on " if n > 1 else "measured ")
              + f"{ctx.roof.get('measured_at', '?')}); the library versions are those of the report's "
              f"environment, which `xentbench bench` also runs in.")
    else:
        doc.p(f"No roofline measurement for machine `{run.machine}` ({ctx.roof_source}): the roofline "
              "columns and curves are left out.")


def section_headline(ctx: Context) -> list[str]:
    """The headline, each sentence linked to the section whose table backs it; returns the sentences."""
    lines = headline(ctx.run, ctx.roof, ctx.dtype)
    ctx.doc.h(2, "Headline")
    ctx.doc.ul([f"{text} (see [{section}](#{anchor(section)}))." for text, section in lines])
    backends = backends_in_order({k[1] for k in ctx.run.timings})
    if len(backends) == 1 and not ctx.run.paired:
        ctx.doc.p(f"This run timed one backend, {backends[0]}: the speed-ups need the others timed for the "
                  "same commit (`xentbench bench` times every backend; `--backend paired` times numba in "
                  "turns with each).")
    if ctx.run.failed:
        ctx.doc.p(f"{len(ctx.run.failed)} benchmark value(s) recorded no result (failed or timed "
                  "out); they are listed at the end. Combinations off the suite's grid (asv's skips) "
                  "are left out everywhere.")
    return [f"{text}." for text, _ in lines]


def section_targets(ctx: Context) -> None:
    ctx.doc.h(2, "Targets")
    ctx.doc.p("The numba backend's targets (the fast-kernels issue; benchmarks/NOTES.md says what "
              "was tried), checked at every shape of this run where they apply. Ratios are "
              "time(baseline) / time(numba) in this run: the paired ones (see Paired speed-up) "
              "where the run has them, marked *paired*, else those of the separate timings; the "
              "worst case is shown. A target with nothing recorded to check reads *not measured*, with "
              "the command that measures it (the peers need `pip install -e '.[peers]'`).")
    verdicts = {True: "met", False: "**missed**", None: "*not measured*"}
    ctx.doc.table(["target", "verdict", "cases", "worst case"],
                  [[v.target, verdicts[v.met], str(v.checked), v.worst]
                   for v in targets.evaluate(ctx.run, ctx.roof)], numeric_from=4)


def section_accuracy(ctx: Context) -> None:
    run, doc = ctx.run, ctx.doc
    doc.h(2, "Accuracy")
    doc.p("Max relative error against the float64 (extended-precision) truth over the shapes of the "
          "asv `track_` benchmarks, in the measure of `xentbench/accuracy.py`; in parentheses "
          "TensorFlow's error on the same inputs; *inf*: NaN or inf where the truth is finite. Tolerances: "
          + ", ".join(f"{np.dtype(d).name} {t:.0e}" for d, t in accuracy.TOLERANCE.items()) + ".")
    if not run.errors:
        doc.p("No accuracy benchmarks recorded.")
        return
    dtypes = sorted({k[2] for k in run.errors}, key=lambda d: np.dtype(d).itemsize)
    rows = []
    for function in functions_in_order({k[0] for k in run.errors}):
        for b in backends_in_order({k[1] for k in run.errors if k[0] == function}):
            row = [SHORT_NAMES[function], b]
            worst = 0.0
            for dt in dtypes:
                err = run.errors.get((function, b, dt))
                ref = run.errors.get((function, REFERENCE, dt))
                if err is None:
                    row.append("-")
                    continue
                worst = max(worst, err / accuracy.tolerance(dt))
                row.append(fmt_error(err) + (f" ({fmt_error(ref)})" if ref is not None and b != REFERENCE else ""))
            row.append("pass" if worst <= 1 else "**over tolerance**")
            rows.append(row)
    doc.table(["function", "backend"] + dtypes + ["result"], rows, numeric_from=2)
    if ctx.verify_rows is not None:
        section_accuracy_table(ctx)


def section_accuracy_table(ctx: Context) -> None:
    """Every backend and peer on the same inputs, in ulps: the rows of ``xentbench verify --json``."""
    doc, rows = ctx.doc, ctx.verify_rows
    doc.h(3, "Accuracy table: every backend in ulps")
    doc.p(f"`xentbench verify`, run while making this report on {machine.cpu()} ({', '.join(machine.simd())}; "
          "not from the recorded results): every backend and peer on the same inputs (edge shapes up to "
          "8x32000, moderate logits uniform in [-5, 5], wide ones normal with std 1000, each loss again with "
          "its options), the worst error against the extended-precision truth in ulps of the result's dtype "
          "(`xentbench/accuracy.py`). *pass*: within the tolerance; *less accurate than TensorFlow*: beyond "
          "it, within what a backward-stable algorithm gives; *FAIL*: beyond that. naive is checked on "
          "moderate logits only. "
          f"It ran {ctx.verify_tree}.")
    order = [np.dtype(d).name for d in accuracy.TOLERANCE]  # float16, bfloat16, float32, float64
    columns = sorted({k for r in rows for k in r["ulps"]}, key=lambda k: (order.index(k.split()[0]), k))
    ordered = sorted(rows, key=lambda r: (r["function"], r["backend"]))
    cells = [[r["function"], r["backend"]] + [accuracy.format_ulps(r["ulps"][c]) if c in r["ulps"] else "-"
                                               for c in columns] + [r["verdict"]] for r in ordered if r["ulps"]]
    doc.table(["function", "backend"] + columns + ["verdict"], cells, numeric_from=2)


def section_memory(ctx: Context) -> None:
    run, doc = ctx.run, ctx.doc
    doc.h(2, "Peak memory")
    if not run.peakmem:
        doc.p("No peak-memory benchmarks recorded.")
        return
    doc.p("asv `peakmem_` benchmarks: the peak resident memory of the benchmark process, which "
          "includes the interpreter, every imported library and the inputs. **baseline**: the "
          "smallest peak of that backend and function over all shapes; in parentheses the peak "
          "over the baseline as a multiple of the input (logits plus labels), shown where the input "
          f"is at least {fmt_bytes(MEMORY_MIN_INPUT)} (below that the difference is noise). "
          "About 1x: the backend holds the input and an output of the loss's size; 2x: an output "
          "of the logits' size; more: temporaries. In the figure the marker's fill tells the dtype "
          "(filled float32, hollow float64, half-filled float16 from below, bfloat16 from above). "
          "Half precision is computed in float32: for the backends other than numba the front door "
          "converts the logits to a float32 copy, twice their size, so their half-precision peak is "
          "a larger multiple of the input; numba reads it directly.")
    baseline = {}
    for (function, b, *_), peak in run.peakmem.items():
        baseline[(function, b)] = min(peak, baseline.get((function, b), peak))
    panels = defaultdict(lambda: defaultdict(list))
    for (function, b, batch, classes, dt), peak in run.peakmem.items():
        size = input_bytes(function, batch, classes, dt)
        if size >= MEMORY_MIN_INPUT:
            panels[SHORT_NAMES[function]][b].append((size, peak - baseline[(function, b)], dt))
    if panels:
        ordered = {SHORT_NAMES[f]: dict(panels[SHORT_NAMES[f]]) for f in functions_in_order(run.peakmem_functions())
                   if SHORT_NAMES[f] in panels}
        ctx.plot("memory", "peakmem.png", "peak memory over the baseline against the input's size", ordered)
        doc.img("peakmem.png", "peak memory")
    for function in functions_in_order({k[0] for k in run.peakmem}):
        keys = [k for k in run.peakmem if k[0] == function]
        backends = backends_in_order({k[1] for k in keys})
        doc.h(3, f"{function}")
        rows = [["baseline", "", ""] + [fmt_bytes(baseline.get((function, b))) for b in backends]]
        for batch, classes, dt in shapes_by_dtype({(k[2], k[3], k[4]) for k in keys}, ctx.dtype):
            size = input_bytes(function, batch, classes, dt)
            row = [f"{batch:,} x {classes:,}", dt, fmt_bytes(size)]
            for b in backends:
                peak = run.peakmem.get((function, b, batch, classes, dt))
                if peak is None:
                    row.append("-")
                elif size >= MEMORY_MIN_INPUT:
                    row.append(f"{fmt_bytes(peak)} ({(peak - baseline[(function, b)]) / size:+.1f}x)")
                else:
                    row.append(fmt_bytes(peak))
            rows.append(row)
        doc.table(["shape", "dtype", "input"] + [f"{b} peak" for b in backends], rows, numeric_from=2)


def section_latency(ctx: Context) -> None:
    run, doc = ctx.run, ctx.doc
    doc.h(2, "Numba first-call latency")
    if not run.latency:
        doc.p("No first-call latency recorded.")
        return
    doc.p("Time of the first call of each Numba function in a fresh process: **cold** compiles "
          "(no on-disk cache), **cached** loads the compiled kernel from Numba's cache.")
    rows = []
    dtypes = sorted({k[1] for k in run.latency}, key=DTYPES.index)
    for function in functions_in_order({k[0] for k in run.latency}):
        for dtype in dtypes:
            cold, cached = run.latency.get((function, dtype, "cold")), run.latency.get((function, dtype, "cached"))
            if cold is None and cached is None:
                continue
            row = [SHORT_NAMES[function], dtype, fmt_seconds(cold), fmt_seconds(cached),
                   fmt_ratio(cold / cached) if cold and cached else "-"]
            if ctx.old:
                row += [fmt_seconds(ctx.old.latency.get((function, dtype, "cold"))),
                        fmt_seconds(ctx.old.latency.get((function, dtype, "cached")))]
            rows.append(row)
    header = ["function", "dtype", "cold", "cached", "cold / cached"]
    if ctx.old:
        header += [f"cold at {ctx.old.short}", f"cached at {ctx.old.short}"]
    doc.table(header, rows)


def section_compare(ctx: Context) -> None:
    run, old, doc = ctx.run, ctx.old, ctx.doc
    if old is None:
        return
    doc.h(2, f"Comparison with {old.short}")
    doc.p(f"Time at `{old.short}` / time at `{run.short}` per shape, geometric mean and range over "
          "the shapes both commits recorded: above 1 this commit is faster.")
    groups = defaultdict(list)
    for key, t in run.timings.items():
        if key in old.timings:
            groups[(key[0], key[1], key[4])].append(old.timings[key] / t)
    rows = [[SHORT_NAMES[f], b, dt, str(len(v)), fmt_ratio(geomean(v)), fmt_ratio(min(v)), fmt_ratio(max(v))]
            for f in functions_in_order({g[0] for g in groups})
            for b in backends_in_order({g[1] for g in groups if g[0] == f})
            for dt in sorted({g[2] for g in groups if g[:2] == (f, b)}, key=lambda d: np.dtype(d).itemsize)
            for v in [groups[(f, b, dt)]]]
    doc.table(["function", "backend", "dtype", "shapes", "speed-up (geomean)", "min", "max"], rows, numeric_from=3)


def section_appendix(ctx: Context, argv: list[str]) -> None:
    doc = ctx.doc
    doc.h(2, "How this report was made")
    doc.pre("xentbench " + " ".join(argv) + "\n\nresults:\n" + "\n".join(ctx.run.files)
            + ("\n\ncompared with:\n" + "\n".join(ctx.old.files) if ctx.old else ""))
    if ctx.run.failed:
        doc.h(3, "Benchmarks without a result")
        doc.pre("\n".join(sorted(ctx.run.failed)))

