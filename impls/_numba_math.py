"""The elementary functions of the ``numba`` backend's kernels (``impls._numba_kernels``, whose
docstring states the math, the accuracy and the NaN/inf rules): ``exp`` and ``log`` as vectorisable
polynomials of about one ulp, the shims that widen a half-precision row as it is loaded and narrow
it as it is stored, and the compile options every kernel module shares.
"""

import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.imputils import impl_ret_new_ref
from numba.extending import intrinsic, overload
from numba.np.arrayobj import _empty_nd_impl

from ._half import narrow, widen


#: Every kernel: cached on disk, and NumPy's error model (``1 / 0.0`` is inf, not
#: ZeroDivisionError).
_jit = functools.partial(njit, cache=True, error_model="numpy")
#: The helpers: they allocate nothing, so they run without Numba's reference
#: counting (``_nrt=False``); otherwise every call with array arguments and
#: every view costs atomic increments, about 100 ns a row. Only kernels call them,
#: so they are compiled without the wrappers that let Python call them (a quarter
#: of a first call's compile time: ``benchmarks/NOTES.md`` entry 26).
_kernel = functools.partial(_jit, _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
#: ``_kernel``s that Python calls too (the serial elementwise kernels, ``exp_span``,
#: ``pieces_per_row``): with the wrapper that lets it.
_callable = functools.partial(_jit, _nrt=False)
#: Glue between the loops that holds loops or branches on ``mode`` (no arithmetic
#: that fast-math flags could change): inlined by Numba into its caller, since a
#: call with array arguments costs 30-50 cycles of argument passing, LLVM does not
#: inline functions that hold vectorised loops, and Numba prunes a mode's branches
#: only in code inlined into the kernel of that mode. Scalar helpers are
#: ``_kernel``s: typed once, and inlined by LLVM.
_glue = functools.partial(_kernel, inline="always")
_EXACT = {"contract"}
_REDUCE = {"reassoc", "contract"}


# --------------------------------------------------------------------------
# Vectorisable elementary functions
# --------------------------------------------------------------------------

@intrinsic
def _maximum(typingctx, a, b):
    """``llvm.maximum``: the larger of ``a`` and ``b``, NaN if either is NaN.

    Unlike ``a if a > b else b`` its reductions vectorise without ``nnan``.
    """
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maximum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def _least(typingctx, a, b):
    """``min(a, b)`` of two integers of one type: a ``select``, typed in place, where Python's ``min``
    is a function Numba compiles apart (0.05 s of a first call)."""
    if not (isinstance(a, types.Integer) and a == b):
        return None

    def codegen(context, builder, signature, args):
        less = builder.icmp_signed("<", *args) if a.signed else builder.icmp_unsigned("<", *args)
        return builder.select(less, *args)

    return a(a, b), codegen


@intrinsic
def _as(typingctx, value, to):
    """The bits of the number ``value`` as the number type ``to`` of the same width (``_as(x, np.int32)``
    is ``np.float32(x).view(np.int32)``): a ``bitcast``, typed in place, where NumPy's scalar ``view``
    is a function Numba compiles apart for each pair of types."""
    target = getattr(to, "instance_type", None)
    if not (isinstance(value, (types.Integer, types.Float)) and isinstance(target, (types.Integer, types.Float))
            and value.bitwidth == target.bitwidth):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(target))

    return target(value, to), codegen


@_kernel(fastmath=_EXACT)
def _horner(v, coefficients):
    """``sum(c[k] v**k)`` by Horner's rule, in ``v``'s dtype; unrolled by LLVM."""
    dtype = type(v)
    p = dtype(coefficients[-1])
    for k in range(len(coefficients) - 2, -1, -1):
        p = p * v + dtype(coefficients[k])
    return p


#: Near-minimax fit of ``exp(r)`` on ``[-ln2/2, ln2/2]``, relative error 1.9e-9.
_EXP32 = (1.0, 1.0, 0.49999991059303284, 0.16666419804096222,
          0.04166822507977486, 0.008374815806746483, 0.0013836842263117433)
#: SLEEF's ``xexp`` polynomial (degree 11), about 1 ulp of float64.
_EXP64 = (1.0, 1.0, 0.5, 0.166666666666666851703837, 0.0416666666666665047591422,
          0.00833333333331652721664984, 0.00138888888889774492207962,
          0.000198412698960509205564975, 2.4801587159235472998791e-05,
          2.75572362911928827629423e-06, 2.75573911234900471893338e-07,
          2.51112930892876518610661e-08, 2.08860621107283687536341e-09)


