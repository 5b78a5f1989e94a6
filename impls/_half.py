"""float16 <-> float32 at memory speed, for the front door (``impls._validate``).

Every backend computes float16 logits in float32 and casts the results back.
NumPy's float32 -> float16 cast takes a slow path for every result that is
subnormal in float16 (``|y| < 6.1e-5``: most probabilities of a softmax over
many classes, most of a gradient): 0.37 s for 4096 x 1000 such values against
0.04 s for normal ones, measured here. LLVM's ``fptrunc`` / ``fpext`` to and
from ``half`` compile to the F16C instructions ``vcvtps2ph`` / ``vcvtph2ps``
(or an exact software sequence where F16C is missing), whose speed does not
depend on the values. Both are IEEE conversions: ``fpext`` is exact and
``fptrunc`` rounds to nearest, ties to even, like NumPy's cast; NaN stays NaN,
``inf`` stays ``inf``, values beyond float16's range round to ``inf``.

The kernels work on float16 data viewed as ``uint16`` (Numba has no float16
arithmetic on the CPU); from ``PARALLEL_FROM`` values up they run on every
core, in the threading layer that ``impls._numba_setup`` chose.
"""

import functools

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import _numba_setup  # noqa: F401  (first: the threading layer and the cache folder)

#: Every kernel: cached on disk, NumPy's error model (as ``impls._numba_kernels``).
_jit = functools.partial(njit, cache=True, error_model="numpy")


#: Conversions of this many values or more run on every core. Waking Numba's
#: worker threads costs 15-25 us here; one thread converts 5-9 G values/s.
PARALLEL_FROM = 1 << 20


@intrinsic
def _convert(typingctx, value):
    """float16 bits (``uint16``) to float32, exactly; float32 to the bits of the
    nearest float16, ties to even."""
    if value == types.uint16:
        def widen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
        return types.float32(value), widen
    if value == types.float32:
        def narrow(context, builder, signature, args):
            return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))
        return types.uint16(value), narrow
    return None


@_jit(inline="always")
def _span(source, out):
    for i in range(source.size):
        out[i] = _convert(source[i])


@_jit()
def _serial(source, out):
    """``_convert`` of every value, on the calling thread."""
    _span(source, out)


@_jit(parallel=True)
def _parallel(source, out, threads):
    """``_convert`` of every value, one contiguous chunk per thread."""
    chunk = -(-source.size // threads)
    for t in prange(threads):
        _span(source[t * chunk:(t + 1) * chunk], out[t * chunk:(t + 1) * chunk])


def _run(source: np.ndarray, out: np.ndarray) -> None:
    if source.size < PARALLEL_FROM:
        _serial(source, out)
    else:
        _parallel(source, out, numba.get_num_threads())


def to_float32(a: np.ndarray) -> np.ndarray:
    """float16 ``a`` as a new C-contiguous float32 array of the same shape."""
    a = np.ascontiguousarray(a)
    out = np.empty(a.shape, np.float32)
    _run(a.reshape(-1).view(np.uint16), out.reshape(-1))
    return out


def to_float16(a: np.ndarray) -> np.ndarray:
    """float32 ``a`` as a new C-contiguous float16 array of the same shape."""
    a = np.ascontiguousarray(a)
    out = np.empty(a.shape, np.float16)
    _run(a.reshape(-1), out.reshape(-1).view(np.uint16))
    return out
