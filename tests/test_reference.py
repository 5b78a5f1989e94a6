"""The reference on this machine: the quirk probe, its table, both oneDNN settings, the reporting.

TensorFlow's kernels depend on the CPU and on ``TF_ENABLE_ONEDNN_OPTS``
(``xentbench.quirks``). These tests check that what the probe finds is what
the quirk table says (the deviation as described, only under the settings it
names), run the reference's tests again in a subprocess with oneDNN switched
the other way, so that both settings are exercised on every machine, and
check with a faked probe result that ``xentbench verify`` and the report's
machine header report a quirk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from conftest import span_example, tf_backend  # noqa: F401  (a fixture)
from xentbench import accuracy, quirks, roofline, verify

ROOT = Path(__file__).resolve().parents[1]
#: Set in the subprocess that runs the reference's tests with oneDNN switched.
FLIPPED = "XENTBENCH_ONEDNN_FLIPPED"
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("quirk", quirks.KNOWN, ids=lambda q: q.name)
def test_a_found_quirk_is_what_its_table_entry_says(tf_backend, quirk):  # noqa: F811
    hit = next((f for f in quirks.found() if f.quirk is quirk), None)
    if hit is None:  # not on this machine: the strict checks of the other tests run instead
        for dtype in quirks.DTYPES:
            for function in sorted(quirk.functions):
                args = quirk.arguments(function, dtype)
                got = getattr(tf_backend, function)(*args)
                assert not quirk.shows(args[-1], got), f"{quirk.name} not found, yet {function} gave {got}"
        return
    assert not (quirk.onednn_only and quirks.onednn() == "off"), f"{quirk.name} found with oneDNN off"
    for dtype in hit.dtypes:
        for function in sorted(quirk.functions):
            args = quirk.arguments(function, dtype)
            got = getattr(tf_backend, function)(*args)
            assert quirk.explains(args[-1], got), f"{quirk.name}: {function} {dtype}"


def test_explains_accepts_the_described_deviation_and_nothing_else():
    quirk = next(q for q in quirks.KNOWN if q.name == "onednn-softmax-nan")
    x = np.array([[1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, np.inf], [0.0, 0.0, 0.0, 0.0]])
    nan = np.nan
    described = np.array([[0, nan, 0, 0], [0, nan, 0, nan], [0.25] * 4])
    assert quirk.explains(x, described)
    assert quirk.explains(x.T, described.T, axis=0)
    assert quirk.explains(x, np.where(np.isnan(x) | np.isinf(x), nan, nan))  # the project's own answer too
    for wrong in ([[0, 0, 0, 0]], [[0.1, nan, 0, 0]]):  # a finite value at NaN, a nonzero elsewhere
        bad = described.copy()
        bad[0] = wrong[0]
        assert not quirk.explains(x, bad)


def test_the_overflow_quirk_touches_rows_spanning_past_the_compute_dtype_and_explains_only_inf_or_nan():
    quirk = next(q for q in quirks.KNOWN if q.name == "dense-loss-overflow")
    big = float(ml_dtypes.finfo(accuracy.BFLOAT16).max)  # float32 holds it too
    x = np.array([[big, -big, 0], [big, -1, 0], [big, -big, np.nan], [big, -big, -np.inf], [-np.inf, 0, 1]],
                 np.float32)
    touched = [True, False, False, True, False]  # a NaN row is the project's NaN; -inf alone is no overflow
    assert quirk.touched(x).tolist() == touched
    assert quirk.touched(x.astype(accuracy.BFLOAT16)).tolist() == touched
    assert not quirk.touched(x.astype(np.float64)).any()  # float64 holds these spans
    assert not quirk.touched(np.array([[65504, -65504, 0]], np.float16)).any()  # computed in float32
    loss = np.array([np.inf, 1.0, np.nan, np.nan, 2.0])
    assert quirk.explains(x, loss) and quirk.explains(x.T, (loss, x.T), axis=0)  # (loss, gradient) too
    assert quirk.explains(x, np.where(touched, -np.inf, 1.0))
    assert not quirk.explains(x, np.where(np.arange(5) == 3, 7.0, loss))  # a finite loss in a touched row
    assert quirk.touches("softmax_cross_entropy_with_logits", x) and not quirk.touches("log_softmax", x)
    assert not quirk.touches("softmax_cross_entropy_with_logits", x, axis=0)  # columns span less


def test_tensorflow_dense_loss_overflow_is_recognised_as_the_quirk(tf_backend):  # noqa: F811
    """The thorough fuzz's example: TensorFlow's loss is inf there, and the probe found that."""
    quirk = next(q for q in quirks.KNOWN if q.name == "dense-loss-overflow")
    for dtype in (accuracy.BFLOAT16, np.float32):
        labels, logits = span_example(dtype)
        for function in sorted(quirk.functions):
            hit = quirks.expected_deviation("tensorflow", function, logits, axis=1)
            assert hit is not None and hit.quirk is quirk, f"{function} {dtype}: {quirks.found()}"
            got = getattr(tf_backend, function)(labels, logits, axis=1)
            assert quirk.explains(logits, got, axis=1), f"{function} {dtype}: {got}"
            assert quirks.expected_deviation("tensorflow", function, logits, axis=-1) is None  # rows of 3 fit


def test_the_probe_finds_nothing_on_the_other_backends():
    assert all(quirks.expected_deviation(b, "softmax", np.array([[np.nan, 1.0]])) is None
               for b in ("naive", "numpy", "numba"))


@pytest.mark.skipif(os.environ.get(FLIPPED) == "1", reason="already the subprocess with oneDNN switched")
def test_the_reference_with_onednn_switched_the_other_way(tf_backend):  # noqa: F811
    """The reference's edge cases and the quirk tests, in a subprocess with oneDNN on if it is off here
    and off if it is on: a quirk of either setting is found and checked on any machine."""
    flipped = "0" if quirks.onednn() == "on" else "1"
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=flipped, **{FLIPPED: "1"})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "tensorflow or quirk or probe",
           "tests/test_edge_cases.py", "tests/test_reference.py"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"with TF_ENABLE_ONEDNN_OPTS={flipped}:\n{out.stdout[-6000:]}{out.stderr[-3000:]}"
    assert " passed" in out.stdout.splitlines()[-1], out.stdout[-2000:]


# ----------------------------------------------------------------- reporting, with a faked probe result

@pytest.fixture
def faked_quirk(monkeypatch):
    """The probe's answer replaced by the oneDNN softmax quirk in float16 and float32, on any machine."""
    hit = quirks.Found(next(q for q in quirks.KNOWN if q.name == "onednn-softmax-nan"), ("float16", "float32"))
    monkeypatch.setattr(quirks, "found", lambda: (hit,))
    return hit


def test_verify_reports_a_found_quirk(faked_quirk):
    text = verify.format_reference()
    assert text.startswith("the reference on this machine: TensorFlow")
    assert "onednn-softmax-nan (softmax; float16, float32)" in text and "TF_ENABLE_ONEDNN_OPTS" in text


def test_verify_says_so_when_nothing_is_found(monkeypatch):
    monkeypatch.setattr(quirks, "found", lambda: ())
    assert "no known quirk found" in verify.format_reference()


def test_the_machine_description_carries_the_quirks(faked_quirk):
    assert any("onednn-softmax-nan" in line for line in roofline.machine_info()["reference"])


def test_expected_deviation_only_where_the_quirk_touches(faked_quirk):
    nan_row = np.array([[1.0, np.nan]], np.float32)
    assert quirks.expected_deviation("tensorflow", "softmax", nan_row) is faked_quirk
    assert quirks.expected_deviation("tensorflow", "softmax", nan_row.astype(np.float64)) is None
    assert quirks.expected_deviation("tensorflow", "log_softmax", nan_row) is None
    assert quirks.expected_deviation("tensorflow", "softmax", np.array([[1.0, -np.inf]], np.float32)) is None
    assert quirks.expected_deviation("numba", "softmax", nan_row) is None
