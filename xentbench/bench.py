"""Run the asv benchmark suite in this environment and record the results for a commit.

    xentbench bench                       # the whole suite, working tree, recorded as HEAD
    xentbench bench --commit main~1       # that commit's library code, recorded as that commit
    xentbench bench --quick --backend numba --function sparse   # a smoke run, not recorded

Runs ``asv run`` on the suite in ``benchmarks/`` (``asv.conf.json``:
``environment_type: existing``, so nothing is built or installed; the
benchmarks run in this Python) with ``--set-commit-hash``, so the results land
in ``.asv/results/<machine>/<hash>-<env>.json`` for ``xentbench compare`` and
``xentbench report``. Runs ``asv machine --yes`` first if this machine has no
``~/.asv-machine.json``.

Which code is measured: without ``--commit``, the working tree (the package is
installed in editable mode), recorded under HEAD, with a warning when
``impls/`` differs from HEAD. With ``--commit REV``, the library (``impls/``)
of REV is exported (``xentbench.checkout.materialise``) to a temporary
directory that the suite puts first on ``sys.path`` (``XENTBENCH_LIBRARY``),
and measured with the instruments of the working tree: its benchmarks and
its ``xentbench`` (the suite's grid, timing, peers and accuracy). Two commits are so measured by the same benchmark
code (asv compares only results of the same benchmark version) and judged by
the same error measure.

One ``asv run`` per backend, each importing only that backend
(``XENTBENCH_PREIMPORT``): asv forks every benchmark from one server process,
and a server holding TensorFlow, PyTorch and JAX at once is slower to fork and
inflates every peakmem figure by their memory. The paired benchmarks
(``bench_paired``: numba against TensorFlow and each peer, timed in turns in
one process) are one more run, ``--backend paired``, which imports all four;
numba's own paired costs (``bench_half``: half precision against float32) go
with numba's run.
Inputs and truths are shared across the runs (``XENTBENCH_CACHE_DIR``, a
temporary directory). Each run
selects, with asv's ``-b`` regular expressions (matched against
``name(param, ...)``), exactly the combinations on the suite's grids, so no
process is spent on a combination its ``setup`` would skip; they are recorded
as n/a all the same.

Every asv process runs with glibc's malloc set by ``MALLOC_TUNABLES``
(``GLIBC_TUNABLES``, unless already set), so a call's page faults do not
depend on what ran before it in the process.

The loss options' benchmarks (``bench_options``, ``suite.OPTIONS_BENCHMARKS``)
go with the runs they need: ``time_call`` with its backend's (the built-in
backends and torch), numba's cost with the options in numba's, numba's speed-up
over PyTorch with the same options in the paired run. So do the fused linear +
cross-entropy's (``bench_linear``, ``suite.LINEAR_BENCHMARKS``): its time, peak memory and
memory growth in each backend's run (PyTorch's chunked path in torch's), numba's speed-ups
over PyTorch and over the BLAS alone in the paired run. Being seconds a call (PyTorch's chunked
path tens), they run only when asked for: ``--function linear``.

Filters: ``--backend`` (repeatable; ``paired`` for the paired benchmarks),
``--function`` (an ``impls`` function name, a class name such as
``SparseLossGrad`` or ``OptionsCost``, or a group: ``sparse``, ``dense``,
``sigmoid``, ``softmax``, ``log_softmax``, ``grad``, ``startup``,
``options``, ``linear``; a function or a group other than ``options`` and ``linear``
selects the seven functions' benchmarks only), ``--kind`` (time, peakmem, track), or ``--bench
REGEX`` passed to asv as is.
``--quick`` runs asv's ``--quick`` (one call per combination) over a small
slice (batch 32, classes 10 and 1000, float32; the Numba first call of the
sparse loss; the loss options at batch 256 x classes 1000; with ``--function linear``, the
fused linear + cross-entropy at 256 x 512 x 32000) and does not record
unless ``--record``. asv's progress is
streamed, its tables without the rows of skipped combinations, with the
elapsed time after each benchmark; a summary per benchmark follows. Exit
status: 0, 1 if any combination failed, 2 if nothing could run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import impls
from xentbench import asvresults, checkout
from xentbench.suite import (
    ACCURACY_BATCHES, BACKENDS, BASELINES, FOCUS, HALF_DTYPES, HALF_MODULE, LINEAR_BACKENDS, LINEAR_BENCHMARKS,
    LINEAR_GEMM, LINEAR_MEMORY, LINEAR_MODULE, LINEAR_PEERS, LINEAR_SPEEDUP, LINEAR_TIME, OPTIONS_BACKENDS,
    OPTIONS_BATCHES, OPTIONS_BENCHMARKS, OPTIONS_CLASSES, OPTIONS_COST, OPTIONS_SPEEDUP, OPTIONS_TIME, PAIRED_DTYPES,
    PLUGINS_ENV, STARTUP, SUITE, accuracy_skip_reason, grid, linear_grid, options_grid, timing_skip_reason)
from xentbench.timing import MALLOC_TUNABLES

#: --function groups -> benchmark classes (the classes of ``SUITE``, ``STARTUP``, ``OPTIONS_BENCHMARKS`` and
#: ``LINEAR_BENCHMARKS``)
GROUPS = {
    "sparse": ["SparseLoss", "SparseLossGrad"],
    "dense": ["DenseLoss", "DenseLossGrad"],
    "sigmoid": ["SigmoidLoss"],
    "softmax": ["Softmax"],
    "log_softmax": ["LogSoftmax"],
    "grad": ["SparseLossGrad", "DenseLossGrad"],
    "startup": [STARTUP],
    "options": list(OPTIONS_BENCHMARKS),
    "linear": list(LINEAR_BENCHMARKS),
}
#: the classes that no group of the seven functions selects: a --function of their own
APART = (STARTUP, *OPTIONS_BENCHMARKS, *LINEAR_BENCHMARKS)
KINDS = ("time", "peakmem", "track")
#: the --backend of the paired benchmarks (bench_paired: ``FOCUS`` against each of
#: ``BASELINES``, in one process), an asv run of its own that imports them all
PAIRED = "paired"
BACKENDS_CHOICES = BACKENDS + (PAIRED,)
#: what the forkserver of each asv run imports (XENTBENCH_PREIMPORT): the backend measured
PREIMPORT = {PAIRED: ",".join((FOCUS,) + BASELINES)}
#: the --quick slice: batch 32, classes 10 and 1000, float32, on every grid of the suite;
#: the Numba first call of the sparse loss on float32
QUICK = ((32,), (10, 1000), ("float32",))
QUICK_STARTUP = ("sparse_softmax_cross_entropy_with_logits",)
#: the --quick slice of the loss options: their smallest shape, every function and option set
QUICK_OPTIONS = (min(OPTIONS_BATCHES), min(OPTIONS_CLASSES))
#: the --quick slice of the fused linear + cross-entropy: its smallest shape
QUICK_LINEAR = min(linear_grid())
#: the fused linear + cross-entropy's backends measured in another backend's run: PyTorch's chunked path in
#: PyTorch's, the BLAS's products alone (time only) in numba's
LINEAR_RUNS = {"torch": LINEAR_PEERS, FOCUS: (FOCUS, LINEAR_GEMM)}


def classes_for(name: str) -> list[str]:
    """The benchmark classes that ``--function name`` selects."""
    key = name.strip().lower()
    if key in GROUPS:
        return list(GROUPS[key])
    for cls, function in SUITE.items():
        if key in (cls.lower(), function):
            return [cls]
    if key in impls.LINEAR_FUNCTIONS:
        return list(LINEAR_BENCHMARKS)
    for cls in APART:
        if key == cls.lower():
            return [cls]
    choices = sorted(GROUPS) + sorted(SUITE) + list(APART) + sorted(SUITE.values()) + list(impls.LINEAR_FUNCTIONS)
    raise ValueError(f"unknown function {name!r}; expected one of: {', '.join(choices)}")


def _alt(values) -> str:
    return "(?:" + "|".join(re.escape(str(v)) for v in values) + ")"


def _combos(combos, quick: bool) -> str:
    """asv's spelling of ``(batch, classes, dtype)`` combinations, as one alternation."""
    if quick:
        combos = [(b, c, d) for b, c, d in combos if b in QUICK[0] and c in QUICK[1] and d in QUICK[2]]
    return _alt(f"{b}, {c}, {d!r}" for b, c, d in combos)


