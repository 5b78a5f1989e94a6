"""Named edge cases: documented examples, extreme and non-finite logits, shapes,
layouts, result types, and every documented error from every backend."""

from __future__ import annotations

import re

import numpy as np
import pytest

import impls
from impls._validate import FEW_LABELS
from conftest import (DTYPES, UNDER_TEST, UNSTABLE, as_tuple, call, case_id, check_against_truth, expect_quirk,
                      make_inputs, naive_limit, seed_of, span_example)
from xentbench.accuracy import DENSE, FUNCTIONS, SPARSE, WITH_AXIS, tolerance, truth

SIGMOID = "sigmoid_cross_entropy_with_logits"
SOFTMAX_FAMILY = [f for f in FUNCTIONS if f != SIGMOID]
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
functions = pytest.mark.parametrize("function", FUNCTIONS)
#: NumPy warns about the inf and NaN these tests feed in on purpose.
nonfinite = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def result_shapes(function: str, shape: tuple, axis: int = -1) -> tuple:
    """The documented shape of each result of ``function`` for logits of ``shape``."""
    if function in ("softmax", "log_softmax", SIGMOID):
        return (shape,)
    loss = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    return (loss, shape) if function.endswith("_and_grad") else (loss,)


def skip_naive_outside_its_domain(backend):
    if backend.name in UNSTABLE:
        pytest.skip(f"{backend.name} is documented to break on these logits (see test_naive.py)")


# ----------------------------------------------------------------- pinned examples

# Numbers pinned by hand (the first two from the tf.nn documentation, printed
# from float32): the truth is checked against them too, so a wrong truth fails.
PINNED = [
    pytest.param("softmax_cross_entropy_with_logits", [[1, 0, 0], [0, 0.8, 0.2]],
                 [[4, 2, 1], [0, 5, 1]], [0.16984604, 0.82474494], id="tf-doc-dense"),
    pytest.param("sparse_softmax_cross_entropy_with_logits", [0, 3, 1],
                 [[2, -5, .5, -.1], [0, 0, 1.9, 1.4], [-100, 100, -100, -100]],
                 [0.29750752, 1.1448325, 0], id="tf-doc-sparse"),
    pytest.param("softmax", None, [-1, 0, 3, 5],
                 [0.0021657, 0.00588697, 0.11824302, 0.87370431], id="softmax"),
]
pinned = pytest.mark.parametrize("function,labels,logits,want", PINNED)


def pin_tolerance(dtype) -> float:
    """The pins are float32 printouts, good to float32's tolerance and no better."""
    return max(tolerance(dtype), tolerance(np.float32))


def pinned_inputs(function, labels, logits, dtype):
    logits = np.array(logits, dtype=dtype)
    if labels is not None:
        labels = np.array(labels, dtype=np.int64 if function in SPARSE else dtype)
    return labels, logits


@pinned
@dtypes
def test_truth_reproduces_the_pinned_examples(function, labels, logits, want, dtype):
    labels, logits = pinned_inputs(function, labels, logits, dtype)
    t = truth(function, labels, logits)
    assert t.error(t.values[0], reference=np.array(want)) <= pin_tolerance(dtype)


@pinned
@dtypes
def test_pinned_examples(backend, function, labels, logits, want, dtype):
    if backend.name in UNSTABLE and np.max(np.abs(logits)) > naive_limit(function):
        skip_naive_outside_its_domain(backend)
    labels, logits = pinned_inputs(function, labels, logits, dtype)
    got = call(backend, function, labels, logits)
    err = truth(function, labels, logits).error(got, reference=np.array(want))
    assert err <= pin_tolerance(dtype)


# ----------------------------------------------------------------- extreme logits

INF = np.inf
EXTREME = np.array([
    [1e4, -1e4, 0, 1],         # one logit dominates
    [-1e4, -1e4, -1e4, -1e4],  # equal values, far from 0 -> uniform
    [-INF, 0, 1, -INF],        # -inf entries have probability 0
    [3, 3, 3, 3],              # equal values -> uniform
    [1e4, 1e4, -1e4, 0],       # two dominate equally
])
EXTREME_SPARSE = np.array([1, 2, 2, 0, 1])  # never a label at a -inf logit: its loss would be inf


def extreme_labels(function, dtype):
    if function in SPARSE:
        return EXTREME_SPARSE
    if function in DENSE:  # soft rows summing to 1, no mass on the -inf logits
        z = np.array([[.1, .2, .3, .4], [.25] * 4, [0, .5, .5, 0], [1, 0, 0, 0], [0, .5, .5, 0]])
        return z.astype(dtype)
    if function == SIGMOID:
        return np.tile([0.0, 1.0, 0.5, 0.25], (len(EXTREME), 1)).astype(dtype)
    return None


