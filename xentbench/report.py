"""Turn recorded asv results into a report: Markdown, PNGs and one self-contained HTML.

Reads the results of one commit on one machine (``xentbench bench`` records
them; ``xentbench.asvresults`` reads them) and writes
``reports/<machine>-<commit>/`` with ``report.md``, its PNGs, ``report.html``
(the same report with the PNGs embedded, nothing else needed to view it),
``roofline.json`` (the machine's measured limits) and ``meta.json``; then
rewrites ``reports/index.md``, the list of every report there.

Sections: the machine; headline; the numba backend's targets met or missed
(``xentbench.targets``); throughput per function (GB/s of logits and
elements/s against classes, a panel per batch size, a line per backend, the
roofline dashed); speed-up over TensorFlow and over the fastest peer (PyTorch,
JAX) as tables and heat maps; numba's paired speed-ups (numba and each
baseline timed in turns in one process, ``benchmarks/bench_paired.py``), on
which the targets are judged when the run has them; the roofline (each
backend's throughput as a fraction of the limit of its shape, see
``xentbench.roofline``); accuracy
(max relative error against the float64 truth, next to TensorFlow's on the same
inputs); peak memory against the input's size; Numba first-call latency;
with ``--compare COMMIT`` another commit's numbers beside these; with
``--verify`` the table of ``xentbench verify``, run now on the working tree.

A report never overwrites another: an existing folder gets a ``-2``, ``-3``
sibling. It is built in a hidden temporary folder under ``reports/`` and
renamed into place only when complete, so an interrupted or failed report
leaves nothing behind, in the folder or in the index.

The machine's limits are measured once (about 10 s) and kept in
``.asv/roofline/<machine>.json`` beside the results (``--measure`` measures
again); a report for another machine without such a file has no roofline.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xentbench import accuracy, checkout, roofline, targets
from xentbench.analysis import paired_speedups, roofline_fraction, speedups, throughput_gbs
from xentbench.suite import (
    BACKENDS, FOCUS, NONFINITE_ERROR, PEERS, REFERENCE, SHORT_NAMES, STARTUP, SUITE, is_accuracy, is_speedup)

#: The headline splits the shapes at this size of the logits (small: call overhead dominates).
SMALL_LOGITS = 1 << 20  # the unit of the suite's track_error benchmarks
#: Peak memory over the baseline is shown for inputs of at least this size only.
MEMORY_MIN_INPUT = 4 << 20
#: the issue's order: the losses first, the building blocks last
FUNCTION_ORDER = ("sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
                  "sparse_softmax_cross_entropy_with_logits_and_grad",
                  "softmax_cross_entropy_with_logits_and_grad", "softmax", "log_softmax",
                  "sigmoid_cross_entropy_with_logits")


def _asv():
    """``xentbench.asvresults``, the one reader of asv's files (imported when needed)."""
    from xentbench import asvresults
    return asvresults


class ReportError(Exception):
    """A report that cannot be made (the message says why); exit code 2."""


# --------------------------------------------------------------------------- progress

class Progress:
    """``[elapsed] what`` lines on stderr."""

    def __init__(self, stream=None, quiet: bool = False):
        self.start = time.monotonic()
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def __call__(self, what: str) -> None:
        if not self.quiet:
            self.stream.write(f"[{time.monotonic() - self.start:5.1f}s] {what}\n")
            self.stream.flush()


# --------------------------------------------------------------------------- document

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]


