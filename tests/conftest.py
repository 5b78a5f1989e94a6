"""Shared fixtures and helpers of the test suite.

Every expected value comes from outside the code under test: the
extended-precision truth of ``xentbench.accuracy`` (independent of every
backend) or numbers pinned by hand. Every tolerance comes from
``xentbench.accuracy`` too; no test restates one.

Helpers are plain functions (``from conftest import ...``): ``make_inputs``
builds seeded labels and logits for any function, ``call`` calls any of the
seven functions the same way, ``check_against_truth`` asserts the one error
measure against the dtype's tolerance.
"""

from __future__ import annotations

import os
import zlib

import ml_dtypes
import numpy as np
import pytest
from hypothesis import settings

import impls
from xentbench import accuracy, quirks, verify
from xentbench.accuracy import DENSE, SPARSE, WITH_AXIS, tolerance

# Hypothesis: deterministic by default (same examples every run, nothing written
# to disk), and few examples, since every example computes an extended-precision
# truth. The first Numba call compiles, hence no deadline.
# XENTBENCH_HYPOTHESIS=thorough explores more, with fresh randomness each run.
settings.register_profile("default", max_examples=25, deadline=None, derandomize=True,
                          database=None, print_blob=True)
settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("XENTBENCH_HYPOTHESIS", "default"))

DTYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32), np.dtype(np.float64))
#: The backends meant to be right on every input; ``naive`` is right only where
#: its docstring says it is valid.
STABLE = ("numpy", "numba", "tensorflow")
#: The backends documented to break outside a domain; every other backend, a plugin too, is
#: held to the stable backends' standard.
UNSTABLE = ("naive",)
#: Where ``impls.naive`` is documented to be valid: ``|logits| <= 20`` for the
#: softmax family, ``|logits| <= 5`` for the sigmoid loss (``1 - s`` cancels).
NAIVE_LIMIT = 20.0
NAIVE_SIGMOID_LIMIT = 5.0


def naive_limit(function: str) -> float:
    """The largest ``|logit|`` at which ``naive`` is documented to be valid for ``function``."""
    return NAIVE_SIGMOID_LIMIT if function == "sigmoid_cross_entropy_with_logits" else NAIVE_LIMIT


# --------------------------------------------------------------------------- backends

#: The backends the tests check: the built-in ones, or those named with ``--backend`` (a
#: registered name or a module path: how ``xentbench conformance`` runs this suite on a plugin).
UNDER_TEST: list[str] = list(impls.BUILTIN)
#: Whether ``--backend`` chose them (then the checks made of numba alone run on them too).
CHOSEN: list[bool] = [False]


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", metavar="NAME",
                     help="check backend NAME (registered name or module path; repeatable) instead of the "
                          "built-in ones")


def pytest_configure(config):
    chosen = config.getoption("--backend")
    if chosen:
        UNDER_TEST[:] = chosen
        CHOSEN[0] = True


def pytest_collection_modifyitems(config, items):
    """With ``--backend``, only the tests that check a chosen backend: those parametrized by it
    (``backend`` or ``name``) and those marked ``conformance`` (they call every backend under test)."""
    if not CHOSEN[0]:
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        chosen = params.get("backend", params.get("name")) in UNDER_TEST
        (keep if chosen or item.get_closest_marker("conformance") else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", UNDER_TEST, indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A function a plugin does not offer reads "not implemented" (a skip), not a failure."""
    try:
        return (yield)
    except impls.NotImplementedByBackend as exc:
        pytest.skip(f"not implemented: {exc}")


def backend_or_skip(name: str) -> impls.Backend:
    """The backend ``name``, or a clean skip saying why it does not import here."""
    try:
        return impls.get(name)
    except impls.BackendUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def backend(request) -> impls.Backend:
    """Each backend under test in turn (skipped, with the reason, where it cannot import)."""
    return backend_or_skip(request.param)


@pytest.fixture(scope="session")
def tf_backend() -> impls.Backend:
    """The TensorFlow reference; the test is skipped where TensorFlow is not installed."""
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed: no reference to compare with")
    return backend_or_skip("tensorflow")


def case_id(value) -> str:
    """Test ids: dtypes by name, shapes as ``7x1000``, everything else as ``str``."""
    if isinstance(value, (np.dtype, type)):
        return np.dtype(value).name
    if isinstance(value, tuple):
        return "x".join(map(str, value)) or "scalar"
    return str(value)


# --------------------------------------------------------------------------- inputs

def seed_of(*key) -> int:
    """A stable seed for a test case (``hash()`` of a str changes between runs)."""
    return zlib.crc32(repr(key).encode())


def make_logits(rng: np.random.Generator, shape, dtype, scale: float, limit: float | None = None):
    """Normal logits of standard deviation ``scale``, clipped to ``limit`` and to the dtype's range."""
    dtype = np.dtype(dtype)
    bound = float(ml_dtypes.finfo(dtype).max) / 2 if limit is None else limit
    x = np.clip(rng.standard_normal(shape) * scale, -bound, bound)
    return x.astype(dtype)


def make_labels(function: str, rng: np.random.Generator, logits: np.ndarray, axis: int = -1):
    """Labels fitting ``function`` and ``logits``: class indices, soft rows summing to 1, or [0, 1].

    Dense and sigmoid labels are in the logits' dtype, so that the truth and the
    backends see the same values.
    """
    shape = logits.shape
    if function in SPARSE:
        return rng.integers(0, shape[-1], size=shape[:-1])
    if function in DENSE:
        w = rng.random(shape) ** 4  # skewed, as soft labels tend to be
        total = w.sum(axis=axis, keepdims=True)
        return (w / np.where(total == 0, 1, total)).astype(logits.dtype)
    if function == "sigmoid_cross_entropy_with_logits":
        return rng.random(shape).astype(logits.dtype)
    return None


def span_example(dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, logits)`` of the dense loss the thorough fuzz found overflowing
    (``experiments/results/issue29``), in ``dtype``, class axis 1: the logits of its third
    column are minus and plus the dtype's largest number (3.38953e38 in bfloat16, the example
    itself), so ``x - max(x)`` overflows the dtype, yet that row's loss, ``0.32 * 2 * max``, is finite."""
    big = float(ml_dtypes.finfo(dtype).max)
    logits = np.array([[[-0.0, 0.0, -big], [0.0, -9984.0, big]]], dtype)
    labels = np.array([[[0.103516, 0.96875, 0.320312], [0.200195, 0.859375, 0.511719]]], dtype)
    return labels, logits