def _options_combos(quick: bool) -> str:
    """asv's spelling of the ``(function, options, batch, classes)`` of ``options_grid()``, as one alternation."""
    combos = [(f, o, b, c) for f, o, b, c in options_grid() if not quick or (b, c) == QUICK_OPTIONS]
    return _alt(f"{f!r}, {o!r}, {b}, {c}" for f, o, b, c in combos)


def bench_regexes(backend: str, functions=None, kinds=None, quick: bool = False) -> list[str]:
    """asv ``-b`` regular expressions selecting exactly the combinations of ``backend`` that run.

    asv matches them against ``name(param, ...)``. Only the combinations on the
    suite's grids are selected, so asv spends no process on a combination that
    its ``setup`` would skip (they are recorded as n/a all the same).
    """
    classes = sorted({c for f in functions for c in classes_for(f)}) if functions \
        else sorted(SUITE) + [STARTUP, *OPTIONS_BENCHMARKS]  # the fused linear's minutes: --function linear
    kinds = list(kinds) if kinds else list(KINDS)
    grid_classes = [c for c in classes if c in SUITE]
    regexes = []
    if backend == PAIRED:
        if "track" not in kinds:
            return []
        if grid_classes:
            combos = _combos([c for c in grid(timing_skip_reason) if c[2] in PAIRED_DTYPES], quick)
            baselines = _alt(repr(b) for b in BASELINES)
            regexes.append(rf"^bench_paired\.{_alt(grid_classes)}\.track_\w+\({baselines}, {combos}\)$")
        if OPTIONS_SPEEDUP in classes:
            regexes.append(rf"^bench_options\.{OPTIONS_SPEEDUP}\.track_\w+\({_options_combos(quick)}\)$")
        if LINEAR_SPEEDUP in classes:
            regexes.append(_linear_regex(LINEAR_SPEEDUP, "track", LINEAR_PEERS + (LINEAR_GEMM,), quick))
        return regexes
    timed = [k for k in kinds if k != "track"]
    if grid_classes and timed:
        combos = _combos(grid(timing_skip_reason), quick)
        regexes.append(rf"^bench_(?!accuracy|startup)\w+\.{_alt(grid_classes)}\.{_alt(timed)}_\w+"
                       rf"\({re.escape(repr(backend))}, {combos}\)$")
    if grid_classes and "track" in kinds:
        combos = _combos(grid(accuracy_skip_reason, ACCURACY_BATCHES), quick)
        regexes.append(rf"^bench_accuracy\.{_alt(grid_classes)}\.track_\w+"
                       rf"\({re.escape(repr(backend))}, {combos}\)$")
    half = _combos([c for c in grid(timing_skip_reason) if c[2] in HALF_DTYPES], quick)
    if grid_classes and "track" in kinds and backend == FOCUS and half != _alt([]):  # --quick's slice has none
        regexes.append(rf"^{HALF_MODULE}\.{_alt(grid_classes)}\.track_\w+\({re.escape(repr(backend))}, {half}\)$")
    if STARTUP in classes and "track" in kinds and backend == FOCUS:
        functions = _alt(repr(f) for f in QUICK_STARTUP) if quick else "'[^']*'"
        dtypes = _alt(repr(d) for d in QUICK[2]) if quick else "'[^']*'"
        regexes.append(rf"^bench_startup\.{STARTUP}\.track_\w+\({functions}, {dtypes}, '[^']*'\)$")
    if OPTIONS_TIME in classes and "time" in kinds and backend in OPTIONS_BACKENDS:
        regexes.append(rf"^bench_options\.{OPTIONS_TIME}\.time_\w+\({re.escape(repr(backend))}, "
                       rf"{_options_combos(quick)}\)$")
    if OPTIONS_COST in classes and "track" in kinds and backend == FOCUS:
        regexes.append(rf"^bench_options\.{OPTIONS_COST}\.track_\w+\({_options_combos(quick)}\)$")
    linear = [b for b in LINEAR_RUNS.get(backend, (backend,)) if b in LINEAR_BACKENDS + (LINEAR_GEMM,)]
    if linear and LINEAR_TIME in classes and timed:
        regexes.append(_linear_regex(LINEAR_TIME, _alt(timed), linear, quick))
    linear = [b for b in linear if b in LINEAR_BACKENDS]
    if linear and LINEAR_MEMORY in classes and "track" in kinds:
        regexes.append(_linear_regex(LINEAR_MEMORY, "track", linear, quick))
    return regexes


