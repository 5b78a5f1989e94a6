"""The ``numba`` backend: thin wrappers over the kernels of ``impls._numba_kernels``.

The kernels (see that module for the math, the accuracy and the NaN/inf
rules) read each row of logits once in L1-sized blocks, compute ``exp`` with
a vectorised polynomial, cut rows across threads when there are fewer rows
than threads, and never allocate a temporary of the logits' size. The
wrappers only allocate the outputs, or write into the caller's. float16 and
bfloat16 arrive as they are (``dtypes``) and reach the kernels as their bits
(``impls._half.as_bits``); the kernels compute them in float32 and round the
results back, the per-row losses rounded here. Threading: the TBB layer, safe for
concurrent callers (see ``impls._numba_setup``).
"""

import numba
import numpy as np

from . import _numba_setup  # noqa: F401  (first: the threading layer and the cache folder)
from . import _half
from . import _numba_kernels as kernels
from ._validate import compute_dtype  # the dtype of the dense labels and the losses

name = "numba"
#: The functions write into the outputs the front door passes (``out=``, ``loss_out=``, ``grad_out=``).
writes_out = True


#: Calls with fewer logits than this run on the calling thread alone (the
#: kernels' serial entry points). A parallel launch wakes Numba's sleeping
#: worker threads, which costs 15-25 us here: a sparse loss of 1x32000 behind
#: the front door takes 39 us serial, 52 us parallel; measured crossover
#: (sparse and softmax, rows of 10 to 128256 classes): 32K-64K logits.
SERIAL_BELOW = 1 << 16


def _launch(parallel, serial, size, *args):
    """``serial(*args)`` if ``size`` is small, else ``parallel(*args, threads)``."""
    if size < SERIAL_BELOW:
        return serial(*args)
    return parallel(*args, numba.get_num_threads())


def _readonly(a):
    a.flags.writeable = False
    return a


#: The logits dtypes the kernels take: half precision as its bits (``_half.as_bits``),
#: computed in float32 (``impls._numba_kernels``).
dtypes = ("float16", "bfloat16", "float32", "float64")

#: Placeholders for the arrays a mode does not use, read-only like the front
#: door's arrays, so that every call of a dtype shares one compiled kernel.
_NO_LABELS = _readonly(np.zeros(1, dtype=np.int64))
_NO_DENSE = {np.dtype(dtype): _readonly(np.zeros((1, 0), dtype)) for dtype in (np.float32, np.float64)}


def _rows(mode, logits, sparse=_NO_LABELS, dense=None, out=None, loss=None, grad=False):
    """Run ``kernels.rows``; ``out`` (of the logits' dtype) and ``loss`` (of the compute
    dtype) default to empty placeholders."""
    compute = compute_dtype(logits.dtype)
    if out is None:
        out = np.empty((len(logits), 0), dtype=compute)
    if loss is None:
        loss = np.empty(0, dtype=compute)
    z = _NO_DENSE[compute] if dense is None else dense
    _launch(kernels.rows, kernels.rows_serial, logits.size, _half.as_bits(logits), z, sparse,
            _half.as_bits(out), loss, mode, grad)
    return out, loss


def _loss(out, logits):
    """Where the kernels write the loss: ``out``, if of the compute dtype, else a new vector of it."""
    compute = compute_dtype(logits.dtype)
    return out if out is not None and out.dtype == compute else np.empty(len(logits), compute)


def _narrowed(loss, out, dtype):
    """The loss in the logits' ``dtype``: itself, or rounded to half precision into ``out`` or a new vector."""
    if loss.dtype == dtype:
        return loss
    return _half.convert(loss, np.empty(loss.shape, dtype) if out is None else out)


def _output(out, shape, dtype):
    """``out``, the caller's output (canonical, checked by the front door), or a new array."""
    return np.empty(shape, dtype) if out is None else out


def softmax(logits, out=None):
    return _rows(kernels.SOFTMAX, logits, out=_output(out, logits.shape, logits.dtype))[0]


def log_softmax(logits, out=None):
    return _rows(kernels.LOG_SOFTMAX, logits, out=_output(out, logits.shape, logits.dtype))[0]


def softmax_cross_entropy_with_logits(labels, logits, out=None):
    loss = _rows(kernels.DENSE, logits, dense=labels, loss=_loss(out, logits))[1]
    return _narrowed(loss, out, logits.dtype)


def sparse_softmax_cross_entropy_with_logits(labels, logits, out=None):
    loss = _rows(kernels.SPARSE, logits, sparse=labels, loss=_loss(out, logits))[1]
    return _narrowed(loss, out, logits.dtype)


def sigmoid_cross_entropy_with_logits(labels, logits, out=None):
    out = _output(out, logits.shape, logits.dtype)
    _launch(kernels.sigmoid_xent, kernels.sigmoid_span, logits.size, labels, _half.as_bits(logits),
            _half.as_bits(out))
    return out


def softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=None, grad_out=None):
    grad, loss = _rows(kernels.DENSE, logits, dense=labels, out=_output(grad_out, logits.shape, logits.dtype),
                       loss=_loss(loss_out, logits), grad=True)
    return _narrowed(loss, loss_out, logits.dtype), grad


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=None, grad_out=None):
    grad, loss = _rows(kernels.SPARSE, logits, sparse=labels, out=_output(grad_out, logits.shape, logits.dtype),
                       loss=_loss(loss_out, logits), grad=True)
    return _narrowed(loss, loss_out, logits.dtype), grad
