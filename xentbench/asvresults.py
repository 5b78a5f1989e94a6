"""The one reader of asv result files: per benchmark and parameter set, the value.

asv (0.6, result format version 2) writes one JSON file per machine, commit and
environment, ``<results_dir>/<machine>/<hash[:8]>-<env>.json``, next to
``<machine>/machine.json`` and a ``benchmarks.json`` (types, units, parameter
names) at the top of ``results_dir``. ``xentbench compare`` and ``xentbench
report`` read them only through this module:

>>> rf = load_commit(".asv/results", "HEAD")          # or load(path)
>>> for r in rf:                                        # one Result per (benchmark, params)
...     r.benchmark, r.params, r.value, r.status, r.unit
('bench_losses.SparseLoss.time_forward', {'backend': 'numba', 'batch': 32, ...}, 0.000123, 'ok', 'seconds')

``Result.value`` is asv's headline number (the median of the samples for
time_, bytes for peakmem_, the returned value for track_); ``status`` says
whether the combination ran (``"ok"``), was skipped (asv's ``n/a``: the
benchmark's setup raised ``NotImplementedError``, or it was not selected in
that run) or failed (``"failed"``: an exception or a timeout). Anything that is
not a readable asv result file raises ``ResultsError`` naming the file.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from xentbench import checkout

#: asv's benchmark types, by the prefix of the benchmark's method name.
KINDS = {"time_": ("time", "seconds"), "peakmem_": ("peakmem", "bytes"),
         "mem_": ("mem", "bytes"), "track_": ("track", "unit")}
_ASV_TYPES = {"time": "time", "peakmemory": "peakmem", "memory": "mem", "track": "track"}
_NOT_RESULTS = {"machine.json", "benchmarks.json"}


class ResultsError(Exception):
    """An asv result file (or directory) that cannot be used; the message names it."""


@dataclass(frozen=True)
class Result:
    """One benchmark at one parameter combination, in one result file."""

    benchmark: str  # "bench_losses.SparseLoss.time_forward"
    param_reprs: tuple  # asv's strings: ("'numba'", "32", "1000", "'float32'")
    param_names: tuple  # ("backend", "batch", "classes", "dtype")
    value: float | None  # None: failed; NaN: skipped or not run
    kind: str  # "time", "peakmem", "mem" or "track"
    unit: str  # "seconds", "bytes", "relative error", ...
    version: str | None = None  # asv's hash of the benchmark's code
    ci_99: tuple | None = None  # (low, high), time_ only
    quartiles: tuple | None = None  # (q25, q75), time_ only
    number: int | None = None  # calls per sample
    repeat: int | None = None  # samples

    @property
    def key(self) -> tuple:
        return (self.benchmark, self.param_reprs)

    @property
    def params(self) -> dict:
        """Parameter name -> Python value (``'numba'`` -> ``"numba"``, ``'32'`` -> ``32``)."""
        return {n: _literal(p) for n, p in zip(self.param_names, self.param_reprs)}

    @property
    def label(self) -> str:
        """asv's own spelling: ``name(p1, p2, ...)``, what ``asv run -b`` matches."""
        return f"{self.benchmark}({', '.join(self.param_reprs)})" if self.param_reprs else self.benchmark

    @property
    def status(self) -> str:
        if self.value is None:
            return "failed"
        if isinstance(self.value, float) and math.isnan(self.value):
            return "skipped"
        return "ok"

    @property
    def module(self) -> str:
        return self.benchmark.split(".")[0]

    @property
    def class_name(self) -> str | None:
        parts = self.benchmark.split(".")
        return parts[-2] if len(parts) >= 3 else None

    @property
    def method(self) -> str:
        return self.benchmark.split(".")[-1]


@dataclass
class ResultFile:
    """One asv result file: a commit measured in one environment on one machine."""

    path: Path
    commit_hash: str
    env_name: str
    machine: str
    date: int | None  # the commit's date, ms since the epoch
    results: dict = field(default_factory=dict)  # Result.key -> Result

    def __iter__(self):
        return iter(self.results.values())

    def __len__(self):
        return len(self.results)

    def get(self, benchmark: str, param_reprs: tuple = ()) -> Result | None:
        return self.results.get((benchmark, tuple(param_reprs)))

    def benchmarks(self) -> list[str]:
        return sorted({r.benchmark for r in self})


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def kind_of(benchmark: str) -> tuple[str, str]:
    """``(kind, default unit)`` from the method name's prefix."""
    method = benchmark.split(".")[-1]
    for prefix, found in KINDS.items():
        if method.startswith(prefix):
            return found
    return ("track", "unit")


