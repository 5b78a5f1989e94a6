"""The asv benchmark suite of xentbench; ``xentbench/suite.py`` documents its grid, ``common.py`` the rest.

Like numpy's suite, importing it checks that every function of
``xentbench.accuracy.FUNCTIONS`` has a time_, a peakmem_ and a track_
benchmark, so a function added without benchmarks fails ``asv check``.
"""

import os
import sys

# ``xentbench bench --commit REV`` measures REV's library, exported to this
# directory: it goes first on sys.path (asv puts the checkout, whose ``impls``
# is the working tree, in front of PYTHONPATH).
_library = os.environ.get("XENTBENCH_LIBRARY")
if _library:
    sys.path.insert(0, _library)
    import impls

    if not os.path.abspath(impls.__file__).startswith(os.path.abspath(_library) + os.sep):
        raise ImportError(f"XENTBENCH_LIBRARY={_library} but impls imports from {impls.__file__}")

from . import (bench_accuracy, bench_activations, bench_grads, bench_half, bench_losses, bench_out,  # noqa: F401
               bench_paired)
from .common import missing_benchmarks

_missing = missing_benchmarks(
    [cls for module in (bench_losses, bench_grads, bench_activations, bench_accuracy)
     for cls in vars(module).values() if isinstance(cls, type) and cls.__module__ == module.__name__])
if _missing:
    raise ImportError("benchmarks missing for: " + "; ".join(_missing))