def _inline_html(text: str) -> str:
    out = html.escape(str(text), quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", text.lower()).strip().replace(" ", "-")


@dataclass
class Doc:
    """The report as a list of blocks, rendered once as Markdown and once as HTML."""

    blocks: list = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, header, rows, numeric_from: int = 1) -> None:
        """Cells are strings; columns from ``numeric_from`` on are right-aligned."""
        self.blocks.append(("table", [str(c) for c in header], [[str(c) for c in r] for r in rows],
                            numeric_from))

    def img(self, filename: str, alt: str) -> None:
        self.blocks.append(("img", filename, alt))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def contents(self, after: int) -> None:
        """A line of links to the level-2 headings, inserted after block ``after``."""
        titles = [b[2] for b in self.blocks if b[0] == "h" and b[1] == 2]
        self.blocks.insert(after, ("p", "Contents: " + " · ".join(f"[{t}](#{_anchor(t)})" for t in titles)))

    def markdown(self) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                _, header, rows, k = block
                esc = [[c.replace("|", "\\|") for c in r] for r in [header] + rows]
                lines = ["| " + " | ".join(esc[0]) + " |",
                         "|" + "|".join("---:" if i >= k else ":---" for i in range(len(header))) + "|"]
                lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
                out.append("\n".join(lines))
            elif kind == "img":
                out.append(f"![{block[2]}]({block[1]})")
            elif kind == "pre":
                out.append("```\n" + block[1].rstrip("\n") + "\n```")
        return "\n\n".join(out) + "\n"

    def html(self, folder: Path, title: str) -> str:
        body, ids = [], set()
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                anchor, n = _anchor(block[2]), 1
                while anchor in ids:  # GitHub's rule for repeated headings: -1, -2, ...
                    anchor, n = f"{_anchor(block[2])}-{n}", n + 1
                ids.add(anchor)
                body.append(f'<h{block[1]} id="{anchor}">{_inline_html(block[2])}</h{block[1]}>')
            elif kind == "p":
                body.append(f"<p>{_inline_html(block[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                _, header, rows, k = block

                def cells(row, tag):
                    return "".join(f'<{tag}{" class=n" if i >= k else ""}>{_inline_html(c)}</{tag}>'
                                   for i, c in enumerate(row))
                body.append("<table><thead><tr>" + cells(header, "th") + "</tr></thead><tbody>"
                            + "".join("<tr>" + cells(r, "td") + "</tr>" for r in rows) + "</tbody></table>")
            elif kind == "img":
                data = base64.b64encode((folder / block[1]).read_bytes()).decode("ascii")
                body.append(f'<p><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}"></p>')
            elif kind == "pre":
                body.append(f"<pre>{html.escape(block[1])}</pre>")
        css = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
               "line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.88em}"
               "th,td{border:1px solid #ccc;padding:.2em .5em}th{background:#f3f3f3}td.n,th.n{text-align:right;"
               "font-variant-numeric:tabular-nums}img{max-width:100%}code,pre{background:#f6f6f6}"
               "pre{padding:.6em;overflow-x:auto;font-size:.8em}")
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{css}</style></head><body>\n"
                + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------- formatting

def fmt(v, digits: int = 3) -> str:
    """A number in ``digits`` significant digits; ``-`` for missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    v = float(v)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
        return f"{v:.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def fmt_bytes(n) -> str:
    if n is None:
        return "-"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_seconds(s) -> str:
    if s is None:
        return "-"
    for unit, mult in (("s", 1), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if abs(s) * mult >= 1:
            return f"{s * mult:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def fmt_error(e) -> str:
    return "inf (NaN/inf out)" if e >= NONFINITE_ERROR else f"{e:.2e}"


def fmt_ratio(r) -> str:
    return "-" if r is None or not math.isfinite(r) else f"{r:.2f}x"


def geomean(values) -> float | None:
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def _order(backends) -> list[str]:
    backends = set(backends)
    return [b for b in BACKENDS if b in backends] + sorted(backends - set(BACKENDS))


def _functions(names) -> list[str]:
    names = set(names)
    return [f for f in FUNCTION_ORDER if f in names] + sorted(names - set(FUNCTION_ORDER))


# --------------------------------------------------------------------------- data

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
    timings: dict  # (function, backend, batch, classes, dtype) -> seconds
    peakmem: dict  # same key -> bytes
    errors: dict  # (function, backend, dtype) -> max relative error over the shapes recorded
    paired: dict  # (function, baseline, batch, classes, dtype) -> numba's paired speed-up over baseline
    latency: dict  # (function, mode) -> seconds, mode in ("cold", "cached")
    failed: list  # names of benchmarks that recorded no value (failed or skipped)
    files: list

    def peakmem_functions(self) -> set:
        return {k[0] for k in self.peakmem}

    @property
    def short(self) -> str:
        return self.commit[:8]


def _classify(result) -> tuple[str | None, str | None]:
    """``(section, function)`` of one asv result, by the suite's naming scheme (``xentbench.suite``)."""
    if result.class_name == STARTUP and result.kind == "track":
        return "latency", result.params.get("function")
    function = SUITE.get(result.class_name)
    if function is None:
        return None, None
    if result.kind in ("time", "peakmem"):
        return result.kind, function
    if is_accuracy(result):
        return "accuracy", function
    if is_speedup(result):
        return "paired", function
    return None, function


