"""How the suite times a call: calibration and paired ratios, free of asv.

The asv suite (``benchmarks/common.py``) times with these, and so can any
tool that measures two backends, or two commits, against each other.

``calibrate`` makes the first call (Numba compilation or cache loading, JAX
``jit`` tracing and compilation, TensorFlow's kernel start-up: all outside any
timed region), times a second and chooses the calls per timing sample
(about ``SAMPLE_TIME`` of them). ``paired_ratio`` times two calls in turns,
each turn after ``LEAD_IN`` seconds of untimed calls (``lead_in_calls``), and
takes the median ratio over the rounds: ``paired_rounds`` of them.
"""

from __future__ import annotations

import math
import time

import numpy as np

SAMPLE_TIME = 0.005  # seconds of calls per timing sample
PAIRED_ROUNDS = 15  # rounds of a paired measurement (``paired_rounds``)
SLOW_CALL = 0.25
#: rounds of a paired measurement whose slower call takes over ``SLOW_CALL`` seconds: with 3,
#: two rounds caught by one pause of the machine decided the median (sparse+grad against
#: TensorFlow at 65536x1000 read 1.85x in a full run and 15.3x alone; benchmarks/NOTES.md)
PAIRED_SLOW_ROUNDS = 5
#: seconds of untimed calls before each timed turn of a paired measurement:
#: PyTorch's OpenMP worker spins for ~9 ms after a call returns (measured:
#: it burns 8-9 ms of CPU in the 10-200 ms after a call; numba's TBB workers
#: 0.3-0.5 ms, JAX's and TensorFlow's none), which takes a core from the
#: next backend's first milliseconds
LEAD_IN = 0.01
#: a call this long needs no lead-in: the other one's spinning threads take under 1% of it
LONG_CALL = 100 * LEAD_IN
#: glibc's malloc for every timing process (asv's, the gate's workers): arrays up to 32 MiB
#: (the most glibc allows) come from the heap and the heap is never given back to the system.
#: Without it, whether a call pays a page fault for every 4 KiB of its outputs
#: and temporaries depends on what the process allocated before (glibc trims
#: the heap's top once it exceeds twice the last freed mmap'd size): the same
#: float16 softmax measured 0.95 ms or 8.6 ms (2,468 faults a call) in one run,
#: by its place in the run. The same for every backend; arrays over 32 MiB are
#: still mapped afresh each call (NumPy's are on huge pages).
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"


def calibrate(call, args) -> tuple[int, float]:
    """``(number, estimate)``: calls per timing sample (about ``SAMPLE_TIME``
    seconds of them, 1 to 1000) and the seconds of one call.

    The first call, untimed, pays compilation, tracing or cache loading; the
    second is the estimate (the first is estimate enough past 1 s).
    """
    start = time.perf_counter()
    call(*args)
    estimate = time.perf_counter() - start
    if estimate < 1.0:
        start = time.perf_counter()
        call(*args)
        estimate = time.perf_counter() - start
    return max(1, min(1000, round(SAMPLE_TIME / max(estimate, 1e-9)))), estimate


def paired_rounds(seconds: float) -> int:
    """The rounds of a paired measurement whose slower call takes ``seconds``."""
    return PAIRED_SLOW_ROUNDS if seconds > SLOW_CALL else PAIRED_ROUNDS


def lead_in_calls(estimate: float) -> int:
    """The untimed calls before each timed turn of a call of ``estimate`` seconds: ``LEAD_IN`` seconds of
    them, at least one, none from ``LONG_CALL`` up (a forward and backward pass of an LM head takes
    seconds, and PyTorch's chunked one tens: a lead-in call would double a paired measurement)."""
    return 0 if estimate >= LONG_CALL else max(1, math.ceil(LEAD_IN / max(estimate, 1e-9)))


def paired_ratio(first, second, numbers, lead_ins, rounds: int, clock=time.perf_counter) -> float:
    """The median over ``rounds`` of ``time(second) / time(first)`` per call.

    In each round both are timed back to back, ``numbers[0]`` calls of
    ``first`` and ``numbers[1]`` of ``second``, first-second in even rounds and
    second-first in odd ones: a change in the machine's load between rounds
    (other tenants, frequency) moves both times of a round alike, and the order
    within a round does not favour either. Each turn starts with
    ``lead_ins[i]`` untimed calls (``LEAD_IN``), so that the threads the other
    one left spinning have stopped when the clock starts.
    """
    ratios = []
    for r in range(rounds):
        per_call = {}
        for slot in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn, number = (first, second)[slot], numbers[slot]
            for _ in range(lead_ins[slot]):
                fn()
            start = clock()
            for _ in range(number):
                fn()
            per_call[slot] = (clock() - start) / number
        ratios.append(per_call[1] / per_call[0])
    return float(np.median(ratios))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise NotImplementedError(f"/proc/self/status has no {field}")


def peak_growth(call) -> int:
    """Bytes: the peak resident memory during ``call()`` over the resident memory before it.

    Linux's high-water mark of the resident set (``VmHWM``) is reset first (``5`` written to
    ``/proc/self/clear_refs``), so that what ran before in the process does not hide the call's peak.
    ``NotImplementedError`` (asv's skip) where there is no such ``/proc``.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
    except OSError as exc:
        raise NotImplementedError(f"no resettable peak of the resident memory here: {exc}") from None
    call()
    return max(_status_kib("VmHWM") - before, 0) * 1024
