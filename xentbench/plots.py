"""The report's figures: matplotlib with the Agg backend, one PNG per call.

Every function takes plain numbers (no asv objects) and a path, writes one
PNG there and closes its figure. Backends keep one colour and marker
throughout the report (``style``).
"""

from __future__ import annotations

import io
import math
import textwrap

import matplotlib

matplotlib.use("Agg")  # no screen; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, NullLocator  # noqa: E402

_STYLE = {
    "naive": ("#7f7f7f", "X"),  # a filled x: the peak-memory figure fills markers by dtype
    "numpy": ("#1f77b4", "s"),
    "numba": ("#d62728", "o"),
    "tensorflow": ("#ff7f0e", "^"),
    "torch": ("#9467bd", "D"),
    "jax": ("#2ca02c", "v"),
}
_EXTRA = ["#8c564b", "#e377c2", "#17becf", "#bcbd22"]
#: how a figure that mixes dtypes tells them apart: the backend's marker filled, hollow or half filled
DTYPE_FILL = {"float32": "full", "float64": "none", "float16": "bottom", "bfloat16": "top"}
DPI = 110


def style(backend: str) -> tuple[str, str]:
    """(colour, marker) of a backend, the same in every figure."""
    if backend not in _STYLE:
        _STYLE[backend] = (_EXTRA[len(_STYLE) % len(_EXTRA)], "P")
    return _STYLE[backend]


def ordered(by_backend: dict) -> list:
    """``(backend, value)`` pairs in the report's backend order (that of ``_STYLE``)."""
    known = list(_STYLE)
    return sorted(by_backend.items(), key=lambda kv: (known.index(kv[0]) if kv[0] in known else 99, kv[0]))


#: the width of one character of 9-point text, and of a legend entry's handle and gaps, in inches
#: (DejaVu Sans, measured: matplotlib's default font)
_CHAR_IN, _HANDLE_IN = 0.075, 0.65
#: the height of a line of the legend's and the titles' text, in inches
_LINE_IN = 0.22


def _legend(fig, handles: dict) -> int:
    """One legend under the panels: backends in order, then the other lines, as many to a row as
    the figure's width holds (so that none is clipped); returns its rows."""
    labels = [k for k in _STYLE if k in handles] + [k for k in handles if k not in _STYLE]
    entry = _HANDLE_IN + _CHAR_IN * max(len(k) for k in labels)
    ncol = max(1, min(len(labels), int((fig.get_size_inches()[0] - 0.2) / entry)))
    fig.legend([handles[k] for k in labels], labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    return math.ceil(len(labels) / ncol)


def _wrap(text: str, inches: float, points: float) -> str:
    """``text`` broken into lines that fit ``inches`` at a font of ``points``."""
    return textwrap.fill(text, max(12, int(inches / (_CHAR_IN * points / 9))), break_long_words=False)


def _suptitle(fig, title: str) -> int:
    """The figure's title, wrapped to its width; returns its lines."""
    text = _wrap(title, fig.get_size_inches()[0] - 0.3, 11)
    fig.suptitle(text, fontsize=11)
    return text.count("\n") + 1


def _save(fig, path) -> None:
    """PNG, reduced to a 256-colour palette: a third of the size, the same to the eye.

    Fast octree quantisation and zlib level 6: a tenth of the time of median
    cut and level 9 (0.03 s instead of 0.25 s a figure), and smaller files.
    """
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png", facecolor="white")
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
            path, format="PNG", compress_level=6)


def _margins(fig, left, right, top, bottom, wspace=0.2, hspace=0.3) -> None:
    """Fixed margins in inches (``tight_layout`` costs seconds per figure on log axes)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=wspace, hspace=hspace)


def _log_minor(ax) -> None:
    """Minor ticks at 2 and 5 only, unlabelled: readable, and cheap to draw."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())


def _grid(n: int, max_cols: int = 3):
    cols = min(n, max_cols)
    return max(1, math.ceil(n / cols)), max(1, cols)


def _fmt_count(v: float) -> str:
    """Exact: 65536 stays 65536; round thousands shorten (32000 -> 32k)."""
    v = int(v) if float(v).is_integer() else v
    if isinstance(v, int) and v >= 10000 and v % 1000 == 0:
        return f"{v // 1000}k"
    return f"{v}"


