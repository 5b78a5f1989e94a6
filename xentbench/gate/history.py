"""Find where a creeping slowdown began: the history of gate runs against a fixed anchor, and its change points.

    xentbench gate ANCHOR HEAD --record gate-history.jsonl   # after each merge: one JSON line
    xentbench gate HEAD HEAD --quick --record gate-history.jsonl   # an A/A run: the noise of each combination
    xentbench history gate-history.jsonl [--plot history.png] [--json FILE]

A gate compares two points: a 2% slowdown in each of five merges is never
called, and the next gate against the new BASE sees 2% again. Gated against
a fixed ANCHOR after each merge, each combination's median ratio HEAD/ANCHOR
makes a series in which each slowdown is a step. ``change_points`` finds the
steps of each function, over the series of its combinations together (a
change in its code shows at each shape), with ruptures' PELT search (Killick
et al. 2012; the family of MongoDB's E-Divisive and Apache Otava) over the
log-ratios, each combination's divided by its own noise: first the median
absolute difference of consecutive runs (robust against the steps
themselves), then, in a second pass, the spread of its runs around the
levels the first pass found. The
cost is the absolute deviation (``model="l1"``: a median per segment, so one
run disturbed by another tenant or a biased worker does not make a segment of
its own), segments hold at least ``MIN_SIZE`` runs, and the penalty is
``PENALTY`` x combinations x log(runs). Steps under ``MIN_STEP`` are not
reported. A step's commit is the first run on its new level: the merge where
it began.

A run whose BASE and HEAD are the same commit is an A/A run (every CI run
makes one): its ratios are the noise of each combination. ``unstable`` lists
apart, as rustc-perf does, a combination whose own past A/A changes reach
beyond the gate's slower line: Q3 + 3 IQR of their sizes over half the
threshold. The gate prints these apart; their verdicts stand, since each call
is still confirmed by fresh workers.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: PELT's penalty, in units of noise x combinations x log(runs). Resampling histories of 30 runs from the 47
#: A/A quick gates recorded before issue 31 (as experiments/gate_history.py does; 200 histories each),
#: 2 gave a change point in 5 A/A histories, 3 in none but missed a planted 2% step once, 2.5 once
#: and never; on the 67 gates of its committed log (results/issue31) 2, 2.5 and 3 all give 200/200 for both
PENALTY = 2.5
MIN_SIZE = 3  # runs a segment holds at least: a single disturbed run is not a level
MIN_STEP = 0.01  # smaller steps are not reported
MIN_AA_RUNS = 5  # A/A runs a combination needs before it can be called unstable
NOISE_FLOOR = 1e-4  # the smallest noise assumed (log-ratio): identical runs do not make every wiggle a step


# --------------------------------------------------------------------------- the file

def record(path: Path, outcomes, header) -> None:
    """Append the run as one JSON line: its commits and each timed combination's ratio and interval."""
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "anchor": header["base_hash"], "head": header["head_hash"],
            "aa": header["base_hash"] == header["head_hash"],
            **{k: header[k] for k in ("backend", "repo", "dtype", "threshold", "cpu")},
            "ratios": {o.name: {"ratio": o.ratio, "low": o.low, "high": o.high, "rounds": o.rounds,
                                "verdict": o.verdict} for o in outcomes if o.ratio is not None}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def load(path: Path) -> list[dict]:
    """The runs recorded in ``path``, oldest first; ``ValueError`` naming the line that is not JSON."""
    runs = []
    for n, text in enumerate(Path(path).read_text().splitlines(), 1):
        if text.strip():
            try:
                runs.append(json.loads(text))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON line ({exc})") from None
    return runs


