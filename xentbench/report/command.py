"""``xentbench report``: its arguments, the verification it can run, and the making of one report."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xentbench import asvresults, checkout, console, roofline
from xentbench.report.context import Context, render
from xentbench.report.document import Doc
from xentbench.report.folders import TMP_PREFIX, place, safe_name, sweep, write_index
from xentbench.report.linear import section_linear
from xentbench.report.results import ReportError, load_run, newest_commit
from xentbench.report.sections import (
    section_accuracy, section_appendix, section_compare, section_header, section_headline, section_latency,
    section_measured, section_memory, section_targets)
from xentbench.report.speed import (
    section_options, section_paired, section_roofline, section_speedup, section_throughput)

#: the sections after the header and the headline, in the report's order
SECTIONS = (section_measured, section_targets, section_throughput, section_speedup, section_paired, section_options,
            section_linear, section_roofline, section_accuracy, section_memory, section_latency, section_compare)


def _relative(path, root: Path) -> str:
    """``path`` as a report names it: relative to the repository, so that a committed report
    names no absolute path of the machine that made it."""
    return os.path.relpath(path, root)


def _relative_arguments(argument: str, root: Path) -> str:
    """A command-line argument as the report shows it: an absolute path (``/x`` or ``--flag=/x``)
    relative to the repository."""
    flag, equals, value = argument.rpartition("=") if argument.startswith("--") else ("", "", argument)
    return flag + equals + (_relative(value, root) if os.path.isabs(value) else value)


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
sys.exit(cli.main(["verify", "--json"]))
"""


def verify_commit(root: Path, commit: str) -> tuple[list, str]:
    """``xentbench verify``'s rows (``--json``) for ``commit``'s ``impls/`` and what ran, in words.

    The library of ``commit`` is exported (as ``xentbench bench --commit``
    does) and verified by this tree's ``xentbench verify`` in a subprocess;
    a commit git does not know is verified on the working tree instead.
    """
    with tempfile.TemporaryDirectory(prefix="xentbench-verify-") as tmp:
        try:
            checkout.materialise(commit, tmp, root)
            argv, what = [sys.executable, "-c", _VERIFY, tmp], f"on `impls/` of `{commit[:8]}`"
        except (checkout.CheckoutError, OSError):
            argv, what = [sys.executable, "-m", "xentbench.cli", "verify", "--json"], _tree_state(root, commit)
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if not done.stdout.strip():
        raise ReportError(f"xentbench verify failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    status = "all pass" if done.returncode == 0 else f"exit status {done.returncode}: not all pass"
    return json.loads(done.stdout), f"{what} ({status})"


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


def _measure() -> dict:
    """This machine's limits (``roofline.measure``; it probes TensorFlow's quirks, so its start-up is quieted)."""
    console.import_tensorflow()
    return roofline.measure()


def add_arguments(parser) -> None:
    parser.add_argument("--results", type=Path, help="asv results folder (default: asv.conf.json's, .asv/results)")
    parser.add_argument("--machine", help="asv machine name (default: the only one recorded, else this host's)")
    parser.add_argument("--commit", help="commit to report (default: HEAD if recorded, else the newest recorded)")
    parser.add_argument("--compare", metavar="COMMIT", help="put this commit's numbers beside the report's")
    parser.add_argument("--out", type=Path,
                        help="reports folder (default: .asv/reports beside the results, which git ignores; "
                             "`--out reports` to commit a sample)")
    parser.add_argument("--roofline", type=Path, help="machine limits JSON (default: .asv/roofline/<machine>.json)")
    parser.add_argument("--measure", action="store_true",
                        help="measure this machine's limits again first (each figure keeps its best)")
    parser.add_argument("--dtype", default="float32", help="dtype of the heat maps and roofline plot (default float32)")
    parser.add_argument("--verify", action="store_true",
                        help="also run `xentbench verify` now (a few minutes) and include its accuracy table")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes drawing the figures (default: 2, or 1 on one core)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def make_report(args, argv: list[str] | None = None) -> Path:
    """Build the report of ``args`` and return its folder (see ``xentbench.report``)."""
    progress = console.Steps(quiet=args.quiet)
    root = _repo_root()
    results = args.results or asvresults.default_results_dir()
    commit = args.commit
    if commit is None:  # HEAD if recorded, else the newest recorded commit
        head = asvresults.resolve_commit("HEAD", root)
        try:
            commit = head if asvresults.find(results, head, args.machine) else newest_commit(results, args.machine)
        except asvresults.ResultsError as exc:
            raise ReportError(str(exc)) from None
    run = load_run(results, commit, args.machine, root)
    run.files = [_relative(f, root) for f in run.files]
    machine = run.machine
    progress(f"loaded {run.short} on {machine} ({run.files[0]}): {len(run.timings)} timings, "
             f"{len(run.errors)} accuracy figures, {len(run.peakmem)} peak memories, "
             f"{len(run.latency)} latencies, {len(run.failed)} failed")
    old = None
    if args.compare:
        old = load_run(results, args.compare, machine, root)
        old.files = [_relative(f, root) for f in old.files]
        progress(f"loaded {old.short} to compare ({old.files[0]})")
    roof_path = args.roofline or results.parent / "roofline" / f"{safe_name(machine)}.json"
    roof, source = None, f"`{_relative(roof_path, root)}`"
    if args.measure:
        progress("measuring this machine's bandwidth and exp throughput")
        previous = None
        if roof_path.exists():
            try:
                previous = roofline.load(roof_path)
            except (OSError, ValueError):
                previous = None
        roof = roofline.merge(previous, _measure())
        roofline.save(roof, roof_path)
        source = f"measured now, saved to `{_relative(roof_path, root)}`"
    elif roof_path.exists():
        try:
            roof = roofline.load(roof_path)
        except (OSError, ValueError) as exc:
            raise ReportError(f"{roof_path}: unreadable roofline file: {exc}") from exc
    elif machine in (asvresults.machine_name(), platform.node()) and not args.roofline:
        progress("measuring this machine's bandwidth and exp throughput (once; kept in .asv/roofline/)")
        roof = _measure()
        roofline.save(roof, roof_path)
        source = f"measured now, saved to `{_relative(roof_path, root)}`"
    verify_rows, verify_tree = None, ""
    if args.verify:
        progress("running xentbench verify on the reported commit's impls/ (git archive), "
                 "in a subprocess")
        verify_rows, verify_tree = verify_commit(root, run.commit)
        progress("verification table")

    out = args.out or results.parent / "reports"  # beside the results, like the roofline
    out.mkdir(parents=True, exist_ok=True)
    sweep(out)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out))
    try:
        ctx = Context(run=run, old=old, roof=roof, roof_source=source, folder=tmp, dtype=args.dtype,
                      doc=Doc(), progress=progress, verify_rows=verify_rows, verify_tree=verify_tree)
        section_header(ctx)
        lines = section_headline(ctx)
        for section in SECTIONS:
            section(ctx)
        argv = sys.argv[1:] if argv is None else argv
        section_appendix(ctx, [_relative_arguments(a, root) for a in argv])
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
        folder = place(tmp, out, f"{safe_name(machine)}-{run.short}")
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