def run_from(rf) -> Run:
    """An ``asvresults.ResultFile`` in the report's terms."""
    run = Run(machine=rf.machine, commit=rf.commit_hash, date=rf.date, machine_info={},
              env={"name": rf.env_name}, timings={}, peakmem={}, errors={}, paired={}, latency={}, failed=[],
              files=[str(rf.path)])
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
                run.latency[(function, p["cache"])] = r.value
                continue
            key = (function, p["backend"], int(p["batch"]), int(p["classes"]), str(p["dtype"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"{rf.path}: {r.label}: parameters not in the suite's scheme "
                              f"(backend, batch, classes, dtype): {exc}") from None
        if section == "time":
            run.timings[key] = r.value
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
    asv = _asv()
    try:
        run = run_from(asv.load_commit(results_dir, commit, machine, repo=repo))
    except asv.ResultsError as exc:
        raise ReportError(str(exc)) from None
    if not (run.timings or run.errors or run.peakmem or run.paired or run.latency):
        raise ReportError(f"{run.files[0]}: no result of the xentbench suite in it "
                          f"({len(run.failed)} failed)")
    return run


def newest_commit(results_dir: Path, machine: str | None) -> str:
    """The commit of the newest result file (by commit date), for when HEAD has none."""
    asv = _asv()
    try:
        files = [asv.load(p) for p in asv.result_files(results_dir, machine)]
    except asv.ResultsError as exc:
        raise ReportError(str(exc)) from None
    if not files:
        raise ReportError(f"{results_dir}: no asv results"
                          + (f" for machine {machine!r}" if machine else "") + "; run `xentbench bench` first")
    return max(files, key=lambda f: (f.date or 0, f.path.stat().st_mtime)).commit_hash


# --------------------------------------------------------------------------- analysis

def headline(run: Run, roof: dict | None, dtype: str, focus: str = FOCUS) -> list[str]:
    """One sentence per function: who is fastest where, by how much, how close to the roofline."""
    fractions = roofline_fraction(run, roof)
    lines = []
    for function in _functions({k[0] for k in run.timings}):
        keys = [k for k in run.timings if k[0] == function and k[4] == dtype]
        if not keys:
            continue
        shapes = sorted({(k[2], k[3]) for k in keys})
        wins = defaultdict(list)
        for shape in shapes:
            times = {k[1]: run.timings[k] for k in keys if (k[2], k[3]) == shape}
            wins[min(times, key=times.get)].append(shape)
        ranked = sorted(wins, key=lambda b: (-len(wins[b]), _order(wins).index(b)))
        item = np.dtype(dtype).itemsize
        regions = []
        for name, inside in ((f"logits under {fmt_bytes(SMALL_LOGITS)}", lambda n: n < SMALL_LOGITS),
                             (f"from {fmt_bytes(SMALL_LOGITS)} up", lambda n: n >= SMALL_LOGITS)):
            counts = {b: sum(inside(x * y * item) for x, y in wins[b]) for b in ranked}
            total = sum(counts.values())
            if total:
                best = sorted((b for b in counts if counts[b]), key=lambda b: -counts[b])
                regions.append(f"{name}: " + ", ".join(f"{b} {counts[b]}" for b in best) + f" of {total}")
        text = f"**{SHORT_NAMES[function]}** ({dtype}), fastest backend by shape: " + "; ".join(regions) + "."
        sp = speedups(run, function, dtype)
        for b in dict.fromkeys([ranked[0], focus]):
            if b not in {k[1] for k in keys}:
                continue
            parts = []
            for against, name in (("tf", "TensorFlow"), ("peer", "the fastest peer")):
                ratios = list(sp.get((b, against), {}).values())
                if ratios:
                    parts.append(f"{geomean(ratios):.2f}x {name}'s speed ({min(ratios):.2f}-{max(ratios):.2f}x)")
            fr = {k: fractions[k] for k in keys if k[1] == b and k in fractions}
            if fr:
                top = max(fr.values())
                big = [f for f, _, level, _ in fr.values() if level == "memory"]
                parts.append(f"{top[0]:.0%} of the roofline at best ({top[3]:.0%} of the bandwidth ceiling "
                             "alone)" + (f", {max(big):.0%} on working sets beyond the last-level cache"
                                         if big else ""))
            if parts:
                text += f" {b}: " + "; ".join(parts) + "."
        lines.append(text)
    return lines


# --------------------------------------------------------------------------- sections

@dataclass
class Context:
    run: Run
    old: Run | None
    roof: dict | None
    roof_source: str
    folder: Path
    dtype: str  # the dtype of the tables and heat maps
    doc: Doc
    progress: Progress
    verify_rows: str | None = None  # the table of ``xentbench verify``
    verify_tree: str = ""  # what code the verification ran, in words
    jobs: list = field(default_factory=list)

    def plot(self, function: str, filename: str, *args, **kwargs) -> None:
        """Queue ``xentbench.plots.<function>(folder / filename, *args)``; ``render`` draws them."""
        self.jobs.append((function, str(self.folder / filename), args, kwargs))


def _draw(job) -> str:
    from xentbench import plots
    function, path, args, kwargs = job
    getattr(plots, function)(path, *args, **kwargs)
    return Path(path).name


def render(jobs: list, workers: int, progress: Progress) -> None:
    """Draw the queued figures, in ``workers`` processes when more than one."""
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs, 1):
            progress(f"plot {i}/{len(jobs)}: {_draw(job)}")
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import xentbench.plots  # noqa: F401  imported once, before the workers fork
    # fork is instant; but not once a library that runs threads of its own is loaded
    # (--verify, --measure): a forked child could inherit a lock held by one of them
    threaded = any(m in sys.modules for m in ("numba", "tensorflow", "torch", "jax"))
    method = "spawn" if threaded or "fork" not in multiprocessing.get_all_start_methods() else "fork"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        futures = [pool.submit(_draw, job) for job in jobs]
        for i, done in enumerate(as_completed(futures), 1):
            progress(f"plot {i}/{len(jobs)}: {done.result()}")


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
        doc.p("What the reference does with NaN and infinities here (`xentbench/quirks.py`; a quirk is a "
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
    lines = headline(ctx.run, ctx.roof, ctx.dtype)
    ctx.doc.h(2, "Headline")
    ctx.doc.ul(lines or ["no timings recorded"])
    if ctx.run.failed:
        ctx.doc.p(f"{len(ctx.run.failed)} benchmark value(s) recorded no result (failed or timed "
                  "out); they are listed at the end. Combinations off the suite's grid (asv's skips) "
                  "are left out everywhere.")
    return lines


def section_targets(ctx: Context) -> None:
    ctx.doc.h(2, "Targets")
    ctx.doc.p("The numba backend's targets (the fast-kernels issue; benchmarks/NOTES.md says what "
              "was tried), checked at every shape of this run where they apply. Ratios are "
              "time(baseline) / time(numba) in this run: the paired ones (see Paired speed-up) "
              "where the run has them, marked *paired*, else those of the separate timings; the "
              "worst case is shown. A target with nothing recorded to check reads *not measured*.")
    verdicts = {True: "met", False: "**missed**", None: "*not measured*"}
    ctx.doc.table(["target", "verdict", "cases", "worst case"],
                  [[v.target, verdicts[v.met], str(v.checked), v.worst]
                   for v in targets.evaluate(ctx.run, ctx.roof)], numeric_from=4)


def _dtype_key(primary: str):
    """The report's dtype order: the primary dtype first, then the wider ones first."""
    return lambda d: (d != primary, -np.dtype(d).itemsize, d)


def _dtypes(run: Run, function: str, primary: str = "float32") -> list[str]:
    found = {k[4] for k in run.timings if k[0] == function}
    return sorted(found, key=_dtype_key(primary))


def _shapes_by_dtype(shapes, primary: str) -> list:
    """``(batch, classes, dtype)`` grouped by dtype in the report's order, then by shape."""
    key = _dtype_key(primary)
    return sorted(shapes, key=lambda s: (key(s[2]), s[0], s[1]))


def section_throughput(ctx: Context) -> None:
    run, doc = ctx.run, ctx.doc
    doc.h(2, "Throughput")
    doc.p("GB/s of logits processed (batch x classes x itemsize / time, the time being asv's "
          "value: the median of its samples) and elements/s (right axis) against the number of "
          "classes; one panel per "
          "batch size, one line per backend; the dashed black line is this machine's limit for the "
          "shape (see Roofline)" + ("; dotted lines: the compared commit." if ctx.old else "."))
    for function in _functions({k[0] for k in run.timings}):
        for dtype in _dtypes(run, function, ctx.dtype):
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
            backends = _order({k[1] for k in keys})
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
    functions = _functions({k[0] for k in run.timings})
    # the summary: geometric means per function x backend x dtype
    summary = []
    for function in functions:
        for dt in _dtypes(run, function, ctx.dtype):
            sp = speedups(run, function, dt)
            for b in _order({k[0] for k in sp}):
                summary.append([SHORT_NAMES[function], dt, b, fmt_ratio(geomean(sp.get((b, "tf"), {}).values())),
                                fmt_ratio(geomean(sp.get((b, "peer"), {}).values()))])
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
        columns = [c for c in sorted(sp, key=lambda c: (c[1] != "tf", _order([k[0] for k in sp]).index(c[0])))]
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
    functions = _functions({k[0] for k in run.paired})
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


def section_roofline(ctx: Context) -> None:
    run, doc, roof = ctx.run, ctx.doc, ctx.roof
    doc.h(2, "Roofline")
    if roof is None:
        doc.p("Not measured for this machine; run `xentbench report --measure` on it.")
        return
    bw = roof["bandwidth"]
    doc.p("Measured on this machine (`xentbench/roofline.py`): read bandwidth of a vectorised "
          "Numba parallel sum over an array in L2, in the last-level cache and in memory (1 GiB), "
          "single-thread and with every thread; exp throughput of one core (NumPy's SIMD `np.exp`).")
    rows = [[lvl, fmt_bytes(roof["cache_bytes"].get(lvl)) if lvl in roof["cache_bytes"] else "> LLC",
             fmt(bw[lvl]["single"] / 1e9), fmt(bw[lvl]["all"] / 1e9)] for lvl in ("L2", "LLC", "memory")]
    doc.table(["level", "working set up to", "1 thread GB/s", f"{roof['threads']} threads GB/s"], rows,
              numeric_from=1)
    doc.table(["exp, one core", "elements/s", f"x {roof['threads']} cores"],
              [[dt, fmt(v), fmt(v * roof["threads"])] for dt, v in roof["exp"].items()], numeric_from=1)
    doc.p("The limit of a shape is the smaller of (a) the all-thread bandwidth of the level its "
          "working set fits in, divided by the bytes one logit costs (every array the function "
          "reads or writes: `TRAFFIC` in `xentbench/roofline.py`, e.g. 1 logit for the sparse loss, "
          "3 for the dense fused loss+gradient), and (b) the exp rate of one core times the cores, "
          "over the exps per element (2 for sigmoid: exp and log1p). Writes are counted at read "
          "bandwidth, so the fractions below are if anything too high. A fraction above 100% "
          "means the backend's exponential is cheaper than NumPy's (a polynomial of lower "
          "accuracy, or fewer exps than elements): the exp ceiling is NumPy's rate, not the "
          "hardware's; the column *of bandwidth ceiling* gives the same shape against the memory "
          "ceiling alone, the bound of a backend whose exp costs nothing.")
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
    ordered = {SHORT_NAMES[f]: panels[f] for f in _functions(panels)}
    curves = {SHORT_NAMES[f]: c for f, c in curves.items()}
    ctx.plot("roofline", f"roofline_{dtype}.png", f"achieved throughput and this machine's limit ({dtype})",
             ordered, curves)
    doc.img(f"roofline_{dtype}.png", "roofline")
    rows = []
    for function in _functions({k[0] for k in fractions}):
        for b in _order({k[1] for k in fractions if k[0] == function}):
            for dt in sorted({k[4] for k in fractions if k[0] == function and k[1] == b},
                             key=_dtype_key(dtype)):
                vals = [(fractions[k][0], k) for k in fractions if k[0] == function and k[1] == b and k[4] == dt]
                best, best_key = max(vals)
                big = [v for v, k in vals if fractions[k][2] == "memory"]
                rows.append([SHORT_NAMES[function], b, dt, f"{float(np.median([v for v, _ in vals])):.1%}",
                             f"{best:.1%}", f"{best_key[2]:,} x {best_key[3]:,} ({fractions[best_key][1]})",
                             f"{fractions[best_key][3]:.1%}", f"{max(big):.1%}" if big else "-"])
    doc.table(["function", "backend", "dtype", "median", "best", "best at (bound)",
               "best: of bandwidth ceiling", "best, working set > LLC"], rows, numeric_from=3)


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
    for function in _functions({k[0] for k in run.errors}):
        for b in _order({k[1] for k in run.errors if k[0] == function}):
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
        doc.h(3, "Verification table")
        doc.p("`xentbench verify`, run while making this report (not from the recorded results): "
              "every backend against the truth and TensorFlow over edge shapes, moderate and wide "
              f"logits. It ran {ctx.verify_tree}.")
        doc.pre(ctx.verify_rows)


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
          "of the logits' size; more: temporaries.")
    baseline = {}
    for (function, b, *_), peak in run.peakmem.items():
        baseline[(function, b)] = min(peak, baseline.get((function, b), peak))
    panels = defaultdict(lambda: defaultdict(list))
    for (function, b, batch, classes, dt), peak in run.peakmem.items():
        size = input_bytes(function, batch, classes, dt)
        if size >= MEMORY_MIN_INPUT:
            panels[SHORT_NAMES[function]][b].append((size, peak - baseline[(function, b)]))
    if panels:
        ordered = {SHORT_NAMES[f]: dict(panels[SHORT_NAMES[f]]) for f in _functions(run.peakmem_functions())
                   if SHORT_NAMES[f] in panels}
        ctx.plot("memory", "peakmem.png", "peak memory over the baseline against the input's size", ordered)
        doc.img("peakmem.png", "peak memory")
    for function in _functions({k[0] for k in run.peakmem}):
        keys = [k for k in run.peakmem if k[0] == function]
        backends = _order({k[1] for k in keys})
        doc.h(3, f"{function}")
        rows = [["baseline", "", ""] + [fmt_bytes(baseline.get((function, b))) for b in backends]]
        for batch, classes, dt in _shapes_by_dtype({(k[2], k[3], k[4]) for k in keys}, ctx.dtype):
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
    for function in _functions({k[0] for k in run.latency}):
        cold, cached = run.latency.get((function, "cold")), run.latency.get((function, "cached"))
        row = [SHORT_NAMES[function], fmt_seconds(cold), fmt_seconds(cached),
               fmt_ratio(cold / cached) if cold and cached else "-"]
        if ctx.old:
            row += [fmt_seconds(ctx.old.latency.get((function, "cold"))),
                    fmt_seconds(ctx.old.latency.get((function, "cached")))]
        rows.append(row)
    header = ["function", "cold", "cached", "cold / cached"]
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
            for f in _functions({g[0] for g in groups})
            for b in _order({g[1] for g in groups if g[0] == f})
            for dt in sorted({g[2] for g in groups if g[:2] == (f, b)}, key=lambda d: np.dtype(d).itemsize)
            for v in [groups[(f, b, dt)]]]
    doc.table(["function", "backend", "dtype", "shapes", "speed-up (geomean)", "min", "max"], rows, numeric_from=3)


