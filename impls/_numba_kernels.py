"""Pure Numba kernels of the ``numba`` backend: vectorised, every core busy.

The row statistics
    Each row ``x`` of ``C`` logits is reduced to ``m = max(x)`` and
    ``s = sum(exp(x - m))``; then ``softmax = exp(x - m) / s``,
    ``log_softmax = (x - m) - log(s)``, sparse loss ``log(s) - (x[label] - m)``,
    dense loss ``Z log(s) - A`` with ``Z = sum(z)`` and ``A = sum(z (x - m))``,
    fused gradient ``exp(x - m) / s - z``. The max is subtracted first and
    never added back, so a small loss keeps its relative precision.

Online over blocks (Milakov & Gimelshein 2018, one block at a time)
    A row is read in blocks of ``BLOCK`` classes that stay in L1 cache: the
    block's max ``mb``, then ``sb = sum(exp(x - mb))`` over the same block, then
    the running ``(m, s)`` and ``(mb, sb)`` merge into
    ``(M, s exp(m - M) + sb exp(mb - M))`` with ``M = max(m, mb)``. So the
    logits are read from memory once, and a row too long for one thread is cut
    into pieces whose statistics merge the same way.

The loss options (``impls._options``)
    The kernels (``ROWS``) take ``opt = (w, eps, lam,
    scale, ignore, exact, wsum, alpha, beta)``: the class weights ``w`` (empty for none), the smoothing
    ``eps``, the z-loss ``lam``, the row ``scale``, the ignored label, whether
    any option is set (``exact``), ``wsum = sum(w)`` (``C`` for none),
    ``alpha = scale (1 - eps)`` and ``beta = scale eps / C``. They are applied
    inside the same passes: the statistics pass also sums, block by block from
    L1, ``B = sum w x`` (for smoothing, ``_smoothing_sum``) and, in the pass
    of the exponentials, the dense ``Z = sum w z``, ``A = sum w z (x - m)`` (``_sums``); then,
    with ``lse = m + log(s)``, a row's loss is
    ``scale ((1 - eps) F + eps / C (wsum lse - B) + lam lse**2)``, ``F`` the
    weighted loss without smoothing (``w_y (log(s) - (x_y - m))`` or
    ``Z log(s) - A``), and its gradient ``c p - alpha w z - beta w`` with
    ``c = scale (W + 2 lam lse)``, ``W = (1 - eps) (w_y or Z) + eps wsum / C``.
    An ignored row's loss and gradient are 0, whatever its logits. Without
    options (``exact`` false), ``c = 1``, ``alpha = 1``, ``beta = 0``: the
    results of before, bit for bit. A call without options passes ``opt = None``
    and gets a compilation of its own, in which these neutral values are
    built inside the kernel (``_neutral``).

Accuracy
    ``exp`` is a polynomial of at most about one ulp (``_exp``). Each block sum
    is formed in SIMD lanes of the logits' dtype (``BLOCK / 32`` terms per
    lane) and added to a float64 total, so the error does not grow with the
    row length; the per-row scalars (``log(s)``, the loss) are float64.

NaN and infinities (exactly as the reference formulas)
    The max propagates NaN (``llvm.maximum``), so a NaN anywhere makes ``m``
    NaN and the whole row NaN; ``+inf`` gives ``inf - inf = NaN`` in ``s``; a
    row of ``-inf`` has ``m = -inf`` and ``x - m = NaN``; a ``-inf`` logit in a
    finite row has probability ``exp(-inf) = 0``; a dense label 0 at a ``-inf``
    logit gives ``0 * inf = NaN`` (as TensorFlow).

Half precision (float16, bfloat16)
    Arrives as its bits (``impls._half.as_bits``: float16 as ``int16``,
    bfloat16 as ``uint16``) and is computed in float32: each row (a tile of
    short rows, a piece of a long row) is widened into a float32 buffer of its
    size as it is loaded (``_load``), the results are written to a float32
    buffer and narrowed into the output, rounding to nearest even
    (``_store``; ``_into`` picks the buffer when compiling, so the code that
    writes results is compiled once per dtype, for float32 arrays), so every value is the float32 computation's, rounded once
    more: bit for bit what converting the logits to float32, running the
    float32 kernels and converting the results back gives. No buffer is
    larger than a row per task. Where a row is cut into pieces, the results
    pass computes the piece's exponentials again rather than keep them all.
    The per-row loss is written in float32 and narrowed by the caller. A call
    with loss options gets its half-precision logits as float32 from the front
    door (``impls._options``), so the kernels with options are compiled
    for float32 and float64 only, though the code they share is written for both.

One kernel per call (``ROWS``)
    Each ``(mode, grad, path)`` has a kernel of its own, in which the three are
    constants, so that Numba prunes every other mode and path before it types
    the code, and a first call compiles only what it runs (``_kernel_of``;
    ``benchmarks/NOTES.md`` entry 26). Whole rows and tiles are serial kernels,
    run on every core by a ``prange`` over chunks of rows (``_on_every_core``)
    that shares their compiled code.

Fast-math
    No blanket ``fastmath``: elementwise arithmetic is compiled with
    ``contract`` only (FMA fusion; ``_EXACT``). Reductions get ``reassoc`` too
    (``_REDUCE``), which lets LLVM keep 32 partial sums in SIMD lanes; they only
    add up values computed by ``_EXACT`` functions, whose instructions keep
    their own flags when LLVM inlines them, so no other arithmetic is reordered.
"""

import functools
import math
import types as pytypes

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

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

#: Classes per block: 8 KiB of float32, in L1 cache between the max and the exp pass.
BLOCK = 2048
#: Terms summed in float32 lanes before a float64 addition (``_sums``): 128
#: keeps float32 errors at or below TensorFlow's; 64 costs 25% more time.
SUB = 128
#: Rows shorter than this are computed in tiles of ``TILE // classes`` rows.
SHORT = 64
TILE = 2048
#: Chunks of rows per thread (load balance against per-chunk set-up).
CHUNKS = 4
#: The shortest piece a row is cut into when there are fewer rows than threads.
MIN_PIECE = 16384

