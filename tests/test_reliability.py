"""Reliability: concurrent callers, the threading layer, fork, a read-only cache, failing backends.

* Eight Python threads call every function of the ``numba`` backend at once,
  on different inputs, many times, and get exactly the results of sequential
  calls; no abort, no deadlock (each run is a subprocess with a timeout, so an
  abort or a hang is a failed test, not a dead test session).
* The threading layer is TBB (``impls._numba_setup._threading_layer``
  preloads the wheel's ``libtbb.so.12``); with TBB hidden, the fallback
  (OpenMP) is just as safe for concurrent callers. TBB is also fork-safe; the
  OpenMP fallback is not (a documented limitation of GNU OpenMP: Numba
  terminates the child), but it never hangs.
* A read-only install, where Numba has no writable cache folder, still works
  (at most one warning).
* ``xentbench verify`` reports a backend that cannot import, or whose
  function raises, in its rows, and still checks the others.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from xentbench import quirks

import impls

ROOT = Path(__file__).resolve().parents[1]
TBB_LIB = Path(sys.prefix) / "lib" / "libtbb.so.12"
needs_numba = pytest.mark.skipif("numba" not in impls.available(), reason="the numba backend does not import here")

#: Hides the tbb wheel from ``_threading_layer`` (and so from Numba) before impls is imported.
HIDE_TBB = r"""
import os
_exists = os.path.exists
os.path.exists = lambda p: False if str(p).endswith("libtbb.so.12") else _exists(p)
"""

CONCURRENCY = r"""
import json, sys, threading
import ml_dtypes
import numpy as np
import impls, numba

THREADS, ROUNDS, TIMEOUT, NAME = 8, int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
b = impls.get(NAME)
FUNCTIONS = [f for f in impls.FUNCTIONS if b.implements(f)]
#: One input per thread, all different: shapes (a row long enough to be cut into pieces, many
#: rows of few classes, 3-D with the class axis in the middle) and dtypes.
SHAPES = [((3, 5000), -1), ((2000, 7), -1), ((64, 300), -1), ((1, 70000), -1),
          ((5, 40, 9), 1), ((300, 1), -1), ((0, 10), -1), ((17, 33), -1)]
DTYPES = [np.float32, np.float64, np.float16, np.float32, np.float64, np.float32, np.float64, ml_dtypes.bfloat16]

def inputs(k):
    rng = np.random.default_rng(k)
    shape, axis = SHAPES[k]
    x = (rng.standard_normal(shape) * 20).astype(DTYPES[k])
    ax = axis % x.ndim
    dense = rng.random(shape).astype(DTYPES[k])
    sparse = rng.integers(0, shape[-1], shape[:-1])
    return x, ax, dense, sparse

def call(f, x, ax, dense, sparse):
    fn = getattr(b, f)
    if f in ("softmax", "log_softmax"):
        return fn(x, axis=ax)
    if f.startswith("softmax_cross"):
        return fn(dense, x, axis=ax)
    if f.startswith("sparse"):
        return fn(sparse, x)
    return fn(dense, x)

def as_tuple(r):
    return r if isinstance(r, tuple) else (r,)

data = [inputs(k) for k in range(THREADS)]
expected = [{f: as_tuple(call(f, *data[k])) for f in FUNCTIONS} for k in range(THREADS)]  # sequential
barrier = threading.Barrier(THREADS)
mismatches, errors, calls = [], [], [0] * THREADS

def worker(k):
    try:
        barrier.wait()
        for r in range(ROUNDS):
            for i in range(len(FUNCTIONS)):
                f = FUNCTIONS[(i + k + r) % len(FUNCTIONS)]  # different functions at the same moment
                got = as_tuple(call(f, *data[k]))
                calls[k] += 1
                for g, w in zip(got, expected[k][f]):
                    if g.dtype != w.dtype or g.shape != w.shape or not np.array_equal(g, w, equal_nan=True):
                        mismatches.append((k, f, r))
    except BaseException as exc:
        errors.append(f"thread {k}: {type(exc).__name__}: {exc}")

threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join(TIMEOUT)
hung = [k for k, t in enumerate(threads) if t.is_alive()]
print(json.dumps(dict(layer=numba.threading_layer() if NAME == "numba" else None, calls=sum(calls), mismatches=mismatches[:10],
                      n_mismatches=len(mismatches), errors=errors, hung=hung)), flush=True)
