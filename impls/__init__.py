"""Softmax-family classification losses behind one interface, many backends.

>>> import impls
>>> impls.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=[[2.0, 1.0]])
array([0.31326169])

``impls.names()`` lists the registered backends, ``impls.available()`` those
that import here, ``impls.get(name)`` returns one. Every backend offers the
same seven functions, named and ordered as in ``tf.nn``; all input goes through
one front door (``impls._validate``) before any backend sees it, so the errors
are the same whatever the backend. Results are NumPy arrays of the logits'
dtype, written into ``out=`` (``loss_out=``, ``grad_out=``) where given.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util

import numpy as np

from . import _validate

__all__ = [
    "BackendUnavailable", "NotImplementedByBackend", "BackendError", "Backend", "BUILTIN", "ENTRY_POINTS",
    "names", "available", "get", "register", "FUNCTIONS",
    "softmax", "log_softmax",
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad", "sparse_softmax_cross_entropy_with_logits_and_grad",
]

DEFAULT_BACKEND = "numba"

#: The backends of this package, by name; plugins add theirs (``register``, entry points).
BUILTIN = {
    "naive": "impls.naive",
    "numpy": "impls.numpy_stable",
    "numba": "impls.numba_parallel",
    "tensorflow": "impls.tensorflow_ref",
}
#: The entry-point group in which installed packages declare backends (as pytest's plugins do).
ENTRY_POINTS = "xentbench.backends"

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


class NotImplementedByBackend(NotImplementedError):
    """The backend does not offer this function, or not for this dtype (a plugin may offer a subset)."""


class BackendError(RuntimeError):
    """The backend broke the contract: a result of the wrong type, shape or dtype (the message says which)."""


class _Contract:
    """A plugin's functions, each checked against the contract on every call.

    ``contract.softmax(logits)`` raises ``NotImplementedByBackend`` where the
    plugin lacks the function or the dtype, and ``BackendError`` where a result
    is not an ndarray of the expected shape (per row, or the logits') and of
    the logits' dtype. The built-in backends are called directly instead: the
    test suite proves them, and their smallest calls cannot spare the checks.
    """

    def __init__(self, name: str, module, dtypes: tuple):
        self._name, self._module, self._dtypes = name, module, dtypes
        self._takes = frozenset(np.dtype(d) for d in dtypes)

    def __getattr__(self, function: str):
        if function.startswith("_"):  # not one of the seven: copy, pickle and friends probing
            raise AttributeError(function)
        impl = getattr(self._module, function, None)
        if not callable(impl):
            raise NotImplementedByBackend(f"backend {self._name!r} does not implement {function}")

        def checked(*args, **outs):
            logits = args[-1]
            if logits.dtype not in self._takes:
                raise NotImplementedByBackend(
                    f"backend {self._name!r} takes {' and '.join(self._dtypes)} logits, not {logits.dtype}")
            result = impl(*args, **outs)
            parts = result if type(result) is tuple else (result,)
            shapes = _result_shapes(function, logits.shape)
            got = [(type(p).__name__, getattr(p, "shape", None), str(getattr(p, "dtype", ""))) for p in parts]
            want = [("ndarray", shape, logits.dtype.name) for shape in shapes]
            if got != want:
                raise BackendError(f"backend {self._name!r}: {function} returned {got} (type, shape, dtype), "
                                   f"expected {want}")
            return result

        return checked


class Backend:
    """One backend behind the shared front door.

    The methods take what ``tf.nn`` takes (any array-like, any rank >= 1, any
    ``axis`` for the dense functions) and check it in ``impls._validate``
    before the backend module, which only ever sees the canonical form; a
    plugin's results are checked against the contract (``register``).
    """

    def __init__(self, name: str, module, builtin: bool = False):
        self.name = name
        self._module = module
        #: the canonical logits dtypes the backend takes (float16 and bfloat16 arrive as float32
        #: unless among them)
        self.dtypes = tuple(np.dtype(d).name for d in getattr(module, "dtypes", ("float32", "float64")))
        self._takes = frozenset(np.dtype(d) for d in self.dtypes)
        self._functions = module if builtin else _Contract(name, module, self.dtypes)
        #: whether the backend's functions write into canonical outputs they are given
        #: (``out=``; ``loss_out=``, ``grad_out=``); the front door copies into the others'
        self._writes_out = bool(getattr(module, "writes_out", False))

    def __repr__(self) -> str:
        return f"<impls backend {self.name!r}>"

    @property
    def module(self):
        """The backend's own functions over the canonical form, without the front door (for timing)."""
        return self._module

    def implements(self, function: str) -> bool:
        """Whether the backend offers ``function`` (one of ``FUNCTIONS``)."""
        return callable(getattr(self._module, function, None))

    def _run(self, function: str, *args, **outs):
        """The backend's ``function`` of the canonical ``args``; the views of the caller's
        outputs that are not None go along where the backend writes its results (``writes_out``)."""
        if self._writes_out:
            outs = {name: view for name, view in outs.items() if view is not None}
            return getattr(self._functions, function)(*args, **outs)
        return getattr(self._functions, function)(*args)

    def softmax(self, logits, axis=-1, *, out=None) -> np.ndarray:
        r"""``exp(x_i) / sum_j exp(x_j)`` along ``axis``; the logits' shape."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis, self._takes)
        out = _validate.check_out(out, "out", rows.full_shape, rows.dtype, (("logits", logits),))
        return rows.restore_full(self._run("softmax", rows.logits, out=rows.direct_full(out)), out)

    def log_softmax(self, logits, axis=-1, *, out=None) -> np.ndarray:
        r"""``x_i - log(sum_j exp(x_j))`` along ``axis``; the logits' shape."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis, self._takes)
        out = _validate.check_out(out, "out", rows.full_shape, rows.dtype, (("logits", logits),))
        return rows.restore_full(self._run("log_softmax", rows.logits, out=rows.direct_full(out)), out)

    def softmax_cross_entropy_with_logits(self, labels, logits, axis=-1, *, out=None) -> np.ndarray:
        r"""``-sum_i labels_i * log_softmax(logits)_i`` along ``axis``.

        ``labels`` broadcast to the logits' shape (soft labels allowed); the
        loss has the logits' shape without ``axis``.
        """
        given = (("logits", logits), ("labels", labels))
        logits = _validate.check_logits(logits)
        rows = _validate.Rows.from_logits(logits, axis, self._takes)
        labels = _validate.dense_labels(labels, rows, logits.shape)
        out = _validate.check_out(out, "out", rows.shape[:-1], rows.dtype, given)
        loss = self._run("softmax_cross_entropy_with_logits", labels, rows.logits, out=rows.direct(out))
        return rows.restore(loss, out)

    def sparse_softmax_cross_entropy_with_logits(self, labels, logits, *, out=None) -> np.ndarray:
        r"""``log(sum_j exp(x_j)) - x_label`` over the last axis.

        ``labels`` are integer class indices of shape ``logits.shape[:-1]``,
        each in ``[0, num_classes)``; the loss has the labels' shape.
        """
        given = (("logits", logits), ("labels", labels))
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1, self._takes)
        labels = _validate.sparse_labels(labels, rows)
        out = _validate.check_out(out, "out", rows.shape[:-1], rows.dtype, given)
        loss = self._run("sparse_softmax_cross_entropy_with_logits", labels, rows.logits, out=rows.direct(out))
        return rows.restore(loss, out)

    def sigmoid_cross_entropy_with_logits(self, labels, logits, *, out=None) -> np.ndarray:
        r"""Elementwise ``max(x, 0) - x*z + log1p(exp(-|x|))`` for labels ``z``.

        The stable form of ``-z*log(sigmoid(x)) - (1-z)*log(1-sigmoid(x))``;
        labels and logits have the same shape, and so does the loss.
        """
        given = (("logits", logits), ("labels", labels))
        labels, flat, dtype = _validate.sigmoid_inputs(labels, logits, self._takes)
        out = _validate.check_out(out, "out", np.shape(logits), dtype, given)
        direct = out.reshape(-1) if out is not None and out.dtype == flat.dtype else None
        loss = self._run("sigmoid_cross_entropy_with_logits", labels, flat, out=direct)
        if out is not None:
            return _validate.deliver(loss, out)
        return _validate.as_dtype(loss, dtype).reshape(np.shape(logits))

    def _fused(self, function, labels, rows, given, loss_out, grad_out):
        """``function`` (a fused loss and gradient) into the checked ``loss_out`` and ``grad_out``."""
        loss_out = _validate.check_out(loss_out, "loss_out", rows.shape[:-1], rows.dtype, given)
        grad_out = _validate.check_out(grad_out, "grad_out", rows.full_shape, rows.dtype,
                                       given + (("loss_out", loss_out),))
        loss, grad = self._run(function, labels, rows.logits,
                               loss_out=rows.direct(loss_out), grad_out=rows.direct_full(grad_out))
        return rows.restore(loss, loss_out), rows.restore_full(grad, grad_out)

    def softmax_cross_entropy_with_logits_and_grad(self, labels, logits, axis=-1, *, loss_out=None,
                                                   grad_out=None):
        r"""``(loss, dlogits)`` with ``dlogits = softmax(logits) - labels``.

        ``dlogits`` is the gradient of ``sum(loss)`` when each row of labels
        sums to 1; like TF's fused kernel it is ``softmax - labels`` whatever
        the labels sum to.
        """
        given = (("logits", logits), ("labels", labels))
        logits = _validate.check_logits(logits)
        rows = _validate.Rows.from_logits(logits, axis, self._takes)
        labels = _validate.dense_labels(labels, rows, logits.shape)
        return self._fused("softmax_cross_entropy_with_logits_and_grad", labels, rows, given, loss_out, grad_out)

    def sparse_softmax_cross_entropy_with_logits_and_grad(self, labels, logits, *, loss_out=None,
                                                          grad_out=None):
        r"""``(loss, dlogits)`` with ``dlogits = softmax(logits) - one_hot(labels)``."""
        given = (("logits", logits), ("labels", labels))
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1, self._takes)
        labels = _validate.sparse_labels(labels, rows)
        return self._fused("sparse_softmax_cross_entropy_with_logits_and_grad", labels, rows, given,
                           loss_out, grad_out)


