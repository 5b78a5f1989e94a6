"""``out=`` (``loss_out=``, ``grad_out=``): NumPy's convention, the same on every backend.

The result is written into the caller's array, which is returned; its values are
those of the call without ``out`` (and so within the tolerance of the truth);
bad outputs get the front door's errors before any backend runs; nothing outside
the output is written; in-place calls are refused.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import impls
from conftest import DTYPES, as_tuple, call, case_id, check_against_truth, make_inputs, naive_limit, seed_of
from xentbench.accuracy import FUNCTIONS, WITH_AXIS, truth

#: The output keywords of each function, and which result each receives.
FUSED = {f for f in FUNCTIONS if f.endswith("_and_grad")}


def _outs(function: str, results: tuple, fill) -> dict:
    """Fresh output arrays shaped as ``results``, filled with ``fill`` (to show they are written)."""
    arrays = [np.full(r.shape, fill, r.dtype) for r in results]
    return dict(zip(("loss_out", "grad_out"), arrays)) if function in FUSED else {"out": arrays[0]}


def _call(b, function, labels, logits, axis=-1, **outs):
    f = getattr(b, function)
    if function in ("softmax", "log_softmax"):
        return f(logits, axis=axis, **outs)
    if function in WITH_AXIS:
        return f(labels, logits, axis=axis, **outs)
    return f(labels, logits, **outs)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.dtype(f"u{a.dtype.itemsize}"))


@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_out_receives_the_result_and_is_returned(backend, function, dtype):
    """Each output is the very array given, holding the result of the call without outputs, bit
    for bit, at the class axis last (where the numba kernels write it) and first (a copy)."""
    for axis, shape in ((-1, (3, 70)), (0, (70, 3))) if function in WITH_AXIS else ((-1, (3, 70)),):
        labels, logits = make_inputs(function, shape, dtype, 3.0, seed_of(function, dtype.name, axis), axis,
                                     limit=naive_limit(function))  # where every backend is right
        want = as_tuple(call(backend, function, labels, logits, axis))
        outs = _outs(function, want, np.nan)
        got = as_tuple(_call(backend, function, labels, logits, axis, **outs))
        assert len(got) == len(outs) and all(g is o for g, o in zip(got, outs.values()))
        for g, w in zip(got, want):
            assert np.array_equal(_bits(g), _bits(w)), f"axis {axis}: {g} != {w}"
        check_against_truth(truth(function, labels, logits, axis), got, what=f"{backend.name} axis {axis}")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_outputs_are_reused_and_nothing_beyond_them_is_written(backend, function):
    """A C-contiguous slice of a larger buffer as the output, twice: the same result each
    time, and the guard values around it untouched (no kernel writes out of bounds)."""
    labels, logits = make_inputs(function, (5, 300), np.float32, 3.0, seed_of(function, "reuse"))
    want = as_tuple(call(backend, function, labels, logits))
    buffers = [np.full(w.size + 8, -7.0, np.float32) for w in want]
    views = [buf[4:-4].reshape(w.shape) for buf, w in zip(buffers, want)]
    outs = dict(zip(("loss_out", "grad_out"), views)) if function in FUSED else {"out": views[0]}
    for _ in range(2):
        got = as_tuple(_call(backend, function, labels, logits, **outs))
        for g, w, v in zip(got, want, views):
            assert g is v and np.array_equal(_bits(g), _bits(w))
    for buf in buffers:
        assert (buf[:4] == -7).all() and (buf[-4:] == -7).all()


@pytest.mark.parametrize("shape", [(1, 1000), (1, 2048), (2, 1000)], ids=str)
@pytest.mark.parametrize("function", sorted(FUSED))
def test_results_do_not_depend_on_where_the_output_lies(backend, function, shape):
    """The gradient written right after the logits in one buffer, as far as a copy and
    elsewhere: the same bits. With a signed index the numba kernels' vectorised sums
    checked for overlap as if each array reached a row's length past its end, so an
    output next to the logits took the scalar loop and summed in another order (278 of
    1000 gradients and the loss differed in the last bit; ``benchmarks/NOTES.md`` entry 19)."""
    labels, logits = make_inputs(function, shape, np.float32, 3.0, seed_of(function, "placement"))
    buffer = np.empty(2 * logits.size + 32, np.float32)
    x = buffer[:logits.size].reshape(shape)
    x[:] = logits
    results = []
    for grad_out in (np.empty(shape, np.float32), *(buffer[logits.size + k:2 * logits.size + k].reshape(shape)
                                                      for k in (0, 16, 32))):
        loss, grad = _call(backend, function, labels, x, grad_out=grad_out)
        results.append((loss.copy(), grad.copy()))
    for loss, grad in results[1:]:
        assert np.array_equal(_bits(loss), _bits(results[0][0])) and np.array_equal(_bits(grad), _bits(results[0][1]))


def _bad_outputs(logits: np.ndarray) -> list:
    """``(name, value, error, message)`` of the bad outputs of a result of the logits' shape."""
    shape = logits.shape
    readonly = np.empty(shape, np.float32)
    readonly.flags.writeable = False
    return [
        ("list", [[0.0] * shape[1]] * shape[0], TypeError, "Expected {name} as a NumPy array, got list"),
        ("shape", np.empty((shape[0], shape[1] + 1), np.float32), ValueError,
         f"Expected {{name}} of shape {shape}, got {(shape[0], shape[1] + 1)}"),
        ("1-d", np.empty(logits.size, np.float32), ValueError,
         f"Expected {{name}} of shape {shape}, got {(logits.size,)}"),
        ("dtype", np.empty(shape, np.float64), TypeError, "Expected {name} of dtype float32, got float64"),
        ("byte order", np.empty(shape, ">f4"), TypeError, "Expected {name} of dtype float32, got >f4"),
        ("strided", np.empty(shape[::-1], np.float32).T, ValueError,
         "Expected a C-contiguous {name}, got a strided array"),
        ("read-only", readonly, ValueError, "Expected a writable {name}, got a read-only array"),
        ("in place", logits, ValueError,
         "{name} may share memory with logits; in-place calls are not supported"),
    ]


