"""What every Numba module of ``impls`` needs before its first kernel is defined.

Imported first by ``impls.numba_parallel`` and ``impls._half``: whichever a
process imports first, Numba gets a threading layer that is safe for
concurrent callers, and ``cache=True`` a writable folder.
"""

import ctypes
import os
import sys
import tempfile
import warnings

import numba


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


_threading_layer()
_cache_dir()