@nonfinite
@functions
@dtypes
def test_extreme_logits_agree_with_the_truth(backend, function, dtype):
    skip_naive_outside_its_domain(backend)
    logits = EXTREME.astype(dtype)
    if function == SIGMOID:
        # -inf * label 0 is NaN in any formula; through float32, as nan_to_num leaves bfloat16 alone
        logits = np.nan_to_num(logits.astype(np.float32), neginf=-1e4).astype(dtype)
    labels = extreme_labels(function, dtype)
    got = call(backend, function, labels, logits)
    check_against_truth(truth(function, labels, logits), got, what=f"{backend.name}.{function}")


@nonfinite
@dtypes
def test_extreme_softmax_by_hand(backend, dtype):
    skip_naive_outside_its_domain(backend)
    p = backend.softmax(EXTREME.astype(dtype))
    tol = tolerance(dtype)
    np.testing.assert_allclose(p[0], [1, 0, 0, 0], atol=tol)
    np.testing.assert_allclose(p[[1, 3]], 0.25, rtol=tol)  # uniform
    assert p[2, 0] == 0 and p[2, 3] == 0  # -inf -> exactly 0
    np.testing.assert_allclose(p[4], [.5, .5, 0, 0], atol=tol)
    np.testing.assert_allclose(
        backend.sparse_softmax_cross_entropy_with_logits(EXTREME_SPARSE[:1], EXTREME[:1].astype(dtype)),
        [2e4], rtol=tol)


@nonfinite
@pytest.mark.parametrize("function", sorted(DENSE))
@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != np.float64], ids=case_id)
def test_a_row_spanning_the_dtypes_range_has_a_finite_dense_loss(backend, function, dtype):
    """The thorough fuzz's example (``conftest.span_example``) and its float32 and float16 variants:
    ``x - max(x)`` overflows the dtype (float32, the compute dtype of bfloat16, or float16, computed
    in float32), yet the loss is finite. The truth in float64, which holds ``x - m``:
    ``sum z (log(sum exp(x - m)) - (x - m))`` and the gradient ``exp(x - m) / sum exp(x - m) - z``.
    float64 rows overflow only beyond 1.8e308, where every backend still overflows."""
    skip_naive_outside_its_domain(backend)
    labels, logits = span_example(dtype)
    got = as_tuple(call(backend, function, labels, logits, axis=1))
    expect_quirk(backend, function, logits, got, axis=1)
    z, x = (np.moveaxis(a.astype(np.float64), 1, -1) for a in (labels, logits))
    d = x - x.max(axis=-1, keepdims=True)
    s = np.exp(d).sum(axis=-1, keepdims=True)
    want = (np.sum(z * (np.log(s) - d), axis=-1), np.moveaxis(np.exp(d) / s - z, -1, 1))
    assert np.isfinite(got[0]).all(), f"{backend.name}.{function}: loss {got[0]}"
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float64), w, rtol=tolerance(dtype))


@dtypes
@pytest.mark.parametrize("classes", [1, 2, 7, 1000])
def test_a_row_of_equal_values_is_uniform(backend, dtype, classes):
    for value in (0.0, -7.5, 20.0):
        logits = np.full((3, classes), value, dtype=dtype)
        np.testing.assert_allclose(backend.softmax(logits), 1 / classes, rtol=tolerance(dtype))
        np.testing.assert_allclose(backend.log_softmax(logits), -np.log(classes), rtol=tolerance(dtype))


@nonfinite
def test_a_row_of_minus_inf_is_nan(backend):
    logits = np.array([[-INF, -INF, -INF], [0, 1, 2]])
    p = backend.softmax(logits)
    assert np.isnan(p[0]).all() and np.isfinite(p[1]).all()


@nonfinite
@pytest.mark.parametrize("function", SOFTMAX_FAMILY)
def test_plus_inf_makes_the_row_nan(backend, function):
    """As in TensorFlow (docs/guides/precision.md): ``+inf`` in a row makes that whole row NaN."""
    skip_naive_outside_its_domain(backend)
    logits = np.array([[0.5, INF, -1.0], [0.5, 2.0, -1.0]])
    labels = make_inputs(function, logits.shape, np.float64, 1.0, seed_of("+inf", function))[0]
    got = call(backend, function, labels, logits)
    expect_quirk(backend, function, logits, got)
    for result in as_tuple(got):
        assert np.isnan(result[0]).all(), f"{function}: row with +inf gave {result[0]}"
        assert not np.isnan(result[1]).any()


