"""float16 / bfloat16 <-> float32 at memory speed, for the front door (``impls._validate``).

Every backend computes half-precision logits (float16, ``ml_dtypes.bfloat16``)
in float32 and casts the results back.
NumPy's float32 -> float16 cast takes a slow path for every result that is
subnormal in float16 (``|y| < 6.1e-5``: most probabilities of a softmax over
many classes, most of a gradient): 0.37 s for 4096 x 1000 such values against
0.04 s for normal ones, measured here. LLVM's ``fptrunc`` / ``fpext`` to and
from ``half`` compile to the F16C instructions ``vcvtps2ph`` / ``vcvtph2ps``
(or an exact software sequence where F16C is missing), whose speed does not
depend on the values. Both are IEEE conversions: ``fpext`` is exact and
``fptrunc`` rounds to nearest, ties to even, like NumPy's cast; NaN stays NaN,
``inf`` stays ``inf``, values beyond float16's range round to ``inf``.

bfloat16 is the upper half of a float32: widening shifts its bits 16 places
left (exact), narrowing rounds to nearest, ties to even, on the bits (add
``0x7FFF`` plus the lowest kept bit, shift right), and turns a NaN into the
quiet NaN of its sign (``0x7FC0``, ``0xFFC0``), exactly as ``ml_dtypes``' cast (``tests/test_half.py``).

The kernels work on half-precision data viewed as its bits (``as_bits``:
float16 as ``int16``, bfloat16 as ``uint16``; Numba has no float16 on the CPU,
nor any bfloat16), through ``widen`` and ``narrow``, which the kernels of
``impls._numba_kernels`` use too; from ``_numba_setup.SERIAL_BELOW`` values up they run on
every core, as the kernels do, in the threading layer that ``impls._numba_setup`` chose.
"""

import functools

import ml_dtypes
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from . import _numba_setup  # first: the threading layer and the cache folder

#: Every kernel: cached on disk, NumPy's error model (as ``impls._numba_kernels``).
_jit = functools.partial(njit, cache=True, error_model="numpy")


@intrinsic
def _f16_to_f32(typingctx, bits):
    """float16 bits (``int16``) to float32, exactly (``fpext``)."""
    if bits != types.int16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
    return types.float32(bits), codegen


@intrinsic
def _f32_to_f16(typingctx, value):
    """float32 to the bits (``int16``) of the nearest float16, ties to even (``fptrunc``)."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))
    return types.int16(value), codegen


@_jit(inline="always")
def _bf16_to_f32(bits):
    """bfloat16 bits (``uint16``) to float32, exactly: the upper half of its bits."""
    return np.uint32(np.uint32(bits) << np.uint32(16)).view(np.float32)


@_jit(inline="always")
def _f32_to_bf16(value):
    """float32 to the bits of the nearest bfloat16, ties to even; a NaN to the quiet NaN of its sign."""
    # every step cast back to uint32: Numba promotes uint32 arithmetic to int64, which
    # vectorises at half the width (measured 1.7x slower)
    bits = np.float32(value).view(np.uint32)
    lsb = np.uint32(np.uint32(bits >> np.uint32(16)) & np.uint32(1))
    rounded = np.uint32(np.uint32(bits + np.uint32(0x7FFF)) + lsb) >> np.uint32(16)
    quiet = np.uint32(np.uint32(bits >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
    return np.uint16(quiet) if value != value else np.uint16(rounded)


def widen(value):
    """An element as the dtype it is computed in: float16 bits (``int16``) and bfloat16
    bits (``uint16``) as float32, exactly; float32 and float64 as themselves."""


@overload(widen)
def _widen_overload(value):
    if value == types.int16:
        return lambda value: _f16_to_f32(value)
    if value == types.uint16:
        return lambda value: _bf16_to_f32(value)
    if isinstance(value, types.Float):
        return lambda value: value
    return None


def narrow(value, out):
    """``value`` as an element of the array ``out``: rounded to float32 and then, for a
    half-precision ``out`` (its bits), to the nearest half, ties to even (exactly
    NumPy's and ``ml_dtypes``' casts of the float32 value); else cast as NumPy casts."""


@overload(narrow)
def _narrow_overload(value, out):
    if out.dtype == types.int16:
        return lambda value, out: _f32_to_f16(np.float32(value))
    if out.dtype == types.uint16:
        return lambda value, out: _f32_to_bf16(np.float32(value))
    if isinstance(out.dtype, types.Float):
        return lambda value, out: out.dtype.type(value)
    return None


@_jit(inline="always")
def convert_span(source, out):
    """``out[i]``: ``source[i]`` widened or narrowed (``widen``, ``narrow``), for 1-D arrays of one size."""
    for i in range(source.size):
        out[i] = narrow(widen(source[i]), out)


@_jit()
def _serial(source, out):
    """``widen`` / ``narrow`` of every value, on the calling thread."""
    convert_span(source, out)


@_jit(parallel=True)
def _parallel(source, out, threads):
    """``widen`` / ``narrow`` of every value, one contiguous chunk per thread."""
    chunk = -(-source.size // threads)
    for t in prange(threads):
        convert_span(source[t * chunk:(t + 1) * chunk], out[t * chunk:(t + 1) * chunk])


BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
#: The half-precision dtypes, and the integer type of the same size that Numba sees their bits
#: as: neither exists in Numba, and the integer type tells the kernels which half they hold.
BITS = {np.dtype(np.float16): np.dtype(np.int16), BFLOAT16: np.dtype(np.uint16)}


def as_bits(a: np.ndarray) -> np.ndarray:
    """A half-precision array as a view of its bits (``BITS``); any other array as itself."""
    bits = BITS.get(a.dtype)
    return a if bits is None else a.view(bits)


def convert(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a`` converted into ``out``, a C-contiguous array of ``a``'s shape: half precision
    to float32 or back."""
    source = as_bits(np.ascontiguousarray(a).reshape(-1))
    target = as_bits(out.reshape(-1))
    if source.size < _numba_setup.SERIAL_BELOW:
        _serial(source, target)
    else:
        _parallel(source, target, numba.get_num_threads())
    return out
