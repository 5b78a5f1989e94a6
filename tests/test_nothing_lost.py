"""Nothing lost: interrupted ``xentbench bench`` and ``report`` runs, corrupt result files.

* ``bench``: a tiny asv project (this repository's ``asv.conf.json``, a
  two-benchmark fake suite, its own git repository and ``HOME``) with results
  already recorded by ``xentbench bench``; a second run is interrupted by
  SIGINT or SIGKILL to its whole process group while a benchmark runs, or
  killed by SIGKILL while asv writes a results file (a ``sitecustomize``
  truncates the write and kills asv, deterministically). Every earlier result
  file must still be readable with every earlier value.
* ``report``: built in a hidden temporary folder and renamed into place, so a
  report interrupted (KeyboardInterrupt) or killed (SIGKILL) while drawing is
  never listed in ``reports/index.md``, and the next report lists only
  complete ones. A backend that failed or was unavailable in the recorded run
  does not stop the report: its combinations are listed as failed.
* Corrupt or truncated result files: ``report`` and ``compare`` exit 2 with
  a message naming the file, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

asv = pytest.importorskip("asv", reason="asv is not installed: `xentbench bench` cannot run")
asvresults = pytest.importorskip("xentbench.asvresults", reason="xentbench.asvresults is not in this tree")
report = pytest.importorskip("xentbench.report.command", reason="xentbench.report is not in this tree")
pytest.importorskip("xentbench.bench", reason="xentbench.bench is not in this tree")
from xentbench import cli  # noqa: E402  (after the skips)

ROOT = Path(__file__).resolve().parents[1]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

FAKE_SUITE = '''
import os
import time


class Fake:
    params = [["numpy", "numba"]]
    param_names = ["backend"]

    def time_fast(self, backend):
        pass

    def time_slow(self, backend):
        open(os.environ["XENTBENCH_TEST_MARKER"], "w").close()  # the run is under way
        time.sleep(60)


class Mixed:
    """What the real suite does with a backend that cannot import (skip) or raises (fails)."""
    params = [["good", "unavailable", "broken"]]
    param_names = ["backend"]

    def setup(self, backend):
        if backend == "unavailable":
            raise NotImplementedError("backend 'unavailable' is unavailable")

    def time_mixed(self, backend):
        if backend == "broken":
            raise RuntimeError("the kernel fell over")
'''

#: On PYTHONPATH of a bench run: asv's JSON writer writes half the text of
#: the file named by XENTBENCH_TEST_KILL_WRITING and SIGKILLs its process.
KILL_WHILE_WRITING = '''
import os
_target = os.environ.get("XENTBENCH_TEST_KILL_WRITING")
if _target:
    import signal
    import asv.util
    _write_json = asv.util.write_json

    def write_json(path, data, *args, **kwargs):
        if not os.path.basename(path).startswith(_target):
            return _write_json(path, data, *args, **kwargs)
        _write_json(path + ".whole", data, *args, **kwargs)
        with open(path + ".whole") as f:
            text = f.read()
        os.remove(path + ".whole")
        with open(path, "w") as f:
            f.write(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    asv.util.write_json = write_json
'''


# --------------------------------------------------------------------------- a tiny asv project

def _git(cwd: Path, *args) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _env(project: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENTBENCH_TEST_")}
    env.update(HOME=str(project / "home"), XENTBENCH_TEST_MARKER=str(project / "started"), **extra)
    return env


def _default_sigint() -> None:
    """In the child, before exec: SIGINT as a foreground job gets it. A shell that runs the
    tests as a background job (``cmd &``) ignores SIGINT, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_bench(project: Path, *args, **env) -> subprocess.Popen:
    """``xentbench bench`` in its own process group (as a terminal's foreground job), its
    temporary folders inside ``project``: a kill -9 leaves them behind, for pytest to remove."""
    (project / "tmp").mkdir(exist_ok=True)
    env.setdefault("TMPDIR", str(project / "tmp"))
    return subprocess.Popen([sys.executable, "-c", "import sys; from xentbench.cli import main; sys.exit(main())",
                             "bench", *args], cwd=project, env=_env(project, **env), start_new_session=True,
                            preexec_fn=_default_sigint, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _processes_with(variable: str) -> list[int]:
    """The processes whose environment holds ``variable`` (``NAME=value``)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if variable.encode() in f.read().split(b"\0"):
                        found.append(int(pid))
            except OSError:
                continue
    return found


def _reap(project: Path) -> None:
    """SIGKILL what a killed run left behind (asv's forkserver has its own process group):
    only processes whose command line names this test's project folder."""
    tag = str(project).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if tag in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def _finish(proc: subprocess.Popen, project: Path, timeout: float = 120) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        _reap(project)
        pytest.fail(f"xentbench bench hung for {timeout} s:\n{out[-3000:]}")
    _reap(project)
    return out


def _results(project: Path) -> Path:
    return project / ".asv" / "results"


def _values(path: Path) -> dict:
    """Every (benchmark, params) -> value of a result file, read the way compare and report read it."""
    rf = asvresults.load(path)
    return {r.key: ("nan" if r.value is not None and math.isnan(r.value) else r.value) for r in rf}


def _everything(project: Path) -> dict:
    """Every result file of the project and its values; ``benchmarks.json`` must be readable too."""
    results = _results(project)
    asvresults.load_benchmarks_json(results)
    return {str(p.relative_to(results)): _values(p) for p in asvresults.result_files(results)}


@pytest.fixture(scope="module")
def recorded_project(tmp_path_factory):
    """The tiny project with results recorded for its commit and for an earlier one."""
    project = tmp_path_factory.mktemp("project")
    (project / "benchmarks").mkdir()
    (project / "benchmarks" / "__init__.py").write_text("")
    (project / "benchmarks" / "bench_fake.py").write_text(FAKE_SUITE)
    (project / "home").mkdir()
    (project / "site").mkdir()
    (project / "site" / "sitecustomize.py").write_text(KILL_WHILE_WRITING)
    shutil.copy(ROOT / "asv.conf.json", project / "asv.conf.json")
    (project / ".gitignore").write_text(".asv/\nhome/\nsite/\nstarted\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "fake suite")
    out = _finish(_start_bench(project, "--bench", "time_fast"), project)
    files = asvresults.result_files(_results(project))
    assert len(files) == 1, f"the first bench run recorded {len(files)} result files:\n{out[-3000:]}"
    # An earlier commit's results: the same file under another commit.
    data = json.loads(files[0].read_text())
    earlier = "0123abcd" * 5
    data["commit_hash"] = earlier
    (files[0].parent / files[0].name.replace(files[0].name[:8], earlier[:8], 1)).write_text(json.dumps(data))
    return project


@pytest.fixture
def project(recorded_project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(recorded_project, copy, symlinks=True)
    return copy


def _head8(project: Path) -> str:
    return _git(project, "rev-parse", "HEAD").strip()[:8]


@needs_git
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_bench_keeps_every_earlier_result(project, sig):
    """Ctrl-C or kill -9 while a benchmark runs: every earlier result file is intact and readable."""
    before = _everything(project)
    assert len(before) == 2 and all(before.values())
    proc = _start_bench(project, "--bench", "time_slow")
    deadline = time.monotonic() + 90
    while not (project / "started").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out = _finish(proc, project, timeout=5)
            pytest.fail(f"the slow benchmark never started:\n{out[-3000:]}")
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    _finish(proc, project, timeout=60)
    if sig == signal.SIGINT:  # xentbench takes down the benchmark process too (asv's forkserver is in a group of its own)
        assert not _processes_with(f"XENTBENCH_TEST_MARKER={project / 'started'}")
    after = _everything(project)
    for name, values in before.items():
        assert name in after, f"{name} is gone"
        assert {k: after[name].get(k) for k in values} == values, f"{name} lost earlier values"


@needs_git
@pytest.mark.parametrize("target", ["commit", "benchmarks.json"])
def test_bench_killed_while_writing_keeps_every_earlier_result(project, target):
    """kill -9 while asv writes the commit's results (or benchmarks.json): earlier results stay readable."""
    before = _everything(project)
    name = _head8(project) if target == "commit" else target
    proc = _start_bench(project, "--bench", "time_fast", XENTBENCH_TEST_KILL_WRITING=name,
                        PYTHONPATH=str(project / "site"))
    _finish(proc, project)
    try:
        after = _everything(project)
    except asvresults.ResultsError as exc:
        pytest.fail(f"earlier results unreadable after the kill: {exc}")
    for name_, values in before.items():
        assert {k: after.get(name_, {}).get(k) for k in values} == values, f"{name_} lost earlier values"


@needs_git
def test_the_kill_while_writing_hook_works(project):
    """The hook above really truncates a file and kills asv (else the test above would prove nothing)."""
    results = _results(project)
    target = results / "benchmarks.json"
    probe = project / "probe.py"
    probe.write_text(textwrap.dedent(f"""
        import asv.util
        asv.util.write_json({str(target)!r}, {{"a": list(range(1000))}})
    """))
    proc = subprocess.run([sys.executable, str(probe)], env=_env(project, XENTBENCH_TEST_KILL_WRITING="benchmarks",
                                                                 PYTHONPATH=str(project / "site")),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(asvresults.ResultsError, match="benchmarks.json"):
        asvresults.load_benchmarks_json(results)


@needs_git
@pytest.mark.parametrize("quick", [False, True], ids=["recorded", "quick"])
def test_bench_says_what_it_records_when_it_has(project, quick):
    """A recorded run names the results file once it exists; --quick never claims to record."""
    before = _everything(project)
    proc = _start_bench(project, "--bench", "time_fast", *(["--quick"] if quick else []))
    out = _finish(proc, project)
    assert proc.returncode == 0, out[-3000:]
    ran = out.index("asv run(s) in")
    if quick:
        assert "recorded as" not in out and "recorded in" not in out, out[-3000:]
        assert out.index("not recorded", ran) > ran
        assert _everything(project) == before
    else:
        assert out.count("recorded in") == 1 and out.index("results recorded in") > ran, out[-3000:]
        path = out[out.index("results recorded in"):].split(" in ", 1)[1].splitlines()[0]
        assert asvresults.load(Path(path))


@needs_git
def test_bench_reports_a_failing_and_an_unavailable_backend_and_measures_the_rest(project):
    """One combination raises, one is unavailable: bench exits 1, says so, and records the others."""
    before = _everything(project)
    proc = _start_bench(project, "--bench", "time_mixed")
    out = _finish(proc, project)
    assert proc.returncode == 1, out[-3000:]
    assert "bench_fake.Mixed.time_mixed: 1 measured, 1 failed, 1 n/a" in out, out[-3000:]
    after = _everything(project)
    [name] = [n for n in after if Path(n).name.startswith(_head8(project))]
    got = {k[1][0]: v for k, v in after[name].items() if k[0] == "bench_fake.Mixed.time_mixed"}
    assert got["'good'"] is not None and got["'good'"] != "nan", got
    assert got["'broken'"] is None and got["'unavailable'"] == "nan", got
    for name_, values in before.items():  # and nothing earlier was lost on the way
        assert {k: after[name_].get(k) for k in values} == values


# --------------------------------------------------------------------------- report

NAN = float("nan")
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
           "stats_q_25", "stats_q_75", "stats_number", "stats_repeat"]
BACKENDS = ["'numpy'", "'numba'", "'tensorflow'", "'torch'", "'jax'"]
PARAMS = [BACKENDS, ["32"], ["10", "1000"], ["'float32'"]]
COMMIT = "aaaaaaaa" + "1" * 32
OTHER = "bbbbbbbb" + "2" * 32
MACHINE = "ci-box"  # not this machine: no roofline is measured


def _row(base: float) -> list:
    """numpy, numba, tensorflow measured; torch n/a (unavailable); jax failed (raised)."""
    values = [{"'torch'": NAN, "'jax'": None}.get(b, base * c * (i + 1))
              for i, b in enumerate(BACKENDS) for c in (10, 1000)]
    n = len(values)
    return [values, PARAMS, "v1", 0, 1.0, [None] * n, [None] * n, [None] * n, [None] * n, [1] * n, [3] * n]


def write_results(results: Path, commit: str) -> Path:
    folder = results / MACHINE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "machine.json").write_text(json.dumps({"machine": MACHINE, "version": 1}))
    data = {"commit_hash": commit, "env_name": "existing-py", "date": 1700000000000, "params": {"machine": MACHINE},
            "python": "3.11", "requirements": {}, "env_vars": {}, "result_columns": COLUMNS, "durations": {},
            "version": 2, "results": {"bench_losses.SparseLoss.time_forward": _row(1e-6),
                                      "bench_losses.SparseLoss.peakmem_forward": _row(1e5),
                                      "bench_accuracy.SparseLoss.track_error": _row(1e-9)}}
    path = folder / f"{commit[:8]}-existing-py.json"
    path.write_text(json.dumps(data))
    names = ["backend", "batch", "classes", "dtype"]
    (results / "benchmarks.json").write_text(json.dumps({
        "bench_losses.SparseLoss.time_forward": {"type": "time", "unit": "seconds", "param_names": names},
        "bench_losses.SparseLoss.peakmem_forward": {"type": "peakmemory", "unit": "bytes", "param_names": names},
        "bench_accuracy.SparseLoss.track_error": {"type": "track", "unit": "relative error", "param_names": names},
        "version": 2}))
    return path


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """Results of two commits and a reports folder with one complete report (of OTHER)."""
    monkeypatch.chdir(tmp_path)  # not a git repository: commits are hash prefixes
    results = tmp_path / "results"
    write_results(results, COMMIT)
    write_results(results, OTHER)
    reports = tmp_path / "reports"
    assert run_report(results, reports, OTHER) == 0
    return results, reports


def run_report(results: Path, reports: Path, commit: str = COMMIT) -> int:
    return cli.main(["report", "--results", str(results), "--out", str(reports), "--commit", commit[:8],
                     "--jobs", "1", "--quiet"])


def _listed(reports: Path) -> list[str]:
    """The report folders that index.md links to."""
    text = (reports / "index.md").read_text()
    return sorted({line.split("](")[1].split("/")[0] for line in text.splitlines() if line.startswith("| [")})


def _visible(reports: Path) -> list[str]:
    return sorted(p.name for p in reports.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_report_with_failed_and_unavailable_backends(recorded, capsys):
    """jax failed and torch was unavailable in the recorded run: the report is made, jax listed as failed."""
    results, reports = recorded
    assert run_report(results, reports) == 0
    folder = reports / f"{MACHINE}-{COMMIT[:8]}"
    text = (folder / "report.md").read_text()
    assert "numba" in text and "tensorflow" in text
    assert "time_forward('jax', 32, 10, 'float32')" in text, "the failed backend is not listed"
    assert _listed(reports) == _visible(reports) == sorted([folder.name, f"{MACHINE}-{OTHER[:8]}"])


def test_interrupted_report_leaves_nothing(recorded, monkeypatch):
    """Ctrl-C while drawing: no new folder, no temporary folder, the index unchanged."""
    results, reports = recorded
    index = (reports / "index.md").read_bytes()
    before = sorted(p.name for p in reports.iterdir())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_report(results, reports)
    assert sorted(p.name for p in reports.iterdir()) == before
    assert (reports / "index.md").read_bytes() == index


KILLED_REPORT = r"""
import os, signal, sys
from xentbench import cli
from xentbench.report import command as report
report.render = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)   # killed while drawing
sys.exit(cli.main(sys.argv[1:]))
"""


def test_killed_report_is_never_listed(recorded):
    """kill -9 while drawing: nothing new is listed, now or after the next report."""
    results, reports = recorded
    index = (reports / "index.md").read_bytes()
    args = ["report", "--results", str(results), "--out", str(reports), "--commit", COMMIT[:8], "--jobs", "1",
            "--quiet"]
    proc = subprocess.run([sys.executable, "-c", KILLED_REPORT, *args], capture_output=True, text=True,
                          timeout=120, cwd=results.parent)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (reports / "index.md").read_bytes() == index
    assert _visible(reports) == [f"{MACHINE}-{OTHER[:8]}"], "a partial report folder is visible"
    assert run_report(results, reports) == 0  # the next report
    assert _listed(reports) == _visible(reports) == sorted([f"{MACHINE}-{OTHER[:8]}", f"{MACHINE}-{COMMIT[:8]}"])
    for name in _listed(reports):
        assert (reports / name / "meta.json").exists() and (reports / name / "report.html").exists()


# --------------------------------------------------------------------------- corrupt files

def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


CORRUPTIONS = {
    "truncated": _truncated,
    "empty": lambda p: p.write_bytes(b""),
    "not json": lambda p: p.write_text("<html>asv crashed</html>"),
    "not a result (list)": lambda p: p.write_text("[]"),
    "not a result (no keys)": lambda p: p.write_text('{"version": 2}'),
    "wrong values": lambda p: _edit(p, lambda d: d["results"]["bench_losses.SparseLoss.time_forward"][0]
                                    .__setitem__(0, "fast")),
    "binary": lambda p: p.write_bytes(b"\xff\xfe\x00\x9c garbage"),
}
@pytest.mark.parametrize("what", ["report", "compare"])
@pytest.mark.parametrize("name, corrupt", list(CORRUPTIONS.items()), ids=list(CORRUPTIONS))
def test_corrupt_result_file_is_a_clear_error(tmp_path, monkeypatch, capfd, what, name, corrupt):
    """Exit status 2 and a message naming the file, not a traceback."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    path = write_results(results, COMMIT)
    write_results(results, OTHER)
    corrupt(path)
    if what == "report":
        rc = run_report(results, tmp_path / "reports")
    else:
        rc = cli.main(["compare", OTHER[:8], COMMIT[:8], "--results-dir", str(results)])
    err = capfd.readouterr().err
    assert rc == 2, err
    assert str(path) in err or path.name in err, f"the message does not name {path.name}: {err}"
    assert "Traceback" not in err
    if what == "report":
        assert not (tmp_path / "reports").exists() or _visible(tmp_path / "reports") == []


def test_corrupt_benchmarks_json_is_a_clear_error(recorded, capfd):
    results, reports = recorded
    _truncated(results / "benchmarks.json")
    rc = run_report(results, reports)
    err = capfd.readouterr().err
    assert rc == 2 and "benchmarks.json" in err and "Traceback" not in err, err


def test_the_corruptions_are_corrupt(tmp_path):
    """Each corruption above does break the file for the reader (so the tests above can fail)."""
    for name, corrupt in CORRUPTIONS.items():
        path = write_results(tmp_path / name.replace(" ", "_"), COMMIT)
        asvresults.load(path)
        corrupt(path)
        with pytest.raises(Exception):
            asvresults.load(path)
