"""Where the reference departs from the project's NaN and infinity semantics on this machine.

The project's semantics (docs/guides/precision.md, "NaN and infinities") hold for ``naive`` (within its
domain), ``numpy`` and ``numba`` on every machine: a NaN or ``+inf`` logit
makes its whole row NaN, a ``-inf`` logit has probability 0, a row of ``-inf``
is NaN. TensorFlow, the reference, keeps them on most machines but not on all:
its kernels depend on the CPU and on its settings. Each deviation seen so far
is a ``Quirk`` in ``KNOWN``: what differs, in which functions and dtypes, and
under which settings and CPUs it appears.

Checked and found the same with oneDNN on and off (TensorFlow 2.21): rows of
``-inf``, subnormal logits, float16 (computed in float32 by every backend),
``log_softmax`` and the losses. ``benchmarks/NOTES.md`` (entry 12) has the
measurements.

``found()`` probes the reference with a few tiny calls per known quirk and
dtype (about 20 ms, cached for the process) and returns those it shows here.
The tests turn a found quirk into an expected deviation with its reason
(``expected_deviation``) and check its description (``Quirk.explains``); where
the probe finds nothing, they hold the reference to the project's semantics.
``xentbench verify`` prints ``summary()`` under "the reference on this
machine", and the report's machine header shows it (kept in the roofline file
with the rest of the machine's description).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

import impls
from xentbench import accuracy, machine

#: The logits dtypes a user passes (float16 and bfloat16 reach every backend as float32).
DTYPES = (np.dtype(np.float16), accuracy.BFLOAT16, np.dtype(np.float32), np.dtype(np.float64))
REFERENCE = "tensorflow"


def poisoned(rows: np.ndarray) -> np.ndarray:
    """Where a row (class axis last) holds a NaN or ``+inf``: the elements the project makes NaN."""
    return np.isnan(rows) | np.isposinf(rows)


@dataclass(frozen=True)
class Quirk:
    """One known deviation of the reference from the project's semantics."""

    name: str
    functions: frozenset[str]
    what: str  #: how the reference's result differs, and what the project gives
    when: str  #: the TensorFlow settings and CPUs under which it appears
    #: probe rows (float64 values, cast to each dtype): every one is a row the quirk touches
    probe: tuple[tuple[float, ...], ...]
    #: the quirk is oneDNN's: with oneDNN off (``onednn() == "off"``) it never shows
    onednn_only: bool

    def touches(self, function: str, logits) -> bool:
        """Whether a call of ``function`` on ``logits`` is one the quirk changes (along any class axis)."""
        return function in self.functions and bool(poisoned(np.asarray(logits)).any())

    def explains(self, logits, got, axis: int = -1) -> bool:
        """Whether ``got`` (softmax of ``logits`` along ``axis``) deviates only as described.

        In a row holding NaN or ``+inf`` those positions are NaN and the others
        0 or NaN (which of them is NaN depends on where they fall in the vector
        lanes); rows without either are not the quirk's business.
        """
        x = np.moveaxis(np.asarray(logits, dtype=np.float64), axis, -1)
        p = np.moveaxis(np.asarray(got, dtype=np.float64), axis, -1)
        hit = poisoned(x)
        rows = hit.any(axis=-1)
        return bool(np.isnan(p[hit]).all() and ((p[rows] == 0) | np.isnan(p[rows])).all())


KNOWN = (
    Quirk(
        name="onednn-softmax-nan",
        functions=frozenset({"softmax"}),
        what="tf.nn.softmax of a row holding NaN or +inf gives NaN at those positions and 0 (or NaN) "
             "elsewhere; the project gives NaN for the whole row. TF's log_softmax, its losses and its "
             "float64 softmax keep the project's semantics.",
        when="oneDNN on: TF_ENABLE_ONEDNN_OPTS=1, or unset on a CPU with AVX512_VNNI, AVX512_BF16, "
             "AVX-VNNI or AMX (TensorFlow's default since 2.9). Seen with TensorFlow 2.21 on AMD Zen 4 "
             "(AVX-512, default settings) and on an AMD EPYC that exposes AVX2 only (cpu family 25, "
             "model 17, TF_ENABLE_ONEDNN_OPTS=1); with oneDNN off it is gone. float32 softmax only, "
             "so float16 and bfloat16 too (computed in float32).",
        probe=((1.0, 2.0, np.nan, 4.0), (1.0, 2.0, 3.0, np.inf)),
        onednn_only=True,
    ),
)


@dataclass(frozen=True)
class Found:
    """A known quirk the probe found here, and the logits dtypes it shows in."""

    quirk: Quirk
    dtypes: tuple[str, ...]

    def line(self) -> str:
        q = self.quirk
        return f"{q.name} ({', '.join(sorted(q.functions))}; {', '.join(self.dtypes)}): {q.what} When: {q.when}"


def _shows(quirk: Quirk, reference: impls.Backend, dtype: np.dtype) -> bool:
    """Whether the reference deviates from the project's semantics on the quirk's probe rows."""
    x = np.array(quirk.probe, dtype=dtype)
    with np.errstate(invalid="ignore"):
        results = [getattr(reference, f)(x) for f in sorted(quirk.functions)]
    return any(not np.isnan(r).all() for r in results)


@functools.cache
def found() -> tuple[Found, ...]:
    """The known quirks the reference shows on this machine, with these settings (cached).

    Empty where the reference keeps the project's semantics, and where it is
    not installed.
    """
    try:
        reference = impls.get(REFERENCE)
    except impls.BackendUnavailable:
        return ()
    hits = []
    for quirk in KNOWN:
        dtypes = tuple(d.name for d in DTYPES if _shows(quirk, reference, d))
        if dtypes:
            hits.append(Found(quirk, dtypes))
    return tuple(hits)


def expected_deviation(backend: str, function: str, logits) -> Found | None:
    """The found quirk that explains a deviation of this call, or None where the strict check applies."""
    if backend != REFERENCE:
        return None
    dtype = np.asarray(logits).dtype.newbyteorder("=").name
    return next((f for f in found() if dtype in f.dtypes and f.quirk.touches(function, logits)), None)


def onednn() -> str:
    """Whether TensorFlow runs its oneDNN kernels in this process: ``"on"``, ``"off"`` or ``"unknown"``."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # private, but the one place TF says it
    except ImportError:
        return "unknown"
    return "on" if _pywrap_util_port.IsMklEnabled() else "off"


def settings() -> str:
    """The reference's version and the settings and CPU features its quirks depend on, one line."""
    try:
        import tensorflow as tf
    except ImportError:
        return "TensorFlow not installed"
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    onednn_flags = [f for f in machine.ONEDNN_DEFAULT if f in machine.flags()]
    return (f"TensorFlow {tf.__version__}, oneDNN {onednn()} (TF_ENABLE_ONEDNN_OPTS="
            f"{'unset' if env is None else env}; CPU: {machine.vector_width()}"
            f"{', ' + ', '.join(onednn_flags) if onednn_flags else ''})")


def summary() -> list[str]:
    """What ``verify`` and the report say of the reference here: its settings, then each quirk found."""
    quirks = found()
    tail = [f.line() for f in quirks] or ["keeps the project's NaN and infinity semantics (no known quirk found)"]
    return [settings()] + tail