def _linear_regex(cls: str, kinds: str, backends, quick: bool) -> str:
    """asv's ``-b`` for ``bench_linear``'s class ``cls``: ``backends`` on ``linear_grid()`` (``--quick``: its
    smallest shape)."""
    shapes = [QUICK_LINEAR] if quick else linear_grid()
    return (rf"^{LINEAR_MODULE}\.{cls}\.{kinds}_\w+\({_alt(repr(b) for b in backends)}, "
            rf"{_alt(f'{n}, {d}, {v}' for n, d, v in shapes)}\)$")


def _asv(*args) -> list[str]:
    return [sys.executable, "-m", "asv", *args]


def ensure_machine(root: Path, env: dict) -> None:
    if not Path(os.path.expanduser("~/.asv-machine.json")).exists():
        print("xentbench bench: no ~/.asv-machine.json, running `asv machine --yes`", flush=True)
        subprocess.run(_asv("machine", "--yes"), cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


_HEADER = re.compile(r"··· (?!Setting up)(\S*\.\S+)\s+(\w+)\s*$")
#: a time or a size in asv's tables, a number with its unit (``5.47us``, ``98M``); integer parameters have none
_UNIT = re.compile(r"\d[\d.]*(?:ns|us|μs|ms|s|[kMG])")


def _nothing_measured(line: str) -> bool:
    """Whether ``line`` is a row of asv's table whose every value is n/a (combinations off the grid):
    a row that ends in n/a but holds a value in another column (``217±0.4ms``, a float, a time, a
    failure) is kept."""
    tokens = line.split()
    return bool(tokens) and tokens[-1] == "n/a" and not any(
        "±" in t or (t[0].isdigit() and "." in t) or _UNIT.fullmatch(t) or t == "failed" for t in tokens)


def stream(cmd: list[str], root: Path, env: dict, compact: bool = True, started: float | None = None) -> int:
    """Run asv and echo its output, with the elapsed time after each benchmark's line.

    ``compact`` leaves out the table rows of skipped combinations and
    asv_runner's note on every timed combination that setup re-runs between
    calls (the suite's setup is a no-op after the first call).
    """
    started = time.monotonic() if started is None else started
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    try:
        _echo(proc, compact, started)
    except BaseException:  # Ctrl-C: take down asv's forkserver and benchmark too
        if "XENTBENCH_CACHE_DIR" in env:  # unique to this run (``run`` sets it)
            _kill_processes_with(f"XENTBENCH_CACHE_DIR={env['XENTBENCH_CACHE_DIR']}")
        proc.kill()
        proc.wait()
        raise
    return proc.wait()


def _kill_processes_with(variable: str) -> None:
    """SIGKILL every process whose environment holds ``variable`` (``NAME=value``).

    asv's forkserver runs in a process group of its own, so a Ctrl-C reaches
    asv but not the benchmark process, which would go on (and hold asv's
    output open) after asv itself is gone; whatever asv started inherits the
    run's environment, so this finds it even once it is orphaned. Linux
    (``/proc``) only; elsewhere nothing is done.
    """
    marker = variable.encode()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    os.kill(pid, signal.SIGKILL)
        except OSError:  # gone, or not ours
            continue


def _echo(proc: subprocess.Popen, compact: bool, started: float) -> None:
    """Echo asv's output as ``stream`` describes."""
    # A "For parameters: ..." line heads the stderr of one combination, indented under it;
    # held, it is shown only if a line of that stderr other than the note follows.
    held = None
    for line in proc.stdout:
        if compact:
            if _nothing_measured(line):
                continue
            if "For parameters:" in line:
                held = line
                continue
            if "setup hooks re-run between the" in line or (held and not line.strip()):
                continue
            if held and line[:1].isspace():  # more of the same combination's stderr
                sys.stdout.write(held)
            held = None  # else the block ended with the note alone (asv's next line)
        sys.stdout.write(line)
        header = _HEADER.search(line)
        if header:
            sys.stdout.write(f"[{time.monotonic() - started:6.0f} s elapsed] {header.group(1)}: "
                             f"{header.group(2)}\n")
        sys.stdout.flush()


def summary(rf: asvresults.ResultFile, regexes=()) -> tuple[list[str], int]:
    """One line per benchmark selected by ``regexes`` (asv's ``-b``), and how many combinations failed."""
    lines, failed = [], 0
    selected = [r for r in rf if not regexes or any(re.search(x, r.label) for x in regexes)]
    for name in sorted({r.benchmark for r in selected}):
        statuses = [r.status for r in selected if r.benchmark == name]
        n_failed = statuses.count("failed")
        failed += n_failed
        lines.append(f"  {name}: {statuses.count('ok')} measured, {n_failed} failed, "
                     f"{statuses.count('skipped')} n/a (skipped or not selected)")
    return lines, failed


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: asv --quick over a small slice; not recorded unless --record")
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=None,
                        help="record the results (default: yes, except with --quick)")
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help=f"only this backend (repeatable): one of {', '.join(BACKENDS_CHOICES)} ('paired': "
                             "numba against TensorFlow and the peers, timed in turns in one process), or a "
                             "plugin's name or module path, which joins the grid for this run")
    parser.add_argument("--function", action="append",
                        help="only these benchmarks: an impls function, a class (SparseLoss) or a group "
                             f"({', '.join(GROUPS)}); repeatable")
    parser.add_argument("--kind", action="append", choices=KINDS, help="only time_, peakmem_ or track_")
    parser.add_argument("--commit", default=None,
                        help="measure this commit's library (git archive) instead of the working tree")
    parser.add_argument("--bench", "-b", action="append", default=[],
                        help="asv -b regular expression, passed as is to one asv run with every "
                             "backend imported (replaces the filters above)")
    parser.add_argument("--machine", default=None, help="asv machine name (default: this machine's)")
    parser.add_argument("--full-tables", action="store_true", help="show asv's tables with skipped rows")
    parser.add_argument("--dry-run", action="store_true", help="print the asv command and exit")


