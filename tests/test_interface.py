"""The registry, the backend objects and the module-level dispatch of ``impls``."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import impls
from conftest import backend_or_skip, make_inputs, seed_of

SEVEN = {
    "softmax",
    "log_softmax",
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad",
    "sparse_softmax_cross_entropy_with_logits_and_grad",
}


def test_names_are_the_four_builtin_backends_then_plugins():
    assert impls.names()[:4] == ["naive", "numpy", "numba", "tensorflow"] == list(impls.BUILTIN)


def test_available_is_a_subset_of_names_in_their_order():
    available = impls.available()
    assert available == [n for n in impls.names() if n in available]
    assert {"naive", "numpy", "numba"} <= set(available)  # no optional dependency


def test_the_registry_lists_the_seven_functions():
    assert set(impls.FUNCTIONS) == SEVEN and len(impls.FUNCTIONS) == 7


def test_backend_has_exactly_the_seven_functions_the_probability_and_linear_forms_and_a_name(backend):
    public = {n for n in dir(backend) if not n.startswith("_")}
    assert public == (SEVEN | set(impls.PROBABILITY_FUNCTIONS) | set(impls.LINEAR_FUNCTIONS)
                      | {"name", "dtypes", "module", "implements"})
    assert backend.name in impls.names()
    assert all(callable(getattr(backend, f)) for f in SEVEN)


def test_get_returns_the_same_object_each_time(backend):
    assert impls.get(backend.name) is backend


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match=r"Unknown backend 'cupy': not a registered name \(naive, numpy, .*\) nor "
                                         r"an importable module: No module named 'cupy' \(sys.path: "):
        impls.get("cupy")
    with pytest.raises(ValueError, match="Unknown backend"):
        impls.softmax([1.0, 2.0], backend="cupy")


def test_backend_unavailable_is_an_import_error():
    assert issubclass(impls.BackendUnavailable, ImportError)


@pytest.fixture
def broken_backend(monkeypatch):
    """A registered backend whose module does not exist; the registry is restored after."""
    monkeypatch.setitem(impls._registry._sources, "broken", "impls._no_such_module")
    monkeypatch.setattr(impls._registry, "_loaded", {})
    return "broken"


def test_a_backend_that_cannot_import_raises_backend_unavailable_with_the_reason(broken_backend):
    reason = "backend 'broken' is unavailable: .*No module named 'impls._no_such_module'"
    with pytest.raises(impls.BackendUnavailable, match=reason) as info:
        impls.get(broken_backend)
    assert isinstance(info.value.__cause__, ImportError)
    with pytest.raises(impls.BackendUnavailable):
        impls.softmax([1.0], backend=broken_backend)


def test_available_leaves_out_a_backend_that_cannot_import(broken_backend):
    assert broken_backend in impls.names()
    assert broken_backend not in impls.available()


def test_the_registry_is_restored_after_monkeypatching():
    assert "broken" not in impls.names()


@pytest.mark.parametrize("function", sorted(SEVEN))
def test_module_level_functions_dispatch_on_backend(function, backend):
    """``impls.<function>(..., backend=name)`` returns what ``impls.get(name).<function>`` does."""
    labels, logits = make_inputs(function, (2, 3), np.float64, 2.0, seed_of(function))
    args = (logits,) if labels is None else (labels, logits)
    via_module = getattr(impls, function)(*args, backend=backend.name)
    direct = getattr(backend, function)(*args)
    for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (via_module, direct))):
        np.testing.assert_array_equal(a, b)


def test_default_backend_is_numba():
    assert inspect.signature(impls.softmax).parameters["backend"].default == "numba"
    backend_or_skip("numba")
    np.testing.assert_array_equal(impls.softmax([[1.0, 1.0]]), [[0.5, 0.5]])


def test_module_level_functions_keep_the_documentation():
    for function in SEVEN:
        f = getattr(impls, function)
        assert f.__name__ == function
        assert "backend" in f.__doc__
