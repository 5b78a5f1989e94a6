"""The textbook formulas in NumPy, unstable on purpose: the baseline.

Each function is the formula as written in a textbook, with no max shift:

* ``softmax(x) = exp(x) / sum(exp(x))``, ``log_softmax(x) = log(softmax(x))``
* dense loss ``-sum(labels * log(softmax(x)))``, sparse loss ``-log(softmax(x)[label])``
* sigmoid loss ``-z*log(s) - (1-z)*log(1-s)`` with ``s = 1 / (1 + exp(-x))``

Where it breaks (``tests/test_naive.py`` pins each):

* ``exp`` overflows to ``inf`` once a logit exceeds ``log(finfo.max)``
  (88.7 in float32, 709.8 in float64; float16 input is computed in float32):
  ``inf / inf`` is NaN at each overflowing logit and ``x / inf`` is 0 at the
  others, so the row is NaN exactly where the true softmax is largest (and a
  row whose sum overflows while no single ``exp`` does is all zeros);
* ``exp`` leaves the normal range below -87.3 (float32) / -708.4 (float64),
  losing precision in subnormals, and underflows to 0 below -103.9 / -745.1:
  a row whose logits are all that negative gives ``0 / 0 = NaN``, and a class
  whose probability underflows has ``log(0) = -inf``, so its loss is ``inf``
  where the true loss is finite;
* the sigmoid loss is ``inf`` or NaN once ``|x|`` is large enough that
  ``sigmoid(x)`` rounds to 0 or 1 (about 17 in float32, 37 in float64).

Where it is valid: the softmax family agrees with the stable backends to the
documented tolerance for ``|x| <= 20``; the sigmoid loss only for ``|x| <= 5``,
since ``1 - sigmoid(x)`` loses ``exp(|x|)`` ulp to cancellation (float32 error
2e-6 at 5, 2.4e-5 at 8), and only for labels in [0, 1] (probabilities): for
a huge label the terms ``z*log(s)`` and ``(1-z)*log(1-s)`` cancel (a label of
1e30 at logit 0 gives 0 or garbage for ``log(2)``). That is where the tests
and ``xentbench verify`` check it.

The loss options (``impls._options``) are that module's NumPy form, fed with
``log(softmax(x))`` and ``lse = log(sum(exp(x)))`` as written; the sigmoid
loss's ``pos_weight`` weights the first term: ``-w z log(s) - (1 - z) log(1 - s)``.
"""

import numpy as np

from . import _linear, _options, _probability

name = "naive"
takes_options = True


def softmax(logits):
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits):
    return np.log(softmax(logits))


def _with_options(labels, logits, options, sparse, grad):
    """The loss (and gradient) with ``options``, from the textbook log-probabilities."""
    e = np.exp(logits)
    total = e.sum(axis=-1, keepdims=True)
    p = e / total
    return _options.softmax_loss(labels, np.log(p), np.log(total[:, 0]), options, sparse, p if grad else None)


def softmax_cross_entropy_with_logits(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=False, grad=False)
    return -np.sum(labels * np.log(softmax(logits)), axis=-1)


def sparse_softmax_cross_entropy_with_logits(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=True, grad=False)
    p = np.take_along_axis(softmax(logits), labels[:, None], axis=-1)[:, 0]
    return -np.log(p)


def sigmoid_cross_entropy_with_logits(labels, logits, options=None):
    z, pos_weight = (labels, 1) if options is None else _options.sigmoid_targets(labels, options)
    s = 1 / (1 + np.exp(-logits))
    return -pos_weight * z * np.log(s) - (1 - z) * np.log(1 - s)


def softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=False, grad=True)
    p = softmax(logits)
    return -np.sum(labels * np.log(p), axis=-1), p - labels


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    if options is not None:
        return _with_options(labels, logits, options, sparse=True, grad=True)
    p = softmax(logits)
    rows = np.arange(len(labels))
    grad = p.copy()
    grad[rows, labels] -= 1
    return -np.log(p[rows, labels]), grad


def binary_cross_entropy(labels, probs):
    return _probability.binary(labels, probs)


def categorical_cross_entropy(labels, probs):
    return _probability.categorical(labels, probs)


#: The fused linear + cross-entropy (``impls._linear``), the textbook form: all the logits at once
linear_cross_entropy, linear_cross_entropy_and_grad = _linear.functions(
    sparse_softmax_cross_entropy_with_logits, sparse_softmax_cross_entropy_with_logits_and_grad, whole=True)