def make_inputs(function: str, shape, dtype, scale: float, seed: int, axis: int = -1,
                limit: float | None = None):
    """Seeded ``(labels, logits)`` for ``function``; labels are None for softmax/log_softmax."""
    rng = np.random.default_rng(seed)
    logits = make_logits(rng, shape, dtype, scale, limit)
    return make_labels(function, rng, logits, axis), logits


def call(b: impls.Backend, function: str, labels, logits, axis: int = -1):
    """Call ``function`` of backend ``b`` with the arguments it takes."""
    f = getattr(b, function)
    if function in ("softmax", "log_softmax"):
        return f(logits, axis=axis)
    if function in WITH_AXIS:
        return f(labels, logits, axis=axis)
    return f(labels, logits)


def as_tuple(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


# --------------------------------------------------------------------------- checks

#: How a skip for a result less accurate than TensorFlow begins (``xentbench conformance`` counts them).
LESS_ACCURATE = "less accurate than TensorFlow"


def check_against_truth(t, got, reference=None, what: str = "", backend: str | None = None) -> None:
    """Assert ``got`` is within the tolerance of its dtype, against the truth or ``reference``.

    ``reference`` (TensorFlow's result) replaces the truth's values, the truth's
    scales stay; see ``xentbench.accuracy``. The project's own backends are held
    to that; another ``backend`` (a plugin, a peer, in the conformance run) whose
    result is beyond it but within the backward-stable bound is *less accurate
    than TensorFlow*: a skip that says so, counted apart by ``xentbench conformance``.
    """
    for g in as_tuple(got):
        assert isinstance(g, np.ndarray), f"{what}: result is a {type(g).__name__}, not an ndarray"
        assert g.dtype == t.dtype, f"{what}: result of dtype {g.dtype}, logits of dtype {t.dtype}"
    err = t.error(got, reference=reference)
    if err > tolerance(t.dtype) and backend is not None and backend not in verify.STRICT:
        judged = accuracy.judge(t, got)
        if judged.status == "less accurate":
            pytest.skip(f"{LESS_ACCURATE}: {what}: {judged.ulps:.3g} ulps against the truth, "
                        f"{judged.stability:.2g} of the backward-stable bound")
    against = "the truth" if reference is None else "the reference"
    assert err <= tolerance(t.dtype), (
        f"{what}: error {err:.3g} against {against} exceeds the {t.dtype} tolerance {tolerance(t.dtype):g}"
    )


def expect_quirk(b: impls.Backend, function: str, logits, got, axis: int = -1) -> None:
    """Where a quirk of the reference found here (``xentbench.quirks``) touches this call,
    check that ``got`` deviates only as the quirk describes, then xfail with its reason.

    Elsewhere (another backend, no quirk found, an input the quirk leaves alone)
    it returns, and the caller's strict check of the project's semantics runs.
    """
    hit = quirks.expected_deviation(b.name, function, logits, axis)
    if hit is None:
        return
    assert hit.quirk.explains(logits, got, axis), (
        f"{b.name}.{function} deviates otherwise than quirk {hit.quirk.name} describes: {got}")
    pytest.xfail(f"expected deviation of the reference on this machine, quirk {hit.quirk.name}: {hit.quirk.what}")