# ----------------------------------------------------------------- NaN, one class, empty

@nonfinite
@functions
@dtypes
def test_nan_gives_nan_for_that_row_only(backend, function, dtype):
    labels, logits = make_inputs(function, (3, 4), dtype, 3.0, seed_of("nan", function, str(dtype)),
                                 limit=naive_limit(function))
    logits[1, 2] = np.nan
    got = call(backend, function, labels, logits)
    expect_quirk(backend, function, logits, got)
    for result in as_tuple(got):
        if function == SIGMOID:  # elementwise: only that element
            assert np.isnan(result[1, 2]) and np.isnan(result).sum() == 1
        else:
            assert np.isnan(result[1]).all(), f"{function}: the NaN row gave {result[1]}"
            assert not np.isnan(result[[0, 2]]).any()
    check_against_truth(truth(function, labels, logits), got, what=f"{backend.name}.{function}")


#: A row long enough for the numba backend to cut it into pieces, one per
#: thread, whose statistics are merged (at least 2 x 16384 classes, and at
#: least ``SERIAL_BELOW`` logits so the call runs in parallel).
LONG_ROW = 70000


@nonfinite
@pytest.mark.parametrize("function", SOFTMAX_FAMILY)
@pytest.mark.parametrize("where", ["nan at the end", "+inf at the end", "-inf from 30000 on", "finite"])
def test_a_long_row_cut_across_threads(backend, function, where):
    """NaN and +inf in the last piece of a long row make the whole row NaN
    (as ``test_plus_inf_makes_the_row_nan``); a run of -inf covering whole
    pieces adds nothing; the merged statistics agree with the truth."""
    skip_naive_outside_its_domain(backend)
    labels, logits = make_inputs(function, (1, LONG_ROW), np.float32, 3.0, seed_of("long", function, where))
    if where == "nan at the end":
        logits[0, -5] = np.nan
    elif where == "+inf at the end":
        logits[0, -5] = np.inf
    elif where == "-inf from 30000 on":
        logits[0, 30000:] = -np.inf
        if function in SPARSE:
            labels[:] = 7  # a finite logit: a label at -inf has an infinite loss
    got = call(backend, function, labels, logits)
    expect_quirk(backend, function, logits, got)
    if where in ("nan at the end", "+inf at the end"):
        for result in as_tuple(got):
            assert np.isnan(result).all(), f"{function}: {where} gave {result}"
    if where != "+inf at the end":  # the truth takes the limit there; the convention is NaN (above)
        check_against_truth(truth(function, labels, logits), got, what=f"{backend.name}.{function}")


@pytest.mark.parametrize("function", sorted(DENSE | SPARSE))
@dtypes
def test_one_class_gives_loss_zero(backend, function, dtype):
    values = [-20.0, -1.5, 0.0, 3.25, 20.0] + ([-1e4, 1e4] if backend.name not in UNSTABLE else [])
    logits = np.array(values, dtype=dtype)[:, None]
    labels = np.zeros(len(values), np.int64) if function in SPARSE else np.ones_like(logits)
    results = as_tuple(call(backend, function, labels, logits))
    np.testing.assert_array_equal(results[0], 0)
    if len(results) == 2:
        np.testing.assert_array_equal(results[1], 0)  # softmax is 1, minus the label 1


@dtypes
def test_one_class_softmax_is_one(backend, dtype):
    logits = np.array([[-20.0], [0.0], [20.0]], dtype=dtype)
    np.testing.assert_array_equal(backend.softmax(logits), 1)
    np.testing.assert_array_equal(backend.log_softmax(logits), 0)


# (0,) has zero classes, an error for the softmax family (test_bad_input), not for the sigmoid loss.
EMPTY = [pytest.param(f, shape, id=f"{f}-{'x'.join(map(str, shape))}")
         for f in FUNCTIONS for shape in [(0, 5), (3, 0, 5)] + ([(0,)] if f == SIGMOID else [])]


@dtypes
@pytest.mark.parametrize("function,shape", EMPTY)
def test_empty_batch_gives_an_empty_result_of_the_right_shape_and_dtype(backend, function, dtype, shape):
    labels, logits = make_inputs(function, shape, dtype, 1.0, 0)
    got = as_tuple(call(backend, function, labels, logits))
    assert [r.shape for r in got] == list(result_shapes(function, shape))
    assert all(isinstance(r, np.ndarray) and r.dtype == dtype for r in got)


# ----------------------------------------------------------------- axes and layouts

