"""Compile the numba backend's kernels now, into Numba's on-disk cache, so that no first call waits.

    xentbench warm [--dtype DTYPE ...] [--jobs N]

A first call of a numba function with an empty cache compiles the kernels
that call runs, which takes 2-4 s per function, dtype and way of cutting the
work on this project's 2-core machine (``benchmarks/NOTES.md`` entry 26).
``warm`` makes every such first call ahead of time: each function of the
backend (the losses also with all their options at once, and the probability
forms) on each of ``SHAPES`` (every way of cutting the work, on the calling
thread and on every core), for every dtype
(``--dtype``, repeatable; default all the suite's), one process per dtype,
``--jobs`` at once (default: one per core, since Numba compiles on one
thread). Every later process loads the kernels from the cache in
milliseconds; a kernel already cached is loaded, not compiled again. The
README's set-up command runs it.

Exit status: 0, or 1 where a call failed (its error is printed).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from xentbench import console
from xentbench.suite import DTYPES, FOCUS

#: (batch, classes) of the calls per function: one per way the kernels cut the work
#: (``impls._numba_kernels.ROWS``), each under and over the parallel threshold; the last, a
#: row cut into pieces, needs two threads or more, and runs whole rows on one.
SHAPES = ((8, 1000), (128, 1000), (8, 10), (8192, 10), (1, 65536))


def add_arguments(parser) -> None:
    parser.add_argument("--dtype", action="append", choices=DTYPES, default=[],
                        help=f"repeatable; default: {', '.join(DTYPES)}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes compiling at once (default: one per core)")


#: the options that reach every options kernel: the loss options all at once, the sigmoid's too
LOSS_OPTIONS, SIGMOID_OPTIONS = "all+sum", "smoothing+pos_weight"


def calls(backend, logits, labels):
    """Every call a user's first calls compile for: the seven functions, the losses with their
    options, the probability forms; ``(name, thunk)`` pairs."""
    import impls
    from xentbench import accuracy
    from xentbench.inputs import SIGMOID_OPTIONS as SIGMOID, arguments, ignoring, loss_options

    classes = logits.shape[-1]
    for function in impls.FUNCTIONS:
        args = arguments(function, logits, labels)
        yield function, lambda f=getattr(backend, function), a=args: f(*a)
        if function in accuracy.SPARSE | accuracy.DENSE:
            options = loss_options(LOSS_OPTIONS, function, classes)
            a = (ignoring(args[0], options), args[1]) if function in accuracy.SPARSE else args
            yield f"{function}+options", lambda f=getattr(backend, function), a=a, o=options: f(*a, **o)
    z, x = arguments("sigmoid_cross_entropy_with_logits", logits, labels)
    options = SIGMOID[SIGMOID_OPTIONS](classes)
    yield "sigmoid+options", lambda: backend.sigmoid_cross_entropy_with_logits(z, x, **options)
    probs = backend.softmax(logits)
    dense = arguments("softmax_cross_entropy_with_logits", logits, labels)[0]
    yield "binary_cross_entropy", lambda: backend.binary_cross_entropy(z, probs)
    yield "categorical_cross_entropy", lambda: backend.categorical_cross_entropy(dense, probs)


def compile_dtype(dtype: str) -> float:
    """Every call of ``calls`` on both ``SHAPES`` in ``dtype``; the seconds it took."""
    import impls
    from impls import _numba_setup
    from xentbench.inputs import make_logits

    assert SHAPES[0][0] * SHAPES[0][1] < _numba_setup.SERIAL_BELOW <= SHAPES[1][0] * SHAPES[1][1]
    assert SHAPES[2][0] * SHAPES[2][1] < _numba_setup.SERIAL_BELOW <= SHAPES[3][0] * SHAPES[3][1]
    backend = impls.get(FOCUS)
    start = time.perf_counter()
    for batch, classes in SHAPES:
        logits, labels = make_logits(batch, classes, dtype)
        for _, call in calls(backend, logits, labels):
            call()
    return time.perf_counter() - start


def run(args) -> int:
    dtypes = args.dtype or list(DTYPES)
    failed = 0
    started = time.perf_counter()
    print(f"xentbench warm: compiling the {FOCUS} kernels for {', '.join(dtypes)}, {max(1, args.jobs)} at once",
          flush=True)
    # every dtype's line as it finishes, in a log too (a Bar's plain lines are otherwise 10 s apart)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("spawn")) as pool, \
            console.Bar(len(dtypes), f"compiling the {FOCUS} kernels", every_s=0) as bar:
        jobs = {pool.submit(compile_dtype, d): d for d in dtypes}
        for job in as_completed(jobs):
            try:
                bar.advance(f"{jobs[job]} in {job.result():.0f} s")
            except Exception as exc:  # noqa: BLE001  (report every dtype, then fail)
                failed += 1
                bar.advance(f"{jobs[job]} failed")
                print(f"xentbench warm: {jobs[job]}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"xentbench warm: {len(dtypes) - failed} of {len(dtypes)} dtypes compiled or loaded in "
          f"{time.perf_counter() - started:.0f} s")
    return 1 if failed else 0