def series(runs, backend: str, dtype: str, anchor: str | None = None, aa: bool = False, cpu: str | None = None):
    """``(heads, {combination: log-ratios})`` of the runs of ``backend`` and ``dtype`` (on ``cpu``, where
    given: the times of two machines are not one series): the A/A runs, or those against ``anchor``
    (default the last run's); NaN where a run did not time the combination."""
    chosen = [r for r in runs if r["backend"] == backend and r["dtype"] == dtype and r["aa"] == aa
              and cpu in (None, r["cpu"])]
    if not aa:
        anchor = anchor or (chosen[-1]["anchor"] if chosen else None)
        chosen = [r for r in chosen if r["anchor"].startswith(anchor or "\0")]
    names = sorted({n for r in chosen for n in r["ratios"]})
    logs = {n: np.array([math.log(r["ratios"][n]["ratio"]) if n in r["ratios"] else math.nan for r in chosen])
            for n in names}
    return [r["head"] for r in chosen], logs


# --------------------------------------------------------------------------- change points

def noise(x) -> float:
    """The spread of one run's log-ratio: the median absolute difference of consecutive runs / (0.6745 sqrt 2)."""
    d = np.abs(np.diff(np.asarray(x, float)))
    return max(NOISE_FLOOR, float(np.median(d)) / (0.6745 * math.sqrt(2))) if len(d) else NOISE_FLOOR


@dataclass(frozen=True)
class Step:
    """A change of level: ``at`` is the index of the first run on the new level."""

    at: int
    before: float  # the ratio before (the median over the combinations of each one's segment median)
    after: float  # and from ``at``

    @property
    def change(self) -> float:
        return self.after / self.before - 1


def change_points(x, penalty: float = PENALTY, min_size: int = MIN_SIZE, min_step: float = MIN_STEP) -> list[Step]:
    """The steps of the log-ratio series ``x``: runs x combinations (or one series), found jointly.

    Each column is divided by its own noise, so that the penalty reads in
    units of noise (``penalty`` x columns x log(runs)); runs missing a column
    (NaN) are left out; indices are into ``x``.
    """
    import ruptures

    x = np.asarray(x, float)
    x = x.reshape(len(x), -1)
    kept = np.flatnonzero(~np.isnan(x).any(axis=1))
    y = x[kept]
    if len(y) < 2 * min_size:
        return []
    spread = np.array([noise(column) for column in y.T])
    for _ in range(2):  # the second pass with each column's noise around the levels the first found
        ends = ruptures.Pelt(model="l1", min_size=min_size, jump=1).fit(y / spread).predict(
            pen=penalty * y.shape[1] * math.log(len(y)))
        bounds = [0, *ends]
        residuals = np.concatenate([y[a:b] - np.median(y[a:b], axis=0) for a, b in zip(bounds, bounds[1:])])
        spread = np.maximum(NOISE_FLOOR, 1.4826 * np.median(np.abs(residuals), axis=0))
    levels = [float(np.exp(np.median(np.median(y[a:b], axis=0)))) for a, b in zip(bounds, bounds[1:])]
    steps = [Step(int(kept[b]), levels[i], levels[i + 1]) for i, b in enumerate(ends[:-1])]
    return [s for s in steps if abs(s.change) >= min_step]


def function_of(name: str) -> str:
    """The function (short name) of a combination's name (``"sparse 32x10"`` -> ``"sparse"``)."""
    return name.split(" ")[0]


def unstable(path: Path | None, backend: str, dtype: str, threshold: float, cpu: str | None = None) -> dict[str, str]:
    """The combinations whose A/A runs in ``path`` (on ``cpu``, where given) change by more than half
    ``threshold`` (Q3 + 3 IQR of the changes' sizes), each with why; empty without a file or before
    ``MIN_AA_RUNS`` A/A runs."""
    if path is None or not Path(path).exists():
        return {}
    _, logs = series(load(path), backend, dtype, aa=True, cpu=cpu)
    found = {}
    for name, x in logs.items():
        sizes = np.abs(x[~np.isnan(x)])
        if len(sizes) < MIN_AA_RUNS:
            continue
        q1, q3 = np.percentile(sizes, [25, 75])
        limit = math.expm1(q3 + 3 * (q3 - q1))
        if limit > threshold / 2:
            found[name] = f"A/A changes up to {limit:.1%} (Q3 + 3 IQR of {len(sizes)} A/A runs)"
    return found


