"""An example backend plugin: the softmax family written another way, through ``np.logaddexp``.

The log-sum-exp of a row is ``np.logaddexp.reduce`` in float64 (``log(e^a + e^b)``
folded along the row, which never overflows), so ``log_softmax = x - lse`` and
``softmax = exp(x - lse)``. It offers four of the seven functions; xentbench
reads the other three as "not implemented".

Every function takes the canonical form of ``impls`` (2-D C-contiguous
read-only logits, rows x classes, float32 or float64; int64 sparse labels;
dense labels of the logits' shape) and returns arrays of the logits' dtype.
"""

import numpy as np

name = "logaddexp"
dtypes = ("float32", "float64")


def _lse(logits):
    """Each row's log-sum-exp, in float64; NaN for a row holding +inf.

    ``logaddexp`` gives +inf there, and then ``x - lse`` would be NaN at the
    +inf alone and -inf elsewhere, where the contract (xentbench's NaN and inf
    semantics, as TensorFlow's) makes the whole row NaN.
    """
    lse = np.logaddexp.reduce(logits.astype(np.float64), axis=-1)
    return np.where(np.isposinf(lse), np.nan, lse)


def log_softmax(logits):
    return (logits - _lse(logits)[:, None]).astype(logits.dtype)


def softmax(logits):
    return np.exp(logits - _lse(logits)[:, None]).astype(logits.dtype)


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    picked = np.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return (_lse(logits) - picked).astype(logits.dtype)


def softmax_cross_entropy_with_logits(labels, logits):
    return -(labels * (logits - _lse(logits)[:, None])).sum(axis=-1).astype(logits.dtype)