#: What a kernel computes (``mode``).
SOFTMAX, LOG_SOFTMAX, SPARSE, DENSE = 0, 1, 2, 3
#: How a kernel cuts the work (``path``): tiles of short rows, whole rows, or rows cut into pieces
#: (``path``, chosen by the caller from the shape: ``impls.numba_parallel._path``).
TILES, WHOLE, PIECES = 0, 1, 2


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
    bits = np.int32(np.float32(p).view(np.int32) + (np.float32(t).view(np.int32) << 23))
    return np.float32(0.0) if x < np.float32(-87.3) else bits.view(np.float32)


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
    bits = np.int64(np.float64(p).view(np.int64) + (np.float64(t).view(np.int64) << 52))
    return 0.0 if x < -708.3 else bits.view(np.float64)


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
    bits = np.float64(v).view(np.uint64)
    # the biased exponent as a float, by the 2**52 trick: AVX2 converts no int64
    e = np.uint64((bits >> np.uint64(52)) | np.uint64(0x4330000000000000)).view(np.float64)
    e = e - 4503599627371519.0  # 2**52 + 1023
    f = np.uint64((bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)).view(np.float64)
    big = f > 1.4142135623730951
    f = f * 0.5 if big else f
    e = e + 1.0 if big else e
    r = e * 0.6931471805598903 + (e * 5.497923018708371e-14 + _log1p_small(f - 1.0, _ATANH64))
    r = -np.inf if v == 0.0 else r
    return r if v < np.inf else v


# --------------------------------------------------------------------------
# Half precision: widened on loading, narrowed on storing
# --------------------------------------------------------------------------

def _half_bits(dtype) -> bool:
    """Whether Numba's element type ``dtype`` is half-precision bits (``impls._half.BITS``)."""
    return dtype in (types.int16, types.uint16)


def _half(a):
    """1 if the array ``a`` holds half-precision bits, else 0 (chosen when compiling): the
    factor of the sizes of the float32 buffers a task needs, and the choice of the code
    that writes results into such a buffer (see the module docstring)."""


@overload(_half, inline="always")
def _half_overload(a):
    half = int(_half_bits(a.dtype))
    return lambda a: half


def _into(out, buffer):
    """Where a task computes its results: ``out`` itself, or for a half-precision ``out``
    the float32 ``buffer`` that ``_store`` then narrows into it. Chosen when compiling,
    so that the results code is typed once per dtype, never for the half-precision bits."""


@overload(_into, inline="always")
def _into_overload(out, buffer):
    if _half_bits(out.dtype):
        return lambda out, buffer: buffer
    return lambda out, buffer: out


def _empty(like, shape):
    """``np.empty(shape)`` of the dtype the array ``like`` is computed in: float32 for half precision."""


@overload(_empty, inline="always")
def _empty_overload(like, shape):
    if _half_bits(like.dtype):
        return lambda like, shape: np.empty(shape, np.float32)
    return lambda like, shape: np.empty(shape, like.dtype)


def _load(x, buffer):
    """``x`` (1-D or 2-D) in the dtype it is computed in: ``x`` itself, or half precision
    widened into ``buffer`` (float32, ``x``'s shape), which is returned. Read only: results
    are never written through what a helper returns (``_subtract_target``)."""


@overload(_load, inline="always")
def _load_overload(x, buffer):
    if not _half_bits(x.dtype):
        return lambda x, buffer: x
    if x.ndim == 1:
        def widen_row(x, buffer):
            for j in range(x.size):
                buffer[j] = widen(x[j])
            return buffer
        return widen_row

    def widen_rows(x, buffer):
        for r in range(x.shape[0]):
            for j in range(x.shape[1]):
                buffer[r, j] = widen(x[r, j])
        return buffer
    return widen_rows


def _store(target, out):
    """Narrow the float32 results in ``target`` into the half-precision ``out`` (1-D or
    2-D, ties to even); nothing for any other ``out``. A call of its own, so that its
    stores are never taken for dead (``_subtract_target``)."""


@overload(_store, jit_options={"_nrt": False})
def _store_overload(target, out):
    if not _half_bits(out.dtype):
        return lambda target, out: None
    if out.ndim == 1:
        def narrow_row(target, out):
            for j in range(out.size):
                out[j] = narrow(target[j], out)
        return narrow_row

    def narrow_rows(target, out):
        for r in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[r, j] = narrow(target[r, j], out)
    return narrow_rows


# --------------------------------------------------------------------------
# Statistics of blocks, spans and tiles
# --------------------------------------------------------------------------

@_kernel(fastmath=_REDUCE)
def _max(x):
    """``max(x)``, NaN if any is NaN, ``-inf`` if empty."""
    m = x.dtype.type(-np.inf)
    for j in range(x.size):
        m = _maximum(m, x[j])
    return m


@_kernel
def _shift(m):
    """The value subtracted from a block whose max is ``m``: ``m``, or 0 for ``-inf``.

    A block of ``-inf`` then sums ``exp(-inf) = 0`` and ``z * -inf``, as the
    reference does, instead of ``-inf - -inf = NaN``.
    """
    return m if m > -np.inf else type(m)(0.0)


@_kernel(fastmath=_EXACT)
def _xent_term(z, x, shift):
    """``z (x - shift)``, one rounding each, never reassociated."""
    return z * (x - shift)


@_kernel(fastmath=_REDUCE)
def _sums(x, z, w, out, shift, dense, store):
    """``(sum(exp(x - shift)), sum(w z), sum(w z (x - shift)))`` as float64, the
    last two only if ``dense`` (else 0), ``w`` the class weights or None (``z``
    itself: Numba removes the branch when compiling, so the loop without weights
    is the one of before, which a branch on ``w.size`` kept from vectorising);
    if ``store``, the exponentials are also written to ``out``.

    Each run of ``SUB`` terms is summed in SIMD lanes of ``x``'s dtype (at most
    ``SUB / 16`` terms per lane, LLVM keeping 16) and added in float64, so the
    rounding error does not grow with the row, and few small terms are added
    to the lane that holds the block's ``exp(0) = 1`` (each such addition
    rounds to an ulp of 1).

    The runs are indexed by unsigned integers. With a signed ``j`` Numba adds a wraparound for
    a negative index, and LLVM's run-time overlap checks then take each array to reach ``n``
    elements past its end: an output allocated next to an input (the half-precision row
    buffers of the worker threads) sent the loop to its scalar version, 3-4x slower.
    """
    s, zsum, a = 0.0, 0.0, 0.0
    zero = x.dtype.type(0.0)
    for b in range(0, x.size, SUB):
        part_s, part_z, part_a = zero, zero, zero
        for j in range(np.uint64(b), np.uint64(min(b + SUB, x.size))):
            e = _exp(x[j] - shift)
            part_s += e
            if store:
                out[j] = e
            if dense:
                zj = z[j] if w is None else w[j] * z[j]
                part_z += zj
                part_a += _xent_term(zj, x[j], shift)
        s += np.float64(part_s)
        zsum += np.float64(part_z)
        a += np.float64(part_a)
    return s, zsum, a