def _read_json(path: Path):
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read asv results: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not a valid asv result file (not UTF-8 text: {exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ResultsError(f"{path}: not a valid asv result file (truncated or corrupt JSON: {exc})") from None


def load_benchmarks_json(results_dir) -> dict:
    """``benchmarks.json`` of ``results_dir`` (name -> asv's description), ``{}`` if absent."""
    path = Path(results_dir) / "benchmarks.json"
    if not path.exists():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object of benchmarks")
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _column(row: dict, name: str, i: int):
    values = row.get(name)
    if isinstance(values, list) and i < len(values):
        return values[i]
    return None


def load(path, benchmarks: dict | None = None) -> ResultFile:
    """Read one asv result file; ``benchmarks`` is ``load_benchmarks_json`` of its results dir.

    Without ``benchmarks`` (``None``), the ``benchmarks.json`` two levels up is
    used if present; types and units otherwise come from the method names.
    """
    path = Path(path)
    if benchmarks is None:
        benchmarks = load_benchmarks_json(path.parent.parent)
    data = _read_json(path)
    try:
        if not isinstance(data, dict) or data.get("version") != 2:
            raise ValueError(f"expected asv's result format version 2, got "
                             f"{data.get('version') if isinstance(data, dict) else type(data).__name__!r}")
        columns = data["result_columns"]
        out = ResultFile(path=path, commit_hash=str(data["commit_hash"]), env_name=str(data["env_name"]),
                         machine=str(data.get("params", {}).get("machine", path.parent.name)),
                         date=data.get("date"))
        for name, raw in data["results"].items():
            row = dict(zip(columns, raw))
            meta = benchmarks.get(name, {})
            kind, unit = kind_of(name)
            kind = _ASV_TYPES.get(meta.get("type"), kind)
            unit = meta.get("unit", unit)
            params = [list(p) for p in row.get("params") or []]
            names = tuple(meta.get("param_names") or [f"param{i + 1}" for i in range(len(params))])
            combos = list(itertools.product(*params)) if params else [()]
            values = row["result"]
            if not isinstance(values, list):
                values = [values]
            if len(values) != len(combos):
                raise ValueError(f"{name}: {len(values)} results for {len(combos)} parameter combinations")
            for i, combo in enumerate(combos):
                value = values[i]
                if value is not None and not isinstance(value, (int, float)):
                    raise ValueError(f"{name}: result {value!r} is not a number")
                lo, hi = _column(row, "stats_ci_99_a", i), _column(row, "stats_ci_99_b", i)
                q25, q75 = _column(row, "stats_q_25", i), _column(row, "stats_q_75", i)
                result = Result(
                    benchmark=name, param_reprs=tuple(str(p) for p in combo), param_names=names,
                    value=None if value is None else float(value), kind=kind, unit=unit,
                    version=row.get("version"),
                    ci_99=(lo, hi) if lo is not None and hi is not None else None,
                    quartiles=(q25, q75) if q25 is not None and q75 is not None else None,
                    number=_column(row, "stats_number", i), repeat=_column(row, "stats_repeat", i))
                out.results[result.key] = result
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ResultsError(f"{path}: not a valid asv result file ({detail})") from None


def result_files(results_dir, machine: str | None = None) -> list[Path]:
    """Every result file under ``results_dir`` (of one machine if given)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError(f"{root}: no asv results directory (run `xentbench bench` first)")
    machines = [root / machine] if machine else sorted(p for p in root.iterdir() if p.is_dir())
    return sorted(f for m in machines if m.is_dir() for f in m.glob("*.json") if f.name not in _NOT_RESULTS)


def resolve_commit(rev: str, repo=".") -> str:
    """The full hash of ``rev`` in the git repository ``repo``; ``rev`` itself (a hash prefix) if git cannot tell."""
    try:
        return checkout.resolve(rev, repo)
    except checkout.CheckoutError:
        return rev


def find(results_dir, commit: str, machine: str | None = None) -> list[Path]:
    """The result files of ``commit`` (a full hash or a unique prefix)."""
    prefix = commit.lower()
    found = []
    for path in result_files(results_dir, machine):
        stem = path.name.split("-", 1)[0].lower()
        if not (stem.startswith(prefix) or prefix.startswith(stem)):
            continue
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("commit_hash"), str):
            raise ResultsError(f"{path}: not a valid asv result file (no commit_hash)")
        if data["commit_hash"].lower().startswith(prefix):
            found.append(path)
    return found


def load_commit(results_dir, commit: str, machine: str | None = None, repo=".") -> ResultFile:
    """The results recorded for ``commit`` (any git revision, or a hash prefix).

    Exactly one result file must match; give ``machine`` when several
    machines (or environments) recorded the same commit.
    """
    full = resolve_commit(commit, repo)
    paths = find(results_dir, full, machine)
    if not paths:
        where = f" for machine {machine!r}" if machine else ""
        raise ResultsError(f"{Path(results_dir)}: no results{where} for commit {commit} ({full[:12]}); "
                           f"record them with `xentbench bench --commit {commit}`")
    if len(paths) > 1 and machine is None:
        here = machine_name()
        mine = [p for p in paths if p.parent.name == here]
        paths = mine if len(mine) == 1 else paths
    if len(paths) > 1:
        listing = ", ".join(str(p) for p in paths)
        raise ResultsError(f"several result files for commit {commit}: {listing}; pick one with --machine")
    benchmarks = load_benchmarks_json(results_dir)
    return load(paths[0], benchmarks)


def default_results_dir() -> Path:
    """``results_dir`` of the ``asv.conf.json`` here or above, else ``.asv/results``."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        conf = folder / "asv.conf.json"
        if conf.exists():
            try:
                return folder / json.loads(conf.read_text()).get("results_dir", ".asv/results")
            except ValueError:
                break
    return Path(".asv/results")


def machine_name() -> str | None:
    """This machine's name in ``~/.asv-machine.json`` (written by ``asv machine``), if any."""
    path = Path(os.path.expanduser("~/.asv-machine.json"))
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    names = [k for k, v in data.items() if isinstance(v, dict)]
    return names[0] if len(names) == 1 else None