@_kernel(fastmath=_EXACT)
def _exp_f32(x):
    """``exp(x)`` for float32 ``x <= 0`` or NaN, branch-free, within about one ulp.

    ``k = round(x / ln2)`` by the ``1.5 * 2**23`` rounding trick (the low bits
    of ``t`` hold ``k``), ``r = x - k ln2`` in two parts (Cody-Waite), and
    ``exp(x) = 2**k p(r)`` by adding ``k`` to the exponent bits of ``p(r)``.
    Below ``-87.3`` the result would not be a normal float and is 0, which
    also gives ``exp(-inf) = 0``; NaN stays NaN.
    """
    magic = np.float32(12582912.0)
    t = x * np.float32(1.4426950408889634) + magic
    k = t - magic
    r = x - k * np.float32(0.693145751953125)
    r = r - k * np.float32(1.428606765330187e-06)
    p = _horner(r, _EXP32)
    bits = np.int32(_as(np.float32(p), np.int32) + (_as(np.float32(t), np.int32) << 23))
    return np.float32(0.0) if x < np.float32(-87.3) else _as(bits, np.float32)


@_kernel(fastmath=_EXACT)
def _exp_f64(x):
    """``exp(x)`` for float64 ``x <= 0`` or NaN, as ``_exp_f32`` with SLEEF's constants.

    Rounding by ``1.5 * 2**52``; below ``-708.3`` the result is 0.
    """
    magic = 6755399441055744.0
    t = x * 1.4426950408889634 + magic
    k = t - magic
    r = x - k * 0.69314718055966295651160180568695068359375
    r = r - k * 0.28235290563031577122588448175013436025525412068e-12
    p = _horner(r, _EXP64)
    bits = np.int64(_as(np.float64(p), np.int64) + (_as(np.float64(t), np.int64) << 52))
    return 0.0 if x < -708.3 else _as(bits, np.float64)


def _exp(x):
    """``exp(x)`` for ``x <= 0`` or NaN in ``x``'s dtype (``_exp_f32``/``_exp_f64``)."""
    return np.exp(x)


@overload(_exp)
def _exp_overload(x):
    impl = {types.float32: _exp_f32, types.float64: _exp_f64}.get(x)
    if impl is not None:
        return lambda x: impl(x)
    return None


@_callable(fastmath=_EXACT)
def exp_span(x, out):
    """``out = exp(x)`` elementwise for ``x <= 0``, with the kernels' own vectorised ``_exp``:
    what ``xentbench.roofline`` measures the exp ceiling with, beside ``np.exp``."""
    for i in range(x.size):
        out[i] = _exp(x[i])


def _by_dtype(v, if_float32, if_float64):
    """``if_float32`` if ``v`` is a float32, else ``if_float64`` (chosen when compiling)."""
    return if_float32 if np.asarray(v).dtype == np.float32 else if_float64


@overload(_by_dtype)
def _by_dtype_overload(v, if_float32, if_float64):
    if v == types.float32:
        return lambda v, if_float32, if_float64: if_float32
    return lambda v, if_float32, if_float64: if_float64


#: ``log1p(y) = 2 atanh(u)``, ``u = y / (2 + y)``: fits of ``atanh(u) / u`` in
#: ``v = u**2`` on ``[0, 1/9]``; float32 near-minimax (rel. error 4e-9),
#: float64 the Taylor series ``1/(2k+1)`` (truncation error 2e-17).
_ATANH32 = (1.0, 0.3333315849304199, 0.20012454688549042, 0.13980303704738617, 0.14089156687259674)
_ATANH64 = tuple(1.0 / (2 * k + 1) for k in range(16))


@_kernel(fastmath=_EXACT)
def _log1p_small(y, coefficients):
    """``log1p(y)`` for ``y`` in ``[-0.3, 1]`` (or NaN), branch-free: ``2u P(u**2)``
    with ``|u| <= 1/3`` and ``P`` one of the ``_ATANH`` fits; ``y`` enters
    exactly, so tiny ``y`` keep their precision."""
    u = y / (type(y)(2.0) + y)
    return type(y)(2.0) * u * _horner(u * u, coefficients)


