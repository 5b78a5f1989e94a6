"""The ``numba`` backend: thin wrappers over the kernels of ``impls._numba_kernels``.

The kernels (see that module for the math, the accuracy and the NaN/inf rules)
read each row of logits once in L1-sized blocks, compute ``exp`` with a
vectorised polynomial, cut rows across threads when there are fewer rows than
threads, and never allocate a temporary of the logits' size. The wrappers only
allocate the outputs, or write into the caller's. float16 and bfloat16 arrive
as they are (``dtypes``) and reach the kernels as their bits
(``impls._half.as_bits``); the kernels compute them in float32 and round the
results back, the per-row losses rounded here (``impls._numba_kernels.HALF``). The loss options
(``impls._options``) go to the kernels as one tuple of scalars and the class
weights (``_kernel_options``), applied inside the passes of kernels of their own
(``impls._numba_kernels.OPTIONS``); a call without options runs kernels that compile
none of their code (``ROWS``) and passes None. A call with options never brings half precision:
the front door converts it to float32 first. Threading: the TBB layer, safe
for concurrent callers (see ``impls._numba_setup``).
"""

import numba
import numpy as np

from . import _numba_setup  # first: the threading layer and the cache folder
from . import _half, _linear
from . import _numba_kernels as kernels
from . import _probability
from ._numba_rows import SHORT
from ._validate import _readonly, compute_dtype  # compute_dtype: the dtype of the dense labels and the losses

name = "numba"
takes_options = True
#: The functions write into the outputs the front door passes (``out=``, ``loss_out=``, ``grad_out=``).
writes_out = True


def _launch(parallel, serial, size, *args):
    """``serial(*args)`` below ``_numba_setup.SERIAL_BELOW`` values, else ``parallel(*args, threads)``."""
    if size < _numba_setup.SERIAL_BELOW:
        return serial(*args)
    return parallel(*args, numba.get_num_threads())


#: The logits dtypes the kernels take: half precision as its bits (``_half.as_bits``),
#: computed in float32 (``impls._numba_kernels``).
dtypes = ("float16", "bfloat16", "float32", "float64")

#: Placeholders for the arrays a mode does not use, read-only like the front
#: door's arrays, so that every call of a dtype shares one compiled kernel.
_NO_LABELS = _readonly(np.zeros(1, dtype=np.int64))
_NO_DENSE = {np.dtype(dtype): _readonly(np.zeros((1, 0), dtype)) for dtype in (np.float32, np.float64)}
_NO_WEIGHTS = {np.dtype(d): _readonly(np.zeros(0, dtype=d)) for d in (np.float32, np.float64)}


def _kernel_options(options, logits):
    """``(w, eps, lam, scale, ignore, wsum, alpha, beta)``, the kernels' form of ``options``
    (``impls._numba_rows`` names the places); ``logits`` of float32 or float64."""
    classes = logits.shape[1]
    w, eps, scale = options.class_weights, options.label_smoothing, options.scale
    wsum = float(classes) if w is None else float(np.add.reduce(w, dtype=np.float64))  # np.sum: 2 us more
    ignore = -1 if options.ignore_index is None else options.ignore_index  # labels are >= 0 without one
    return (_NO_WEIGHTS[logits.dtype] if w is None else w, eps, options.z_loss, scale, ignore, wsum,
            scale * (1.0 - eps), scale * eps / classes)


#: An empty loss vector per compute dtype, for the modes that write none: writable like the
#: loss vectors of the other modes (one compiled kernel), and nothing can be written to it.
_NO_LOSS = {np.dtype(d): np.empty(0, dtype=d) for d in (np.float32, np.float64)}


def _rows(mode, logits, sparse=_NO_LABELS, dense=None, out=None, loss=None, grad=False, options=None):
    """Run the kernels of ``mode`` and ``grad`` (``kernels.ROWS``, or with ``options``
    ``kernels.OPTIONS``; tiles for rows shorter than ``SHORT``); ``out`` (of the logits' dtype) and ``loss`` (of the
    compute dtype) default to empty placeholders."""
    compute = compute_dtype(logits.dtype)
    if out is None:
        out = np.empty((len(logits), 0), dtype=compute)
    if loss is None:
        loss = _NO_LOSS[compute]
    z = _NO_DENSE[compute] if dense is None else dense
    short = logits.shape[1] < SHORT
    if compute != logits.dtype:  # half precision, never with options: float32's kernels on its bits widened
        parallel, serial = kernels.HALF[mode][grad][short]
        _launch(parallel, serial, logits.size, _half.as_bits(logits), z, sparse, _half.as_bits(out), loss, None)
    elif options is None:
        parallel, serial = kernels.ROWS[mode][grad][short]
        _launch(parallel, serial, logits.size, logits, z, sparse, out, loss, None)
    else:
        parallel, serial = kernels.OPTIONS[mode][grad][short]
        _launch(parallel, serial, logits.size, logits, z, sparse, out, loss, _kernel_options(options, logits))
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


def softmax_cross_entropy_with_logits(labels, logits, out=None, options=None):
    loss = _rows(kernels.DENSE, logits, dense=labels, loss=_loss(out, logits), options=options)[1]
    return _narrowed(loss, out, logits.dtype)


def sparse_softmax_cross_entropy_with_logits(labels, logits, out=None, options=None):
    loss = _rows(kernels.SPARSE, logits, sparse=labels, loss=_loss(out, logits), options=options)[1]
    return _narrowed(loss, out, logits.dtype)


def sigmoid_cross_entropy_with_logits(labels, logits, out=None, options=None):
    out = _output(out, logits.shape, logits.dtype)
    if options is None:
        _launch(kernels.sigmoid_xent, kernels.sigmoid_span, logits.size, labels, _half.as_bits(logits),
                _half.as_bits(out))
    else:
        pos_weight = _NO_WEIGHTS[logits.dtype] if options.pos_weight is None else options.pos_weight
        _launch(kernels.sigmoid_xent_options, kernels.sigmoid_span_options, logits.size, labels, logits, out,
                pos_weight, options.label_smoothing)
    return out


def softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=None, grad_out=None, options=None):
    grad, loss = _rows(kernels.DENSE, logits, dense=labels, out=_output(grad_out, logits.shape, logits.dtype),
                       loss=_loss(loss_out, logits), grad=True, options=options)
    return _narrowed(loss, loss_out, logits.dtype), grad


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=None, grad_out=None,
                                                      options=None):
    grad, loss = _rows(kernels.SPARSE, logits, sparse=labels, out=_output(grad_out, logits.shape, logits.dtype),
                       loss=_loss(loss_out, logits), grad=True, options=options)
    return _narrowed(loss, loss_out, logits.dtype), grad


def binary_cross_entropy(labels, probs):
    out = np.empty_like(probs)
    low, high = _probability.bounds(probs.dtype)
    _launch(kernels.binary_xent, kernels.binary_span, probs.size, labels, probs, out, float(low), float(high))
    return out


def categorical_cross_entropy(labels, probs):
    out = np.empty(len(probs), probs.dtype)
    if len(probs):  # the parallel kernel cuts the rows into chunks of at least one
        low, high = _probability.bounds(probs.dtype)
        _launch(kernels.categorical_xent, kernels.categorical_rows, probs.size, labels, probs, out, float(low),
                float(high))
    return out


#: The fused linear + cross-entropy (``impls._linear``): a chunk of rows at a time through this
#: backend's sparse loss
linear_cross_entropy, linear_cross_entropy_and_grad = _linear.functions(
    sparse_softmax_cross_entropy_with_logits, sparse_softmax_cross_entropy_with_logits_and_grad)