LOGITS = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)


@pytest.mark.parametrize("case", range(len(_bad_outputs(LOGITS))),
                         ids=[c[0] for c in _bad_outputs(LOGITS)])
@pytest.mark.parametrize("function,name", [("softmax", "out"), ("log_softmax", "out"),
                                           ("sigmoid_cross_entropy_with_logits", "out"),
                                           ("softmax_cross_entropy_with_logits_and_grad", "grad_out"),
                                           ("sparse_softmax_cross_entropy_with_logits_and_grad", "grad_out")])
def test_bad_outputs_get_the_documented_error(backend, function, name, case):
    logits = LOGITS.copy()
    before = logits.copy()
    labels, _ = make_inputs(function, logits.shape, np.float32, 1.0, 0)
    _, value, error, message = _bad_outputs(logits)[case]
    with pytest.raises(error, match=f"^{re.escape(message.format(name=name))}$"):
        _call(backend, function, labels, logits, **{name: value})
    assert np.array_equal(logits, before)


@pytest.mark.parametrize("function", ["sparse_softmax_cross_entropy_with_logits",
                                      "softmax_cross_entropy_with_logits_and_grad"])
def test_per_row_outputs_and_their_overlaps_are_checked(backend, function):
    labels, logits = make_inputs(function, (4, 6), np.float32, 1.0, 0)
    name = "loss_out" if function in FUSED else "out"
    with pytest.raises(ValueError, match=re.escape(f"Expected {name} of shape (4,), got (4, 1)")):
        _call(backend, function, labels, logits, **{name: np.empty((4, 1), np.float32)})
    if function in FUSED:  # the labels, and the loss inside the gradient, are inputs too
        grad = np.empty(logits.shape, np.float32)
        with pytest.raises(ValueError, match="^grad_out may share memory with labels"):
            _call(backend, function, labels, logits, grad_out=labels)
        with pytest.raises(ValueError, match="^grad_out may share memory with loss_out"):
            _call(backend, function, labels, logits, loss_out=grad.reshape(-1)[:4], grad_out=grad)


def test_a_plugin_that_writes_out_gets_the_outputs(monkeypatch):
    """``writes_out = True``: the canonical output goes to the plugin, which writes and returns it."""
    class Writes:
        dtypes = ("float64",)
        writes_out = True
        given = []

        def softmax(self, logits, out=None):
            self.given.append(out)
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return np.divide(e, e.sum(axis=-1, keepdims=True), out=out)

    monkeypatch.setattr(impls._registry, "_sources", dict(impls._registry._sources))  # the registry is restored after
    monkeypatch.setattr(impls._registry, "_loaded", {})
    impls.register("writes-out", Writes)
    out = np.empty((2, 3))
    assert impls.softmax(np.zeros((2, 3)), out=out, backend="writes-out") is out
    np.testing.assert_array_equal(out, 1 / 3)
    assert Writes.given[-1] is not None and np.shares_memory(Writes.given[-1], out)
    assert impls.softmax(np.zeros((2, 3)), backend="writes-out").shape == (2, 3)
    assert Writes.given[-1] is None


#: Loss options with each reduction (``impls._options``), for the softmax losses.
_OPTIONS = [dict(label_smoothing=0.1, class_weights=[1.0, 2.0, 0.5, 1.0, 3.0]),
            dict(z_loss=1e-3, reduction="sum"),
            dict(label_smoothing=0.2, reduction="mean")]


@pytest.mark.parametrize("options", range(len(_OPTIONS)))
@pytest.mark.parametrize("function", sorted(f for f in FUNCTIONS if "softmax_cross_entropy" in f))
def test_outputs_with_loss_options(backend, function, options):
    """With options, the loss output has the loss's shape: per row, or 0-d with a reduction,
    which receives the sum or mean; the results are those of the call without outputs."""
    options = _OPTIONS[options]
    for dtype in (np.dtype(np.float32), DTYPES[1]):  # the kernels' dtype, and one converted
        labels, logits = make_inputs(function, (6, 5), dtype, 2.0, seed_of(function, dtype.name))
        want = as_tuple(getattr(backend, function)(labels, logits, **options))
        outs = _outs(function, want, np.nan)
        got = as_tuple(getattr(backend, function)(labels, logits, **outs, **options))
        assert all(g is o for g, o in zip(got, outs.values()))
        for g, w in zip(got, want):
            assert g.shape == w.shape and np.array_equal(_bits(g), _bits(w)), f"{dtype}: {g} != {w}"
    name = "loss_out" if function in FUSED else "out"
    wrong, shape = ((6,), "()") if "reduction" in options else ((), "(6,)")
    with pytest.raises(ValueError, match=re.escape(f"Expected {name} of shape {shape}, got {wrong}")):
        getattr(backend, function)(labels, logits, **{name: np.empty(wrong, dtype)}, **options)
