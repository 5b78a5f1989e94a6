"""The registry of backends: ``names()``, ``available()``, ``get()``, ``register()``, and the
entry-point group through which installed packages declare theirs."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys

from ._backend import FUNCTIONS, LINEAR_FUNCTIONS, Backend, BackendUnavailable

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