def plugins(args) -> list[str]:
    """The backends of ``--backend`` that are neither built in nor peers (handed to asv in ``PLUGINS_ENV``)."""
    return [b for b in args.backend or () if b not in BACKENDS_CHOICES]


def plan(args) -> list[tuple[str, list[str]]]:
    """``(backend, asv -b regexes)`` per asv run: one run per backend, each importing only it."""
    if args.bench:
        return [("all", list(args.bench))]
    runs = []
    for backend in plugins(args):
        try:
            impls.get(backend)
        except (ValueError, impls.BackendUnavailable) as exc:
            raise ValueError(f"cannot benchmark backend {backend!r}: {exc}") from exc
    for backend in args.backend or BACKENDS_CHOICES:
        regexes = bench_regexes(backend, args.function, args.kind, args.quick)
        if regexes:
            runs.append((backend, regexes))
    if not runs:
        raise ValueError("the filters select no benchmark")
    return runs


def machine_of(args) -> str | None:
    return args.machine or asvresults.machine_name()


def stage(results_dir: Path, staging: Path, commit: str, machine: str | None) -> None:
    """Seed ``staging`` with what asv will read back: benchmarks.json, machine.json, the commit's results."""
    staging.mkdir(parents=True, exist_ok=True)
    if (results_dir / "benchmarks.json").exists():
        shutil.copy2(results_dir / "benchmarks.json", staging / "benchmarks.json")
    if machine and (results_dir / machine).is_dir():
        (staging / machine).mkdir(exist_ok=True)
        for path in (results_dir / machine).glob("*.json"):
            if path.name == "machine.json" or path.name.startswith(commit[:8]):
                shutil.copy2(path, staging / machine / path.name)