def _result_shapes(function: str, shape: tuple) -> tuple:
    """The shapes of ``function``'s results for canonical logits of ``shape``: per row, or the logits'."""
    if function in ("softmax", "log_softmax", "sigmoid_cross_entropy_with_logits"):
        return (shape,)
    return (shape[:1], shape) if function.endswith("_and_grad") else (shape[:1],)


#: name -> where the backend comes from: an import path (``"pkg.module"`` or
#: ``"pkg.module:attribute"``), an entry point, or the module or object itself
_sources: dict = dict(BUILTIN)
_loaded: dict[str, Backend] = {}
_discovered = False


def _discover() -> None:
    """Add the backends that installed packages declare in the entry-point group, once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        _sources.setdefault(entry.name, entry)


def register(name: str, backend, *, replace: bool = False) -> None:
    """Make ``backend`` available as ``name`` to every function of ``impls`` and every tool.

    ``backend`` is a module or object with any subset of ``FUNCTIONS`` over the
    canonical form of ``impls._validate`` (2-D C-contiguous read-only logits,
    rows x classes, float32 or float64; int64 sparse labels; dense labels of
    the logits' shape), each returning ndarrays of the logits' dtype: a loss of
    shape ``(rows,)``, a softmax or gradient of the logits' shape. It may
    declare ``dtypes = ("float32",)`` to take only some dtypes, and
    ``writes_out = True`` if its functions take the keywords ``out=``
    (``loss_out=``, ``grad_out=`` for the fused ones): writable arrays of the
    result's canonical shape and dtype, passed where the caller gave outputs,
    to write into and return (else the front door copies the results there). A class is
    instantiated on first use, and an import path (``"pkg.module"`` or
    ``"pkg.module:attribute"``) imported on first use. Installed packages
    register through the entry-point group ``xentbench.backends`` instead.

    >>> import numpy as np, impls
    >>> class Softmax:                        # a toy: one function, float64 only
    ...     dtypes = ("float64",)
    ...     def softmax(self, logits):
    ...         e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    ...         return e / e.sum(axis=-1, keepdims=True)
    >>> impls.register("toy", Softmax)
    >>> impls.softmax([0.0, 0.0], backend="toy")
    array([0.5, 0.5])
    """
    _discover()
    if name in _sources and not replace:
        raise ValueError(f"a backend called {name!r} is already registered; pass replace=True to replace it")
    _sources[name] = backend
    _loaded.pop(name, None)


def names() -> list[str]:
    """Every registered backend, available here or not: the built-in ones, then plugins."""
    _discover()
    return list(_sources)


def _load(source):
    """The backend object a source names (see ``_sources``)."""
    if isinstance(source, str):
        module_name, _, attribute = source.partition(":")
        found = importlib.import_module(module_name)
        source = getattr(found, attribute) if attribute else found
    elif isinstance(source, importlib.metadata.EntryPoint):
        source = source.load()
    return source() if isinstance(source, type) else source


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing, an empty or relative name
        return False


def get(name: str) -> Backend:
    """The backend called ``name``, or at the import path ``name``; ``BackendUnavailable`` if it cannot load.

    ``name`` is a registered name (``names()``) or an importable module path
    (``"mypkg.myloss"``, ``"mypkg.myloss:backend"``), registered under that path
    on first use.
    """
    loaded = _loaded.get(name)
    if loaded is not None:  # every call of impls.softmax(..., backend=name) comes here first
        return loaded
    _discover()
    if name not in _sources:
        if not _importable(name.partition(":")[0]):
            raise ValueError(f"Unknown backend {name!r}; expected one of {names()} or a module path")
        _sources[name] = name
    try:
        module = _load(_sources[name])
    except Exception as exc:  # noqa: BLE001
        # Not only ImportError: a backend whose import fails in any way (a
        # RuntimeError from a JIT cache with nowhere to write, an OSError
        # from a broken shared library) is unavailable, and must not take
        # ``available()`` and every other backend down with it.
        raise BackendUnavailable(f"backend {name!r} is unavailable: {type(exc).__name__}: {exc}") from exc
    builtin = name in BUILTIN and isinstance(_sources[name], str) and _sources[name] == BUILTIN[name]
    backend = Backend(name, module, builtin)
    if not any(backend.implements(f) for f in FUNCTIONS):
        raise BackendUnavailable(f"backend {name!r} is unavailable: it offers none of {', '.join(FUNCTIONS)}")
    _loaded[name] = backend
    return backend


def available(among=None) -> list[str]:
    """The registered backends that import here; of ``among`` (names or module paths) where given."""
    found = []
    for name in names() if among is None else among:
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
