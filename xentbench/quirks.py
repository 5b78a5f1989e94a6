"""Where the reference departs from the project's semantics for NaN, infinities and overflow on this machine.

The project's semantics (docs/guides/precision.md, "NaN and infinities") hold for ``naive`` (within its
domain), ``numpy`` and ``numba`` on every machine: a NaN or ``+inf`` logit
makes its whole row NaN, a ``-inf`` logit has probability 0, a row of ``-inf``
is NaN, and a result is infinite only where its value is beyond the dtype's
range. TensorFlow, the reference, keeps them on most machines but not on all:
its kernels depend on the CPU and on its settings, and its float32 dense loss
overflows everywhere for a row spanning more than float32's range. Each
deviation seen so far is a ``Quirk`` in ``KNOWN``, of a kind that says which
rows it touches and how the reference's results look there: what differs, in
which functions and dtypes, and under which settings and CPUs it appears.

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
from impls._validate import compute_dtype
from xentbench import accuracy, machine

#: The logits dtypes a user passes (float16 and bfloat16 reach every backend as float32).
DTYPES = (np.dtype(np.float16), accuracy.BFLOAT16, np.dtype(np.float32), np.dtype(np.float64))
REFERENCE = "tensorflow"


def poisoned(rows: np.ndarray) -> np.ndarray:
    """Where a row (class axis last) holds a NaN or ``+inf``: the elements the project makes NaN."""
    return np.isnan(rows) | np.isposinf(rows)


def overflowing(rows: np.ndarray) -> np.ndarray:
    """The rows (class axis last) without NaN or ``+inf`` where a finite ``x - max(x)`` is ``-inf`` in
    the compute dtype (float32 for half precision): those spanning more than its largest number."""
    x = rows.astype(compute_dtype(rows.dtype))
    with np.errstate(over="ignore", invalid="ignore"):
        overflows = np.isneginf(x - x.max(axis=-1, keepdims=True, initial=-np.inf)) & np.isfinite(x)
    return overflows.any(axis=-1) & ~poisoned(x).any(axis=-1)


def _rows(logits, axis: int) -> np.ndarray:
    """The logits with the class axis last, in native byte order."""
    x = np.moveaxis(np.asarray(logits), axis, -1)
    return x.astype(x.dtype.newbyteorder("="))


@dataclass(frozen=True)
class Quirk:
    """One known deviation of the reference from the project's semantics.

    Each kind of deviation is a subclass that says which rows it touches
    (``touched``), how the reference's results look there (``explains``) and
    whether the reference's result of the probe departs from the project's
    semantics (``shows``).
    """

    name: str
    functions: frozenset[str]
    what: str  #: how the reference's result differs, and what the project gives
    when: str  #: the TensorFlow settings and CPUs under which it appears
    #: probe rows (float64 values, cast to each dtype): every one is a row the quirk touches
    probe: tuple[tuple[float, ...], ...]
    #: the quirk is oneDNN's: with oneDNN off (``onednn() == "off"``) it never shows
    onednn_only: bool

    def arguments(self, function: str, dtype) -> tuple:
        """The probe as ``function``'s arguments in ``dtype``: the logits, after dense labels
        spread evenly over the classes for a loss."""
        x = np.array(self.probe, dtype)
        return (x,) if function in ("softmax", "log_softmax") else (np.full(x.shape, 1 / x.shape[-1], dtype), x)

    def touches(self, function: str, logits, axis: int = -1) -> bool:
        """Whether a call of ``function`` on ``logits`` (class axis ``axis``) is one the quirk changes."""
        return function in self.functions and bool(self.touched(_rows(logits, axis)).any())


class PoisonedSoftmax(Quirk):
    """A softmax that is NaN only at a row's NaN or ``+inf`` logits, where the project makes the row NaN."""

    def touched(self, rows: np.ndarray) -> np.ndarray:
        """The rows (class axis last) holding a NaN or ``+inf``."""
        return poisoned(rows).any(axis=-1)

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

    def shows(self, logits, got) -> bool:
        """The project's softmax of the probe, whose rows all hold NaN or ``+inf``, is NaN throughout."""
        return not np.isnan(got).all()


class SpanOverflow(Quirk):
    """A dense loss that is non-finite where a row's shifted logits ``x - max(x)`` overflow its compute
    dtype, and the loss, computed from them, may be finite."""

    def touched(self, rows: np.ndarray) -> np.ndarray:
        """The rows (class axis last) that ``overflowing`` finds."""
        return overflowing(rows)

    def explains(self, logits, got, axis: int = -1) -> bool:
        """Whether the loss of ``got`` (a dense loss along ``axis``, or loss and gradient) is inf or
        NaN in every row the quirk touches: ``z (log(s) - (x - m))`` with ``x - m = -inf`` is ``inf``
        for a positive label there, NaN for 0 and ``-inf`` for a negative one. The rows it does not
        touch are not the quirk's business."""
        loss = got[0] if isinstance(got, tuple) else got
        return not np.isfinite(np.asarray(loss, np.float64)[self.touched(_rows(logits, axis))]).any()

    def shows(self, logits, got) -> bool:
        """The project's loss of the probe is finite in the rows that overflow the compute dtype:
        the reference shows the quirk where there are such rows (float16 holds none: its cast of
        the probe is infinite) and its loss there is not finite."""
        return bool(self.touched(_rows(logits, -1)).any()) and self.explains(logits, got)


KNOWN = (
    PoisonedSoftmax(
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
    SpanOverflow(
        name="dense-loss-overflow",
        functions=frozenset({"softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_and_grad"}),
        what="tf.nn.softmax_cross_entropy_with_logits of a row whose logits span more than float32's "
             "largest number (3.4e38; bfloat16 is computed in float32) is inf, or NaN where the label at "
             "the low end is 0: x - max(x) overflows to -inf in its float32 arithmetic. The project gives "
             "the loss, finite where float32 holds it (the logits [-3.39e38, 3.39e38] with labels [0.32, "
             "0.51] lose 2.17e38). TF's gradient and log_softmax there are right, and its float64 loss "
             "overflows only where the project's does, beyond a span of 1.8e308.",
        when="With oneDNN on and off (TensorFlow 2.21, AMD EPYC cpu family 25, model 17, Zen 4): the "
             "kernel's float32 arithmetic, not the CPU's. Found by the thorough fuzz "
             "(experiments/results/issue29). float32 and bfloat16; float16 logits span at most 1.3e5.",
        probe=((3e38, -3e38, 0.0), (-3e38, 1.0, 3e38)),
        onednn_only=False,
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
    for function in sorted(quirk.functions):
        with np.errstate(invalid="ignore", over="ignore"):  # a probe beyond float16's range casts to inf
            args = quirk.arguments(function, dtype)
            if quirk.shows(args[-1], getattr(reference, function)(*args)):
                return True
    return False


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


def expected_deviation(backend: str, function: str, logits, axis: int = -1) -> Found | None:
    """The found quirk that explains a deviation of this call (class axis ``axis``), or None where
    the strict check applies."""
    if backend != REFERENCE:
        return None
    dtype = np.asarray(logits).dtype.newbyteorder("=").name
    return next((f for f in found() if dtype in f.dtypes and f.quirk.touches(function, logits, axis)), None)


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
    tail = [f.line() for f in quirks] or [
        "keeps the project's semantics for NaN, infinities and overflow (no known quirk found)"]
    return [settings()] + tail
