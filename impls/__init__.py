"""Softmax-family classification losses behind one interface, many backends.

>>> import impls
>>> impls.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=[[2.0, 1.0]])
array([0.31326169])

``impls.names()`` lists the registered backends, ``impls.available()`` those
that import here, ``impls.get(name)`` returns one. Every backend offers the
same seven functions, named and ordered as in ``tf.nn``; all input goes through
one front door (``impls._validate``) before any backend sees it, so the errors
are the same whatever the backend. Results are NumPy arrays of the logits'
dtype.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from . import _validate

__all__ = [
    "BackendUnavailable", "Backend", "names", "available", "get", "FUNCTIONS",
    "softmax", "log_softmax",
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad", "sparse_softmax_cross_entropy_with_logits_and_grad",
]

DEFAULT_BACKEND = "numba"

_MODULES = {
    "naive": "impls.naive",
    "numpy": "impls.numpy_stable",
    "numba": "impls.numba_parallel",
    "tensorflow": "impls.tensorflow_ref",
}

#: The seven functions every backend module exports, with the same signatures
#: over the canonical form of ``impls._validate`` (rows x classes, class axis last).
FUNCTIONS = (
    "softmax",
    "log_softmax",
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad",
    "sparse_softmax_cross_entropy_with_logits_and_grad",
)


class BackendUnavailable(ImportError):
    """A registered backend that cannot be imported here (the message says why)."""


class Backend:
    """One backend behind the shared front door.

    The methods take what ``tf.nn`` takes (any array-like, any rank >= 1, any
    ``axis`` for the dense functions) and check it in ``impls._validate``
    before the backend module, which only ever sees the canonical form.
    """

    def __init__(self, name: str, module: ModuleType):
        self.name = name
        self._module = module

    def __repr__(self) -> str:
        return f"<impls backend {self.name!r}>"

    def softmax(self, logits, axis=-1) -> np.ndarray:
        r"""``exp(x_i) / sum_j exp(x_j)`` along ``axis``; the logits' shape."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis)
        return rows.restore_full(self._module.softmax(rows.logits))

    def log_softmax(self, logits, axis=-1) -> np.ndarray:
        r"""``x_i - log(sum_j exp(x_j))`` along ``axis``; the logits' shape."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis)
        return rows.restore_full(self._module.log_softmax(rows.logits))

    def softmax_cross_entropy_with_logits(self, labels, logits, axis=-1) -> np.ndarray:
        r"""``-sum_i labels_i * log_softmax(logits)_i`` along ``axis``.

        ``labels`` broadcast to the logits' shape (soft labels allowed); the
        loss has the logits' shape without ``axis``.
        """
        logits = _validate.check_logits(logits)
        rows = _validate.Rows.from_logits(logits, axis)
        labels = _validate.dense_labels(labels, rows, logits.shape)
        return rows.restore(self._module.softmax_cross_entropy_with_logits(labels, rows.logits))

    def sparse_softmax_cross_entropy_with_logits(self, labels, logits) -> np.ndarray:
        r"""``log(sum_j exp(x_j)) - x_label`` over the last axis.

        ``labels`` are integer class indices of shape ``logits.shape[:-1]``,
        each in ``[0, num_classes)``; the loss has the labels' shape.
        """
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1)
        labels = _validate.sparse_labels(labels, rows)
        return rows.restore(self._module.sparse_softmax_cross_entropy_with_logits(labels, rows.logits))

    def sigmoid_cross_entropy_with_logits(self, labels, logits) -> np.ndarray:
        r"""Elementwise ``max(x, 0) - x*z + log1p(exp(-|x|))`` for labels ``z``.

        The stable form of ``-z*log(sigmoid(x)) - (1-z)*log(1-sigmoid(x))``;
        labels and logits have the same shape, and so does the loss.
        """
        labels, flat, dtype = _validate.sigmoid_inputs(labels, logits)
        loss = self._module.sigmoid_cross_entropy_with_logits(labels, flat)
        return _validate.as_dtype(loss, dtype).reshape(np.shape(logits))

    def softmax_cross_entropy_with_logits_and_grad(self, labels, logits, axis=-1):
        r"""``(loss, dlogits)`` with ``dlogits = softmax(logits) - labels``.

        ``dlogits`` is the gradient of ``sum(loss)`` when each row of labels
        sums to 1; like TF's fused kernel it is ``softmax - labels`` whatever
        the labels sum to.
        """
        logits = _validate.check_logits(logits)
        rows = _validate.Rows.from_logits(logits, axis)
        labels = _validate.dense_labels(labels, rows, logits.shape)
        loss, grad = self._module.softmax_cross_entropy_with_logits_and_grad(labels, rows.logits)
        return rows.restore(loss), rows.restore_full(grad)

    def sparse_softmax_cross_entropy_with_logits_and_grad(self, labels, logits):
        r"""``(loss, dlogits)`` with ``dlogits = softmax(logits) - one_hot(labels)``."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1)
        labels = _validate.sparse_labels(labels, rows)
        loss, grad = self._module.sparse_softmax_cross_entropy_with_logits_and_grad(labels, rows.logits)
        return rows.restore(loss), rows.restore_full(grad)


_loaded: dict[str, Backend] = {}


def names() -> list[str]:
    """Every registered backend, available here or not."""
    return list(_MODULES)


def get(name: str) -> Backend:
    """The backend called ``name``; ``BackendUnavailable`` if it cannot import here."""
    if name not in _MODULES:
        raise ValueError(f"Unknown backend {name!r}; expected one of {names()}")
    if name not in _loaded:
        try:
            module = importlib.import_module(_MODULES[name])
        except Exception as exc:  # noqa: BLE001
            # Not only ImportError: a backend whose import fails in any way (a
            # RuntimeError from a JIT cache with nowhere to write, an OSError
            # from a broken shared library) is unavailable, and must not take
            # ``available()`` and every other backend down with it.
            raise BackendUnavailable(
                f"backend {name!r} is unavailable: {type(exc).__name__}: {exc}") from exc
        _loaded[name] = Backend(name, module)
    return _loaded[name]


def available() -> list[str]:
    """The registered backends that import here."""
    found = []
    for name in names():
        try:
            get(name)
        except BackendUnavailable:
            continue
        found.append(name)
    return found


def _dispatch(function: str):
    method = getattr(Backend, function)

    def call(*args, backend: str = DEFAULT_BACKEND, **kwargs):
        return getattr(get(backend), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    call.__doc__ = f"{method.__doc__}\n\n    ``backend`` picks the implementation (default {DEFAULT_BACKEND!r})."
    return call


softmax = _dispatch("softmax")
log_softmax = _dispatch("log_softmax")
softmax_cross_entropy_with_logits = _dispatch("softmax_cross_entropy_with_logits")
sparse_softmax_cross_entropy_with_logits = _dispatch("sparse_softmax_cross_entropy_with_logits")
sigmoid_cross_entropy_with_logits = _dispatch("sigmoid_cross_entropy_with_logits")
softmax_cross_entropy_with_logits_and_grad = _dispatch("softmax_cross_entropy_with_logits_and_grad")
sparse_softmax_cross_entropy_with_logits_and_grad = _dispatch(
    "sparse_softmax_cross_entropy_with_logits_and_grad"
)
