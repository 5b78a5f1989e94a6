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
    The kernels of ``OPTIONS`` take ``opt = (w, eps, lam, scale, ignore,
    wsum, alpha, beta)``, indexed by the names ``impls._numba_rows`` gives them:
    the class weights ``w`` (empty for none), the smoothing ``eps``, the z-loss
    ``lam``, the row ``scale``, the ignored label, ``wsum = sum(w)`` (``C`` for
    none), ``alpha = scale (1 - eps)`` and ``beta = scale eps / C``. They are applied
    inside the same passes: the statistics pass also sums, block by block from
    L1, ``B = sum w x`` (for smoothing, ``_smoothing_sum``) and, in the pass
    of the exponentials, the dense ``Z = sum w z``, ``A = sum w z (x - m)`` (``_sums``); then,
    with ``lse = m + log(s)``, a row's loss is
    ``scale ((1 - eps) F + eps / C (wsum lse - B) + lam lse**2)``, ``F`` the
    weighted loss without smoothing (``w_y (log(s) - (x_y - m))`` or
    ``Z log(s) - A``), and its gradient ``c p - alpha w z - beta w`` with
    ``c = scale (W + 2 lam lse)``, ``W = (1 - eps) (w_y or Z) + eps wsum / C``.
    An ignored row's loss and gradient are 0, whatever its logits. A call
    without options runs the kernels of ``ROWS`` with ``opt = None``: kernels of
    their own (``exact``, a constant of each kernel, is false), which type none of
    the options' code and build neutral values inside (``_neutral``): ``c = 1``,
    ``alpha = 1``, ``beta = 0``, the results of the plain formulas, bit for bit.

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
    bfloat16 as ``uint16``) and is computed in float32 (``HALF``):
    - whole rows, by kernels compiled for the bits: each row is widened into
      a float32 buffer of its size as it is loaded (``_load``), its results
      written to a float32 buffer and narrowed into the output, rounding to
      nearest even (``_store``; ``_into`` picks the buffer when compiling, so
      that the code that writes results is compiled for float32 arrays).
      Converting a row between its passes keeps it in L1 with the
      conversions overlapping the computation; the float32 kernel run on
      blocks of widened rows took 1.1-1.35x the time at 4096x1000
      (``benchmarks/NOTES.md`` entry 28);
    - tiles of short rows, by the float32 kernels themselves on blocks of
      rows widened a block at a time (``_widened``, ``_InFloat32``): no tile
      kernel is compiled for the bits;
    - rows cut into pieces (fewer rows than threads), widened whole, computed
      by the float32 kernels and narrowed back (``_widened_whole``).
    So every value is the float32 computation's, rounded once more: bit for
    bit what converting the logits to float32, running the float32 kernels
    and converting the results back gives, with no buffer larger than a
    block of rows, or a row per thread. The per-row loss is written in
    float32 and narrowed by the caller. A call with loss options gets its
    half-precision logits as float32 from the front door (``impls._options``).

One kernel per call (``ROWS``, ``OPTIONS``)
    Each ``(mode, grad, path)``, without and with options, has a kernel of its own,
    in which the four are constants, so that Numba prunes every other mode, path
    and the options before it types the code, and a first call compiles only what
    it runs (``_kernel_of``; ``benchmarks/NOTES.md`` entries 26 and 30). Whole rows and tiles are serial kernels,
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

import numba
import numpy as np
from numba import prange, types
from numba._dispatcher import compute_fingerprint
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from ._half import convert, convert_span, narrow, widen
from ._numba_math import (
    _ATANH32, _ATANH64, _EXACT, _by_dtype, _callable, _exp, _glue, _jit, _kernel, _least, _log1p_small, _row_buffers)
from ._numba_rows import (
    BLOCK, CHUNKS, DENSE, LOG_SOFTMAX, PIECES, SOFTMAX, SPARSE, TILE, TILES, WHOLE, _loss, _merge, _piece,
    _piece_results, _piece_stats, _row_task, _target, _tile_task, IGNORE, W, pieces_per_row)

# --------------------------------------------------------------------------
# The parallel driver
# --------------------------------------------------------------------------

