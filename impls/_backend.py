"""The front door of one backend (``Backend``), the contract a plugin's results are held to
(``_Contract``), and the errors a backend call raises.

``impls._registry`` makes ``Backend`` objects; ``impls._api``'s functions call their methods.
"""

from __future__ import annotations

import numpy as np

from . import _linear, _options, _validate

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

    ``impls.get(name)`` returns one. Its methods are the module-level functions of
    ``impls`` without ``backend=`` (their documentation is there), the loss options
    taken as ``**options``: they take what ``tf.nn`` takes (any array-like, any rank
    >= 1, any ``axis`` for the dense functions) and check it in ``impls._validate``
    before the backend module, which only ever sees the canonical form; a
    plugin's results are checked against the contract (``impls.register``).

    Attributes
    ----------
    name : str
        The name it is registered under.
    dtypes : tuple of str
        The canonical logits dtypes it takes; float16 and bfloat16 arrive as float32
        unless among them.
    """

    def __init__(self, name: str, module, builtin: bool = False):
        self.name = name
        self._module = module
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
        """As ``impls.softmax``, on this backend."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis, self._takes)
        out = _validate.check_out(out, "out", rows.full_shape, rows.dtype, (("logits", logits),))
        return rows.restore_full(self._run("softmax", None, rows.logits, out=rows.direct_full(out)), out)

    def log_softmax(self, logits, axis=-1, *, out=None) -> np.ndarray:
        """As ``impls.log_softmax``, on this backend."""
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), axis, self._takes)
        out = _validate.check_out(out, "out", rows.full_shape, rows.dtype, (("logits", logits),))
        return rows.restore_full(self._run("log_softmax", None, rows.logits, out=rows.direct_full(out)), out)

    def softmax_cross_entropy_with_logits(self, labels, logits, axis=-1, *, out=None, **options) -> np.ndarray:
        """As ``impls.softmax_cross_entropy_with_logits``, on this backend."""
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
        """As ``impls.sparse_softmax_cross_entropy_with_logits``, on this backend."""
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
        """As ``impls.sigmoid_cross_entropy_with_logits``, on this backend."""
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
        """As ``impls.softmax_cross_entropy_with_logits_and_grad``, on this backend."""
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
        """As ``impls.sparse_softmax_cross_entropy_with_logits_and_grad``, on this backend."""
        given = (("logits", logits), ("labels", labels))
        rows = _validate.Rows.from_logits(_validate.check_logits(logits), -1, self._takes_for(options))
        if options:
            return self._with_options("sparse_softmax_cross_entropy_with_logits_and_grad", labels, rows, options,
                                      given, None, loss_out, grad_out)
        labels = _validate.sparse_labels(labels, rows)
        return self._fused("sparse_softmax_cross_entropy_with_logits_and_grad", labels, rows, given,
                           loss_out, grad_out)

    def binary_cross_entropy(self, labels, probs, *, out=None) -> np.ndarray:
        """As ``impls.binary_cross_entropy``, on this backend."""
        given = (("probs", probs), ("labels", labels))
        labels, flat, dtype = _validate.sigmoid_inputs(labels, probs)
        out = _validate.check_out(out, "out", np.shape(probs), dtype, given)
        loss = self._functions.binary_cross_entropy(labels, flat)
        if out is not None:
            return _validate.deliver(loss, out)
        return _validate.as_dtype(loss, dtype).reshape(np.shape(probs))

    def categorical_cross_entropy(self, labels, probs, axis=-1, *, out=None) -> np.ndarray:
        """As ``impls.categorical_cross_entropy``, on this backend."""
        given = (("probs", probs), ("labels", labels))
        probs = _validate.check_logits(probs)
        rows = _validate.Rows.from_logits(probs, axis)
        labels = _validate.dense_labels(labels, rows, probs.shape)
        out = _validate.check_out(out, "out", rows.shape[:-1], rows.dtype, given)
        return rows.restore(self._functions.categorical_cross_entropy(labels, rows.logits), out)

    def linear_cross_entropy(self, labels, hidden, weight, bias=None, **options) -> np.ndarray:
        """As ``impls.linear_cross_entropy``, on this backend."""
        call = _linear.check(labels, hidden, weight, bias, options, "linear_cross_entropy")
        return _linear.deliver(call, self._linear("linear_cross_entropy", call))

    def linear_cross_entropy_and_grad(self, labels, hidden, weight, bias=None, **options) -> tuple:
        """As ``impls.linear_cross_entropy_and_grad``, on this backend."""
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
