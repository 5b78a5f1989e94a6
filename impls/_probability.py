"""The probability forms: cross-entropy on probabilities, clipped as Keras clips them.

* ``binary_cross_entropy(labels, probs)``, elementwise:
  ``-(z log(q) + (1 - z) log(1 - q))`` with ``q = clip(p, EPSILON, 1 - EPSILON)``;
* ``categorical_cross_entropy(labels, probs, axis=-1)``, per row:
  ``-sum_c z_c log(q_c)`` with ``q = clip(p / sum(p), EPSILON, 1 - EPSILON)``:
  Keras first rescales each row of probabilities to sum to 1.

These are Keras's ``binary_crossentropy`` and ``categorical_crossentropy`` with
``from_logits=False`` (elementwise, as ``keras.ops``), ``EPSILON`` its
``epsilon()``. The bounds are computed in the compute dtype (float32 for
float16 and float32 probabilities), as Keras computes ``1 - epsilon`` in the
tensor's dtype: in float32 the upper bound is ``1 - 1.19e-7``. Clipping bounds
the loss of a probability of 0 by ``-log(EPSILON) = 16.1`` and makes the loss of
a probability of 1 ``-log(1 - EPSILON) = 1e-7``, not 0: the logits forms
(``sigmoid_cross_entropy_with_logits``, ``softmax_cross_entropy_with_logits``)
have neither limit, and are the ones to use where logits exist
(``tests/test_probability.py`` measures the difference).
"""

from __future__ import annotations

import numpy as np

#: Keras's ``epsilon()``: the probabilities are clipped to ``[EPSILON, 1 - EPSILON]``.
EPSILON = 1e-7


def bounds(dtype) -> tuple:
    """``(EPSILON, 1 - EPSILON)`` computed in ``dtype`` (the compute dtype), as Keras does."""
    low = np.dtype(dtype).type(EPSILON)
    return low, np.dtype(dtype).type(1) - low


def binary(labels, probs):
    """``binary_cross_entropy`` in NumPy (for the ``naive`` and ``numpy`` backends)."""
    low, high = bounds(probs.dtype)
    q = np.clip(probs, low, high)
    return -(labels * np.log(q) + (1 - labels) * np.log(1 - q))


def categorical(labels, probs):
    """``categorical_cross_entropy`` of rows (classes last) in NumPy."""
    low, high = bounds(probs.dtype)
    q = np.clip(probs / probs.sum(axis=-1, keepdims=True), low, high)
    return -np.sum(labels * np.log(q), axis=-1)
