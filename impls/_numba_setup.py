"""What every Numba module of ``impls`` needs before its first kernel is defined.

Imported first by ``impls.numba_parallel`` and ``impls._half``: whichever a
process imports first, Numba gets a threading layer that is safe for
concurrent callers, ``cache=True`` a writable folder, and an inliner that
copies each inlined function once (a third less cold compile). It also says, once for
both, how much work goes to every core (``SERIAL_BELOW``).
"""

import copy
import ctypes
import functools
import os
import sys
import tempfile
import warnings

import numba

#: Work on fewer values than this runs on the calling thread alone; from here up, on every
#: core: the kernels' calls (``impls.numba_parallel._launch``: their serial or parallel entry
#: point) and the half-precision conversions beside them (``impls._half.convert``: the dense
#: labels going in, results going out), so that a call wakes Numba's worker threads for all
#: its work or for none of it. Waking them costs 15-25 us here: a sparse loss of 1x32000
#: behind the front door takes 39 us serial, 52 us parallel; measured crossover (sparse and
#: softmax, rows of 10 to 128256 classes): 32K-64K logits. A conversion of its own would
#: gain from every core only from ~256K values (one thread converts 5-9 G values/s), but
#: next to a parallel kernel the workers are awake anyway, and there a serial conversion
#: ran 1.2-10x slower than alone, on the first write to each line of its output
#: (``benchmarks/NOTES.md`` entry 22).
SERIAL_BELOW = 1 << 16


def _threading_layer() -> None:
    """Select a threading layer that is safe for concurrent callers.

    Numba's default ``workqueue`` layer aborts when two threads call a parallel
    kernel at once. The ``tbb`` wheel (a dependency) installs ``libtbb.so.12``
    into the environment's ``lib/``, which the dynamic loader does not search,
    so Numba would silently fall back to OpenMP (not fork-safe). Loading the
    library by path first lets Numba's TBB pool find it. ``NUMBA_THREADING_LAYER``
    set by the user wins.
    """
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    lib = os.path.join(sys.prefix, "lib", "libtbb.so.12")
    if os.path.exists(lib):
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    numba.config.THREADING_LAYER = "threadsafe"  # tbb where found, else omp


def _writable(path: str) -> bool:
    """Whether Numba could cache in ``path`` (it tries the same two steps)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _cache_dir() -> None:
    """Give the kernels' on-disk cache (``cache=True``) a writable home.

    Numba caches beside the module, in ``NUMBA_CACHE_DIR`` or in the user's
    cache folder, and raises at import where none is writable (a read-only
    install for a user without a writable home). Then the cache goes to a fresh
    temporary folder, with one warning: it works, it only compiles again in
    every new process.
    """
    from numba.misc.appdirs import AppDirs

    candidates = [numba.config.CACHE_DIR,
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__"),
                  AppDirs(appname="numba", appauthor=False).user_cache_dir]
    if not any(path and _writable(path) for path in candidates):
        numba.config.CACHE_DIR = tempfile.mkdtemp(prefix="xentbench-numba-")
        warnings.warn(f"no writable Numba cache folder; compiled kernels are cached in "
                      f"{numba.config.CACHE_DIR} for this process only", RuntimeWarning, stacklevel=2)


class _OneMemo:
    """``copy`` as ``InlineWorker.inline_ir`` uses it, with one memo for the whole call."""

    def __init__(self):
        self._memo = {}

    def deepcopy(self, x):
        return copy.deepcopy(x, self._memo)


def _inline_copies_once() -> None:
    """Make Numba's ``inline="always"`` copy the inlined function's IR once, not once per block.

    ``InlineWorker.inline_ir`` deep-copies the callee's blocks one at a time, each
    ``copy.deepcopy`` with a memo of its own (numba/numba#8989, open). Every block
    refers to the callee's one ``Scope``, which holds every variable of the callee and of
    all it inlined in turn, so each block's copy copies all of them again: the kernels'
    nested helpers spent half of a cold compile there (``cProfile``: 28 s of deepcopy in
    57 s). During each call of ``inline_ir`` its module's ``copy`` is given one memo, so
    the scope is copied once per copy. The IR is the same, two independent copies as
    before; Numba compiles under its global lock, so no other compile sees the swap.
    """
    from numba.core import inline_closurecall

    inline_ir = inline_closurecall.InlineWorker.inline_ir

    @functools.wraps(inline_ir)
    def copying_once(*args, **kwargs):
        previous = inline_closurecall.copy
        inline_closurecall.copy = _OneMemo()
        try:
            return inline_ir(*args, **kwargs)
        finally:
            inline_closurecall.copy = previous

    inline_closurecall.InlineWorker.inline_ir = copying_once


_threading_layer()
_cache_dir()
_inline_copies_once()