# --------------------------------------------------------------------------- the command

def add_arguments(parser) -> None:
    parser.add_argument("file", type=Path, help="the history that gate --record appends to")
    parser.add_argument("--backend", default=None, help="the backend (default: the last run's)")
    parser.add_argument("--dtype", default=None, help="the dtype (default: the last run's)")
    parser.add_argument("--anchor", default=None,
                        help="the anchor commit's hash or its prefix (default: the last run's)")
    parser.add_argument("--cpu", default=None, help="the runs of this CPU, as recorded (default: the last run's)")
    parser.add_argument("--plot", type=Path, default=None, help="save the series and their steps here (PNG)")
    parser.add_argument("--json", type=Path, default=None, help="write the steps found here")


def analyse(runs, backend: str, dtype: str, anchor: str | None = None,
            cpu: str | None = None) -> tuple[list[str], dict, dict]:
    """``(heads, {combination: log-ratios}, {function: steps})`` of the runs against one anchor: the steps of
    each function found over its combinations together (a change in its code shows at each shape)."""
    heads, logs = series(runs, backend, dtype, anchor, cpu=cpu)
    functions = sorted({function_of(n) for n in logs})
    return heads, logs, {f: change_points(np.column_stack([x for n, x in logs.items() if function_of(n) == f]))
                         for f in functions}


def began(found) -> tuple[int, list[str]] | None:
    """The earliest slowdown: ``(index of the run where it began, the functions that show it)``."""
    slow = [(s.at, n) for n, steps in found.items() for s in steps if s.change > 0]
    if not slow:
        return None
    first = min(at for at, _ in slow)
    return first, sorted(n for at, n in slow if at == first)


def plot(path: Path, heads, logs, found) -> None:
    """One panel per combination: the ratio per run, a line at each step of its function."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(logs)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, names):
        ratio = np.exp(logs[name])
        ax.plot(range(len(ratio)), ratio, "o-", ms=3, lw=0.8, color="tab:blue")
        for s in found[function_of(name)]:
            ax.axvline(s.at - 0.5, color="tab:red" if s.change > 0 else "tab:green", lw=1)
            ax.annotate(f"{heads[s.at][:7]} {s.change:+.1%}", (s.at - 0.5, 0.98), xycoords=("data", "axes fraction"),
                        fontsize=6, va="top", ha="right", rotation=90)
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("run (merge)")
    for ax in axes[:, 0]:
        ax.set_ylabel("HEAD / anchor")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    try:
        runs = load(args.file)
        if not runs:
            raise ValueError(f"{args.file}: no runs recorded")
        backend, dtype = args.backend or runs[-1]["backend"], args.dtype or runs[-1]["dtype"]
        cpu = args.cpu or runs[-1]["cpu"]
        heads, logs, found = analyse(runs, backend, dtype, args.anchor, cpu)
        if not heads:
            raise ValueError(f"{args.file}: no run of {backend} {dtype} against the anchor {args.anchor or ''}")
    except (OSError, ValueError, KeyError) as exc:
        print(f"xentbench history: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(heads)} runs of {backend} {dtype} on {cpu} against the anchor; steps of at least {MIN_STEP:.0%}:")
    for name, steps in found.items():
        for s in steps:
            print(f"  {name}: {s.change:+.1%} ({s.before:.3f}x -> {s.after:.3f}x) from {heads[s.at]} "
                  f"(run {s.at + 1})")
    first = began(found)
    print("no slowdown began in this history" if first is None else
          f"the slowdown began at {heads[first[0]]} (run {first[0] + 1}): {', '.join(first[1])}")
    if args.plot:
        plot(args.plot, heads, logs, found)
    if args.json:
        steps = {f: [{**s.__dict__, "commit": heads[s.at]} for s in st] for f, st in found.items()}
        args.json.write_text(json.dumps({"heads": heads, "steps": steps,
                                         "began": None if first is None else heads[first[0]]}, indent=1) + "\n")
    return 0
