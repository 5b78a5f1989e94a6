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

import importlib
import importlib.metadata
import importlib.util
import os
import sys

import numpy as np

from . import _linear, _options, _validate

__all__ = [
    "BackendUnavailable", "NotImplementedByBackend", "BackendError", "Backend", "BUILTIN", "ENTRY_POINTS",
    "names", "available", "get", "register", "FUNCTIONS",
    "softmax", "log_softmax",
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad", "sparse_softmax_cross_entropy_with_logits_and_grad",
    "PROBABILITY_FUNCTIONS", "binary_cross_entropy", "categorical_cross_entropy",
    "LINEAR_FUNCTIONS", "linear_cross_entropy", "linear_cross_entropy_and_grad",
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
#: The probability forms (``impls._probability``), Keras's ``from_logits=False`` losses: offered by
#: the built-in backends, optional for a plugin (not implemented where it lacks them).
PROBABILITY_FUNCTIONS = ("binary_cross_entropy", "categorical_cross_entropy")
#: The fused linear + cross-entropy (``impls._linear``): offered by the built-in backends,
#: optional for a plugin, whose functions take ``(labels, hidden, weight, bias)`` in the canonical
#: form and ``options=`` / ``softcap=`` where given.
LINEAR_FUNCTIONS = _linear.LINEAR_FUNCTIONS


class BackendUnavailable(ImportError):
    """A registered backend that cannot be imported here (the message says why)."""


class NotImplementedByBackend(NotImplementedError):
    """The backend does not offer this function, or not for this dtype (a plugin may offer a subset)."""


class BackendError(RuntimeError):
    """The backend broke the contract: a result of the wrong type, shape or dtype, or a write into
    its read-only inputs (the message says which)."""


#: What a plugin that writes into its inputs is told (``register``).
_READ_ONLY = "inputs are read-only: copy before writing"


class _Contract:
    """A plugin's functions, each checked against the contract on every call.

    ``contract.softmax(logits)`` raises ``NotImplementedByBackend`` where the
    plugin lacks the function or the dtype, and ``BackendError`` where a result
    is not an ndarray of the expected shape (per row, or the logits') and of
    the logits' dtype, or where the plugin writes into its inputs (NumPy's
    ``ValueError`` "... is read-only", named as the contract). The built-in
    backends are called directly instead: the test suite proves them, and
    their smallest calls cannot spare the checks.
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

        def checked(*args, **kwargs):
            logits = args[-1]
            if logits.dtype not in self._takes:
                raise NotImplementedByBackend(
                    f"backend {self._name!r} takes {' and '.join(self._dtypes)} logits, not {logits.dtype}")
            try:
                result = impl(*args, **kwargs)
            except ValueError as exc:
                if not str(exc).endswith(" is read-only"):  # NumPy's words for a write into a read-only array
                    raise
                raise BackendError(f"backend {self._name!r}: {function}: {_READ_ONLY} ({exc})") from exc
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
        #: whether its losses take ``options=`` (``impls._options``); a plugin declares ``takes_options = True``
        self._takes_options = getattr(module, "takes_options", False)
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

    def _takes_for(self, options: dict):
        """The logits dtypes the backend receives as they are for a call with the keyword
        ``options``: none of half precision where there are any, since a call with loss options
        is computed from float32 logits (``impls._options``)."""
        return () if options else self._takes

    def _run(self, function: str, options, *args, **outs):
        """The backend's ``function`` of the canonical ``args``, given ``options=`` unless they
        are None (all defaults); the views of the caller's outputs that are not None go along
        where the backend writes its results (``writes_out``)."""
        kwargs = {}
        if options is not None:
            if not self._takes_options:
                raise NotImplementedByBackend(f"backend {self.name!r} does not implement the loss options")
            kwargs["options"] = options
        if self._writes_out:
            for name, view in outs.items():  # a loop, not a generator: this is every call's fixed cost
                if view is not None:
                    kwargs[name] = view
        return getattr(self._functions, function)(*args, **kwargs)

    def softmax(self, logits, axis=-1, *, out=None) -> np.ndarray:
        r"""``exp(x_i) / sum_j exp(x_j)`` along ``axis``; the logits' shape."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis, self._takes)
        out = _validate.check_out(out, "out", rows.full_shape, rows.dtype, (("logits", logits),))
        return rows.restore_full(self._run("softmax", None, rows.logits, out=rows.direct_full(out)), out)

    def log_softmax(self, logits, axis=-1, *, out=None) -> np.ndarray:
        r"""``x_i - log(sum_j exp(x_j))`` along ``axis``; the logits' shape."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis, self._takes)
        out = _validate.check_out(out, "out", rows.full_shape, rows.dtype, (("logits", logits),))
        return rows.restore_full(self._run("log_softmax", None, rows.logits, out=rows.direct_full(out)), out)

    def softmax_cross_entropy_with_logits(self, labels, logits, axis=-1, *, out=None, **options) -> np.ndarray:
        r"""``-sum_i labels_i * log_softmax(logits)_i`` along ``axis``.

        ``labels`` broadcast to the logits' shape (soft labels allowed); the
        loss has the logits' shape without ``axis`` (0-d with a ``reduction``,
        and so must ``out`` be). Keyword-only options (``impls._options``):
        ``label_smoothing``, ``class_weights``, ``reduction`` (``'none'``,
        ``'sum'``, ``'mean'``), ``z_loss``.
        """
        given = (("logits", logits), ("labels", labels))
        logits = _validate.check_logits(logits)
        rows = _validate.Rows.from_logits(logits, axis, self._takes_for(options))
        if options:
            return self._with_options("softmax_cross_entropy_with_logits", labels, rows, options, given,
                                      logits.shape, loss_out=out)
        labels = _validate.dense_labels(labels, rows, logits.shape)
        out = _validate.check_out(out, "out", rows.shape[:-1], rows.dtype, given)
        loss = self._run("softmax_cross_entropy_with_logits", None, labels, rows.logits, out=rows.direct(out))
        return rows.restore(loss, out)

    def sparse_softmax_cross_entropy_with_logits(self, labels, logits, *, out=None, **options) -> np.ndarray:
        r"""``log(sum_j exp(x_j)) - x_label`` over the last axis.

        ``labels`` are integer class indices of shape ``logits.shape[:-1]``,
        each in ``[0, num_classes)`` or equal to ``ignore_index``; the loss has
        the labels' shape (0-d with a ``reduction``, and so must ``out`` be).
        Keyword-only options (``impls._options``): ``label_smoothing``,
        ``ignore_index``, ``class_weights``, ``reduction`` (``'none'``,
        ``'sum'``, ``'mean'``), ``z_loss``.
        """
        given = (("logits", logits), ("labels", labels))
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1, self._takes_for(options))
        if options:
            return self._with_options("sparse_softmax_cross_entropy_with_logits", labels, rows, options, given,
                                      loss_out=out)
        labels = _validate.sparse_labels(labels, rows)
        out = _validate.check_out(out, "out", rows.shape[:-1], rows.dtype, given)
        loss = self._run("sparse_softmax_cross_entropy_with_logits", None, labels, rows.logits, out=rows.direct(out))
        return rows.restore(loss, out)

    def sigmoid_cross_entropy_with_logits(self, labels, logits, *, out=None, **options) -> np.ndarray:
        r"""Elementwise ``max(x, 0) - x*z + log1p(exp(-|x|))`` for labels ``z``.

        The stable form of ``-z*log(sigmoid(x)) - (1-z)*log(1-sigmoid(x))``;
        labels and logits have the same shape, and so does the loss.
        Keyword-only options (``impls._options``): ``label_smoothing`` (labels
        become ``z (1 - eps) + eps / 2``) and ``pos_weight`` (the positive term
        weighted, broadcast to the logits).
        """
        given = (("logits", logits), ("labels", labels))
        labels, flat, dtype = _validate.sigmoid_inputs(labels, logits, self._takes_for(options))
        function = "sigmoid_cross_entropy_with_logits"
        checked = _options.sigmoid_options(function, np.shape(logits), flat.dtype, options) if options else None
        out = _validate.check_out(out, "out", np.shape(logits), dtype, given)
        direct = out.reshape(-1) if out is not None and out.dtype == flat.dtype else None
        loss = self._run(function, checked, labels, flat, out=direct)
        if out is not None:
            return _validate.deliver(loss, out)
        return _validate.as_dtype(loss, dtype).reshape(np.shape(logits))

    def _fused(self, function, labels, rows, given, loss_out, grad_out):
        """``function`` (a fused loss and gradient, without options) into the checked
        ``loss_out`` and ``grad_out``."""
        loss_out = _validate.check_out(loss_out, "loss_out", rows.shape[:-1], rows.dtype, given)
        grad_out = _validate.check_out(grad_out, "grad_out", rows.full_shape, rows.dtype,
                                       given + (("loss_out", loss_out),))
        loss, grad = self._run(function, None, labels, rows.logits,
                               loss_out=rows.direct(loss_out), grad_out=rows.direct_full(grad_out))
        return rows.restore(loss, loss_out), rows.restore_full(grad, grad_out)

    def softmax_cross_entropy_with_logits_and_grad(self, labels, logits, axis=-1, *, loss_out=None,
                                                   grad_out=None, **options):
        r"""``(loss, dlogits)`` with ``dlogits = softmax(logits) - labels``.

        ``dlogits`` is the gradient of ``sum(loss)`` when each row of labels
        sums to 1; like TF's fused kernel it is ``softmax - labels`` whatever
        the labels sum to. With any option (as for
        ``softmax_cross_entropy_with_logits``), ``dlogits`` is the exact
        gradient of the reduced loss, or of ``sum(loss)`` for ``reduction='none'``;
        with a ``reduction`` the loss and ``loss_out`` are 0-d.
        """
        given = (("logits", logits), ("labels", labels))
        logits = _validate.check_logits(logits)
        rows = _validate.Rows.from_logits(logits, axis, self._takes_for(options))
        if options:
            return self._with_options("softmax_cross_entropy_with_logits_and_grad", labels, rows, options, given,
                                      logits.shape, loss_out, grad_out)
        labels = _validate.dense_labels(labels, rows, logits.shape)
        return self._fused("softmax_cross_entropy_with_logits_and_grad", labels, rows, given, loss_out, grad_out)

    def sparse_softmax_cross_entropy_with_logits_and_grad(self, labels, logits, *, loss_out=None, grad_out=None,
                                                          **options):
        r"""``(loss, dlogits)`` with ``dlogits = softmax(logits) - one_hot(labels)``.

        With options (as for ``sparse_softmax_cross_entropy_with_logits``),
        ``dlogits`` is the gradient of the reduced loss, or of ``sum(loss)``
        for ``reduction='none'``; an ignored row's is 0; with a ``reduction``
        the loss and ``loss_out`` are 0-d.
        """
        given = (("logits", logits), ("labels", labels))
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1, self._takes_for(options))
        if options:
            return self._with_options("sparse_softmax_cross_entropy_with_logits_and_grad", labels, rows, options,
                                      given, None, loss_out, grad_out)
        labels = _validate.sparse_labels(labels, rows)
        return self._fused("sparse_softmax_cross_entropy_with_logits_and_grad", labels, rows, given,
                           loss_out, grad_out)

    def binary_cross_entropy(self, labels, probs, *, out=None) -> np.ndarray:
        r"""Elementwise ``-(z log(q) + (1 - z) log(1 - q))`` of probabilities ``probs``.

        ``q`` is ``probs`` clipped to ``[1e-7, 1 - 1e-7]`` as Keras clips them
        (``impls._probability``), so a loss is at most ``-log(1e-7) = 16.1``
        and never 0; labels and probabilities have the same shape, and so does
        the loss (copied into ``out`` where given). ``sigmoid_cross_entropy_with_logits``
        is the logits form, exact where this one clips.
        """
        given = (("probs", probs), ("labels", labels))
        labels, flat, dtype = _validate.sigmoid_inputs(labels, probs)
        out = _validate.check_out(out, "out", np.shape(probs), dtype, given)
        loss = self._functions.binary_cross_entropy(labels, flat)
        if out is not None:
            return _validate.deliver(loss, out)
        return _validate.as_dtype(loss, dtype).reshape(np.shape(probs))

    def categorical_cross_entropy(self, labels, probs, axis=-1, *, out=None) -> np.ndarray:
        r"""``-sum_i labels_i log(q_i)`` along ``axis``, ``q = clip(probs / sum(probs), 1e-7, 1 - 1e-7)``.

        Keras's ``categorical_crossentropy(from_logits=False)``: each row of
        probabilities rescaled to sum to 1, then clipped (``impls._probability``).
        ``labels`` broadcast to the probabilities' shape; the loss has their
        shape without ``axis`` (copied into ``out`` where given).
        ``softmax_cross_entropy_with_logits`` is the logits form.
        """
        given = (("probs", probs), ("labels", labels))
        probs = _validate.check_logits(probs)
        rows = _validate.Rows.from_logits(probs, axis)
        labels = _validate.dense_labels(labels, rows, probs.shape)
        out = _validate.check_out(out, "out", rows.shape[:-1], rows.dtype, given)
        return rows.restore(self._functions.categorical_cross_entropy(labels, rows.logits), out)

    def linear_cross_entropy(self, labels, hidden, weight, bias=None, **options) -> np.ndarray:
        r"""The sparse loss of ``logits = hidden @ weight.T + bias``, without the logits (``impls._linear``).

        ``hidden`` ``(..., D)``, ``weight`` ``(V, D)``, ``bias`` ``(V,)`` or None, integer
        ``labels`` of shape ``hidden.shape[:-1]``; the loss has the labels' shape (0-d with a
        ``reduction``). Keyword-only options: the sparse loss's (``label_smoothing``,
        ``ignore_index``, ``class_weights``, ``reduction``, ``z_loss``) and ``softcap`` ``c``
        (the logits become ``c * tanh(logits / c)``).
        """
        call = _linear.check(labels, hidden, weight, bias, options, "linear_cross_entropy")
        return _linear.deliver(call, self._linear("linear_cross_entropy", call))

    def linear_cross_entropy_and_grad(self, labels, hidden, weight, bias=None, **options) -> tuple:
        r"""``(loss, grad_hidden, grad_weight)``, and ``grad_bias`` where a bias is given.

        As ``linear_cross_entropy``; the gradients are those of ``sum(loss)``, or of the
        reduced loss with a ``reduction``, each of its input's shape.
        """
        call = _linear.check(labels, hidden, weight, bias, options, "linear_cross_entropy_and_grad")
        loss, *grads = self._linear("linear_cross_entropy_and_grad", call)
        return _linear.deliver(call, loss, grads)

    def _linear(self, function: str, call) -> tuple | np.ndarray:
        """The backend's ``function`` of a checked call (``impls._linear.Linear``); a plugin's
        results are checked against the contract (ndarrays of the compute dtype and the canonical shapes)."""
        impl = getattr(self._module, function, None)
        if not callable(impl):
            raise NotImplementedByBackend(f"backend {self.name!r} does not implement {function}")
        if (call.options is not None or call.softcap is not None) and not self._takes_options:
            raise NotImplementedByBackend(f"backend {self.name!r} does not implement the loss options")
        kwargs = {k: v for k, v in (("options", call.options), ("softcap", call.softcap)) if v is not None}
        result = impl(call.labels, call.hidden, call.weight, call.bias, **kwargs)
        if self._functions is not self._module:  # a plugin
            parts = result if type(result) is tuple else (result,)
            want = [(len(call.labels),)] + ([call.hidden.shape, call.weight.shape] if function.endswith("_and_grad")
                                            else [])
            want += [call.bias.shape] if call.bias is not None and function.endswith("_and_grad") else []
            got = [getattr(p, "shape", None) if getattr(p, "dtype", None) == call.hidden.dtype else None
                   for p in parts]
            if got != want:
                raise BackendError(f"backend {self.name!r}: {function} returned shapes {got}, expected {want} "
                                   f"of dtype {call.hidden.dtype}")
        return result

    def _with_options(self, function: str, labels, rows, given: dict, inputs: tuple, shape: tuple | None = None,
                      loss_out=None, grad_out=None):
        """A softmax loss (``*_and_grad``: with its gradient) with the keyword options ``given``,
        checked (``impls._options``), in the public shape and reduced as they ask, into
        ``loss_out`` (the loss functions' ``out``) and ``grad_out`` where given.

        ``inputs``: the caller's arrays the outputs must not overlap (``check_out``);
        ``shape``: the logits' shape, for dense labels; None for sparse ones. With a
        ``reduction`` the loss is 0-d, and so must ``loss_out`` be: the per-row losses go
        to a buffer of the backend's and their sum or mean into ``loss_out``.
        """
        sparse, fused = shape is None, function.endswith("_and_grad")
        options = _options.softmax_options(function, rows.shape[-1], rows.logits.dtype, sparse, given)
        if sparse:
            labels = _validate.sparse_labels(labels, rows, None if options is None else options.ignore_index)
        else:
            labels = _validate.dense_labels(labels, rows, shape)
        reduced = options is not None and options.reduction != "none"
        loss_out = _validate.check_out(loss_out, "loss_out" if fused else "out",
                                       () if reduced else rows.shape[:-1], rows.dtype, inputs)
        direct = None if reduced else rows.direct(loss_out)
        if fused:
            grad_out = _validate.check_out(grad_out, "grad_out", rows.full_shape, rows.dtype,
                                           inputs + (("loss_out", loss_out),))
            outs = {"loss_out": direct, "grad_out": rows.direct_full(grad_out)}
        else:
            outs = {"out": direct}
        options, denominator = _options.with_scale(options, labels if sparse else None, len(rows.logits))
        result = self._run(function, options, labels, rows.logits, **outs)
        loss = result[0] if fused else result
        loss = _options.reduce(rows.restore(loss, None if reduced else loss_out), options, denominator)
        if reduced and loss_out is not None:
            loss_out[()] = loss
            loss = loss_out
        return (loss, rows.restore_full(result[1], grad_out)) if fused else loss


def _result_shapes(function: str, shape: tuple) -> tuple:
    """The shapes of ``function``'s results for canonical logits of ``shape``: per row, or the logits'."""
    if function in ("softmax", "log_softmax", "sigmoid_cross_entropy_with_logits", "binary_cross_entropy"):
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
    shape ``(rows,)``, a softmax or gradient of the logits' shape. Its inputs
    are read-only views of the caller's data: copy before writing (an in-place
    ``logits -= logits.max(...)`` is a ``BackendError`` saying so). It may
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


def _import_error(module: str) -> str | None:
    """Why ``module`` cannot be imported, in Python's words (a file path: the module name to give
    instead); None where it can be."""
    if module.endswith(".py") or "/" in module or os.sep in module:
        stem = os.path.splitext(os.path.basename(module))[0]
        return f"{module!r} is a file path: give the module's name, {stem!r}"
    try:
        if importlib.util.find_spec(module) is not None:
            return None
    except (ImportError, ValueError) as exc:  # a parent package that is missing, an empty or relative name
        return str(exc)
    return f"No module named {module!r}"


def _search_path() -> str:
    """Where an import looks: ``sys.path``, with the current folder named as such."""
    here = os.getcwd()
    return ", ".join("the current folder" if os.path.abspath(p or os.curdir) == here else p for p in sys.path)


def get(name: str) -> Backend:
    """The backend called ``name``, or at the import path ``name``; ``BackendUnavailable`` if it cannot load.

    ``name`` is a registered name (``names()``) or an importable module path
    (``"mypkg.myloss"``, ``"mypkg.myloss:backend"``), registered under that path
    on first use; anything else is a ``ValueError`` with the import's error and
    where it looked (the registered names, ``sys.path``).
    """
    loaded = _loaded.get(name)
    if loaded is not None:  # every call of impls.softmax(..., backend=name) comes here first
        return loaded
    _discover()
    if name not in _sources:
        reason = _import_error(name.partition(":")[0])
        if reason is not None:
            raise ValueError(f"Unknown backend {name!r}: not a registered name ({', '.join(names())}) nor an "
                             f"importable module: {reason} (sys.path: {_search_path()})")
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
    if not any(backend.implements(f) for f in FUNCTIONS + LINEAR_FUNCTIONS):
        raise BackendUnavailable(f"backend {name!r} is unavailable: it offers none of "
                                 f"{', '.join(FUNCTIONS + LINEAR_FUNCTIONS)}")
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
binary_cross_entropy = _dispatch("binary_cross_entropy")
linear_cross_entropy = _dispatch("linear_cross_entropy")
linear_cross_entropy_and_grad = _dispatch("linear_cross_entropy_and_grad")
categorical_cross_entropy = _dispatch("categorical_cross_entropy")