SECTIONS = (section_targets, section_throughput, section_speedup, section_paired, section_roofline,
            section_accuracy, section_memory, section_latency, section_compare)


def section_appendix(ctx: Context, argv: list[str]) -> None:
    doc = ctx.doc
    doc.h(2, "How this report was made")
    doc.pre("xentbench " + " ".join(argv) + "\n\nresults:\n" + "\n".join(ctx.run.files)
            + ("\n\ncompared with:\n" + "\n".join(ctx.old.files) if ctx.old else ""))
    if ctx.run.failed:
        doc.h(3, "Benchmarks without a result")
        doc.pre("\n".join(sorted(ctx.run.failed)))


# --------------------------------------------------------------------------- folders and index

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "machine"


TMP_PREFIX = ".tmp-report-"


def _sweep(out: Path, age_s: float = 3600) -> None:
    """Remove the hidden folders of reports killed (SIGKILL, power cut) over an hour ago."""
    for stale in out.glob(TMP_PREFIX + "*"):
        try:
            if time.time() - stale.stat().st_mtime > age_s:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            continue


def _place(tmp: Path, out: Path, base: str) -> Path:
    """Rename ``tmp`` to ``out/base`` (or ``base-2``, ...), never over an existing folder."""
    n = 1
    while True:
        final = out / (base if n == 1 else f"{base}-{n}")
        if not final.exists():
            try:
                os.rename(tmp, final)  # atomic; fails if a non-empty folder appeared meanwhile
                return final
            except OSError:
                if not final.exists():
                    raise
        n += 1