def throughput(path, title: str, itemsize: int, panels: dict, limits: dict | None = None,
               compare: dict | None = None, compare_label: str = "") -> None:
    """Throughput against classes: one panel per batch size, one line per backend.

    ``panels``: ``{batch: {backend: [(classes, GB/s), ...]}}``; ``limits``:
    ``{batch: [(classes, GB/s), ...]}``, the roofline, drawn dashed black;
    ``compare``: like ``panels`` for a second commit, drawn thin and dotted.
    The right axis reads the same curves in elements/s (GB/s / itemsize).
    """
    batches = sorted(panels)
    rows, cols = _grid(len(batches))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 0.6, 3.7 * rows + 0.9),
                             squeeze=False, sharey=True, sharex=True)
    handles = {}
    for index, (ax, batch) in enumerate(zip(axes.flat, batches)):
        for backend, points in ordered(panels[batch]):
            points = sorted(p for p in points if p[1] and p[1] > 0)
            if not points:
                continue
            colour, marker = style(backend)
            x, y = zip(*points)
            (line,) = ax.plot(x, y, marker=marker, color=colour, lw=1.6, ms=5, label=backend)
            handles.setdefault(backend, line)
            if compare and compare.get(batch, {}).get(backend):
                old = sorted(p for p in compare[batch][backend] if p[1] and p[1] > 0)
                if old:
                    ox, oy = zip(*old)
                    ax.plot(ox, oy, ls=":", color=colour, lw=1.2, alpha=0.8)
                    if compare_label not in handles:
                        handles[compare_label] = ax.plot([], [], ls=":", color="grey", lw=1.2)[0]
        if limits and limits.get(batch):
            lx, ly = zip(*sorted(limits[batch]))
            ax.plot(lx, ly, ls="--", color="black", lw=1.2, label="roofline")
            if "roofline (this machine)" not in handles:
                handles["roofline (this machine)"] = ax.plot([], [], ls="--", color="black", lw=1.2)[0]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"batch = {batch:,}", fontsize=10)
        ax.set_xlabel("classes")
        _log_minor(ax)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        ax.xaxis.set_tick_params(labelbottom=True)
        if index % cols == cols - 1 or index == len(batches) - 1:  # last panel of its row
            sec = ax.secondary_yaxis("right", functions=(lambda g: g * 1e9 / itemsize,
                                                         lambda e: e * itemsize / 1e9))
            sec.yaxis.set_minor_locator(NullLocator())
            sec.set_ylabel("elements/s")
    for ax in axes[:, 0]:
        ax.set_ylabel("GB/s of logits")
    for ax in list(axes.flat)[len(batches):]:
        ax.set_visible(False)
    lines, legend_rows = _suptitle(fig, title), _legend(fig, handles)
    _margins(fig, left=0.75, right=0.9, top=0.35 + _LINE_IN * lines, bottom=0.8 + _LINE_IN * legend_rows,
             wspace=0.12, hspace=0.35)
    _save(fig, path)


def heatmaps(path, title: str, grids: list, batches: list, classes: list) -> None:
    """Speed-up heat maps over batch (rows) x classes (columns).

    ``grids``: ``[(panel title, 2-D array of ratios, NaN where missing), ...]``,
    laid out in rows of at most three. Colour is log2 of the ratio, centred on
    1 (blue faster, red slower); each cell is annotated with the ratio. The
    titles wrap to the figure's and the panels' width, and the colour bar
    labels as many ratios as its height holds.
    """
    n = len(grids)
    rows, cols = _grid(n)
    left, right, bottom, gap_w = 0.75, 1.35, 0.75, 0.75
    pw = max(1.8, 0.55 * len(classes), (5.2 - left - right - (cols - 1) * gap_w) / cols)  # panel, inches
    ph = max(0.9, 0.36 * len(batches))
    width = left + cols * pw + (cols - 1) * gap_w + right
    names = [_wrap(name, pw, 9.5) for name, _ in grids]
    name_lines = max(name.count("\n") + 1 for name in names)
    gap_h = 0.7 + _LINE_IN * name_lines
    fig, axes = plt.subplots(rows, cols, figsize=(width, 1.0), squeeze=False)
    lines = _suptitle(fig, title)
    top = 0.25 + _LINE_IN * (lines + name_lines)
    height = top + rows * ph + (rows - 1) * gap_h + bottom
    fig.set_size_inches(width, height)
    _margins(fig, left=left, right=right, top=top, bottom=bottom, wspace=gap_w / pw, hspace=gap_h / ph)
    finite = np.concatenate([np.log2(g[np.isfinite(g) & (g > 0)]) for _, g in grids] or [np.zeros(1)])
    span = max(1.0, float(np.max(np.abs(finite))) if finite.size else 1.0)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    image = None
    for ax, name, (_, grid) in zip(axes.flat, names, grids):
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.where(grid > 0, np.log2(grid), np.nan)
        image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", norm=norm, aspect="auto")
        ax.set_facecolor("#eeeeee")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v) and v > 0:
                text = f"{v:.2g}" if v < 10 else f"{v:.0f}"
                dark = abs(math.log2(v)) > 0.6 * span
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(classes)), [_fmt_count(c) for c in classes], fontsize=8)
        ax.set_yticks(range(len(batches)), [_fmt_count(b) for b in batches], fontsize=8)
        ax.set_xlabel("classes", fontsize=8, labelpad=1)
        ax.set_ylabel("batch", fontsize=8, labelpad=1)
        ax.set_title(name, fontsize=9.5)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if image is not None:
        bar_height = height - top - bottom
        cax = fig.add_axes((1 - 1.0 / width, bottom / height, 0.15 / width, bar_height / height))
        bar = fig.colorbar(image, cax=cax)
        whole = int(span)
        step = max(1, math.ceil((2 * whole + 1) / max(2, int(bar_height / 0.25))))  # a label per 0.25 in
        ticks = [t for t in range(-whole, whole + 1) if t % step == 0]
        bar.set_ticks(ticks)
        bar.set_ticklabels([f"{2 ** t}x" if t >= 0 else f"1/{2 ** -t}x" for t in ticks])
        bar.set_label("speed-up (>1: faster)", fontsize=8)
    _save(fig, path)


