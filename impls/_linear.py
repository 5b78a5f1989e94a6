"""The fused linear + cross-entropy of large vocabularies: its front door and its chunked driver.

``linear_cross_entropy(labels, hidden, weight, bias=None, **options)`` is the
sparse softmax cross-entropy of the logits

.. math::
    x = h W^T + b, \\qquad x \\leftarrow c \\tanh(x / c) \\text{ with a softcap } c \\text{ (Gemma 2)},

``hidden`` of shape ``(..., D)``, ``weight`` ``(V, D)`` (``nn.Linear``'s layout, an
LM head), ``bias`` ``(V,)``, integer ``labels`` of shape ``hidden.shape[:-1]``.
The options are the sparse loss's (``impls._options``: ``label_smoothing``,
``ignore_index``, ``class_weights``, ``reduction``, ``z_loss``) plus ``softcap``.
``linear_cross_entropy_and_grad`` also returns the gradients of the summed (or
reduced) loss, with ``G = dloss/dx`` (times ``sech^2(x / c)`` under a softcap, computed as
``1 / cosh^2``: ``1 - tanh^2`` cancels where the cap saturates):

.. math::
    \\frac{\\partial}{\\partial h} = G W, \\qquad \\frac{\\partial}{\\partial W} = G^T h, \\qquad
    \\frac{\\partial}{\\partial b} = \\sum_{rows} G.

``chunked`` computes them without the N x V logits: a chunk of rows at a time
(at most ``CHUNK_BYTES`` of logits, or ``MIN_ROWS`` rows; equal chunks), the products through the BLAS (SciPy's ``gemm``,
all three: with ``beta = 1`` it adds each chunk's ``G^T h`` into ``dW`` in place, so that
no second array of dW's size is made; and one BLAS only, since NumPy's and SciPy's each keep
threads that spin after a call and, taking turns, slow each other 1.6x on 2 cores),
the softmax and gradient work by the backend's own sparse loss (its
``sparse_softmax_cross_entropy_with_logits[_and_grad]`` with the options), a few rows
(``BLOCK_BYTES``) at a time, each block's gradient copied over its logits once the loss has
read them. So the memory above the inputs and the gradients is one chunk and one block (under a
softcap, two: the block's capped logits are made from ``x / c``, which the chunk holds), whatever V.
float16 and bfloat16 inputs are computed in float32 (products, row statistics
and dW accumulated there) and the results rounded back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import blas

from . import _options, _validate

#: The two functions, beside ``impls.FUNCTIONS``: their arguments are not logits.
LINEAR_FUNCTIONS = ("linear_cross_entropy", "linear_cross_entropy_and_grad")
#: The logits of one chunk of rows: 32 MiB. The chunk's gradient replaces its logits a block of rows
#: at a time (``_gradient_over``), so that one chunk-sized array lives: with a block (``BLOCK_BYTES``),
#: within the 64 MiB above the inputs and gradients that issue 30 allows, except that a process's
#: first call of a size also fills OpenBLAS's packing buffer (34-35 MiB for 256-row chunks, kept
#: for later products; 5-8 MiB over at V = 32000, ``benchmarks/NOTES.md`` entry 32).
#: Larger chunks make fewer passes over W and dW (each of the three products reads all of W, or
#: reads and writes all of dW, once per chunk): 32 MiB ran 1.12x faster than 16 MiB at
#: 2048 x 1024 x 32000 (``benchmarks/NOTES.md`` entries 29 and 32)...
CHUNK_BYTES = 32 << 20
#: ...but at least 86 rows: OpenBLAS runs the three products faster the more rows they have (V = 128256,
#: D = 512, 2 threads, Zen 4: 64 rows 119-133, 89-106 and 164-165 GFLOP/s for the logits, dh and dW,
#: 86 rows 118-135, 94-117 and 164-176, 256 rows 174, 161 and 186; SGEMM 207), and 86 rows, a third
#: of 256, are 43 MiB of logits at V = 128256, float32: with a block, within the 64 MiB by 16-20 MiB on a
#: later call, and at the line on a process's first call, which also fills OpenBLAS's buffer (0.5 MiB
#: under to 0.3 MiB over; ``benchmarks/NOTES.md`` entry 33).
MIN_ROWS = 86
#: The logits the sparse loss reads at a time, within a chunk: its gradient is a new array of their
#: size, copied over them. 2 MiB: 16 rows at V = 32000, 4 at 128256, enough for every core, and 2 MiB
#: more room for the chunk than 4 MiB blocks (as fast, within the noise: entry 33).
BLOCK_BYTES = 2 << 20
#: The sparse loss's options, the ones these functions take besides ``softcap``.
_SPARSE_GRAD = "sparse_softmax_cross_entropy_with_logits_and_grad"


class Linear(NamedTuple):
    """A checked call: 2-D canonical inputs of the compute dtype, read-only."""

    labels: np.ndarray  # (N,) int64
    hidden: np.ndarray  # (N, D)
    weight: np.ndarray  # (V, D)
    bias: np.ndarray | None  # (V,)
    batch_shape: tuple  # hidden.shape[:-1]
    dtype: np.dtype  # the inputs' dtype, which the results have
    options: _options.Options | None
    denominator: float | None  # of a 'mean' (``_options.with_scale``)
    softcap: float | None


def check_softcap(softcap) -> float | None:
    if softcap is None:
        return None
    value = _options._number(softcap, "softcap")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"softcap must be None or a finite number > 0, got {softcap!r}")
    return value


def check(labels, hidden, weight, bias, given: dict, function: str) -> Linear:
    """The one front door of the two functions: the same errors for every backend."""
    hidden, weight = _validate.check_logits(hidden, "hidden"), _validate.check_logits(weight, "weight")
    if weight.dtype != hidden.dtype:
        raise TypeError(f"Expected weight of hidden's dtype {hidden.dtype}, got {weight.dtype}")
    size = hidden.shape[-1]
    if weight.ndim != 2 or weight.shape[1] != size or weight.shape[0] == 0:
        raise ValueError(f"Expected weight of shape (V, {size}) with V >= 1 (hidden's last axis is {size}), "
                         f"got {weight.shape}")
    vocabulary, compute = weight.shape[0], _validate.compute_dtype(hidden.dtype)
    if bias is not None:
        bias = _validate.check_logits(bias, "bias")
        if bias.dtype != hidden.dtype:
            raise TypeError(f"Expected bias of hidden's dtype {hidden.dtype}, got {bias.dtype}")
        if bias.shape != (vocabulary,):
            raise ValueError(f"Expected bias of shape ({vocabulary},), got {bias.shape}")
        bias = _validate._readonly(_validate.as_dtype(bias, compute))
    given = dict(given)
    softcap = check_softcap(given.pop("softcap", None))
    name = function.replace("linear_cross_entropy", "sparse_softmax_cross_entropy_with_logits")
    options = _options.softmax_options(name, vocabulary, compute, True, given) if given else None
    rows = _validate.Rows(None, hidden.shape[:-1] + (vocabulary,), hidden.ndim - 1, hidden.dtype)
    labels = _validate.sparse_labels(labels, rows, None if options is None else options.ignore_index)
    flat = hidden.reshape(-1, size)
    options, denominator = _options.with_scale(options, labels, len(flat))
    return Linear(labels, _validate._readonly(_validate.as_dtype(flat, compute)),
                  _validate._readonly(_validate.as_dtype(weight, compute)), bias, hidden.shape[:-1],
                  hidden.dtype, options, denominator, softcap)


def deliver(call: Linear, loss, grads=()) -> tuple | np.ndarray:
    """The backend's results in the public form: the loss reduced as asked and of the
    batch's shape, the gradients of the inputs' shapes, all of the inputs' dtype."""
    loss = _options.reduce(_validate.as_dtype(loss, call.dtype).reshape(call.batch_shape), call.options,
                           call.denominator)
    if not grads:
        return loss
    grad_hidden, *rest = (_validate.as_dtype(g, call.dtype) for g in grads)
    return (loss, grad_hidden.reshape(call.batch_shape + call.hidden.shape[-1:]), *rest)


