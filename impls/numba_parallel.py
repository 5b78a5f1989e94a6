"""The ``numba`` backend: thin wrappers over the kernels of ``impls._numba_kernels``.

The kernels (see that module for the math, the accuracy and the NaN/inf
rules) read each row of logits once in L1-sized blocks, compute ``exp`` with
a vectorised polynomial, cut rows across threads when there are fewer rows
than threads, and never allocate a temporary of the logits' size. The
wrappers only allocate the outputs, or write into the caller's. Threading: the TBB layer, safe for
concurrent callers (see ``impls._numba_setup``).
"""

import numba
import numpy as np

from . import _numba_setup  # noqa: F401  (first: the threading layer and the cache folder)
from . import _numba_kernels as kernels

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


#: Placeholders for the arrays a mode does not use, read-only like the front
#: door's arrays, so that every call of a dtype shares one compiled kernel.
_NO_LABELS = _readonly(np.zeros(1, dtype=np.int64))


def _rows(mode, logits, sparse=_NO_LABELS, dense=None, out=None, loss=None, grad=False):
    """Run ``kernels.rows``; ``out`` and ``loss`` default to empty placeholders."""
    if out is None:
        out = np.empty((len(logits), 0), dtype=logits.dtype)
    if loss is None:
        loss = np.empty(0, dtype=logits.dtype)
    z = logits if dense is None else dense
    _launch(kernels.rows, kernels.rows_serial, logits.size, logits, z, sparse, out, loss, mode, grad)
    return out, loss


def _output(out, shape, dtype):
    """``out``, the caller's output (canonical, checked by the front door), or a new array."""
    return np.empty(shape, dtype) if out is None else out


def softmax(logits, out=None):
    return _rows(kernels.SOFTMAX, logits, out=_output(out, logits.shape, logits.dtype))[0]


def log_softmax(logits, out=None):
    return _rows(kernels.LOG_SOFTMAX, logits, out=_output(out, logits.shape, logits.dtype))[0]


def softmax_cross_entropy_with_logits(labels, logits, out=None):
    return _rows(kernels.DENSE, logits, dense=labels, loss=_output(out, len(logits), logits.dtype))[1]


def sparse_softmax_cross_entropy_with_logits(labels, logits, out=None):
    return _rows(kernels.SPARSE, logits, sparse=labels, loss=_output(out, len(logits), logits.dtype))[1]


def sigmoid_cross_entropy_with_logits(labels, logits, out=None):
    out = _output(out, logits.shape, logits.dtype)
    _launch(kernels.sigmoid_xent, kernels.sigmoid_span, logits.size, labels, logits, out)
    return out


def softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=None, grad_out=None):
    grad, loss = _rows(kernels.DENSE, logits, dense=labels, out=_output(grad_out, logits.shape, logits.dtype),
                       loss=_output(loss_out, len(logits), logits.dtype), grad=True)
    return loss, grad


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=None, grad_out=None):
    grad, loss = _rows(kernels.SPARSE, logits, sparse=labels, out=_output(grad_out, logits.shape, logits.dtype),
                       loss=_output(loss_out, len(logits), logits.dtype), grad=True)
    return loss, grad