def roofline(path, title: str, panels: dict, limit_curves: dict) -> None:
    """Achieved elements/s against the working set, with the machine's limit.

    ``panels``: ``{function: {backend: [(working set bytes, elements/s), ...]}}``;
    ``limit_curves``: ``{function: {"bandwidth": [(working set bytes, elements/s), ...],
    "exp": elements/s}}``: the two ceilings, the lower of which is the limit.
    """
    names = list(panels)
    rows, cols = _grid(len(names), 4)
    fig, axes = plt.subplots(rows, cols, figsize=(4.1 * cols, 3.4 * rows + 0.8), squeeze=False,
                             sharey=True)
    handles = {}
    for ax, name in zip(axes.flat, names):
        for backend, points in ordered(panels[name]):
            points = [p for p in points if p[1] and p[1] > 0]
            if not points:
                continue
            colour, marker = style(backend)
            x, y = zip(*points)
            h = ax.scatter(x, y, s=16, color=colour, marker=marker, alpha=0.8, label=backend)
            handles.setdefault(backend, h)
        curves = limit_curves.get(name)
        if curves:
            lx, ly = zip(*sorted(curves["bandwidth"]))
            (h,) = ax.step(lx, ly, where="post", color="black", ls="--", lw=1.1)
            handles.setdefault("bandwidth ceiling (L2 / LLC / memory)", h)
            h = ax.axhline(curves["exp"], color="black", ls=":", lw=1.3)
            handles.setdefault("exp ceiling (np.exp rate x cores)", h)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("working set (bytes)", fontsize=8)
        ax.grid(True, which="major", alpha=0.35)
    for ax in axes[:, 0]:
        ax.set_ylabel("logits elements/s")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    lines, legend_rows = _suptitle(fig, title), _legend(fig, handles)
    _margins(fig, left=0.75, right=0.2, top=0.35 + _LINE_IN * lines, bottom=0.75 + _LINE_IN * legend_rows,
             wspace=0.08, hspace=0.45)
    _save(fig, path)


def memory(path, title: str, panels: dict, xlabel: str = "input (logits + labels), bytes",
           ylabel: str = "peak - baseline, bytes") -> None:
    """Memory over the baseline (or what ``ylabel`` says) against the input's size, log-log, one
    panel per function.

    ``panels``: ``{title: {backend: [(input bytes, extra bytes, dtype), ...]}}``;
    a backend keeps its colour and marker, the marker's fill tells the dtype
    (``DTYPE_FILL``), the legend says which is which; the dotted lines are
    extra = 1, 2 and 4 times the input.
    """
    names = list(panels)
    rows, cols = _grid(len(names), 4)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 0.4, 3.1 * rows + 0.9), squeeze=False,
                             sharex=True, sharey=True)
    handles, fills = {}, {}
    lo, hi = math.inf, 0.0
    for ax, name in zip(axes.flat, names):
        for backend, points in ordered(panels[name]):
            points = [p for p in points if p[1] and p[1] > 0]
            if not points:
                continue
            colour, marker = style(backend)
            handles.setdefault(backend, Line2D([], [], ls="none", color=colour, marker=marker, ms=5))
            for dtype in sorted({p[2] for p in points}, key=list(DTYPE_FILL).index):
                x, y, _ = zip(*sorted(p for p in points if p[2] == dtype))
                ax.plot(x, y, ls="none", color=colour, marker=marker, ms=5, alpha=0.85,
                        fillstyle=DTYPE_FILL[dtype], markerfacecoloralt="white")
                fills[dtype] = Line2D([], [], ls="none", color="#555555", marker="o", ms=5,
                                      fillstyle=DTYPE_FILL[dtype], markerfacecoloralt="white")
                lo, hi = min(lo, *x), max(hi, *x)
        ax.set_title(name, fontsize=9)
        ax.grid(True, which="major", alpha=0.35)
        ax.xaxis.set_tick_params(labelbottom=True)
    for dtype in DTYPE_FILL:
        if dtype in fills:
            handles[dtype] = fills[dtype]
    if hi > 0:
        for ax in axes.flat:
            for k, ls in ((1, ":"), (2, "-."), (4, "--")):
                (line,) = ax.plot([lo, hi], [k * lo, k * hi], color="black", ls=ls, lw=0.8)
                handles.setdefault(f"{k}x input", line)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax in axes[-1, :]:
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    lines, legend_rows = _suptitle(fig, title), _legend(fig, handles)
    _margins(fig, left=0.75, right=0.2, top=0.35 + _LINE_IN * lines, bottom=0.8 + _LINE_IN * legend_rows,
             wspace=0.1, hspace=0.45)
    _save(fig, path)