def write_index(out: Path) -> Path:
    """``index.md``: one line per complete report folder (those with ``meta.json``), newest first."""
    entries = []
    for meta_path in out.glob("*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entries.append((meta.get("generated", ""), meta_path.parent.name, meta))
    lines = ["# xentbench reports", "",
             "Made by `xentbench report` from recorded asv results (`xentbench bench`); newest first. "
             "Each folder has `report.md` with its plots and a self-contained `report.html`.", "",
             "| report | machine | commit | commit date | compared with | generated | headline |",
             "|:---|:---|:---|:---|:---|:---|:---|"]
    for generated, name, meta in sorted(entries, reverse=True):
        head = " ".join(meta.get("headline", [])[:2]).replace("|", "\\|")
        lines.append(f"| [{name}]({name}/report.md) ([html]({name}/report.html)) | {meta.get('machine', '')} "
                     f"| `{meta.get('commit', '')[:8]}` | {meta.get('commit_date', '')} "
                     f"| {('`' + meta['compare'][:8] + '`') if meta.get('compare') else ''} | {generated} | {head} |")
    index = out / "index.md"
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, index)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return index


# --------------------------------------------------------------------------- the command

def _repo_root() -> Path:
    try:
        return checkout.find_root()
    except FileNotFoundError:
        return Path.cwd()