def logits(hidden, weight, bias):
    """``h W^T + b``, C-ordered."""
    gemm = blas.get_blas_funcs("gemm", (hidden,))
    x = gemm(1.0, weight.T, hidden.T, trans_a=1).T  # Fortran's x^T = W h^T, C-ordered x
    if bias is not None:
        x += bias
    return x


def grad_hidden_of(g, weight):
    """``G W``, a new C-ordered n x D array: as Fortran sees the C-ordered arrays, ``(g^T)^T (W^T)^T``;
    6-13% faster than ``dh^T = W^T G^T`` (M = D, N = n: ``benchmarks/NOTES.md`` entry 32)."""
    gemm = blas.get_blas_funcs("gemm", (g,))
    return gemm(1.0, g.T, weight.T, trans_a=1, trans_b=1)


def add_grad_weight(grad_weight, g, hidden) -> None:
    """``dW += G^T h`` in place: as Fortran sees the C-ordered arrays, ``dW^T (D x V) += h^T (D x n) (g^T)^T (n x V)``."""
    gemm = blas.get_blas_funcs("gemm", (g,))
    gemm(1.0, hidden.T, g.T, beta=1.0, c=grad_weight.T, trans_b=1, overwrite_c=1)


def _capped(y, softcap, out=None):
    """The capped logits ``c tanh(y)`` of ``y = x / c``."""
    out = np.tanh(y, out=out)
    out *= softcap
    return out


def functions(loss_fn, grad_fn, whole: bool = False) -> tuple:
    """A backend's ``(linear_cross_entropy, linear_cross_entropy_and_grad)`` from its sparse loss and
    its ``_and_grad``, chunked (``whole``: all rows at once, the textbook form)."""
    def linear_cross_entropy(labels, hidden, weight, bias=None, options=None, softcap=None):
        return chunked(loss_fn, labels, hidden, weight, bias, options, softcap, None, whole)

    def linear_cross_entropy_and_grad(labels, hidden, weight, bias=None, options=None, softcap=None):
        return chunked(loss_fn, labels, hidden, weight, bias, options, softcap, grad_fn, whole)

    return linear_cross_entropy, linear_cross_entropy_and_grad


