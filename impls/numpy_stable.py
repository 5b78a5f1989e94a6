"""The numerically stable formulation, vectorised NumPy, no loops over rows.

With ``m = max(x)`` over the class axis and ``s = sum(exp(x - m))``:

* ``log_softmax(x) = (x - m) - log(s)`` and ``softmax(x) = exp(x - m) / s``
* dense loss ``sum(labels * (log(s) - (x - m)))``, sparse loss ``log(s) - (x[label] - m)``
* sigmoid loss ``max(x, 0) - x*z + log1p(exp(-|x|))``

The max is subtracted before the log and never added back (as TensorFlow's
kernels do), so a loss near 0 keeps its relative precision. A NaN anywhere in a
row makes the row NaN; ``+inf`` makes ``x - m`` NaN, so that row is NaN too
(as in TensorFlow).
"""

import numpy as np

name = "numpy"


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


def softmax_cross_entropy_with_logits(labels, logits):
    shifted, _, s = _parts(logits)
    return np.sum(labels * (np.log(s) - shifted), axis=-1)


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    shifted, _, s = _parts(logits)
    return np.log(s[:, 0]) - np.take_along_axis(shifted, labels[:, None], axis=-1)[:, 0]


def sigmoid_cross_entropy_with_logits(labels, logits):
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def softmax_cross_entropy_with_logits_and_grad(labels, logits):
    shifted, e, s = _parts(logits)
    return np.sum(labels * (np.log(s) - shifted), axis=-1), e / s - labels


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits):
    shifted, e, s = _parts(logits)
    rows = np.arange(len(labels))
    grad = e / s
    grad[rows, labels] -= 1
    return np.log(s[:, 0]) - shifted[rows, labels], grad