@pytest.mark.parametrize("function", sorted(WITH_AXIS))
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@dtypes
def test_3d_input_along_any_axis(backend, function, axis, dtype):
    labels, logits = make_inputs(function, (3, 4, 5), dtype, 4.0, seed_of("3d", function, axis, str(dtype)),
                                 axis=axis, limit=naive_limit(function))
    got = call(backend, function, labels, logits, axis=axis)
    assert [r.shape for r in as_tuple(got)] == list(result_shapes(function, logits.shape, axis))
    check_against_truth(truth(function, labels, logits, axis), got, what=f"{backend.name}.{function}")


def strided(kind: str, a: np.ndarray) -> np.ndarray:
    """A non-C-contiguous array equal to ``a``."""
    if kind == "transposed":
        return np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)
    if kind == "sliced":  # every other element of a twice-as-large array
        big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)]
    if kind == "reversed":
        rev = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])
        return rev[tuple(slice(None, None, -1) for _ in a.shape)]
    raise ValueError(kind)


@functions
@dtypes
@pytest.mark.parametrize("kind", ["transposed", "sliced", "reversed"])
def test_strided_input_gives_the_same_result_as_contiguous(backend, function, dtype, kind):
    labels, logits = make_inputs(function, (6, 5), dtype, 4.0, seed_of("strided", function, str(dtype)),
                                 limit=naive_limit(function))
    view = strided(kind, logits)
    assert not view.flags.c_contiguous and np.array_equal(view, logits)
    label_view = None if labels is None else strided(kind, labels)
    want = as_tuple(call(backend, function, labels, logits))
    got = as_tuple(call(backend, function, label_view, view))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    check_against_truth(truth(function, labels, logits), got, what=f"{backend.name}.{function}")


# ----------------------------------------------------------------- results and inputs

@functions
@dtypes
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)], ids=case_id)
def test_results_are_ndarrays_of_the_logits_dtype(backend, function, dtype, shape):
    labels, logits = make_inputs(function, shape, dtype, 1.0, seed_of("types", function, shape))
    got = as_tuple(call(backend, function, labels, logits))
    assert all(type(r) is np.ndarray for r in got), [type(r) for r in got]
    assert all(r.dtype == dtype for r in got)
    assert [r.shape for r in got] == list(result_shapes(function, shape))


def test_list_input_gives_float64(backend):
    got = backend.softmax_cross_entropy_with_logits([[0.0, 1.0]], [[1.0, 2.0]])
    assert type(got) is np.ndarray and got.dtype == np.float64


@functions
@dtypes
def test_inputs_are_not_modified(backend, function, dtype):
    labels, logits = make_inputs(function, (4, 6), dtype, 3.0, seed_of("inputs", function, str(dtype)),
                                 limit=naive_limit(function))
    before = [a.copy() for a in (labels, logits) if a is not None]
    call(backend, function, labels, logits)
    for a, b in zip([a for a in (labels, logits) if a is not None], before):
        np.testing.assert_array_equal(a, b)
        assert a.flags.writeable


# ----------------------------------------------------------------- bad input

def good_labels(function, shape):
    """Valid labels for logits of ``shape``, so that only the case's defect is wrong."""
    if function in SPARSE:
        return np.zeros(shape[:-1], np.int64)
    return np.zeros(shape, np.float32) if function in DENSE or function == SIGMOID else None


RAGGED = "as a rectangular array, got a ragged sequence ("  # NumPy's own reason follows