# The three ways to cut the work, inlined by Numba into the kernels (``_kernel_of``): tiles of
# short rows and whole rows on the calling thread (``_OnEveryCore`` runs them on chunks of rows
# on every core), rows cut into pieces on every core. ``mode``: ``SOFTMAX``/``LOG_SOFTMAX`` write
# ``out``; ``SPARSE`` (labels ``labels``) and ``DENSE`` (labels ``z``) write ``loss`` and, if
# ``grad``, the gradient into ``out``. ``x`` and ``out`` may be half-precision bits; ``z``,
# ``loss`` and the class weights are of the compute dtype (float32 for half precision). Arrays a
# mode does not use are not read (any 2-D C-contiguous array of the compute dtype for ``z``, any
# int64 vector for ``labels``, an empty vector for ``loss``, and ``out`` with no columns);
# ``opt``: the loss options (module docstring).

@_jit(inline="always")
def _tiles(task, x, z, labels, out, loss, opt):
    """Rows shorter than ``SHORT``, in tiles of ``TILE // classes`` rows, each computed by ``task``
    (``_tile_task_of``) in buffers of the tile's shape, views of four allocated once per call."""
    n_rows, classes = x.shape
    tile = max(1, min(TILE // classes, n_rows))  # no rows: one empty tile's buffers, no tile
    # np.empty, not _row_buffers' _vector: with it softmax at 256x2 took 1.05x the time (NOTES entry 31)
    scratch = np.empty((2 * classes + 3) * tile, x.dtype)
    lanes = np.empty(5 * tile)
    for lo in range(0, n_rows, tile):
        n = min(tile, n_rows - lo)
        task(x, z, labels, out, loss, lo, lo + n, opt,
             scratch[:(2 * classes + 3) * n].reshape((2 * classes + 3, n)), lanes[:5 * n].reshape((5, n)))


@_jit(inline="always")
def _whole(x, z, labels, out, loss, mode, grad, exact, opt):
    """Each row one task: statistics, loss, and results while the row is in cache."""
    n_rows, classes = x.shape
    maxima, xbuf, obuf = _row_buffers(x, out, -(-classes // BLOCK))
    for r in range(n_rows):
        _row_task(x, z, labels, out, loss, maxima, r, mode, grad, exact, opt, xbuf, obuf)


def _piece_steps(mode, grad, exact):
    """Rows cut into pieces (fewer rows than threads, ``pieces_per_row``), as three serial kernels of
    ``mode``, ``grad`` and ``exact`` (options or none) that ``_pieces`` runs: the statistics of piece ``i`` into ``parts[i]`` and
    ``maxima[i]``; each row's merged statistics and loss, into its first piece's ``parts`` and ``loss``;
    the results of piece ``i`` (none where a loss without gradient has none to write)."""
    def stats(x, z, labels, out, loss, maxima, parts, i, pieces, opt):
        parts[i, 0], parts[i, 1], parts[i, 2], parts[i, 3], parts[i, 4] = _piece_stats(
            x, z, out, maxima[i], i, pieces, mode, grad, exact, opt if exact else _neutral(z))

    def merge(x, z, labels, out, loss, maxima, parts, i, pieces, opt):
        options = opt if exact else _neutral(z)
        compute = maxima.dtype.type
        for r in range(x.shape[0]):
            merged = (compute(-np.inf), 0.0, 0.0, 0.0, 0.0)
            for j in range(r * pieces, (r + 1) * pieces):
                merged = _merge(merged, (compute(parts[j, 0]), parts[j, 1], parts[j, 2], parts[j, 3], parts[j, 4]))
            first = r * pieces
            parts[first, 0], parts[first, 1], parts[first, 2], parts[first, 3], parts[first, 4] = merged
            parts[first, 5] = 1.0
            if mode >= SPARSE:
                label, w_label, keep = _target(labels, options[W], r, mode, options[IGNORE])
                row_loss, parts[first, 5] = _loss(mode, math.log(merged[1]), x[r, label], w_label, merged,
                                                  opt if exact else None, x.shape[1])
                loss[r] = row_loss if keep else 0.0

    def results(x, z, labels, out, loss, maxima, parts, i, pieces, opt):
        first = i - i % pieces  # the row's merged statistics
        compute = maxima.dtype.type
        merged = (compute(parts[first, 0]), parts[first, 1], parts[first, 2], parts[first, 3], parts[first, 4])
        _piece_results(x, z, labels, out, maxima[i], merged, i, pieces, mode, grad, exact,
                       opt if exact else _neutral(z), parts[first, 5])

    steps = (stats, merge) + (() if mode >= SPARSE and not grad else (results,))
    return tuple(_jit(_bound(step, f"pieces_{step.__name__}_{_name(mode, grad, exact)}")) for step in steps)


@_jit(parallel=True)
def _pieces(addresses, x, z, labels, out, loss, opt, threads):
    """The steps of ``_piece_steps`` at ``addresses`` (``_OnEveryCore``): every piece's statistics on every
    core, the rows' merge, then every piece's results on every core, where there is a third step."""
    n_rows, classes = x.shape
    pieces = pieces_per_row(n_rows, classes, threads)
    n = n_rows * pieces
    parts = np.empty((n, 6))  # each piece's statistics; then in a row's first piece, merged, and c
    maxima = np.empty((n, -(-classes // BLOCK)), x.dtype)
    for i in prange(n):
        _call_at(addresses[0], (x, z, labels, out, loss, maxima, parts, np.int64(i), pieces, opt))
    _call_at(addresses[1], (x, z, labels, out, loss, maxima, parts, np.int64(0), pieces, opt))
    if len(addresses) > 2:
        for i in prange(n):
            _call_at(addresses[-1], (x, z, labels, out, loss, maxima, parts, np.int64(i), pieces, opt))


@_glue
def _neutral(z):
    """The options of a call without options: no weights (an empty view of
    ``z``, of the compute dtype), ``eps = lam = 0``, ``scale = 1``, no label
    ignored (labels are ``>= 0``), ``alpha = 1``, ``beta = 0``. Built inside the kernel."""
    return (z.reshape(-1)[:0], 0.0, 0.0, 1.0, -1, 0.0, 1.0, 0.0)


def _kernel_of(mode, grad, path, exact):
    """The compiled kernel of one ``mode`` and ``path`` (``_tiles`` or ``_whole``), with or without the
    gradient (``grad``), with or without loss options (``exact``): serial for ``TILES`` and ``WHOLE``
    (``_OnEveryCore`` runs it on every core); for ``PIECES``, ``_pieces`` running the serial steps of
    ``_piece_steps``.

    The four are constants of the kernel (closure variables, part of its cache key). The branch
    on ``path`` is pruned before Numba inlines the path, and every branch on ``mode``, ``grad`` and
    ``exact`` after, before it types the code: a call types and compiles only the code it runs
    (``benchmarks/NOTES.md`` entries 26 and 30). ``opt``: the loss options (module docstring) where
    ``exact``, else None (Numba's dispatch of None costs 0.03 us, of the tuple 0.25 us).
    ``PIECES`` takes ``threads`` too: Numba's thread count (``numba.get_num_threads()``, which would
    keep the kernel out of the on-disk cache if called inside it). No argument has a default: an
    omitted one costs the dispatch 0.06 us. The serial steps of ``PIECES`` are constants of
    ``mode``, ``grad`` and ``exact`` the same way.
    """
    name = f"rows_{_name(mode, grad, exact)}_{('tiles', 'whole', 'pieces')[path]}"
    if path == PIECES:
        return _OnEveryCore(_pieces, _piece_steps(mode, grad, exact), name, _piece_arguments)
    if path == WHOLE:
        def kernel(x, z, labels, out, loss, opt):
            _whole(x, z, labels, out, loss, mode, grad, exact, opt if exact else _neutral(z))
        return _jit(_bound(kernel, name))

    def kernel(x, z, labels, out, loss, opt):
        _tiles(tile_task, x, z, labels, out, loss, opt if exact else _neutral(z))  # noqa: F821  (bound)
    return _jit(_bound(kernel, name, tile_task=_tile_task_of(mode, grad, exact)))


def _tile_task_of(mode, grad, exact):
    """``_tile_task`` of one ``mode``, with or without the gradient and the options, compiled as a
    helper of its own: without Numba's reference counting (``_kernel``), which the kernel that
    allocates the tile's buffers needs and which would cost every view of a row in the tile an
    atomic increment (log_softmax at 4096x2: 1.6x the time), the rest pruned (``_kernel_of``)."""
    def task(x, z, labels, out, loss, lo, hi, opt, scratch, lanes):
        _tile_task(x, z, labels, out, loss, lo, hi, mode, grad, exact, opt, scratch, lanes)
    task.__name__ = task.__qualname__ = f"tile_{_name(mode, grad, exact)}"
    return _kernel(task)


def _name(mode, grad, exact) -> str:
    """What a kernel of ``mode``, ``grad`` and ``exact`` computes, for its name (and so its cache files)."""
    return ("softmax", "log_softmax", "sparse", "dense")[mode] + ("_grad" if grad else "") + ("_options" * exact)


def _bound(fn, name, **names):
    """``fn`` named ``name``, with ``names`` added to the module globals it sees: how a kernel calls
    another compiled function that it does not close over (a closure variable would put the
    dispatcher, with a new identity in every process, into Numba's cache key)."""
    bound = pytypes.FunctionType(fn.__code__, dict(fn.__globals__, **names), name, fn.__defaults__, fn.__closure__)
    bound.__qualname__ = name
    return bound


@intrinsic
def _call_at(typingctx, address, args):
    """Call the compiled Numba function whose native entry point is at ``address`` with the
    arguments ``args`` (a tuple, of exactly the types it was compiled for); it returns nothing.
    An error status it returns is passed on, as a direct call would."""
    def codegen(context, builder, signature, values):
        argtypes = tuple(args)
        pointer = builder.inttoptr(values[0], context.call_conv.get_function_type(types.none, argtypes).as_pointer())
        status, _ = context.call_conv.call_function(
            builder, pointer, types.none, argtypes, [builder.extract_value(values[1], i) for i in range(len(args))])
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()
    return types.void(address, args), codegen


@_jit(parallel=True)
def _chunks(addresses, x, z, labels, out, loss, opt, threads):
    """The serial kernel at ``addresses[0]`` (``_OnEveryCore``) on ``CHUNKS`` chunks of rows per thread, the
    chunks on every core (``prange``). Every row is computed as the serial kernel computes it alone, so
    the results do not depend on the cut. ``z``, ``labels`` and ``loss`` may be the placeholders of the
    arrays a mode does not read (``impls.numba_parallel``): their slices are not read either."""
    n_rows = x.shape[0]
    chunk = -(-n_rows // (CHUNKS * threads))
    for c in prange(-(-n_rows // chunk)):
        lo = c * chunk
        hi = _least(lo + chunk, n_rows)
        _call_at(addresses[0], (x[lo:hi], z[lo:hi], labels[lo:hi], out[lo:hi], loss[lo:hi], opt))


class _OnEveryCore:
    """The serial kernels ``steps`` run on every core by the parallel kernel ``driver`` (``_chunks``, or
    ``_pieces``), which calls them through their addresses (``_call_at``): one parallel kernel per
    signature of the arguments serves every mode and path, compiled without the serial kernels' code
    (linked in, it was optimised again in each of ~60 parallel kernels, ``benchmarks/NOTES.md``
    entries 26 and 27).

    The addresses are those of the steps' compilations for the types of the arguments the driver
    passes them (``arguments`` makes such arguments from the call's), found once per type fingerprint
    of the call's arguments: Numba's own (``compute_fingerprint``, by which its dispatcher finds a
    compilation), 0.2 us a call.
    """

    def __init__(self, driver, steps, name, arguments):
        self.driver, self.steps, self.arguments, self.__name__ = driver, steps, arguments, name
        self.kernels = (driver, *steps)
        self._addresses = {}

    def __call__(self, x, z, labels, out, loss, opt, threads):
        addresses = self._addresses.get(compute_fingerprint((x, z, labels, out, loss, opt)))
        if addresses is None:
            addresses = self._compile(x, z, labels, out, loss, opt)
        self.driver(addresses, x, z, labels, out, loss, opt, threads)

    def _compile(self, *args) -> tuple:
        signature = tuple(numba.typeof(a) for a in self.arguments(*args))
        addresses = tuple(_address(step, signature) for step in self.steps)
        self._addresses[compute_fingerprint(args)] = addresses
        return addresses


def _address(dispatcher, signature) -> int:
    """The native entry point of ``dispatcher`` compiled (or loaded from the cache) for ``signature``."""
    dispatcher.compile(signature)
    compiled = dispatcher.overloads[signature]
    return compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)


def _chunk_arguments(*args) -> tuple:
    """What ``_chunks`` passes its step: slices of the call's arrays, of the same types."""
    return args


def _piece_arguments(x, z, labels, out, loss, opt) -> tuple:
    """What ``_pieces`` passes its steps: the call's arguments, its buffers and a piece's index."""
    return x, z, labels, out, loss, np.empty((0, 0), x.dtype), np.empty((0, 6)), 0, 0, opt


def _on_every_core(serial):
    """The serial kernel ``serial`` on chunks of rows on every core (``_chunks``)."""
    return _OnEveryCore(_chunks, (serial,), serial.__name__ + "_parallel", _chunk_arguments)


# --------------------------------------------------------------------------
# Half precision: tiles computed by the float32 kernels on rows widened a block at a time
# --------------------------------------------------------------------------

#: Logits per block of short rows that ``_widened`` widens at a time: 64 KiB of float32 (several
#: tiles), in L2 cache with its results while the float32 kernel reads and writes them.
WIDENED = 16384
#: The argument types of the float32 serial kernels that ``_widened`` calls: those of the front
#: door's float32 call without options (``impls._validate``: read-only C-contiguous logits, dense
#: labels and int64 labels; writable C-contiguous results and losses).
FLOAT32_CALL = (types.Array(types.float32, 2, "C", readonly=True), types.Array(types.float32, 2, "C", readonly=True),
                types.Array(types.int64, 1, "C", readonly=True), types.Array(types.float32, 2, "C"),
                types.Array(types.float32, 1, "C"), types.none)


@intrinsic
def _readonly(typingctx, a):
    """The array ``a`` typed as read-only: the type of the front door's logits, for which the
    float32 kernels are compiled (the same data; a buffer that the kernel only reads)."""
    def codegen(context, builder, signature, values):
        return impl_ret_borrowed(context, builder, signature.return_type, values[0])
    return a.copy(readonly=True)(a), codegen


@intrinsic
def _as_float32_call(typingctx, z, labels, loss):
    """Nothing, for ``z``, ``labels`` and ``loss`` of ``FLOAT32_CALL``'s types; any other types fail to
    compile, so that ``_widened`` never passes the float32 kernel arguments it was not compiled for."""
    if (z, labels, loss) != (FLOAT32_CALL[1], FLOAT32_CALL[2], FLOAT32_CALL[4]):
        raise numba.core.errors.TypingError(f"_widened takes the front door's arrays, not {z}, {labels}, {loss}")
    return types.none(z, labels, loss), lambda context, builder, signature, values: context.get_dummy_value()


@_kernel
def _widened_block(x, z, labels, out, loss, kernel, xbuf, obuf):
    """``_widened``'s work on one block of rows: ``x`` widened into ``xbuf``, the float32 kernel at
    ``kernel`` run on it into ``obuf``, and ``obuf`` narrowed into ``out``. Without Numba's reference
    counting (``_kernel``): its views cost no atomic operations."""
    convert_span(x.reshape(-1), xbuf.reshape(-1))
    _call_at(kernel, (_readonly(xbuf), z, labels, obuf, loss, None))
    convert_span(obuf.reshape(-1), out.reshape(-1))


@_jit
def _widened(x, z, labels, out, loss, kernel):
    """The float32 serial kernel at address ``kernel`` (of ``ROWS``, compiled for ``FLOAT32_CALL``) on
    half-precision rows ``x`` (bits, ``impls._half.as_bits``): blocks of ``WIDENED // classes`` rows
    widened into a float32 buffer (exactly), computed, and the results (a float32 buffer of the
    block's) narrowed into ``out`` (ties to even), unless ``out`` is the float32 placeholder of a
    loss. So each value is the float32 kernel's, rounded once more: bit for bit what converting the
    logits to float32, running the float32 kernel and converting back gives."""
    _as_float32_call(z, labels, loss)
    n_rows, classes = x.shape
    rows = max(1, _least(n_rows, WIDENED // max(1, classes)))
    xbuf = np.empty((rows, classes), np.float32)
    obuf = np.empty((rows, out.shape[1]), np.float32)
    for lo in range(0, n_rows, rows):
        hi = _least(lo + rows, n_rows)
        _widened_block(x[lo:hi], z[lo:hi], labels[lo:hi], out[lo:hi], loss[lo:hi], kernel, xbuf[:hi - lo],
                       obuf[:hi - lo])


class _InFloat32:
    """The float32 serial kernel ``serial`` (of ``ROWS``) on half-precision arguments, through
    ``_widened``: on chunks of rows on every core (``_OnEveryCore`` running ``_widened``, the float32
    kernel's address its last argument), or ``.serial`` on the calling thread. ``serial`` is compiled
    once, for ``FLOAT32_CALL``, at the first call."""

    def __init__(self, serial):
        self.on_every_core = _OnEveryCore(_chunks, (_widened,), f"{serial.__name__}_widened", _chunk_arguments)
        self.kernels = (serial, _widened)

    @functools.cached_property
    def address(self) -> int:
        """The native entry point of the float32 kernel, compiled for ``FLOAT32_CALL``."""
        return _address(self.kernels[0], FLOAT32_CALL)

    def serial(self, x, z, labels, out, loss, opt):
        _widened(x, z, labels, out, loss, self.address)

    def __call__(self, x, z, labels, out, loss, opt, threads):
        self.on_every_core(x, z, labels, out, loss, self.address, threads)


def _widened_whole(pieces):
    """The parallel kernel ``pieces`` (rows cut into pieces: fewer rows than threads) on half-precision
    arguments: the rows widened whole into float32 (a row per thread at most), the results narrowed back."""
    def launch(x, z, labels, out, loss, opt, threads):
        logits = convert(x, np.empty(x.shape, np.float32))
        logits.flags.writeable = False  # the front door's float32 logits' type: one compilation
        results = out if out.dtype == np.float32 else np.empty(out.shape, np.float32)
        pieces(logits, z, labels, results, loss, None, threads)
        if results is not out:
            convert(results, out)
    launch.kernels = pieces.kernels
    return launch


def _long_rows(whole, pieces):
    """The parallel launch of rows of ``SHORT`` classes or more: ``pieces`` where ``pieces_per_row``
    cuts them (fewer rows than threads), else ``whole``. Chosen here, so that a call compiles only
    the kernel it runs."""
    def launch(x, z, labels, out, loss, opt, threads):
        n_rows, classes = x.shape
        if n_rows < threads and pieces_per_row(n_rows, classes, threads) > 1:
            return pieces(x, z, labels, out, loss, opt, threads)
        return whole(x, z, labels, out, loss, opt, threads)
    launch.kernels = (*whole.kernels, *pieces.kernels)
    return launch


def _entry_points():
    """``ROWS``, ``OPTIONS`` and ``HALF``: the ``(parallel, serial)`` kernels at ``[mode][grad][short]``,
    ``short`` whether the rows have fewer than ``SHORT`` classes (tiles); the parallel kernel takes
    ``threads`` last. ``ROWS`` for float32 and float64 logits without options, ``OPTIONS`` with them
    (the losses only: None for the two softmax modes); ``HALF`` for half precision's bits, without
    options (module docstring): whole rows compiled for the bits, tiles and pieces by the float32
    kernels on widened rows (``_InFloat32``, ``_widened_whole``). Nested lists, not a
    dict keyed by the three: indexing them costs a call 0.1 us less (it is 5 us)."""
    def pairs(mode, grad, exact):
        kernels = tiles, whole, pieces = tuple(_kernel_of(mode, grad, path, exact) for path in (TILES, WHOLE, PIECES))
        on_every_core = _on_every_core(whole)
        return [(_long_rows(on_every_core, pieces), whole), (_on_every_core(tiles), tiles)], on_every_core, kernels

    def tables(mode, grad):
        rows, on_every_core, (tiles, whole, pieces) = pairs(mode, grad, False)
        widened = _InFloat32(tiles)
        half = [(_long_rows(on_every_core, _widened_whole(pieces)), whole), (widened, widened.serial)]
        return rows, pairs(mode, grad, True)[0] if mode >= SPARSE else None, half
    table = [[tables(mode, grad) for grad in (False, True)] if mode >= SPARSE else [tables(mode, False)]
             for mode in (SOFTMAX, LOG_SOFTMAX, SPARSE, DENSE)]
    return ([[entry[which] for entry in grads] for grads in table] for which in (0, 1, 2))


ROWS, OPTIONS, HALF = _entry_points()


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