@_kernel(fastmath=_EXACT)
def _log(v):
    """``log(v)`` of a float64 ``v >= 0`` (or NaN, inf), branch-free, about 1 ulp.

    ``v = 2**e f`` from the bits, with ``f`` in ``[sqrt(1/2), sqrt(2))``, and
    ``log(v) = e ln2 + log1p(f - 1)`` (``f - 1`` is exact). For ``v`` a normal
    number; 0 gives ``-inf``, NaN and ``+inf`` themselves.
    """
    bits = _as(np.float64(v), np.uint64)
    # the biased exponent as a float, by the 2**52 trick: AVX2 converts no int64
    e = _as(np.uint64((bits >> np.uint64(52)) | np.uint64(0x4330000000000000)), np.float64)
    e = e - 4503599627371519.0  # 2**52 + 1023
    f = _as(np.uint64((bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)), np.float64)
    big = f > 1.4142135623730951
    f = f * 0.5 if big else f
    e = e + 1.0 if big else e
    r = e * 0.6931471805598903 + (e * 5.497923018708371e-14 + _log1p_small(f - 1.0, _ATANH64))
    r = -np.inf if v == 0.0 else r
    return r if v < np.inf else v


# --------------------------------------------------------------------------
# Half precision in the kernels of whole rows: widened on loading, narrowed on storing
# --------------------------------------------------------------------------

def _half_bits(dtype) -> bool:
    """Whether Numba's element type ``dtype`` is half-precision bits (``impls._half.BITS``)."""
    return dtype in (types.int16, types.uint16)


@intrinsic
def _vector(typingctx, size, dtype):
    """``np.empty(size, dtype)`` for ``size >= 0`` and a NumPy number class ``dtype`` (``np.float32``):
    allocated in place by Numba's own allocation (``_empty_nd_impl``, which its ``np.empty`` calls),
    where ``np.empty`` is a function Numba compiles apart (0.13 s of a first call)."""
    element = getattr(dtype, "instance_type", None)
    if not (isinstance(size, types.Integer) and isinstance(element, types.Number)):
        return None
    vector = types.Array(element, 1, "C")

    def codegen(context, builder, signature, args):
        n = context.cast(builder, args[0], signature.args[0], types.intp)
        return impl_ret_new_ref(context, builder, vector, _empty_nd_impl(context, builder, vector, [n])._getvalue())

    return vector(size, dtype), codegen


def _row_buffers(x, out, blocks):
    """The buffers of rows computed whole: the ``blocks`` maxima of a row, of the dtype ``x`` is
    computed in (float32 for half precision), and the float32 buffers of a row of ``x`` and of
    ``out`` where they hold half-precision bits (``_load``, ``_into``; else empty). Chosen when
    compiling."""


@overload(_row_buffers, inline="always")
def _row_buffers_overload(x, out, blocks):
    compute = np.float64 if x.dtype == types.float64 else np.float32
    x_half, out_half = int(_half_bits(x.dtype)), int(_half_bits(out.dtype))
    return lambda x, out, blocks: (_vector(blocks, compute), _vector(x.shape[1] * x_half, np.float32),
                                   _vector(out.shape[1] * out_half, np.float32))


def _into(out, buffer):
    """Where a row's results are computed: ``out`` itself, or for a half-precision ``out``
    the float32 ``buffer`` that ``_store`` then narrows into it. Chosen when compiling,
    so that the results code is typed once per dtype, never for the half-precision bits."""


@overload(_into, inline="always")
def _into_overload(out, buffer):
    if _half_bits(out.dtype):
        return lambda out, buffer: buffer
    return lambda out, buffer: out


def _load(x, buffer):
    """The row ``x`` in the dtype it is computed in: ``x`` itself, or half precision widened into
    ``buffer`` (float32, ``x``'s size), which is returned. Read only: results are never written
    through what a helper returns (``_subtract_target``)."""


@overload(_load, inline="always")
def _load_overload(x, buffer):
    if not _half_bits(x.dtype):
        return lambda x, buffer: x

    def widen_row(x, buffer):
        for j in range(x.size):
            buffer[j] = widen(x[j])
        return buffer
    return widen_row


def _store(target, out):
    """Narrow the float32 results in ``target`` into the half-precision row ``out`` (ties to
    even); nothing for any other ``out``. A call of its own, so that its stores are never
    taken for dead (``_subtract_target``)."""


@overload(_store, jit_options={"_nrt": False})
def _store_overload(target, out):
    if not _half_bits(out.dtype):
        return lambda target, out: None

    def narrow_row(target, out):
        for j in range(out.size):
            out[j] = narrow(target[j], out)
    return narrow_row