"""


def run_python(code: str, *args, env=None, timeout=240, cwd=None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter; a timeout is a failed test naming the hang."""
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    environ.update(env or {})
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=environ,
                              capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung: no result after {timeout} s\n{(exc.stderr or b'')[-2000:]!r}")


def concurrency(prelude: str = "", rounds: int = 20, name: str = "numba") -> dict:
    """Eight threads calling every function ``name`` offers at once, ``rounds`` times, against sequential calls."""
    proc = run_python(prelude + CONCURRENCY, rounds, 180, name)
    assert proc.returncode == 0, f"the process died: rc={proc.returncode}\n{proc.stderr[-4000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["hung"], f"threads {report['hung']} still running after 180 s: deadlock"
    assert not report["errors"], report["errors"]
    assert report["n_mismatches"] == 0, (
        f"{report['n_mismatches']} concurrent results differ from the sequential ones: {report['mismatches']}")
    offered = [f for f in impls.FUNCTIONS if impls.get(name).implements(f)]
    assert report["calls"] == 8 * rounds * len(offered)
    return report


# --------------------------------------------------------------------------- threads

@needs_numba
def test_threading_layer_is_tbb():
    """After a parallel call the layer is TBB, the one safe for threads and fork."""
    if not TBB_LIB.exists():
        pytest.skip(f"the tbb wheel is not installed ({TBB_LIB} is absent): Numba falls back to OpenMP")
    if "NUMBA_THREADING_LAYER" in os.environ:
        pytest.skip(f"NUMBA_THREADING_LAYER={os.environ['NUMBA_THREADING_LAYER']} is set: the user's choice wins")
    import numba

    from impls._numba_setup import SERIAL_BELOW
    impls.softmax(np.ones((64, SERIAL_BELOW // 64)), backend="numba")  # large enough to run in parallel
    assert numba.threading_layer() == "tbb"


def test_eight_threads_get_the_sequential_results(backend):
    """8 threads x 20 rounds x every function at once, exactly equal to sequential calls (numba: on TBB)."""
    report = concurrency(name=backend.name)
    if backend.name == "numba" and TBB_LIB.exists():
        assert report["layer"] == "tbb", report["layer"]


@needs_numba
def test_the_fallback_layer_is_safe_for_threads_too():
    """With the tbb library hidden, Numba falls back to OpenMP, and 8 threads still get exact results."""
    report = concurrency(HIDE_TBB, rounds=10)
    assert report["layer"] in ("omp", "tbb"), f"fell back to {report['layer']!r}, which is not thread-safe"
    assert report["layer"] == "omp", "the tbb library was not hidden: the fallback was not exercised"


def test_the_concurrency_check_can_fail():
    """The harness is not blind: a backend whose results depend on the calling thread is caught."""
    cheat = r"""
import threading, impls, numpy as np
m = impls.get("numba")._module
_softmax = m.softmax
m.softmax = lambda x: _softmax(x) if threading.current_thread() is threading.main_thread() else _softmax(x) * 1.0001
"""
    with pytest.raises(AssertionError, match="differ from the sequential"):
        concurrency(cheat, rounds=1)


FORK = r"""
import os, sys, numpy as np, impls, numba
x = np.random.default_rng(0).standard_normal((1000, 100))  # parallel: over SERIAL_BELOW logits
want = impls.softmax(x)                       # the pool is started in the parent
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(impls.softmax(x), want) else 3)
_, status = os.waitpid(pid, 0)
print(numba.threading_layer(), os.waitstatus_to_exitcode(status), flush=True)
"""


@needs_numba
def test_tbb_is_fork_safe():
    """A child forked after a parallel call can make parallel calls (multiprocessing with fork)."""
    if not TBB_LIB.exists():
        pytest.skip(f"the tbb wheel is not installed ({TBB_LIB} is absent)")
    proc = run_python(FORK, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    layer, code = proc.stdout.split()
    assert (layer, code) == ("tbb", "0"), (layer, code, proc.stderr[-2000:])


@needs_numba
def test_fork_under_the_fallback_never_hangs():
    """Under OpenMP a forked child is terminated by Numba with a message (documented, unsafe), never hung."""
    proc = run_python(HIDE_TBB + FORK, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    layer, code = proc.stdout.split()
    assert layer == "omp"
    assert code == "0" or "fork() called from a process already using GNU OpenMP" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- a read-only install

def unwritable_dir(tmp_path: Path, name: str) -> Path:
    """A path where nothing can be created, even by root.

    ``chmod 0o555`` does not stop root (tests run as root in CI), so where a
    write still succeeds the path is put under a regular file instead:
    ``makedirs`` there fails with ``NotADirectoryError`` whoever you are.
    """
    d = tmp_path / name
    d.mkdir()
    d.chmod(0o555)
    try:
        (d / "probe").mkdir()
    except OSError:
        return d
    shutil.rmtree(d / "probe")
    d.chmod(0o755)
    blocker = tmp_path / f"{name}-is-a-file"
    blocker.write_text("not a folder")
    return blocker / "cache"


def read_only_install(tmp_path: Path) -> Path:
    """A copy of ``impls`` whose ``__pycache__`` cannot be created or written."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "impls", site / "impls", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "impls" / "__pycache__").write_text("a file where Numba wants its in-tree cache")
    return site


READ_ONLY_CALL = r"""
import json, warnings, numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import impls
    x = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    # float16 first, through the numpy backend: the front door's conversions are
    # Numba kernels too, and must find a cache folder without the numba backend
    ok = np.allclose(impls.get("numpy").softmax(x.astype(np.float16)), impls.get("numpy").softmax(x), atol=1e-3)
    b = impls.get("numba")
    assert b._module.__file__.startswith(%r), b._module.__file__
    ok = ok and all(np.allclose(getattr(b, f)(x), getattr(impls.get("numpy"), f)(x), rtol=1e-5, atol=1e-6)
                    for f in ("softmax", "log_softmax"))
print(json.dumps(dict(ok=bool(ok), warnings=[f"{w.category.__name__}: {w.message}" for w in caught])))
"""


def _run_read_only(tmp_path: Path, env: dict) -> dict:
    site = read_only_install(tmp_path)
    proc = run_python(READ_ONLY_CALL % str(site), env={"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1",
                                                       **env}, cwd=site, timeout=300)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"], "wrong results from a read-only install"
    assert len(report["warnings"]) <= 1, f"more than one warning: {report['warnings']}"
    return report


@needs_numba
def test_unwritable_numba_cache_dir_falls_back_to_the_user_cache(tmp_path):
    """NUMBA_CACHE_DIR unwritable and a read-only package: Numba caches in the user's cache folder."""
    user_cache = tmp_path / "xdg"
    _run_read_only(tmp_path, {"NUMBA_CACHE_DIR": str(unwritable_dir(tmp_path, "numba-cache")),
                              "XDG_CACHE_HOME": str(user_cache)})
    assert any(user_cache.rglob("*.nbi")), "nothing was cached in the user's cache folder"


@needs_numba
def test_no_writable_cache_anywhere_still_works(tmp_path):
    """A read-only install for a user with no writable home: the numba backend still works, one warning at most."""
    report = _run_read_only(tmp_path, {"NUMBA_CACHE_DIR": str(unwritable_dir(tmp_path, "numba-cache")),
                                       "XDG_CACHE_HOME": str(unwritable_dir(tmp_path, "xdg")),
                                       "HOME": str(unwritable_dir(tmp_path, "home"))})
    assert [w for w in report["warnings"] if "no writable Numba cache folder" in w], report["warnings"]


# --------------------------------------------------------------------------- failing backends

class Boom(RuntimeError):
    pass


def _raising_module() -> types.ModuleType:
    """numpy's backend, except that ``log_softmax`` raises."""
    spec = importlib.util.find_spec("impls.numpy_stable")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.name = "raising"

    def log_softmax(logits):
        raise Boom("the kernel fell over")

    module.log_softmax = log_softmax
    return module


def _import_time_error_module() -> types.ModuleType:
    raise RuntimeError("cannot cache function 'rows': no locator available")


@pytest.fixture
def broken_registry(monkeypatch):
    """numpy, plus a backend that cannot import, one whose import raises RuntimeError, and one that raises.

    TensorFlow is made unavailable too (verify then has no reference and must
    still run). Everything is restored after the test, the quirks found here too: found without
    a reference they are none, and that answer, cached, would hide the real reference's from the
    tests after this one (``xentbench.quirks.found``).
    """
    raising = _raising_module()
    monkeypatch.setitem(sys.modules, "xentbench_test_raising", raising)
    monkeypatch.setitem(sys.modules, "xentbench_test_import_error", None)  # import raises ImportError

    class Finder:  # an import that fails with RuntimeError, as Numba's cache does
        def find_spec(self, name, path=None, target=None):
            if name == "xentbench_test_runtime_error":
                return importlib.util.spec_from_loader(name, loader=self)

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            _import_time_error_module()

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    monkeypatch.setattr(impls._registry, "_sources", {"numpy": "impls.numpy_stable",
                                                      "missing": "xentbench_test_import_error",
                                                      "cachefail": "xentbench_test_runtime_error",
                                                      "raising": "xentbench_test_raising",
                                                      "tensorflow": "xentbench_test_import_error"})
    monkeypatch.setattr(impls._registry, "_loaded", {})
    monkeypatch.setattr(impls._registry, "_discovered", True)  # no plugins from entry points either
    quirks.found.cache_clear()
    yield
    quirks.found.cache_clear()


def test_an_import_that_raises_anything_is_unavailable(broken_registry):
    """Not only ImportError: a RuntimeError at import is BackendUnavailable, with the reason."""
    with pytest.raises(impls.BackendUnavailable, match="RuntimeError: cannot cache function"):
        impls.get("cachefail")
    assert impls.available() == ["numpy", "raising"]


def test_verify_reports_failing_backends_and_checks_the_others(broken_registry, monkeypatch, capsys):
    """Every registered backend (no ``--backend``: one asked for by name must load, test_plugins.py)."""
    from xentbench import cli, verify
    from xentbench.suite import SHORT_NAMES

    monkeypatch.setattr(verify, "SHAPES", (((3, 4), -1), ((2, 3, 4), 1)))
    monkeypatch.setattr(verify, "DTYPES", (np.float32,))
    rc = cli.main(["verify"])
    out = capsys.readouterr().out
    table = out.split("\n\n")[0]  # the notes come after a blank line
    rows = {tuple(line.split()[:2]): line for line in table.splitlines()[1:]}
    words = " ".join(out.split())  # the notes, unwrapped
    assert rc == 1, "a raising backend must fail verify"
    assert rows[("missing", "(all")].endswith("unavailable"), rows.get(("missing", "(all"))
    assert "cachefail (all seven): unavailable: cannot cache function" in words, out
    for f in impls.FUNCTIONS:
        assert rows[("numpy", SHORT_NAMES[f])].endswith("pass"), rows[("numpy", SHORT_NAMES[f])]
        assert rows[("raising", SHORT_NAMES[f])].endswith("error" if f == "log_softmax" else "pass")
    assert "raising log_softmax: error: Boom: the kernel fell over" in words, out
    assert out.splitlines()[-1].startswith("verify: FAIL"), out
    assert impls._registry._sources["raising"] == "xentbench_test_raising"  # still patched inside the test


def test_the_registry_is_restored():
    """The fixture above leaves the real registry behind."""
    assert impls.names()[:4] == list(impls.BUILTIN) and "raising" not in impls.names()
    assert "raising" not in impls._registry._loaded


def test_small_calls_run_serially(monkeypatch):
    """Below ``SERIAL_BELOW`` logits a call runs the kernel's serial entry
    point (no thread wakes up); from there on the parallel one, with every
    thread. Every numba function launches through ``_launch``."""
    import numba

    from impls import _numba_setup, numba_parallel
    calls = []
    numba_parallel._launch(lambda *a: calls.append(("parallel", a)),
                           lambda *a: calls.append(("serial", a)), _numba_setup.SERIAL_BELOW - 1, "x")
    numba_parallel._launch(lambda *a: calls.append(("parallel", a)),
                           lambda *a: calls.append(("serial", a)), _numba_setup.SERIAL_BELOW, "x")
    assert calls == [("serial", ("x",)), ("parallel", ("x", numba.get_num_threads()))]

    launch, pairs = numba_parallel._launch, set()

    def spy(parallel, serial, size, *args):
        pairs.add((parallel, serial))
        return launch(parallel, serial, size, *args)

    monkeypatch.setattr(numba_parallel, "_launch", spy)
    backend, logits = impls.get("numba"), np.zeros((2, 3), np.float32)
    for function in impls.FUNCTIONS:
        kwargs = {"logits": logits}
        if "cross_entropy" in function:
            kwargs["labels"] = np.zeros(2, np.int64) if function.startswith("sparse") else logits
        getattr(backend, function)(**kwargs)
    kernels = numba_parallel.kernels
    assert pairs == {kernels.ROWS[mode][grad][True] for mode, grad in
                     [(kernels.SOFTMAX, False), (kernels.LOG_SOFTMAX, False), (kernels.SPARSE, False),
                      (kernels.SPARSE, True), (kernels.DENSE, False), (kernels.DENSE, True)]} \
        | {(kernels.sigmoid_xent, kernels.sigmoid_span)}