@_kernel(fastmath=_REDUCE)
def _smoothing_sum(x, w):
    """``B = sum(w x)`` of a block as float64 (``sum(x)`` if ``w`` is empty), summed as ``_sums`` does.
    A pass of its own: folded into ``_max``'s, the two reductions took 0.18 ns a logit
    against 0.08 + 0.05 apart (EPYC f25m17 AVX2)."""
    b = 0.0
    zero = x.dtype.type(0.0)
    for start in range(0, x.size, SUB):
        part = zero
        run = range(np.uint64(start), np.uint64(min(start + SUB, x.size)))  # unsigned, as in ``_sums``
        if w.size > 0:
            for j in run:
                part += w[j] * x[j]
        else:
            for j in run:
                part += x[j]
        b += np.float64(part)
    return b


@_kernel
def _rescaled(s, mb, m):
    """``s exp(mb - m)``: 0 for ``s = 0`` (a span of ``-inf``), no ``exp`` call if ``mb == m``."""
    if s == 0.0:
        return 0.0
    return s if mb == m else s * math.exp(np.float64(mb) - np.float64(m))


@_kernel
def _merge(one, two):
    """Statistics of the union of two spans from theirs (online softmax).

    ``s`` of each side is rescaled by ``exp(m_i - M)``; ``A`` moves to the new
    shift by ``- Z_i (shift(M) - shift(m_i))``, a float64 difference of two
    logits, exact for float32. A side with ``s = 0`` (all ``-inf``) adds 0.
    ``B = sum w x`` is not shifted: the two add.
    """
    m1, s1, z1, a1, b1 = one
    m2, s2, z2, a2, b2 = two
    m = _maximum(m1, m2)
    s = _rescaled(s1, m1, m) + _rescaled(s2, m2, m)
    shift = np.float64(_shift(m))
    a = (a1 - z1 * (shift - np.float64(_shift(m1)))) + (a2 - z2 * (shift - np.float64(_shift(m2))))
    return m, s, z1 + z2, a, b1 + b2


