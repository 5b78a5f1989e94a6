"""Backends from outside ``impls``: registered at run time, by module path, or by an installed
package's entry point, checked through the same front door, verify and the conformance run.

``examples/xentbench-logaddexp`` is the example plugin package (four of the seven functions,
and a variant whose sparse loss is 1e-4 off); the broken plugins below are made up here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import impls
from xentbench import cli, verify
from xentbench.suite import SHORT_NAMES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "xentbench-logaddexp"


@pytest.fixture
def registry(monkeypatch):
    """The registry, restored after the test (what it registers is forgotten)."""
    monkeypatch.setattr(impls._registry, "_sources", dict(impls._registry._sources))
    monkeypatch.setattr(impls._registry, "_loaded", dict(impls._registry._loaded))


def numpy_function(function):
    return getattr(impls.get("numpy").module, function)


class OnlySoftmax:
    """A plugin with one function, float64 only."""

    dtypes = ("float64",)
    softmax = staticmethod(numpy_function("softmax"))


# ----------------------------------------------------------------- registration

def test_a_registered_object_goes_through_the_front_door(registry):
    impls.register("only-softmax", OnlySoftmax)
    np.testing.assert_allclose(impls.softmax([[0.0, 0.0]], backend="only-softmax"), [[0.5, 0.5]])
    assert "only-softmax" in impls.names() and "only-softmax" in impls.available()
    assert impls.available(["numpy", "only-softmax"]) == ["numpy", "only-softmax"]
    with pytest.raises(TypeError) as theirs:
        impls.softmax(np.array([1, 2]), backend="only-softmax")
    with pytest.raises(TypeError) as ours:
        impls.softmax(np.array([1, 2]), backend="numpy")
    assert str(theirs.value) == str(ours.value)  # the one front door: the same error as every backend


def test_a_missing_function_or_dtype_is_not_implemented(registry):
    impls.register("only-softmax", OnlySoftmax)
    backend = impls.get("only-softmax")
    assert backend.implements("softmax") and not backend.implements("log_softmax")
    with pytest.raises(impls.NotImplementedByBackend, match="does not implement log_softmax"):
        backend.log_softmax([1.0, 2.0])
    with pytest.raises(impls.NotImplementedByBackend, match="takes float64 logits, not float32"):
        backend.softmax(np.ones(3, np.float32))


def test_a_name_is_registered_once_unless_replaced(registry):
    impls.register("only-softmax", OnlySoftmax)
    with pytest.raises(ValueError, match="already registered"):
        impls.register("only-softmax", OnlySoftmax)
    impls.register("only-softmax", "impls.numpy_stable", replace=True)
    assert impls.get("only-softmax").implements("log_softmax")


class WrongShape:
    def softmax(self, logits):
        return logits[:, :1].copy()


def test_a_result_that_breaks_the_contract_is_a_backend_error(registry):
    impls.register("wrong-shape", WrongShape)
    with pytest.raises(impls.BackendError, match=r"softmax returned \[\('ndarray', \(2, 1\), 'float64'\)\]"):
        impls.softmax(np.ones((2, 3)), backend="wrong-shape")


class InPlace:
    """The natural in-place softmax, which writes into the read-only logits."""

    def softmax(self, logits):
        logits -= logits.max(axis=-1, keepdims=True)
        return numpy_function("softmax")(logits)


class RaisingValueError:
    def softmax(self, logits):
        raise ValueError("a plugin's own complaint")


def test_a_write_into_the_inputs_names_the_contract_and_other_errors_pass_through(registry):
    impls.register("in-place", InPlace)
    impls.register("value-error", RaisingValueError)
    with pytest.raises(impls.BackendError, match=r"^backend 'in-place': softmax: inputs are read-only: copy before "
                                                 r"writing \(output array is read-only\)$"):
        impls.softmax(np.ones((2, 3)), backend="in-place")
    with pytest.raises(ValueError, match="^a plugin's own complaint$"):
        impls.softmax(np.ones((2, 3)), backend="value-error")


def test_a_module_path_needs_no_registration(registry, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    got = impls.sparse_softmax_cross_entropy_with_logits([0], [[2.0, 1.0]], backend="xentbench_logaddexp")
    np.testing.assert_allclose(got, [0.31326169], rtol=1e-7)
    assert "xentbench_logaddexp" in impls.names()
    with pytest.raises(ValueError, match="Unknown backend 'no_such_module.at_all': .*No module named 'no_such_module'"):
        impls.get("no_such_module.at_all")
    with pytest.raises(ValueError, match="'./mysoftmax.py' is a file path: give the module's name, 'mysoftmax'"):
        impls.get("./mysoftmax.py")


def test_the_peers_are_registered_through_our_own_entry_point():
    assert {"torch", "jax"} <= set(impls.names())
    for peer in ("torch", "jax"):
        try:
            backend = impls.get(peer)
        except impls.BackendUnavailable as exc:
            assert "is not installed" in str(exc)
            continue
        np.testing.assert_allclose(backend.softmax([[0.0, 0.0]]), [[0.5, 0.5]])


# ----------------------------------------------------------------- verify on broken plugins

class Raising:
    def softmax(self, logits):
        raise RuntimeError("the plugin fell over")


class NaNs:
    def softmax(self, logits):
        return np.full_like(logits, np.nan)


class Hanging:
    def softmax(self, logits):
        time.sleep(3600)


class OffByOneIn10000:
    def softmax(self, logits):
        return numpy_function("softmax")(logits) * (1 + 1e-4)


def test_verify_reports_each_broken_plugin_and_checks_the_others(registry, monkeypatch):
    monkeypatch.setattr(verify, "SHAPES", (((3, 4), -1),))
    monkeypatch.setattr(verify, "DTYPES", (np.float32, np.float64))
    for name, plugin in [("raising", Raising), ("nans", NaNs), ("hanging", Hanging), ("off", OffByOneIn10000),
                         ("wrong-shape", WrongShape), ("in-place", InPlace)]:
        impls.register(name, plugin)
    impls.register("missing", "xentbench_missing_plugin")
    names = ["raising", "nans", "hanging", "off", "wrong-shape", "in-place", "numpy", "missing"]
    rows = {(r["backend"], r["function"]): r["status"] for r in verify.check(names, timeout=0.5)}
    assert rows[("raising", "softmax")] == "error: RuntimeError: the plugin fell over (float32 3x4 moderate logits)"
    assert rows[("nans", "softmax")] == "FAIL"
    assert rows[("hanging", "softmax")] == "error: TimeoutError: no result after 0.5 s (float32 3x4 moderate logits)"
    assert rows[("off", "softmax")] == "FAIL"
    assert rows[("wrong-shape", "softmax")].startswith("error: BackendError: backend 'wrong-shape': softmax returned")
    assert rows[("in-place", "softmax")] == ("error: BackendError: backend 'in-place': softmax: inputs are read-only: "
                                             "copy before writing (output array is read-only) (float32 3x4 moderate "
                                             "logits)")
    assert rows[("raising", "log_softmax")] == "not implemented"
    assert rows[("missing", "(all seven)")].startswith("unavailable: No module named 'xentbench_missing_plugin'")
    assert all(rows[("numpy", f)] == "pass" for f in impls.FUNCTIONS)


class LogSumExp:
    """What many users write: softmax as ``exp(x - logsumexp(x))``, backward stable but an ulp of the
    largest logit off; and a log_softmax 1e-4 off (relative), which no precision excuses."""

    @staticmethod
    def _lse(logits, axis):
        m = np.max(logits, axis=axis, keepdims=True)
        return m + np.log(np.sum(np.exp(logits - m), axis=axis, keepdims=True))

    def softmax(self, logits, axis=-1):
        return np.exp(logits - self._lse(logits, axis))

    def log_softmax(self, logits, axis=-1):
        return (logits - self._lse(logits, axis)) * (1 + 1e-4)


@pytest.fixture
def lse_rows(registry, monkeypatch):
    """``verify.check`` of ``LogSumExp`` (registered as "lse") on 100x1000 logits, moderate and wide."""
    monkeypatch.setattr(verify, "SHAPES", (((100, 1000), -1),))
    monkeypatch.setattr(verify, "OPTION_SHAPES", ())
    impls.register("lse", LogSumExp)
    return {r["function"]: r for r in verify.check(["lse"]) if r["status"] != "not implemented"}


def test_verify_names_a_backward_stable_softmax_less_accurate_and_fails_a_wrong_log_softmax(lse_rows):
    softmax, log_softmax = lse_rows["softmax"], lse_rows["log_softmax"]
    assert softmax["status"] == "less accurate", softmax
    assert re.fullmatch(r"pass, less accurate than TensorFlow by \d+x", softmax["verdict"]), softmax["verdict"]
    assert list(softmax["worst"]) == ["float32"] and "wide" in softmax["worst"]["float32"].case
    assert 100 < softmax["ulps"]["float32", "wide"] and softmax["ulps"]["float32", "moderate"] < 10
    assert log_softmax["verdict"] == "FAIL: float32, float64", log_softmax
    assert all(log_softmax["worst"][d].stability > 50 for d in ("float32", "float64"))
    assert verify.overall(list(lse_rows.values())) == "verify: FAIL (1 of 2 rows): lse.log_softmax"


def test_the_projects_own_backends_fail_where_a_plugin_is_less_accurate(registry, monkeypatch):
    monkeypatch.setattr(verify, "SHAPES", (((100, 1000), -1),))
    monkeypatch.setattr(verify, "OPTION_SHAPES", ())
    monkeypatch.setattr(verify, "DTYPES", (np.float32,))
    monkeypatch.setattr(verify, "STRICT", verify.STRICT | {"lse"})
    impls.register("lse", LogSumExp)
    row = next(r for r in verify.check(["lse"]) if r["function"] == "softmax")
    assert row["verdict"] == "FAIL: float32", row
    assert "no worse than TensorFlow" in verify.notes(row)[0]


def test_verify_output_fits_100_columns_and_ends_with_the_verdict(lse_rows):
    rows = list(lse_rows.values())
    text = "\n".join([verify.format_table(rows), verify.format_reference(), verify.overall(rows)])
    assert max(map(len, text.splitlines())) <= verify.WIDTH, text
    assert "lse softmax: pass, less accurate than TensorFlow by" in " ".join(text.split())
    assert text.splitlines()[-1].startswith("verify: FAIL")


# ----------------------------------------------------------------- a backend asked for by name

@pytest.mark.parametrize("command", ["verify --backend", "conformance"])
def test_a_backend_asked_for_that_cannot_load_ends_the_command_before_any_check(command, registry, capsys):
    impls.register("missing", "xentbench_missing_plugin")
    for name, reason in [("no_such_module", "Unknown backend 'no_such_module': not a registered name "
                                            "(naive, numpy, numba, tensorflow, "),
                         ("no_such_module", "No module named 'no_such_module' (sys.path: "),
                         ("mysoftmax.py", "'mysoftmax.py' is a file path: give the module's name, 'mysoftmax'"),
                         ("missing", "backend 'missing' is unavailable: ModuleNotFoundError: "
                                     "No module named 'xentbench_missing_plugin'")]:
        assert cli.main([*command.split(), name]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"xentbench {command.split()[0]}: cannot run: "), out + err
        assert reason in err, err


def test_verify_finds_a_module_in_the_current_folder_as_python_m_does(tmp_path, monkeypatch, registry, capsys):
    """The console script does not put the current folder on sys.path; ``cli.main`` does."""
    (tmp_path / "xentbench_here_plugin.py").write_text(
        "import numpy as np\n\ndef softmax(logits):\n    e = np.exp(logits - logits.max(axis=-1, keepdims=True))\n"
        "    return e / e.sum(axis=-1, keepdims=True)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.setattr(verify, "SHAPES", (((3, 4), -1),))
    monkeypatch.setattr(verify, "DTYPES", (np.float64,))
    monkeypatch.setattr(verify, "OPTION_SHAPES", ())
    assert cli.main(["verify", "--backend", "xentbench_here_plugin"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["xentbench_here_plugin", "softmax", "pass"] == [rows[1][0], rows[1][1], rows[1][-1]], rows[:3]


# ----------------------------------------------------------------- the example package, installed

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example package installed (pip, no dependencies) into a folder put on PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True, timeout=300)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))


def xentbench(env, *args, timeout=900, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xentbench.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_verify_checks_the_installed_example_and_fails_its_wrong_variant(installed):
    done = xentbench(installed, "verify", "--backend", "logaddexp", "--backend", "logaddexp-wrong")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {tuple(line.split()[:2]): line for line in done.stdout.splitlines() if line.startswith("logaddexp")}
    for function in impls.FUNCTIONS:
        right, wrong = rows[("logaddexp", SHORT_NAMES[function])], rows[("logaddexp-wrong", SHORT_NAMES[function])]
        if function in ("softmax", "log_softmax", "softmax_cross_entropy_with_logits",
                        "sparse_softmax_cross_entropy_with_logits"):
            assert right.endswith("pass"), right
        else:
            assert right.endswith("not implemented"), right
        if function == "sparse_softmax_cross_entropy_with_logits":
            assert wrong.endswith("FAIL: float32, float64"), wrong
        else:
            assert wrong.split()[-1] in ("pass", "implemented"), wrong
    assert re.fullmatch(r"verify: FAIL \(1 of \d+ rows\): logaddexp-wrong\.sparse_softmax_cross_entropy_with_logits",
                        done.stdout.splitlines()[-1]), done.stdout


def test_the_conformance_run_passes_the_installed_example(installed):
    done = xentbench(installed, "conformance", "logaddexp", "--", "-k", "pinned or extreme or bad_input or nan")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "conformance of backend 'logaddexp': pass"
    total = lines[-1].split()
    assert total[0] == "total" and int(total[1]) > 100 and total[2] == "0", lines[-1]


def test_the_conformance_run_fails_the_wrong_variant_naming_the_case(installed):
    done = xentbench(installed, "conformance", "logaddexp-wrong", "--", "-k", "pinned")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "conformance of backend 'logaddexp-wrong': FAIL"
    assert "FAILED tests/test_edge_cases.py::test_pinned_examples[logaddexp-wrong-float64-tf-doc-sparse]" in done.stderr


def test_bench_hands_a_plugin_to_asv_and_refuses_an_unknown_one(capsys):
    from xentbench import cli
    assert cli.main(["bench", "--dry-run", "--quick", "--backend", "impls.numpy_stable", "--function", "sparse"]) == 0
    out = capsys.readouterr().out
    assert "XENTBENCH_PLUGINS=impls.numpy_stable " in out and "'impls\\.numpy_stable'" in out, out
    assert cli.main(["bench", "--dry-run", "--backend", "no_such_plugin_module"]) == 2
    assert "cannot benchmark backend 'no_such_plugin_module': Unknown backend" in capsys.readouterr().err


def test_a_plugin_joins_the_suites_grid_through_the_environment():
    code = "from xentbench import suite; print(suite.BACKENDS)"
    env = dict(os.environ, XENTBENCH_PLUGINS="logaddexp,mypkg.myloss")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("'torch', 'jax', 'logaddexp', 'mypkg.myloss')"), out


def test_the_conformance_run_fails_a_plugin_in_the_current_folder_that_hangs(tmp_path):
    """Found in the current folder by the command and by the pytest it runs from the repository's root."""
    (tmp_path / "xentbench_hanging_plugin.py").write_text(
        "import time\n\ndef softmax(logits):\n    time.sleep(3600)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = xentbench(env, "conformance", "--timeout", "30", "xentbench_hanging_plugin", "--", "-k", "pinned",
                     timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert done.stdout.splitlines()[:2] == ["conformance of backend 'xentbench_hanging_plugin': FAIL",
                                            "no result after 30 s: a call hangs (pytest's progress above "
                                            "shows the last test that started)"]


def test_the_conformance_run_counts_a_less_accurate_softmax_apart_and_passes_it(tmp_path):
    (tmp_path / "xentbench_lse_softmax.py").write_text(
        "import numpy as np\n\n\ndef softmax(logits, axis=-1):\n"
        "    m = np.max(logits, axis=axis, keepdims=True)\n"
        "    return np.exp(logits - (m + np.log(np.sum(np.exp(logits - m), axis=axis, keepdims=True))))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    done = xentbench(env, "conformance", "xentbench_lse_softmax", "--", "-k", "test_agrees_with_truth")
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    header, row = done.stdout.splitlines()[1:3]
    assert header.split()[:7] == ["test", "passed", "failed", "not", "implemented", "less", "accurate"]
    counts = dict(zip(["passed", "failed", "not implemented", "less accurate"], map(int, row.split()[1:5])))
    assert counts["failed"] == 0 and counts["less accurate"] > 0 and counts["passed"] > 0, done.stdout