def chunked(loss_fn, labels, hidden, weight, bias=None, options=None, softcap=None, grad_fn=None,
            whole: bool = False):
    """The loss (and with ``grad_fn`` the gradients) a chunk of rows at a time (module docstring).

    ``loss_fn(labels, logits, options)`` is a backend's sparse loss, ``grad_fn`` its
    ``_and_grad``; both get ``options=`` only where there are some. Returns ``loss``, or
    ``(loss, grad_hidden, grad_weight)`` plus ``grad_bias`` where there is a bias.
    """
    rows = len(hidden)
    kwargs = {} if options is None else {"options": options}
    loss = np.empty(rows, hidden.dtype)
    grads = ()
    if grad_fn is not None:
        grads = (np.empty_like(hidden), np.zeros_like(weight)) + (() if bias is None else (np.zeros_like(bias),))
    for part in _parts(rows, len(weight) * hidden.itemsize, whole):
        _chunk(loss_fn if grad_fn is None else grad_fn, kwargs, labels[part], hidden[part], weight, bias, softcap,
               loss[part], part, grads)
    return (loss, *grads) if grads else loss


def _parts(rows: int, row_bytes: int, whole: bool = False) -> list:
    """The chunks of ``rows`` rows of ``row_bytes`` of logits each: as few as hold at most ``CHUNK_BYTES``
    (or ``MIN_ROWS``) each, of equal rows to within one (a last chunk of a few rows would read all of W for
    them); one with ``whole``, none without rows."""
    count = 0 if not rows else 1 if whole else -(-rows // max(MIN_ROWS, CHUNK_BYTES // row_bytes))
    edges = [rows * i // count for i in range(count + 1)] if count else []
    return [slice(start, stop) for start, stop in zip(edges, edges[1:])]


def _chunk(fn, kwargs, labels, hidden, weight, bias, softcap, loss, part, grads) -> None:
    """One chunk of rows ``part``: its loss into ``loss`` and, with ``grads``, its rows of ``grad_hidden``
    and its terms of ``grad_weight`` (and ``grad_bias``) added (``fn``: the sparse loss, or its
    ``_and_grad`` where there are ``grads``). A function of its own, so that the chunk's arrays are
    freed before the next chunk's are made: at most the logits (under a softcap ``x / c``; their gradient
    written over them) and a block's gradient (under a softcap, and its capped logits) live at once."""
    x = logits(hidden, weight, bias)
    if softcap is not None:
        x /= softcap  # y = x / c: the cap and its derivative are made from it, a block at a time
    if not grads:
        # read-only, the front door's type of logits: the loss kernels that ``warm`` compiled
        loss[:] = fn(labels, _validate._readonly(x if softcap is None else _capped(x, softcap, out=x)), **kwargs)
        return
    g = _gradient_over(fn, kwargs, labels, x, loss, softcap)
    grad_hidden, grad_weight, *grad_bias = grads
    grad_hidden[part] = grad_hidden_of(g, weight)
    add_grad_weight(grad_weight, g, hidden)
    if grad_bias:
        grad_bias[0] += g.sum(axis=0)


def _gradient_over(fn, kwargs, labels, x, loss, softcap=None) -> np.ndarray:
    """``x`` (a chunk's logits, C-ordered; under a softcap ``c``, ``x / c``) replaced by the gradient of their
    loss, and the loss into ``loss``: ``fn`` (the sparse loss's ``_and_grad``) on a block of ``BLOCK_BYTES`` of
    rows at a time, each block's gradient copied over the block's rows, which no later block reads. The loss
    reads the blocks through a read-only view, the front door's type of logits (the kernels ``warm``
    compiled). Under a softcap it reads the block's capped logits ``c tanh(y)``, and its gradient is
    multiplied by ``sech^2(y)``, as ``1 / cosh^2`` (``1 - tanh^2`` cancels where the cap saturates)."""
    read = _validate._readonly(x)
    step = max(1, BLOCK_BYTES // (x.shape[1] * x.itemsize))
    for start in range(0, len(x), step):
        rows = slice(start, start + step)
        loss[rows], x[rows] = (fn(labels[rows], read[rows], **kwargs) if softcap is None
                               else _capped_loss(fn, kwargs, labels[rows], read[rows], softcap))
    return x


def _capped_loss(fn, kwargs, labels, y, softcap) -> tuple:
    """A block's loss of the capped logits ``c tanh(y)`` and its gradient in ``x = c y``: the loss's
    times ``sech^2(y)``. A function of its own, so that a block's arrays are freed before the next's."""
    capped = _capped(y, softcap)
    loss, g = fn(labels, _validate._readonly(capped), **kwargs)
    with np.errstate(over="ignore"):  # cosh overflows where sech^2 is below the dtype's range: 0
        g /= np.square(np.cosh(y, out=capped), out=capped)
    return loss, g