def publish(staging: Path, results_dir: Path) -> list[str]:
    """Move every staged file that loads into ``results_dir``, each with one atomic rename.

    asv rewrites its files in place; a run killed while writing leaves a
    truncated file in the staging folder, never in ``results_dir``. Returns
    the problems (files left out).
    """
    problems = []
    for path in sorted(staging.rglob("*.json")):
        rel = path.relative_to(staging)
        try:
            if path.name == "benchmarks.json":
                asvresults.load_benchmarks_json(path.parent)
            elif path.name == "machine.json":
                json.loads(path.read_text())
            else:
                asvresults.load(path, {})
        except (asvresults.ResultsError, ValueError, OSError) as exc:
            problems.append(f"{rel} left out: {exc}")
            continue
        target = results_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{os.getpid()}.part")
        shutil.copy2(path, part)
        os.replace(part, target)
    return problems


def intent(args, commit: str, head: str, record: bool, library: Path) -> str:
    """What this run measures and what becomes of its results, in one line, said before anything runs."""
    if args.commit:
        what = f"measuring the library of {args.commit} ({commit[:8]}), exported to {library}"
    else:
        what = f"measuring the working tree (HEAD {head[:8]})"
    if record:
        return f"{what}, to be recorded as {commit[:8]}"
    return f"{what}, " + ("a smoke run (--quick), not recorded" if args.quick else "not recorded (--no-record)")


