"""The numerically stable formulation, vectorised NumPy, no loops over rows.

With ``m = max(x)`` over the class axis and ``s = sum(exp(x - m))``:

* ``log_softmax(x) = (x - m) - log(s)`` and ``softmax(x) = exp(x - m) / s``
* dense loss ``sum(labels * (log(s) - (x - m)))``, sparse loss ``log(s) - (x[label] - m)``
* sigmoid loss ``max(x, 0) - x*z + log1p(exp(-|x|))``

The max is subtracted before the log and never added back (as TensorFlow's
kernels do), so a loss near 0 keeps its relative precision. A NaN anywhere in a
row makes the row NaN; ``+inf`` makes ``x - m`` NaN, so that row is NaN too
(as in TensorFlow).

The loss options (``impls._options``) are that module's NumPy form, fed with
``log_softmax = (x - m) - log(s)`` and ``lse = m + log(s)``.
"""

import numpy as np

from . import _linear, _options, _probability

name = "numpy"
takes_options = True


def _parts(logits):
    """``(x - m, exp(x - m), s)`` for each row (``s`` keeps its axis)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=-1, keepdims=True)


def softmax(logits):
    _, e, s = _parts(logits)
    return e / s


def log_softmax(logits):
    shifted, _, s = _parts(logits)
    return shifted - np.log(s)


def _with_options(labels, logits, options, sparse, grad):
    """The loss (and gradient) with ``options``, from the stable log-probabilities."""
    m = logits.max(axis=-1, keepdims=True)
    shifted, e, s = _parts(logits)
    log_s = np.log(s)
    lse = (np.where(np.isfinite(m), m, 0) + log_s)[:, 0]
    return _options.softmax_loss(labels, shifted - log_s, lse, options, sparse, e / s if grad else None)


def softmax_cross_entropy_with_logits(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=False, grad=False)
    shifted, _, s = _parts(logits)
    return np.sum(labels * (np.log(s) - shifted), axis=-1)


def sparse_softmax_cross_entropy_with_logits(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=True, grad=False)
    shifted, _, s = _parts(logits)
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
    shifted, e, s = _parts(logits)
    return np.sum(labels * (np.log(s) - shifted), axis=-1), e / s - labels


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=True, grad=True)
    shifted, e, s = _parts(logits)
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