def bad_cases():
    """``(function, id, labels, logits, kwargs, error, message)``: each documented error.

    ``message`` is the start of the error message (all of it, except for a
    ragged sequence, where NumPy's own reason follows in parentheses).
    """
    f32 = np.zeros((3, 4), np.float32)
    for dtype in (np.int64, np.int32, np.bool_, np.complex128, np.longdouble, object, np.str_):
        logits = np.zeros((3, 4), dtype)
        name = logits.dtype
        hint = ("; cast integer logits to float first, e.g. np.asarray(logits, np.float32) (tf.nn refuses "
                "them too)") if name.kind in "iu" else ""
        for f in FUNCTIONS:
            yield (f, f"logits-{name}", good_labels(f, (3, 4)), logits, {}, TypeError,
                   f"Expected logits of dtype float16, bfloat16, float32 or float64, got {name}{hint}")
    for f in FUNCTIONS:
        yield (f, "logits-None", good_labels(f, (3, 4)), None, {}, TypeError,
               "Expected logits of dtype float16, bfloat16, float32 or float64, got None")
    for f in FUNCTIONS:
        yield f, "scalar-logits", good_labels(f, ()), np.float32(1), {}, ValueError, \
            "Expected logits of rank >= 1, got a scalar"
        yield f, "ragged-logits", good_labels(f, (2, 2)), [[1.0, 2.0], [3.0]], {}, ValueError, \
            f"Expected logits {RAGGED}"
    for f in SOFTMAX_FAMILY:
        yield f, "zero-classes", good_labels(f, (3, 0)), np.zeros((3, 0), np.float32), {}, ValueError, \
            "Expected at least one class along axis 1, got logits of shape (3, 0)"
    for f in WITH_AXIS:
        labels = good_labels(f, (3, 4))
        for axis in (2, -3, 2**63, -2**70):
            yield f, f"axis={axis}", labels, f32, {"axis": axis}, ValueError, \
                f"axis {axis} is out of bounds for logits of rank 2"
        for axis in (1.0, True, np.bool_(False), None, "1"):
            yield f, f"axis={axis!r}", labels, f32, {"axis": axis}, TypeError, \
                f"Expected an integer axis, got {axis!r}"
    for f in sorted(DENSE) + [SIGMOID]:
        for dtype in (np.bool_, np.complex64, object, np.str_):
            labels = np.zeros((3, 4), dtype)
            yield f, f"labels-{labels.dtype}", labels, f32, {}, TypeError, \
                f"Expected real (float or integer) labels, got {labels.dtype}"
    for f in sorted(DENSE | SPARSE) + [SIGMOID]:
        yield f, "ragged-labels", [[0, 1], [0]], f32, {}, ValueError, f"Expected labels {RAGGED}"
    for f in sorted(DENSE):
        yield f, "labels-no-broadcast", np.zeros(2, np.float32), f32, {}, ValueError, \
            "labels of shape (2,) do not broadcast to logits of shape (3, 4)"
    yield SIGMOID, "labels-shape", np.zeros(4, np.float32), f32, {}, ValueError, \
        "Expected labels of the logits' shape (3, 4), got (4,)"
    for f in sorted(SPARSE):
        for dtype in (np.float64, np.float32, np.bool_):
            yield f, f"labels-{np.dtype(dtype)}", np.zeros(3, dtype), f32, {}, TypeError, \
                f"Expected integer labels, got {np.dtype(dtype)}"
        for shape in ((3, 1), (4,), ()):
            yield f, f"labels-shape-{shape}", np.zeros(shape, np.int64), f32, {}, ValueError, \
                f"Expected labels of shape (3,) (logits.shape[:-1]), got {shape}"
        for labels in ([0, 4, 1], [0, 1, -1], np.array([0, 2**31, 1], np.int64),
                       np.array([2**63, 0, 1], np.uint64), np.array([0, 1, 4], np.uint8)):
            value = max(labels, key=lambda v: v < 0 or v >= 4)
            yield f, f"label-{value}-{np.asarray(labels).dtype}", np.asarray(labels), f32, {}, ValueError, \
                f"Received a label value of {value} which is outside the valid range of [0, 4)"
        many = np.zeros(FEW_LABELS + 1, np.int64)  # checked by NumPy, not in Python
        many[[5, 9]] = -7, 4
        yield f, "label--7-of-many", many, np.zeros((len(many), 4), np.float32), {}, ValueError, \
            "Received a label value of -7 which is outside the valid range of [0, 4)"


BAD = [pytest.param(f, labels, logits, kwargs, error, message, id=f"{f}-{case}")
       for f, case, labels, logits, kwargs, error, message in bad_cases()]


@pytest.mark.parametrize("function", sorted(DENSE | SPARSE) + [SIGMOID])
def test_labels_none_says_none(function):
    """``labels=None`` is named as such, not as NumPy's ``object`` dtype."""
    expected = "integer labels" if function in SPARSE else "real (float or integer) labels"
    with pytest.raises(TypeError, match=f"^Expected {re.escape(expected)}, got None$"):
        getattr(impls, function)(labels=None, logits=np.zeros((3, 4), np.float32))


def test_integer_logits_say_to_cast_to_float():
    """The documented error for integer logits (docs/guides/precision.md): the error says what to do."""
    with pytest.raises(TypeError, match=r"got int64; cast integer logits to float first"):
        impls.softmax(np.array([1, 2, 3], np.int64))


@pytest.mark.parametrize("name", impls.available(UNDER_TEST))
@pytest.mark.parametrize("function,labels,logits,kwargs,error,message", BAD)
def test_bad_input_gives_the_documented_error(name, function, labels, logits, kwargs, error, message):
    args = (logits,) if labels is None else (labels, logits)
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        getattr(impls.get(name), function)(*args, **kwargs)
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        getattr(impls, function)(*args, backend=name, **kwargs)
