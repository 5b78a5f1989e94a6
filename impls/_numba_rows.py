"""What a kernel of the ``numba`` backend does with one row, one piece of a row or one tile of short
rows (``impls._numba_kernels``, whose docstring states the math): the statistics of blocks, spans
and tiles, merged online, and the results written from them.
"""

import math

import numpy as np

from ._numba_math import (
    _EXACT, _REDUCE, _callable, _exp, _glue, _into, _kernel, _least, _load, _log, _maximum, _store)

#: Where each loss option lies in the tuple ``opt`` the kernels take (``impls._numba_kernels``'
#: docstring states the math): the class weights ``w`` (empty for none), the smoothing ``eps``, the
#: z-loss ``lam``, the row ``scale``, the ignored label (-1 for none: labels are ``>= 0``),
#: ``wsum = sum(w)`` (``C`` for none), ``alpha = scale (1 - eps)``, ``beta = scale eps / C``.
#: A plain tuple: Numba 0.68 cannot pass a named tuple that holds an array into a ``prange`` loop
#: (``_create_gufunc_for_parfor_body`` fails). Whether a kernel takes options at all is ``exact``,
#: a constant of the kernel like its mode: the glue branches on it, and hands the helpers ``None``
#: for the options without it, so that a kernel without options types none of their code.
W, EPS, LAM, SCALE, IGNORE, WSUM, ALPHA, BETA = range(8)

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
#: (``impls._numba_kernels.ROWS`` picks one from the shape).
TILES, WHOLE, PIECES = 0, 1, 2


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
        for j in range(np.uint64(b), np.uint64(_least(b + SUB, x.size))):
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
        run = range(np.uint64(start), np.uint64(_least(start + SUB, x.size)))  # unsigned, as in ``_sums``
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
def _span_stats(x, z, w, out, maxima, dense, store, exact, smooth):
    """``(m, s, Z, A, B)`` of a span ``x`` (a row or a piece of one), block by
    block, reading the logits once: per block its max ``mb``, then
    ``sum exp(x - shift(mb))`` (and the dense sums, weighted by ``w`` unless
    it is empty, and ``B`` if ``smooth``; both with options only, ``exact``) from L1, merged online.

    With ``store``, ``out`` receives ``exp(x - shift(mb))`` of each block and
    ``maxima`` each ``mb``, for ``_scale`` to turn into probabilities.

    Every helper takes views (``x[lo:hi]``) and indexes them from 0: an index
    that may be negative costs a wraparound select per element, and LLVM then
    loads one element at a time.
    """
    weighted = w.size > 0
    stats = (x.dtype.type(-np.inf), 0.0, 0.0, 0.0, 0.0)
    for b in range(0, x.size, BLOCK):
        e = _least(b + BLOCK, x.size)
        xb = x[b:e]
        m = _max(xb)
        if dense and exact and weighted:
            s, zsum, a = _sums(xb, z[b:e], w[b:e], out[b:e] if store else out, _shift(m), True, store)
        else:
            s, zsum, a = _sums(xb, z[b:e] if dense else xb, None, out[b:e] if store else out, _shift(m), dense,
                               store)
        smooth_sum = _smoothing_sum(xb, w[b:e] if weighted else w) if exact and smooth else 0.0
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
    ``smooth``; ``w`` None without options); ``xt`` is overwritten with ``exp(xt - shift)``, ``shift``
    (``xt``'s dtype) the shift of each column.

    Four passes over the tile in L1: the exponentials in ``xt``'s dtype (8
    lanes), the sums in float64 (4 lanes; at most 63 terms, but a float64 sum
    costs less here than its rounding in the results).
    """
    m, s, zsum, a, b = lanes[0], lanes[1], lanes[2], lanes[3], lanes[4]
    classes, n_rows = xt.shape
    shift[:] = -np.inf
    for j in range(classes):
        for r in range(n_rows):
            shift[r] = _maximum(shift[r], xt[j, r])
    for r in range(n_rows):
        m[r] = shift[r]
        shift[r] = _shift(shift[r])
    zsum[:], a[:] = 0.0, 0.0
    if dense and w is not None and w.size > 0:
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
    if w is not None and smooth:  # else ``B`` is never read
        b[:] = 0.0
        for j in range(classes):
            wj = np.float64(w[j]) if w.size > 0 else 1.0
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

    Without options (``opt`` None) ``_plain_loss`` and ``c = 1``. With options (module
    docstring): ``F`` the plain loss weighted (``w_label`` the label's class
    weight; the dense ``Z``, ``A`` are weighted already), the loss
    ``scale ((1 - eps) F + eps / C (wsum lse - B) + lam lse**2)`` and
    ``c = scale (W + 2 lam lse)``. Not yet 0 for an ignored row.
    """
    m, _, zsum, a, b = stats
    first = _plain_loss(mode, log_s, x_label, m, zsum, a)
    if opt is None:
        return first, 1.0
    eps, lam, scale, wsum = opt[EPS], opt[LAM], opt[SCALE], opt[WSUM]
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
    unless empty), in float64, rounded once. Without options (``w`` None) or with neutral
    ones (``alpha = 1``, ``beta = 0``, no ``w``) the loops of ``out * factor - z`` and ``out * factor``."""
    if w is not None and (w.size > 0 or alpha != 1.0 or beta != 0.0):
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
def _scale(out, z, w, maxima, stats, dense, coefficient, alpha, beta, exact):
    """Probabilities times ``coefficient``, minus ``(alpha z + beta) w`` with options (``exact``)
    (``_scale_block``), of a span from the exponentials ``_span_stats`` stored, block by block."""
    m, s, _, _, _ = stats
    weighted = w.size > 0
    for b in range(0, out.size, BLOCK):
        e = _least(b + BLOCK, out.size)
        factor = _factor(maxima[b // BLOCK], m, s) * coefficient
        wb = (w[b:e] if weighted else w) if exact else None
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
def _span_results(x, z, w, out, maxima, label, stats, mode, grad, exact, opt, coefficient, w_label, keep):
    """Log-softmax, or probabilities / gradient from what ``_span_stats``
    stored, of a span (``w``: its class weights, or empty); ``label``: the
    sparse label's index in the span, if in it; an ignored row (not ``keep``, with options) gets 0."""
    m, s, _, _, _ = stats
    alpha, beta = opt[ALPHA], opt[BETA]
    if mode == LOG_SOFTMAX:
        _write_log_probs(x, out, m, math.log(s))
    elif exact and not keep:
        out[:] = 0.0
    elif mode == SOFTMAX or grad:
        _scale(out, z, w, maxima, stats, mode == DENSE, coefficient, alpha, beta, exact)
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
def _row(x, z, out, loss, maxima, r, target, mode, grad, exact, opt):
    """Row ``r`` (``x``, ``z``; ``target``: ``_target``'s) whole into ``out`` (the results row) and ``loss[r]``."""
    dense = mode == DENSE
    w = opt[W]
    label, w_label, keep = target
    stats = _span_stats(x, z, w, out, maxima, dense, _stores(mode, grad), exact, opt[EPS] > 0.0)
    coefficient = 1.0
    if mode >= SPARSE:
        row_loss, coefficient = _loss(mode, math.log(stats[1]), x[label], w_label, stats, opt if exact else None,
                                      x.size)
        loss[r] = row_loss if keep else 0.0
    _span_results(x, z, w, out, maxima, label if mode == SPARSE else -1, stats, mode, grad, exact, opt,
                  coefficient, w_label, keep)