_VERIFY = """
import sys
sys.path.insert(0, sys.argv[1])
import impls
assert impls.__file__.startswith(sys.argv[1]), impls.__file__
from xentbench import cli
sys.exit(cli.main(["verify"]))
"""


def verify_commit(root: Path, commit: str) -> tuple[str, str]:
    """``xentbench verify``'s table for ``commit``'s ``impls/`` and what ran, in words.

    The library of ``commit`` is exported (as ``xentbench bench --commit``
    does) and verified by this tree's ``xentbench verify`` in a subprocess;
    a commit git does not know is verified on the working tree instead.
    """
    with tempfile.TemporaryDirectory(prefix="xentbench-verify-") as tmp:
        try:
            checkout.materialise(commit, tmp, root)
            argv, what = [sys.executable, "-c", _VERIFY, tmp], f"on `impls/` of `{commit[:8]}`"
        except (checkout.CheckoutError, OSError):
            argv, what = [sys.executable, "-m", "xentbench.cli", "verify"], _tree_state(root, commit)
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if not done.stdout.strip():
        raise ReportError(f"xentbench verify failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    status = "all pass" if done.returncode == 0 else f"exit status {done.returncode}: not all pass"
    return done.stdout, f"{what} ({status})"


def _tree_state(root: Path, commit: str) -> str:
    """Which library code runs here, in words, compared with the reported commit."""
    def git(*args):
        try:
            return checkout.git(root, *args)
        except checkout.CheckoutError:
            return None

    head = git("rev-parse", "HEAD")
    if head is None:
        return "on code outside git"
    paths = ("impls", "xentbench/accuracy.py", "xentbench/verify.py")  # what verify runs
    same = git("diff", "--quiet", commit, "--", *paths) is not None  # the working tree against commit
    dirty = git("status", "--porcelain", "--", *paths) or ""
    where = f"on the working tree at `{head[:8]}`"
    if same and not dirty:
        return where + f", whose library is that of `{commit[:8]}`"
    return where + f", whose library differs from `{commit[:8]}`" + (" (uncommitted changes)" if dirty else "")


def add_arguments(parser) -> None:
    parser.add_argument("--results", type=Path, help="asv results folder (default: asv.conf.json's, .asv/results)")
    parser.add_argument("--machine", help="asv machine name (default: the only one recorded, else this host's)")
    parser.add_argument("--commit", help="commit to report (default: HEAD if recorded, else the newest recorded)")
    parser.add_argument("--compare", metavar="COMMIT", help="put this commit's numbers beside the report's")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (default: reports)")
    parser.add_argument("--roofline", type=Path, help="machine limits JSON (default: .asv/roofline/<machine>.json)")
    parser.add_argument("--measure", action="store_true",
                        help="measure this machine's limits again first (each figure keeps its best)")
    parser.add_argument("--dtype", default="float32", help="dtype of the heat maps and roofline plot (default float32)")
    parser.add_argument("--verify", action="store_true",
                        help="also run `xentbench verify` now (about 15 s) and include its table")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes drawing the figures (default: 2, or 1 on one core)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def make_report(args, argv: list[str] | None = None) -> Path:
    """Build the report of ``args`` and return its folder (see the module docstring)."""
    import platform

    progress = Progress(quiet=args.quiet)
    root = _repo_root()
    asv = _asv()
    results = args.results or asv.default_results_dir()
    commit = args.commit
    if commit is None:  # HEAD if recorded, else the newest recorded commit
        head = asv.resolve_commit("HEAD", root)
        try:
            commit = head if asv.find(results, head, args.machine) else newest_commit(results, args.machine)
        except asv.ResultsError as exc:
            raise ReportError(str(exc)) from None
    run = load_run(results, commit, args.machine, root)
    machine = run.machine
    progress(f"loaded {run.short} on {machine} ({run.files[0]}): {len(run.timings)} timings, "
             f"{len(run.errors)} accuracy figures, {len(run.peakmem)} peak memories, "
             f"{len(run.latency)} latencies, {len(run.failed)} failed")
    old = None
    if args.compare:
        old = load_run(results, args.compare, machine, root)
        progress(f"loaded {old.short} to compare ({old.files[0]})")
    roof_path = args.roofline or results.parent / "roofline" / f"{_safe(machine)}.json"
    roof, source = None, f"`{roof_path}`"
    if args.measure:
        progress("measuring this machine's bandwidth and exp throughput")
        previous = None
        if roof_path.exists():
            try:
                previous = roofline.load(roof_path)
            except (OSError, ValueError):
                previous = None
        roof = roofline.merge(previous, roofline.measure())
        roofline.save(roof, roof_path)
        source = f"measured now, saved to `{roof_path}`"
    elif roof_path.exists():
        try:
            roof = roofline.load(roof_path)
        except (OSError, ValueError) as exc:
            raise ReportError(f"{roof_path}: unreadable roofline file: {exc}") from exc
    elif machine in (asv.machine_name(), platform.node()) and not args.roofline:
        progress("measuring this machine's bandwidth and exp throughput (once; kept in .asv/roofline/)")
        roof = roofline.measure()
        roofline.save(roof, roof_path)
        source = f"measured now, saved to `{roof_path}`"
    verify_rows, verify_tree = None, ""
    if args.verify:
        progress("running xentbench verify on the reported commit's impls/ (git archive), "
                 "in a subprocess")
        verify_rows, verify_tree = verify_commit(root, run.commit)
        progress("verification table")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    _sweep(out)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out))
    try:
        ctx = Context(run=run, old=old, roof=roof, roof_source=source, folder=tmp, dtype=args.dtype,
                      doc=Doc(), progress=progress, verify_rows=verify_rows, verify_tree=verify_tree)
        section_header(ctx)
        lines = section_headline(ctx)
        for section in SECTIONS:
            section(ctx)
        section_appendix(ctx, argv if argv is not None else sys.argv[1:])
        ctx.doc.contents(after=2)  # after the title and its list
        progress(f"tables done; drawing {len(ctx.jobs)} figures with {args.jobs} process(es)")
        render(ctx.jobs, args.jobs, progress)
        title = f"xentbench report: {machine} at {run.short}"
        (tmp / "report.md").write_text(ctx.doc.markdown(), encoding="utf-8")
        (tmp / "report.html").write_text(ctx.doc.html(tmp, title), encoding="utf-8")
        if roof:
            roofline.save(roof, tmp / "roofline.json")
        date = time.strftime("%Y-%m-%d", time.gmtime(run.date / 1000)) if run.date else ""
        meta = dict(machine=machine, commit=run.commit, commit_date=date,
                    compare=old.commit if old else None,
                    generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), headline=lines)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        progress("wrote report.md, report.html")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        folder = _place(tmp, out, f"{_safe(machine)}-{run.short}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_index(out)
    progress(f"done: {folder}")
    return folder


def run(args) -> int:
    try:
        folder = make_report(args)
    except ReportError as exc:
        print(f"xentbench report: {exc}", file=sys.stderr)
        return 2
    print(folder / "report.md")
    return 0
