"""Softmax-family classification losses behind one interface, many backends.

>>> import impls
>>> impls.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=[[2.0, 1.0]])
array([0.31326169])

``impls.names()`` lists the registered backends, ``impls.available()`` those
that import here, ``impls.get(name)`` returns one. Every backend offers the
same seven functions, named and ordered as in ``tf.nn``; all input goes through
one front door (``impls._validate``) before any backend sees it, so the errors
are the same whatever the backend. Results are NumPy arrays of the logits'
dtype, written into ``out=`` (``loss_out=``, ``grad_out=``) where given. The losses
take keyword-only options (label smoothing, ignored labels, class weights,
reduction, z-loss; ``impls._options``), and the built-in backends also offer
the probability forms ``binary_cross_entropy`` and ``categorical_cross_entropy``
(``impls._probability``).
"""

from __future__ import annotations

from ._api import (
    binary_cross_entropy, categorical_cross_entropy, linear_cross_entropy, linear_cross_entropy_and_grad,
    log_softmax, sigmoid_cross_entropy_with_logits, softmax, softmax_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_and_grad, sparse_softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits_and_grad)
from ._backend import (
    FUNCTIONS, LINEAR_FUNCTIONS, PROBABILITY_FUNCTIONS, Backend, BackendError, BackendUnavailable,
    NotImplementedByBackend)
from ._registry import BUILTIN, DEFAULT_BACKEND, ENTRY_POINTS, available, get, names, register

__all__ = [
    "BackendUnavailable", "NotImplementedByBackend", "BackendError", "Backend", "BUILTIN", "ENTRY_POINTS",
    "DEFAULT_BACKEND", "names", "available", "get", "register", "FUNCTIONS",
    "softmax", "log_softmax",
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad", "sparse_softmax_cross_entropy_with_logits_and_grad",
    "PROBABILITY_FUNCTIONS", "binary_cross_entropy", "categorical_cross_entropy",
    "LINEAR_FUNCTIONS", "linear_cross_entropy", "linear_cross_entropy_and_grad",
]