def run(args) -> int:
    try:
        root = checkout.find_root()
        runs = plan(args)
        head = checkout.resolve("HEAD", root)
        commit = checkout.resolve(args.commit or "HEAD", root)
        conf = json.loads((root / "asv.conf.json").read_text())
    except (ValueError, RuntimeError, FileNotFoundError, ImportError) as exc:
        print(f"xentbench bench: error: {exc}", file=sys.stderr)
        return 2
    record = (not args.quick) if args.record is None else args.record
    results_dir = root / conf.get("results_dir", ".asv/results")

    with tempfile.TemporaryDirectory(prefix="xentbench-bench-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, XENTBENCH_CACHE_DIR=str(tmp / "cache"))
        env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
        if plugins(args):
            env[PLUGINS_ENV] = ",".join(plugins(args))
        # asv writes into a staging copy of the results folder (a scratch copy of the
        # configuration points it there); what it writes is moved into results_dir
        # file by file, once it loads, after each asv run: a run interrupted or killed
        # never damages what was recorded before.
        staging = tmp / "results"
        scratch = dict(conf, results_dir=str(staging), html_dir=str(tmp / "html"), env_dir=str(tmp / "env"),
                       repo=str(root / conf.get("repo", ".")),
                       benchmark_dir=str(root / conf.get("benchmark_dir", "benchmarks")),
                       branches=[commit])  # a CI checkout may have no local "main"
        (tmp / "asv.conf.json").write_text(json.dumps(scratch, indent=4))
        base_cmd = _asv("run", "--config", str(tmp / "asv.conf.json"), "--python=same",
                        "--set-commit-hash", commit, "--show-stderr")
        if args.quick:
            base_cmd.append("--quick")
        if args.machine:
            base_cmd += ["--machine", args.machine]
        commands = [(backend, base_cmd + [a for r in regexes for a in ("-b", r)]) for backend, regexes in runs]
        if args.dry_run:
            for backend, cmd in commands:
                print(f"GLIBC_TUNABLES={env['GLIBC_TUNABLES']} "
                      + (f"{PLUGINS_ENV}={env[PLUGINS_ENV]} " if PLUGINS_ENV in env else "")
                      + ("" if backend == "all" else f"XENTBENCH_PREIMPORT={PREIMPORT.get(backend, backend)} ")
                      + " ".join(_quote(c) for c in cmd))
            return 0
        library = tmp / "library"
        if args.commit:
            checkout.materialise(commit, library, root)
            env["XENTBENCH_LIBRARY"] = str(library)  # benchmarks/__init__.py puts it first on sys.path
        print("xentbench bench: " + intent(args, commit, head, record, library))
        dirty = None if args.commit or not record else checkout.library_changes(root)
        if dirty:
            print("xentbench bench: WARNING: the library differs from HEAD; the results recorded for "
                  f"{head[:8]} describe the working tree:\n{dirty}")
        try:
            ensure_machine(root, env)
        except subprocess.CalledProcessError as exc:
            print(f"xentbench bench: error: asv machine failed ({exc})", file=sys.stderr)
            return 2
        if record:
            stage(results_dir, staging, commit, machine_of(args))
        started = time.monotonic()
        codes, problems = [], []
        for i, (backend, cmd) in enumerate(commands, 1):
            run_env = dict(env)
            if backend != "all":
                run_env["XENTBENCH_PREIMPORT"] = PREIMPORT.get(backend, backend)
            print(f"\n===== [{i}/{len(commands)}] backend {backend}, {time.monotonic() - started:.0f} s elapsed"
                  f"\n$ " + " ".join(_quote(c) for c in cmd), flush=True)
            codes.append(stream(cmd, root, run_env, compact=not args.full_tables, started=started))
            if record and codes[-1] >= 0:  # not killed by a signal
                problems += publish(staging, results_dir)
        elapsed = time.monotonic() - started
        print(f"\nxentbench bench: {len(commands)} asv run(s) in {elapsed:.0f} s, exit status {codes}")
        for problem in problems:
            print(f"xentbench bench: error: {problem}", file=sys.stderr)
        try:
            rf = asvresults.load_commit(staging, commit, machine_of(args), repo=root)
        except asvresults.ResultsError as exc:
            print(f"xentbench bench: error: {exc}", file=sys.stderr)
            return 2
        lines, failed = summary(rf, [r for _, regexes in runs for r in regexes])
        print("\n".join(lines))
        if record and not problems:
            print(f"xentbench bench: results recorded in {results_dir / rf.path.relative_to(staging)}")
        elif not record:
            print(f"xentbench bench: results not recorded ({'--quick' if args.quick else '--no-record'}; "
                  "--record keeps them)")
    if any(codes) or failed or problems:
        print(f"xentbench bench: {failed} combination(s) failed (asv exit status {codes})", file=sys.stderr)
        return 1
    return 0


def _quote(text: str) -> str:
    return text if re.fullmatch(r"[\w@%+=:,./-]+", text) else "'" + text.replace("'", "'\\''") + "'"
