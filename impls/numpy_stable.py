"""The numerically stable formulation, vectorised NumPy, no loops over rows.

With ``m = max(x)`` over the class axis and ``s = sum(exp(x - m))``:

* ``log_softmax(x) = (x - m) - log(s)`` and ``softmax(x) = exp(x - m) / s``
* dense loss ``sum(labels * (log(s) - (x - m)))``, sparse loss ``log(s) - (x[label] - m)``
* sigmoid loss ``max(x, 0) - x*z + log1p(exp(-|x|))``

The max is subtracted before the log and never added back (as TensorFlow's
kernels do), so a loss near 0 keeps its relative precision. A NaN anywhere in a
row makes the row NaN; ``+inf`` makes ``x - m`` NaN, so that row is NaN too
(as in TensorFlow).

A row whose finite logits span more than the compute dtype's largest number
(float32's ``3.4e38`` for float16, bfloat16 and float32 logits) makes ``x - m``
overflow to ``-inf``. Where the true value lies beyond the dtype's range
anyway, that is the right answer: ``log_softmax`` (``(x - m) - log(s) <= x - m``)
is ``-inf``, the sparse loss (``log(s) - (x[label] - m) >= m - x[label]``) ``inf``,
and ``softmax`` (``exp(-inf) = 0``) and the gradients are right. The dense loss, a
weighted sum of such terms, can be finite all the same (``0.32 * 6.8e38 =
2.2e38``), yet a ``z * inf`` term makes it inf (NaN for ``z = 0``): ``_widen``
computes those rows again from float64, which holds the difference, and does
the same for the losses with options (smoothing weighs every class).

The loss options (``impls._options``) are that module's NumPy form, fed with
``log_softmax = (x - m) - log(s)`` and ``lse = m + log(s)``.
"""

import functools

import numpy as np

from . import _linear, _options, _probability

name = "numpy"
takes_options = True


def _parts(logits):
    """``(m, x - m, exp(x - m), s)`` for each row (``m`` and ``s`` keep their axis)."""
    m = logits.max(axis=-1, keepdims=True)
    shifted = logits - m
    e = np.exp(shifted)
    return m, shifted, e, e.sum(axis=-1, keepdims=True)


def _widen(loss, loss_of, labels, logits):
    """``loss`` (per row; returned) with each non-finite row computed again, in place, by
    ``loss_of(labels, *_parts(x))`` from its float32 logits ``x`` widened to float64.

    ``x - m`` overflows float32 for a finite logit more than ``3.4e38`` below its row's max, and
    the loss term ``z (log(s) - (x - m))`` becomes ``inf`` (``NaN`` for ``z = 0``) where the loss may
    be finite. In float64, ``|x - m| <= 6.8e38`` and every term is finite; the loss rounded back to
    float32 is ``inf`` only where it does not fit. Rows that are NaN or inf for another reason (a
    NaN or infinite logit or label, a loss beyond float32's range) come out as before, but that a
    row with an infinite label may turn from NaN to inf or back, which the docs leave to the
    arithmetic.

    Cost: one ``isfinite`` over the losses where every row is finite (no float64 array); else a
    float64 copy of the rows computed again, and nothing else. float64 logits have no wider dtype
    here: a float64 row spanning more than ``1.8e308`` still overflows.
    """
    if logits.dtype == np.float32 and not np.isfinite(loss).all():
        redo = np.flatnonzero(~np.isfinite(loss))
        x = logits[redo].astype(np.float64)
        loss[redo] = loss_of(labels[redo], *_parts(x))
    return loss


def softmax(logits):
    _, _, e, s = _parts(logits)
    return e / s


def log_softmax(logits):
    _, shifted, _, s = _parts(logits)
    return shifted - np.log(s)


def _dense_loss(labels, m, shifted, e, s):
    """``sum(z (log(s) - (x - m)))`` of each row."""
    return np.sum(labels * (np.log(s) - shifted), axis=-1)


def _options_loss(labels, m, shifted, e, s, options, sparse, grad=False):
    """The loss (and, with ``grad``, the gradient) with ``options``, from the stable log-probabilities."""
    log_s = np.log(s)
    lse = (np.where(np.isfinite(m), m, 0) + log_s)[:, 0]
    return _options.softmax_loss(labels, shifted - log_s, lse, options, sparse, e / s if grad else None)


def _with_options(labels, logits, options, sparse, grad):
    """The loss (and gradient) with ``options``; the gradient needs no widening (``exp(-inf) = 0``)."""
    loss_of = functools.partial(_options_loss, options=options, sparse=sparse)
    result = loss_of(labels, *_parts(logits), grad=grad)
    _widen(result[0] if grad else result, loss_of, labels, logits)
    return result


def softmax_cross_entropy_with_logits(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=False, grad=False)
    return _widen(_dense_loss(labels, *_parts(logits)), _dense_loss, labels, logits)


def sparse_softmax_cross_entropy_with_logits(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=True, grad=False)
    _, shifted, _, s = _parts(logits)
    return np.log(s[:, 0]) - np.take_along_axis(shifted, labels[:, None], axis=-1)[:, 0]


def sigmoid_cross_entropy_with_logits(labels, logits, options=None):
    if options is None:
        return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    # -w z log(s) - (1 - z) log(1 - s) as (x < 0 ? -w z x : (1 - z) x) + (1 + (w - 1) z) log1p(exp(-|x|)):
    # stable, and +inf (not inf - inf) at x = -inf, as without pos_weight
    z, pos_weight = _options.sigmoid_targets(labels, options)
    wz = pos_weight * z
    linear = np.where(logits < 0, -wz * logits, (1 - z) * logits)
    return linear + (1 + wz - z) * np.log1p(np.exp(-np.abs(logits)))


def softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=False, grad=True)
    parts = _parts(logits)
    _, _, e, s = parts
    return _widen(_dense_loss(labels, *parts), _dense_loss, labels, logits), e / s - labels


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=True, grad=True)
    _, shifted, e, s = _parts(logits)
    rows = np.arange(len(labels))
    grad = e / s
    grad[rows, labels] -= 1
    return np.log(s[:, 0]) - shifted[rows, labels], grad


def binary_cross_entropy(labels, probs):
    return _probability.binary(labels, probs)


def categorical_cross_entropy(labels, probs):
    return _probability.categorical(labels, probs)


#: The fused linear + cross-entropy (``impls._linear``): a chunk of rows at a time through this
#: backend's sparse loss
linear_cross_entropy, linear_cross_entropy_and_grad = _linear.functions(
    sparse_softmax_cross_entropy_with_logits, sparse_softmax_cross_entropy_with_logits_and_grad)