@_glue
def _span_stats(x, z, w, out, maxima, dense, store, smooth):
    """``(m, s, Z, A, B)`` of a span ``x`` (a row or a piece of one), block by
    block, reading the logits once: per block its max ``mb``, then
    ``sum exp(x - shift(mb))`` (and the dense sums, weighted by ``w`` unless
    it is empty, and ``B`` if ``smooth``) from L1, merged online.

    With ``store``, ``out`` receives ``exp(x - shift(mb))`` of each block and
    ``maxima`` each ``mb``, for ``_scale`` to turn into probabilities.

    Every helper takes views (``x[lo:hi]``) and indexes them from 0: an index
    that may be negative costs a wraparound select per element, and LLVM then
    loads one element at a time.
    """
    weighted = w.size > 0
    stats = (x.dtype.type(-np.inf), 0.0, 0.0, 0.0, 0.0)
    for b in range(0, x.size, BLOCK):
        e = min(b + BLOCK, x.size)
        xb = x[b:e]
        m = _max(xb)
        if dense and weighted:
            s, zsum, a = _sums(xb, z[b:e], w[b:e], out[b:e] if store else out, _shift(m), True, store)
        else:
            s, zsum, a = _sums(xb, z[b:e] if dense else xb, None, out[b:e] if store else out, _shift(m), dense,
                               store)
        smooth_sum = _smoothing_sum(xb, w[b:e] if weighted else w) if smooth else 0.0
        if store:
            maxima[b // BLOCK] = m
        stats = _merge(stats, (m, s, zsum, a, smooth_sum))
    return stats


@_kernel
def _transpose(x, xt):
    """``xt[j, r] = x[r, j]``: a tile of short rows, one row per SIMD lane. Column by column:
    the inner loop's stores are contiguous (at 2 classes 0.35 ns an element, row by row 0.98)."""
    for j in range(x.shape[1]):
        for r in range(x.shape[0]):
            xt[j, r] = x[r, j]


@_kernel(fastmath=_REDUCE)
def _lane_stats(xt, zt, w, shift, lanes, dense, smooth):
    """The statistics of every column of ``xt`` (a row of logits each), in
    SIMD lanes across rows: a 10-class row costs no horizontal reduction and
    no loop set-up. Into ``lanes`` (float64): max, ``s``, ``Z``, ``A``, ``B``
    (the dense sums weighted by ``w`` unless it is empty, ``B = sum w x`` if
    ``smooth``); ``xt`` is overwritten with ``exp(xt - shift)``, ``shift``
    (``xt``'s dtype) the shift of each column.

    Four passes over the tile in L1: the exponentials in ``xt``'s dtype (8
    lanes), the sums in float64 (4 lanes; at most 63 terms, but a float64 sum
    costs less here than its rounding in the results).
    """
    m, s, zsum, a, b = lanes[0], lanes[1], lanes[2], lanes[3], lanes[4]
    weighted = w.size > 0
    classes, n_rows = xt.shape
    shift[:] = -np.inf
    for j in range(classes):
        for r in range(n_rows):
            shift[r] = _maximum(shift[r], xt[j, r])
    for r in range(n_rows):
        m[r] = shift[r]
        shift[r] = _shift(shift[r])
    zsum[:], a[:] = 0.0, 0.0
    if dense and weighted:
        for j in range(classes):
            wj = np.float64(w[j])
            for r in range(n_rows):
                wz = wj * np.float64(zt[j, r])
                zsum[r] += wz
                a[r] += _xent_term(wz, np.float64(xt[j, r]), np.float64(shift[r]))
    elif dense:
        for j in range(classes):
            for r in range(n_rows):
                zsum[r] += np.float64(zt[j, r])
                a[r] += _xent_term(np.float64(zt[j, r]), np.float64(xt[j, r]), np.float64(shift[r]))
    if smooth:  # else ``B`` is never read
        b[:] = 0.0
        for j in range(classes):
            wj = np.float64(w[j]) if weighted else 1.0
            for r in range(n_rows):
                b[r] += wj * np.float64(xt[j, r])
    for j in range(classes):
        for r in range(n_rows):
            xt[j, r] = _exp(xt[j, r] - shift[r])
    s[:] = 0.0
    for j in range(classes):
        for r in range(n_rows):
            s[r] += np.float64(xt[j, r])


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

@_kernel
def _plain_loss(mode, log_s, x_label, m, zsum, a):
    """A row's loss from its statistics, in float64: sparse ``log(s) - (x[label] - m)``,
    dense ``Z log(s) - A``."""
    if mode == SPARSE:
        return log_s - (np.float64(x_label) - np.float64(m))
    return zsum * log_s - a


@_kernel
def _loss(mode, log_s, x_label, w_label, stats, opt, classes):
    """A row's loss and gradient coefficient ``c`` from its statistics, in float64.

    Without options ``_plain_loss`` and ``c = 1``. With options (module
    docstring): ``F`` the plain loss weighted (``w_label`` the label's class
    weight; the dense ``Z``, ``A`` are weighted already), the loss
    ``scale ((1 - eps) F + eps / C (wsum lse - B) + lam lse**2)`` and
    ``c = scale (W + 2 lam lse)``. Not yet 0 for an ignored row.
    """
    m, _, zsum, a, b = stats
    _, eps, lam, scale, _, exact, wsum, _, _ = opt
    first = _plain_loss(mode, log_s, x_label, m, zsum, a)
    if not exact:
        return first, 1.0
    weight = np.float64(w_label) if mode == SPARSE else zsum
    first = first * weight if mode == SPARSE else first
    lse = np.float64(_shift(m)) + log_s
    loss, total = (1.0 - eps) * first, (1.0 - eps) * weight
    if eps > 0.0:
        loss += eps / classes * (wsum * lse - b)
        total += eps / classes * wsum
    if lam > 0.0:
        loss += lam * lse * lse
        total += 2.0 * lam * lse
    return scale * loss, scale * total


@_kernel
def _factor(mb, m, s):
    """``exp(shift(mb) - m) / s``: what turns a block's ``exp(x - shift(mb))``
    into probabilities ``exp(x - m) / s`` (``m``, ``s`` the row's). A block of
    ``-inf`` in a row with a larger max gets ``0 * s``: 0, or NaN if the row is
    NaN (a ``+inf`` elsewhere); a row of ``-inf`` gets ``inf / 0``, so
    ``0 * inf = NaN``; NaN stays NaN."""
    if mb == -np.inf and m > -np.inf:
        return 0.0 * s
    return math.exp(np.float64(_shift(mb)) - np.float64(m)) / s


@_kernel(fastmath=_EXACT)
def _scale_block(out, z, w, factor, alpha, beta, dense):
    """``out = out * factor - (alpha z + beta) w`` (``z`` only if ``dense``, ``w``
    unless empty), in float64, rounded once. Without options (``alpha = 1``,
    ``beta = 0``, no ``w``) the loops of ``out * factor - z`` and ``out * factor``."""
    if w.size > 0 or alpha != 1.0 or beta != 0.0:
        _subtract_targets(out, z, w, factor, alpha, beta, dense)
    elif dense:
        for j in range(out.size):
            out[j] = np.float64(out[j]) * factor - np.float64(z[j])
    else:
        for j in range(out.size):
            out[j] = np.float64(out[j]) * factor


@_kernel(fastmath=_EXACT)
def _subtract_targets(out, z, w, factor, alpha, beta, dense):
    """``_scale_block`` with options: a loop per case, each branch-free."""
    if dense and w.size > 0:
        for j in range(out.size):
            out[j] = np.float64(out[j]) * factor - (alpha * np.float64(z[j]) + beta) * np.float64(w[j])
    elif dense:
        for j in range(out.size):
            out[j] = np.float64(out[j]) * factor - (alpha * np.float64(z[j]) + beta)
    elif w.size > 0:
        for j in range(out.size):
            out[j] = np.float64(out[j]) * factor - beta * np.float64(w[j])
    else:
        for j in range(out.size):
            out[j] = np.float64(out[j]) * factor - beta


@_glue
def _scale(out, z, w, maxima, stats, dense, coefficient, alpha, beta):
    """Probabilities times ``coefficient``, minus ``(alpha z + beta) w``
    (``_scale_block``), of a span from the exponentials ``_span_stats`` stored,
    block by block."""
    m, s, _, _, _ = stats
    weighted = w.size > 0
    for b in range(0, out.size, BLOCK):
        e = min(b + BLOCK, out.size)
        factor = _factor(maxima[b // BLOCK], m, s) * coefficient
        wb = w[b:e] if weighted else w
        if dense:  # two calls, not one choosing ``z``: each call site keeps its own array types
            _scale_block(out[b:e], z[b:e], wb, factor, alpha, beta, True)
        else:
            _scale_block(out[b:e], out[b:e], wb, factor, alpha, beta, False)


@_kernel(fastmath=_EXACT)
def _write_log_probs(x, out, m, log_s):
    """``out = (x - m) - log(s)``, in float64 (``x - m`` exact for float32), rounded once."""
    m = np.float64(m)
    for j in range(x.size):
        out[j] = (np.float64(x[j]) - m) - log_s


@_kernel
def _subtract_target(out, j, target):
    """``out[j] -= target``: the label's term of a sparse gradient (``1`` without options).
    A call of its own: written inline, this store was dropped (the sparse gradient lacked
    its ``-1``) once the row it writes came back from a helper returning one of its array
    arguments; Numba's dead-code elimination does not follow such aliases. Calls are never
    removed."""
    out[j] -= target


@_glue
def _span_results(x, z, w, out, maxima, label, stats, mode, grad, opt, coefficient, w_label, keep):
    """Log-softmax, or probabilities / gradient from what ``_span_stats``
    stored, of a span (``w``: its class weights, or empty); ``label``: the
    sparse label's index in the span, if in it; an ignored row (not ``keep``) gets 0."""
    m, s, _, _, _ = stats
    alpha, beta = opt[7], opt[8]
    if mode == LOG_SOFTMAX:
        _write_log_probs(x, out, m, math.log(s))
    elif not keep:
        out[:] = 0.0
    elif mode == SOFTMAX or grad:
        _scale(out, z, w, maxima, stats, mode == DENSE, coefficient, alpha, beta)
        if mode == SPARSE and 0 <= label < x.size:
            _subtract_target(out, label, alpha * np.float64(w_label))


# --------------------------------------------------------------------------
# Tasks: a row, a piece of a row, a tile of short rows
# --------------------------------------------------------------------------

@_glue
def _stores(mode, grad):
    """Whether the statistics pass keeps the exponentials (softmax, gradients)."""
    return mode == SOFTMAX or grad


@_kernel
def _target(labels, w, r, mode, ignore):
    """Row ``r``'s label (an index into the row: 0 for an ignored or dense
    row), its class weight (1 for none), and whether the row counts."""
    if mode != SPARSE:
        return 0, 1.0, True
    label = labels[r]
    keep = label != ignore
    label = label if keep else 0
    return label, np.float64(w[label]) if w.size > 0 else 1.0, keep


@_glue
def _row(x, z, out, loss, maxima, r, target, mode, grad, opt):
    """Row ``r`` (``x``, ``z``; ``target``: ``_target``'s) whole into ``out`` (the results row) and ``loss[r]``."""
    dense = mode == DENSE
    w = opt[0]
    label, w_label, keep = target
    stats = _span_stats(x, z, w, out, maxima, dense, _stores(mode, grad), opt[1] > 0.0)
    coefficient = 1.0
    if mode >= SPARSE:
        row_loss, coefficient = _loss(mode, math.log(stats[1]), x[label], w_label, stats, opt, x.size)
        loss[r] = row_loss if keep else 0.0
    _span_results(x, z, w, out, maxima, label if mode == SPARSE else -1, stats, mode, grad, opt,
                  coefficient, w_label, keep)


@_glue
def _row_task(x, z, labels, out, loss, maxima, r, mode, grad, opt, xbuf, obuf):
    """Row ``r`` whole: statistics, loss, and results while the row is in cache.
    ``out`` has no columns when there are no results; ``xbuf``, ``obuf``: the
    float32 row buffers of half precision (``_load``, ``_store``)."""
    xr = _load(x[r], xbuf)
    zr = z[r] if mode == DENSE else xr
    target = _target(labels, opt[0], r, mode, opt[4])
    _row(xr, zr, _into(out[r], obuf), loss, maxima, r, target, mode, grad, opt)
    _store(obuf, out[r])


@_callable
def pieces_per_row(rows, classes, threads):
    """Pieces to cut each row into: 1 with a row for every thread, else one
    piece per thread, none shorter than ``MIN_PIECE`` classes."""
    if rows >= threads:
        return 1
    return max(1, min(-(-threads // rows), classes // MIN_PIECE))


@_kernel
def _piece(i, pieces, classes):
    """Row and ``[lo, hi)`` of piece ``i`` (row-major), bounds on block edges."""
    r, p = divmod(np.int64(i), np.int64(pieces))
    blocks = -(-classes // BLOCK)
    lo = blocks * p // pieces * BLOCK
    hi = min(blocks * (p + 1) // pieces * BLOCK, classes)
    return r, lo, hi


@_glue
def _piece_stats(x, z, out, maxima, i, pieces, mode, grad, opt, xbuf, obuf):
    """Statistics of piece ``i`` (``_piece``); ``xbuf``, ``obuf`` as in ``_row_task``."""
    r, lo, hi = _piece(i, pieces, x.shape[1])
    dense = mode == DENSE
    w = opt[0]
    wp = w[lo:hi] if w.size > 0 else w
    xp = _load(x[r, lo:hi], xbuf)
    zp = z[r, lo:hi] if dense else xp
    return _span_stats(xp, zp, wp, _into(out[r, lo:hi], obuf), maxima, dense, _stores(mode, grad), opt[1] > 0.0)


@_glue
def _piece_results(x, z, labels, out, maxima, stats, i, pieces, mode, grad, opt, coefficient, xbuf, obuf):
    """Results of piece ``i`` given its row's merged ``stats`` and gradient ``coefficient``.
    A half-precision ``out`` kept no exponentials (``obuf`` lives for one pass): they are
    computed again."""
    r, lo, hi = _piece(i, pieces, x.shape[1])
    dense = mode == DENSE
    w = opt[0]
    wp = w[lo:hi] if w.size > 0 else w
    xp = _load(x[r, lo:hi], xbuf)
    zp = z[r, lo:hi] if dense else xp
    label, w_label, keep = _target(labels, w, r, mode, opt[4])
    label = label - lo if mode == SPARSE else -1
    target = _into(out[r, lo:hi], obuf)
    if _half(out):
        if _stores(mode, grad):
            _span_stats(xp, zp, wp, target, maxima, dense, True, False)
    _span_results(xp, zp, wp, target, maxima, label, stats, mode, grad, opt, coefficient, w_label, keep)
    _store(obuf, out[r, lo:hi])


@_kernel
def _take(x, labels, out):
    """``out[r] = x[r, labels[r]]``: a loop of its own, as a vectorised gather
    costs more than the rest of the loss."""
    for r in range(x.shape[0]):
        out[r] = x[r, labels[r]]


@_kernel
def _take_options(x, labels, w, ignore, x_label, w_label):
    """``_take`` with options: also ``w_label[r] = w[labels[r]]`` (1 if ``w`` is
    empty), and label 0 for an ignored row."""
    weighted = w.size > 0
    for r in range(x.shape[0]):
        label = labels[r] if labels[r] != ignore else 0
        x_label[r] = x[r, label]
        w_label[r] = w[label] if weighted else 1.0


@_kernel(fastmath=_EXACT)
def _lane_finish(lanes, x_label, w_label, loss, mode, log, opt, classes):
    """Per row of a tile, in SIMD lanes, from the lane statistics: the loss if
    ``mode >= SPARSE`` (``x_label``, ``w_label``: the label's logit and class
    weight, the latter with options only), and into ``lanes[1]`` ``log(s)`` if
    ``log`` else the factor ``c / s`` of the exponentials (``c``: ``_loss``'s
    gradient coefficient, 1 without options)."""
    if not opt[5]:
        for r in range(lanes.shape[1]):
            s = lanes[1, r]
            log_s = _log(s)
            if mode >= SPARSE:
                loss[r] = _plain_loss(mode, log_s, x_label[r], lanes[0, r], lanes[2, r], lanes[3, r])
            lanes[1, r] = log_s if log else 1.0 / s
        return
    for r in range(lanes.shape[1]):
        s = lanes[1, r]
        log_s = _log(s)
        coefficient = 1.0
        if mode >= SPARSE:
            stats = (lanes[0, r], s, lanes[2, r], lanes[3, r], lanes[4, r] if opt[1] > 0.0 else 0.0)
            loss[r], coefficient = _loss(mode, log_s, x_label[r], w_label[r], stats, opt, classes)
        lanes[1, r] = log_s if log else coefficient / s


@_kernel
def _untranspose(xt, z, w, out, factor, alpha, beta, dense):
    """``out[r, j] = xt[j, r] * factor[r] - (alpha z[r, j] + beta) w[j]`` (``z``
    only if ``dense``, ``w`` unless empty), in float64, rounded once. Without
    options (``alpha = 1``, ``beta = 0``, no ``w``) the loop of ``xt * factor - z``."""
    weighted = w.size > 0
    if weighted or alpha != 1.0 or beta != 0.0:
        for r in range(out.shape[0]):
            for j in range(out.shape[1]):
                v = np.float64(xt[j, r]) * factor[r]
                t = alpha * np.float64(z[r, j]) + beta if dense else beta
                out[r, j] = v - (t * np.float64(w[j]) if weighted else t)
        return
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = np.float64(xt[j, r]) * factor[r]
            out[r, j] = v - np.float64(z[r, j]) if dense else v


@_glue
def _tile_results(x, z, labels, out, lanes, xt, w_label, mode, grad, opt):
    """Results of a tile of rows ``x`` (labels ``z``, ``labels``; ``w_label``: the
    labels' class weights, with options only) into ``out`` from the transposed
    exponentials ``xt`` and the lane statistics (``_lane_finish``); an ignored row's are 0."""
    w, ignore, exact, alpha, beta = opt[0], opt[4], opt[5], opt[7], opt[8]
    if mode == LOG_SOFTMAX:
        for r in range(x.shape[0]):
            _write_log_probs(x[r], out[r], lanes[0, r], lanes[1, r])
    elif _stores(mode, grad):
        _untranspose(xt, z, w, out, lanes[1], alpha, beta, mode == DENSE)
        if mode == SPARSE:
            for r in range(x.shape[0]):
                label = labels[r]
                if not exact:
                    _subtract_target(out[r], label, 1.0)
                elif label != ignore:
                    _subtract_target(out[r], label, alpha * np.float64(w_label[r]))
                else:
                    out[r, :] = 0.0


@_glue
def _tile_task(x, z, labels, out, loss, lo, hi, mode, grad, opt, scratch, lanes, xbuf, obuf):
    """Rows ``[lo, hi)`` of short rows whole: transposed into ``scratch``
    (``(2 classes + 3, hi - lo)``, the compute dtype), statistics, loss and factors
    in SIMD lanes (``lanes``, ``(5, hi - lo)`` float64), results transposed
    back; an ignored row's loss and results are 0. ``xbuf``, ``obuf``: the
    float32 tile buffers of half precision (``_load``, ``_store``)."""
    dense = mode == DENSE
    classes = x.shape[1]
    w, ignore = opt[0], opt[4]
    xt, zt = scratch[:classes], scratch[classes:2 * classes]
    shift, x_label, w_label = scratch[2 * classes], scratch[2 * classes + 1], scratch[2 * classes + 2]
    xs = _load(x[lo:hi], xbuf)
    zs = z[lo:hi] if dense else xs
    _transpose(xs, xt)
    if dense:
        _transpose(zs, zt)
    exact = opt[5]
    _lane_stats(xt, zt, w, shift, lanes, dense, opt[1] > 0.0)
    if mode == SPARSE and exact:
        _take_options(xs, labels[lo:hi], w, ignore, x_label, w_label)
    elif mode == SPARSE:
        _take(xs, labels[lo:hi], x_label)
    _lane_finish(lanes, x_label, w_label, loss[lo:hi] if mode >= SPARSE else loss, mode, mode == LOG_SOFTMAX,
                 opt, classes)
    _tile_results(xs, zs, labels[lo:hi], _into(out[lo:hi], obuf), lanes, xt, w_label, mode, grad, opt)
    _store(obuf, out[lo:hi])
    if mode == SPARSE and exact:
        for r in range(hi - lo):
            if labels[lo + r] == ignore:
                loss[lo + r] = 0.0


# --------------------------------------------------------------------------
# The parallel driver
# --------------------------------------------------------------------------

# The three ways to cut the work, inlined by Numba into the kernels (``_kernel_of``): tiles of
# short rows and whole rows on the calling thread (``_on_every_core`` runs them on chunks of rows
# on every core), rows cut into pieces on every core. ``mode``: ``SOFTMAX``/``LOG_SOFTMAX`` write ``out``; ``SPARSE`` (labels ``labels``) and
# ``DENSE`` (labels ``z``) write ``loss`` and, if ``grad``, the gradient into ``out``. ``x`` and
# ``out`` may be half-precision bits; ``z``, ``loss`` and the class weights are of the compute
# dtype (float32 for half precision). Arrays a mode does not use are not read (any 2-D
# C-contiguous array of the compute dtype for ``z``, any int64 vector for ``labels``, an empty
# vector for ``loss``, and ``out`` with no columns); ``opt``: the loss options (module docstring).

@_jit(inline="always")
def _tiles(x, z, labels, out, loss, mode, grad, opt):
    """Rows shorter than ``SHORT``, in tiles of ``TILE // classes`` rows (``_tile_task``)."""
    n_rows, classes = x.shape
    tile = TILE // classes
    for lo in range(0, n_rows, tile):
        hi = min(lo + tile, n_rows)
        _tile_task(x, z, labels, out, loss, lo, hi, mode, grad, opt,
                   _empty(x, (2 * classes + 3, hi - lo)), np.empty((5, hi - lo)),
                   np.empty(((hi - lo) * _half(x), classes), np.float32),
                   np.empty(((hi - lo) * _half(out), out.shape[1]), np.float32))


@_jit(inline="always")
def _whole(x, z, labels, out, loss, mode, grad, opt):
    """Each row one task: statistics, loss, and results while the row is in cache."""
    n_rows, classes = x.shape
    maxima = _empty(x, -(-classes // BLOCK))
    xbuf = np.empty(classes * _half(x), np.float32)
    obuf = np.empty(out.shape[1] * _half(out), np.float32)
    for r in range(n_rows):
        _row_task(x, z, labels, out, loss, maxima, r, mode, grad, opt, xbuf, obuf)


@_jit(inline="always")
def _cut(x, z, labels, out, loss, mode, grad, opt, threads):
    """Fewer rows than threads (``pieces_per_row``): each row cut into pieces whose statistics
    are merged before the results are written."""
    n_rows, classes = x.shape
    blocks = -(-classes // BLOCK)
    pieces = pieces_per_row(n_rows, classes, threads)
    n = n_rows * pieces
    parts = np.empty((n, 6))  # each piece's statistics; then in a row's first piece, merged, and c
    maxima = _empty(x, (n, blocks))
    compute = maxima.dtype.type
    for i in prange(n):
        _, lo, hi = _piece(i, pieces, classes)
        xbuf = np.empty((hi - lo) * _half(x), np.float32)
        obuf = np.empty((hi - lo) * _half(out), np.float32)
        parts[i, 0], parts[i, 1], parts[i, 2], parts[i, 3], parts[i, 4] = _piece_stats(
            x, z, out, maxima[i], i, pieces, mode, grad, opt, xbuf, obuf)
    for r in range(n_rows):
        merged = (compute(-np.inf), 0.0, 0.0, 0.0, 0.0)
        for i in range(r * pieces, (r + 1) * pieces):
            merged = _merge(merged, (compute(parts[i, 0]), parts[i, 1], parts[i, 2], parts[i, 3], parts[i, 4]))
        first = r * pieces
        parts[first, 0], parts[first, 1], parts[first, 2], parts[first, 3], parts[first, 4] = merged
        parts[first, 5] = 1.0
        if mode >= SPARSE:
            label, w_label, keep = _target(labels, opt[0], r, mode, opt[4])
            row_loss, parts[first, 5] = _loss(mode, math.log(merged[1]), widen(x[r, label]), w_label, merged, opt,
                                              classes)
            loss[r] = row_loss if keep else 0.0
    if mode >= SPARSE and not grad:
        return
    for i in prange(n):
        first = i - i % pieces  # the row's merged statistics
        stats = (compute(parts[first, 0]), parts[first, 1], parts[first, 2], parts[first, 3], parts[first, 4])
        _, lo, hi = _piece(i, pieces, classes)
        xbuf = np.empty((hi - lo) * _half(x), np.float32)
        obuf = np.empty((hi - lo) * _half(out), np.float32)
        _piece_results(x, z, labels, out, maxima[i], stats, i, pieces, mode, grad, opt, parts[first, 5], xbuf, obuf)


@_glue
def _neutral(z):
    """The options of a call without options: no weights (an empty view of
    ``z``, of the compute dtype), ``eps = lam = 0``, ``scale = 1``, no label
    ignored (labels are ``>= 0``), not ``exact``, ``alpha = 1``, ``beta = 0``.
    Built inside the kernel, so that the serial kernel compiles to the code of before."""
    return (z.reshape(-1)[:0], 0.0, 0.0, 1.0, -1, False, 0.0, 1.0, 0.0)


def _kernel_of(mode, grad, path):
    """The compiled kernel of one ``mode`` and ``path`` (``_tiles``, ``_whole`` or ``_cut``), with or
    without the gradient (``grad``): serial for ``TILES`` and ``WHOLE`` (``_on_every_core`` runs it
    on every core), parallel for ``PIECES``.

    The three are constants of the kernel (closure variables, part of its cache key). The branch
    on ``path`` is pruned before Numba inlines the path, and every branch on ``mode`` and ``grad``
    after, before it types the code: a call types and compiles only the code it runs
    (``benchmarks/NOTES.md`` entry 26). ``opt``: the loss options (module docstring), or None for
    none, which Numba compiles apart (its branch is pruned by type), so that a call without
    options pays neither their argument (Numba's dispatch of the tuple costs 0.25 us) nor their
    compilation. ``threads``, for ``PIECES``: Numba's thread count (``numba.get_num_threads()``,
    which would keep the kernel out of the on-disk cache if called inside it).
    """
    def kernel(x, z, labels, out, loss, opt, threads=1):
        options = _neutral(z) if opt is None else opt
        if path == TILES:
            _tiles(x, z, labels, out, loss, mode, grad, options)
        elif path == WHOLE:
            _whole(x, z, labels, out, loss, mode, grad, options)
        else:
            _cut(x, z, labels, out, loss, mode, grad, options, threads)
    kernel.__name__ = kernel.__qualname__ = "rows_{}{}_{}".format(
        ("softmax", "log_softmax", "sparse", "dense")[mode], "_grad" if grad else "", ("tiles", "whole", "pieces")[path])
    return _jit(parallel=path == PIECES)(kernel)


def _chunks(x, z, labels, out, loss, opt, threads):
    """``serial`` on ``CHUNKS`` chunks of rows per thread, the chunks on every core (``prange``).
    Every row is computed as ``serial`` computes it alone, so the results do not depend on the cut.
    ``z``, ``labels`` and ``loss`` may be the placeholders of the arrays a mode does not read
    (``impls.numba_parallel``): their slices are not read either."""
    n_rows = x.shape[0]
    chunk = -(-n_rows // (CHUNKS * threads))
    for c in prange(-(-n_rows // chunk)):
        lo = c * chunk
        hi = min(lo + chunk, n_rows)
        serial(x[lo:hi], z[lo:hi], labels[lo:hi], out[lo:hi], loss[lo:hi], opt)  # noqa: F821  (``_on_every_core``)


def _on_every_core(serial):
    """``_chunks`` compiled around the serial kernel ``serial``, which it calls as the global
    ``serial`` of a copy of its own: the parallel kernel then types and compiles a call and a
    loop, and shares ``serial``'s compiled code (a closure variable would put the dispatcher,
    with a new identity in every process, into the cache key)."""
    name = serial.__name__ + "_parallel"
    chunks = pytypes.FunctionType(_chunks.__code__, dict(_chunks.__globals__, serial=serial), name)
    chunks.__qualname__ = name
    return _jit(parallel=True)(chunks)


def _entry_points():
    """``ROWS``: a ``(parallel, serial)`` pair of kernels per ``(mode, grad, path)``; a call that
    ``PIECES`` would cut runs whole rows serially (a serial call has one thread)."""
    pairs = {}
    for mode, grad in [(SOFTMAX, False), (LOG_SOFTMAX, False), (SPARSE, False), (SPARSE, True), (DENSE, False),
                       (DENSE, True)]:
        tiles, whole = _kernel_of(mode, grad, TILES), _kernel_of(mode, grad, WHOLE)
        pairs[mode, grad, TILES] = (_on_every_core(tiles), tiles)
        pairs[mode, grad, WHOLE] = (_on_every_core(whole), whole)
        pairs[mode, grad, PIECES] = (_kernel_of(mode, grad, PIECES), whole)
    return pairs


ROWS = _entry_points()


@_callable(fastmath=_EXACT)
def sigmoid_span_options(z, x, out, pos_weight, eps):
    """``out = max(x, 0) - x z + log1p(exp(-|x|))``, elementwise: ``exp`` in
    the compute dtype of ``x``, the rest in float64 (``log1p`` to the precision
    of that dtype), rounded once (half precision: to float32, then to half). The labels are smoothed to ``z (1 - eps) + eps / 2``
    (``eps = 0``: ``z`` itself); with a ``pos_weight`` ``w`` (not empty) the loss is
    ``-w z log(s) - (1 - z) log(1 - s)``, ``s = sigmoid(x)``, as
    ``(x < 0 ? -w z x : (1 - z) x) + (1 + (w - 1) z) log1p(exp(-|x|))``: the linear
    term taken on the side where it cannot meet an infinite ``log1p`` term of the other
    sign, so that ``x = -inf`` gives ``+inf`` for ``w z > 0``, as without ``pos_weight``."""
    coefficients = _by_dtype(widen(x.dtype.type(0)), _ATANH32, _ATANH64)
    keep, half = 1.0 - eps, 0.5 * eps
    if pos_weight.size > 0:
        for i in range(x.size):
            xi = widen(x[i])
            v = np.float64(xi)
            zi = np.float64(z[i]) * keep + half
            wz = np.float64(pos_weight[i]) * zi
            linear = -wz * v if v < 0.0 else (1.0 - zi) * v
            out[i] = narrow(linear + (1.0 + wz - zi) * _log1p_small(np.float64(_exp(-abs(xi))), coefficients), out)
    else:
        for i in range(x.size):
            xi = widen(x[i])
            v = np.float64(xi)
            e = np.float64(_exp(-abs(xi)))
            out[i] = narrow((v if v > 0.0 else 0.0) - v * (np.float64(z[i]) * keep + half)
                            + _log1p_small(e, coefficients), out)


@_callable
def sigmoid_span(z, x, out):
    """``sigmoid_span_options`` without options."""
    sigmoid_span_options(z, x, out, z[:0], 0.0)


@_jit(inline="always")
def _sigmoid_chunks(z, x, out, pos_weight, eps, threads):
    """``sigmoid_span_options`` over ``CHUNKS`` chunks per thread (``prange``)."""
    weighted = pos_weight.size > 0
    chunk = max(TILE, -(-x.size // (CHUNKS * threads)))
    for c in prange(-(-x.size // chunk)):
        lo = c * chunk
        hi = min(lo + chunk, x.size)
        sigmoid_span_options(z[lo:hi], x[lo:hi], out[lo:hi], pos_weight[lo:hi] if weighted else pos_weight, eps)


@_jit(parallel=True)
def sigmoid_xent(z, x, out, threads):
    """The sigmoid loss of ``x`` (labels ``z``) into ``out``, on every core."""
    _sigmoid_chunks(z, x, out, z[:0], 0.0, threads)


@_jit(parallel=True)
def sigmoid_xent_options(z, x, out, pos_weight, eps, threads):
    """``sigmoid_xent`` with ``sigmoid_span_options``'s options."""
    _sigmoid_chunks(z, x, out, pos_weight, eps, threads)


# --------------------------------------------------------------------------
# The probability forms (``impls._probability``)
# --------------------------------------------------------------------------

@_kernel
def _clip(p, low, high):
    """``p`` clipped to ``[low, high]`` as float64; NaN stays NaN."""
    q = np.float64(p)
    q = low if q < low else q
    return high if q > high else q


@_callable(fastmath=_EXACT)
def binary_span(z, p, out, low, high):
    """``out = -(z log(q) + (1 - z) log(1 - q))`` with ``q = clip(p, low, high)``,
    elementwise, in float64 (``1 - q`` is exact for float32 ``q``), rounded once."""
    for i in range(p.size):
        q, zi = _clip(p[i], low, high), np.float64(z[i])
        out[i] = -(zi * math.log(q) + (1.0 - zi) * math.log(1.0 - q))


@_jit(parallel=True)
def binary_xent(z, p, out, low, high, threads):
    """``binary_span`` on every core, ``CHUNKS`` chunks per thread."""
    chunk = max(TILE, -(-p.size // (CHUNKS * threads)))
    for c in prange(-(-p.size // chunk)):
        lo = c * chunk
        hi = min(lo + chunk, p.size)
        binary_span(z[lo:hi], p[lo:hi], out[lo:hi], low, high)


@_callable(fastmath=_EXACT)
def categorical_rows(z, p, out, low, high):
    """``out[r] = -sum_c z[r, c] log(clip(p[r, c] / sum(p[r]), low, high))``, in float64."""
    for r in range(p.shape[0]):
        total = 0.0
        for c in range(p.shape[1]):
            total += np.float64(p[r, c])
        loss = 0.0
        for c in range(p.shape[1]):
            loss -= np.float64(z[r, c]) * math.log(_clip(np.float64(p[r, c]) / total, low, high))
        out[r] = loss


@_jit(parallel=True)
def categorical_xent(z, p, out, low, high, threads):
    """``categorical_rows`` on every core, ``CHUNKS`` chunks of rows per thread."""
    chunk = -(-p.shape[0] // (CHUNKS * threads))
    for c in prange(-(-p.shape[0] // chunk)):
        lo = c * chunk
        hi = min(lo + chunk, p.shape[0])
        categorical_rows(z[lo:hi], p[lo:hi], out[lo:hi], low, high)