@_glue
def _row_task(x, z, labels, out, loss, maxima, r, mode, grad, exact, opt, xbuf, obuf):
    """Row ``r`` whole: statistics, loss, and results while the row is in cache.
    ``out`` has no columns when there are no results; ``xbuf``, ``obuf``: the
    float32 row buffers of half precision (``_load``, ``_store``)."""
    xr = _load(x[r], xbuf)
    zr = z[r] if mode == DENSE else xr
    target = _target(labels, opt[W], r, mode, opt[IGNORE])
    _row(xr, zr, _into(out[r], obuf), loss, maxima, r, target, mode, grad, exact, opt)
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
    hi = _least(blocks * (p + 1) // pieces * BLOCK, classes)
    return r, lo, hi


@_glue
def _piece_stats(x, z, out, maxima, i, pieces, mode, grad, exact, opt):
    """Statistics of piece ``i`` (``_piece``)."""
    r, lo, hi = _piece(i, pieces, x.shape[1])
    dense = mode == DENSE
    w = opt[W]
    wp = w[lo:hi] if w.size > 0 else w
    xp = x[r, lo:hi]
    zp = z[r, lo:hi] if dense else xp
    return _span_stats(xp, zp, wp, out[r, lo:hi], maxima, dense, _stores(mode, grad), exact, opt[EPS] > 0.0)


@_glue
def _piece_results(x, z, labels, out, maxima, stats, i, pieces, mode, grad, exact, opt, coefficient):
    """Results of piece ``i`` given its row's merged ``stats`` and gradient ``coefficient``."""
    r, lo, hi = _piece(i, pieces, x.shape[1])
    dense = mode == DENSE
    w = opt[W]
    wp = w[lo:hi] if w.size > 0 else w
    xp = x[r, lo:hi]
    zp = z[r, lo:hi] if dense else xp
    label, w_label, keep = _target(labels, w, r, mode, opt[IGNORE])
    label = label - lo if mode == SPARSE else -1
    _span_results(xp, zp, wp, out[r, lo:hi], maxima, label, stats, mode, grad, exact, opt, coefficient, w_label,
                  keep)


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
    gradient coefficient, 1 without options: ``opt`` None)."""
    if opt is None:
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
            stats = (lanes[0, r], s, lanes[2, r], lanes[3, r], lanes[4, r] if opt[EPS] > 0.0 else 0.0)
            loss[r], coefficient = _loss(mode, log_s, x_label[r], w_label[r], stats, opt, classes)
        lanes[1, r] = log_s if log else coefficient / s


@_kernel
def _untranspose(xt, z, w, out, factor, alpha, beta, dense):
    """``out[r, j] = xt[j, r] * factor[r] - (alpha z[r, j] + beta) w[j]`` (``z``
    only if ``dense``, ``w`` unless empty), in float64, rounded once. Without
    options (``w`` None) or with neutral ones the loop of ``xt * factor - z``."""
    if w is not None and (w.size > 0 or alpha != 1.0 or beta != 0.0):
        weighted = w.size > 0
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
def _tile_results(x, z, labels, out, lanes, xt, w_label, mode, grad, exact, opt):
    """Results of a tile of rows ``x`` (labels ``z``, ``labels``; ``w_label``: the
    labels' class weights, with options only) into ``out`` from the transposed
    exponentials ``xt`` and the lane statistics (``_lane_finish``); an ignored row's are 0."""
    w, ignore, alpha, beta = opt[W], opt[IGNORE], opt[ALPHA], opt[BETA]
    if mode == LOG_SOFTMAX:
        for r in range(x.shape[0]):
            _write_log_probs(x[r], out[r], lanes[0, r], lanes[1, r])
    elif _stores(mode, grad):
        _untranspose(xt, z, w if exact else None, out, lanes[1], alpha, beta, mode == DENSE)
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
def _tile_task(x, z, labels, out, loss, lo, hi, mode, grad, exact, opt, scratch, lanes):
    """Rows ``[lo, hi)`` of short rows whole: transposed into ``scratch``
    (``(2 classes + 3, hi - lo)``, the logits' dtype), statistics, loss and factors
    in SIMD lanes (``lanes``, ``(5, hi - lo)`` float64), results transposed
    back; an ignored row's loss and results are 0."""
    dense = mode == DENSE
    classes = x.shape[1]
    w, ignore = opt[W], opt[IGNORE]
    xt, zt = scratch[:classes], scratch[classes:2 * classes]
    shift, x_label, w_label = scratch[2 * classes], scratch[2 * classes + 1], scratch[2 * classes + 2]
    xs = x[lo:hi]
    zs = z[lo:hi] if dense else xs
    _transpose(xs, xt)
    if dense:
        _transpose(zs, zt)
    _lane_stats(xt, zt, w if exact else None, shift, lanes, dense, opt[EPS] > 0.0)
    if mode == SPARSE and exact:
        _take_options(xs, labels[lo:hi], w, ignore, x_label, w_label)
    elif mode == SPARSE:
        _take(xs, labels[lo:hi], x_label)
    _lane_finish(lanes, x_label, w_label, loss[lo:hi] if mode >= SPARSE else loss, mode, mode == LOG_SOFTMAX,
                 opt if exact else None, classes)
    _tile_results(xs, zs, labels[lo:hi], out[lo:hi], lanes, xt, w_label, mode, grad, exact, opt)
    if mode == SPARSE and exact:
        for r in range(hi - lo):
            if labels[lo + r] == ignore:
                loss[lo + r] = 0.0
