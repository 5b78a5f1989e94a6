"""Where ``impls.naive`` breaks, pinned: each claim of its docstring, and the edge of
the domain where it is valid.

Every break is shown against the truth, which is finite there, and, where the
problem is well posed, against the stable backends, which are right there: the
failure is the textbook formula's, not the input's.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (DTYPES, NAIVE_LIMIT, NAIVE_SIGMOID_LIMIT, STABLE, backend_or_skip, call,
                      case_id, check_against_truth, make_inputs, seed_of)
from xentbench.accuracy import FUNCTIONS, tolerance, truth

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflows are the point

SIGMOID = "sigmoid_cross_entropy_with_logits"
#: ``log(finfo.max)`` of the compute dtype: ``exp`` overflows above it (half precision is computed in float32).
OVERFLOW = {np.dtype(np.float16): 88.72, np.dtype(ml_dtypes.bfloat16): 88.72, np.dtype(np.float32): 88.72,
            np.dtype(np.float64): 709.78}
#: Below these ``exp`` is 0 even as a subnormal.
UNDERFLOW = {np.dtype(np.float32): -103.98, np.dtype(np.float64): -745.14}


@pytest.fixture(scope="module")
def naive():
    return backend_or_skip("naive")


def stable_backends():
    return [backend_or_skip(name) for name in STABLE]


# ----------------------------------------------------------------- overflow

@pytest.mark.parametrize("dtype,big", [(np.float16, 100), (ml_dtypes.bfloat16, 100), (np.float32, 100),
                                       (np.float64, 710)],
                         ids=case_id)
def test_an_overflowing_logit_makes_its_softmax_nan(naive, dtype, big):
    logits = np.array([[big, 0, 1], [1, 2, 3]], dtype=dtype)
    p = naive.softmax(logits)
    assert np.isnan(p[0, 0]) and np.array_equal(p[0, 1:], [0, 0])  # inf / inf, then x / inf
    check_against_truth(truth("softmax", None, logits[1:]), p[1:])  # other rows are unaffected
    t = truth("softmax", None, logits)
    assert np.isfinite(t.values[0]).all()
    for b in stable_backends():
        check_against_truth(t, b.softmax(logits), what=b.name)


@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
def test_just_below_the_overflow_threshold_is_finite(naive, dtype):
    logits = np.array([[OVERFLOW[np.dtype(dtype)] - 0.5, 0.0]], dtype=dtype)
    assert np.isfinite(naive.softmax(logits)).all()


def test_a_row_whose_sum_overflows_is_all_zeros(naive):
    logits = np.array([[88.7, 88.7, 0]], np.float32)  # each exp is finite, their sum is not
    np.testing.assert_array_equal(naive.softmax(logits), 0)
    np.testing.assert_allclose(truth("softmax", None, logits).values[0], [[.5, .5, 0]], atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
@given(data=st.data())
def test_any_overflowing_logit_gives_nan_there_and_the_stable_backends_stay_right(naive, dtype, data):
    """Property: logits above ``log(finfo.max)`` in a row of moderate ones give NaN exactly there."""
    dtype = np.dtype(dtype)
    classes = data.draw(st.integers(2, 50), label="classes")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    _, logits = make_inputs("softmax", (3, classes), dtype, 5.0, seed, limit=NAIVE_LIMIT)
    top = min(1e4, float(ml_dtypes.finfo(dtype).max))
    where = data.draw(st.lists(st.integers(0, classes - 1), min_size=1, max_size=classes, unique=True))
    for j in where:
        logits[1, j] = data.draw(st.floats(OVERFLOW[dtype] + 1, top), label="overflowing logit")
    p = naive.softmax(logits)
    overflowed = np.zeros(classes, bool)
    overflowed[where] = True
    assert np.isnan(p[1, overflowed]).all() and (p[1, ~overflowed] == 0).all()
    t = truth("softmax", None, logits)
    check_against_truth(truth("softmax", None, logits[[0, 2]]), p[[0, 2]])
    for b in stable_backends():
        check_against_truth(t, b.softmax(logits), what=b.name)


# ----------------------------------------------------------------- underflow

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=case_id)
def test_a_row_of_underflowing_logits_is_nan(naive, dtype):
    low = UNDERFLOW[np.dtype(dtype)] - 1
    logits = np.array([[low, low - 2, low - 5], [0, -2, -5]], dtype=dtype)
    p = naive.softmax(logits)
    assert np.isnan(p[0]).all()  # 0 / 0
    t = truth("softmax", None, logits)
    np.testing.assert_allclose(t.values[0][0], t.values[0][1], rtol=tolerance(dtype))  # shift-invariant
    check_against_truth(truth("softmax", None, logits[1:]), p[1:])
    for b in stable_backends():
        check_against_truth(t, b.softmax(logits), what=b.name)


@pytest.mark.parametrize("dtype,low", [(np.float32, -100), (np.float64, -735)], ids=case_id)
def test_subnormal_exps_lose_precision(naive, dtype, low):
    logits = np.array([[low, low - 3]], dtype=dtype)
    t = truth("softmax", None, logits)
    assert t.error(naive.softmax(logits)) > 10 * tolerance(dtype)
    for b in stable_backends():
        check_against_truth(t, b.softmax(logits), what=b.name)


@pytest.mark.parametrize("function", ["sparse_softmax_cross_entropy_with_logits",
                                      "sparse_softmax_cross_entropy_with_logits_and_grad"])
@pytest.mark.parametrize("dtype,low", [(np.float32, -200), (np.float64, -800)], ids=case_id)
def test_an_underflowing_probability_has_infinite_loss(naive, function, dtype, low):
    logits = np.array([[0, low], [0, -1]], dtype=dtype)
    labels = np.array([1, 1])
    loss = np.asarray(call(naive, function, labels, logits)[0] if "grad" in function
                      else call(naive, function, labels, logits))
    assert loss[0] == np.inf  # log(0)
    t = truth(function, labels, logits)
    np.testing.assert_allclose(t.values[0][0], -low, rtol=tolerance(dtype))  # finite: -low + log1p(e^low)
    for b in stable_backends():
        check_against_truth(t, call(b, function, labels, logits), what=b.name)


# ----------------------------------------------------------------- sigmoid loss

@pytest.mark.parametrize("dtype,x", [(np.float32, 20), (np.float64, 40)], ids=case_id)
def test_sigmoid_loss_breaks_where_sigmoid_rounds_to_one(naive, dtype, x):
    logits = np.array([x, x, -x], dtype=dtype)
    labels = np.array([0, 1, 1], dtype=dtype)
    loss = naive.sigmoid_cross_entropy_with_logits(labels, logits)
    assert loss[0] == np.inf  # -log(1 - 1)
    assert np.isnan(loss[1])  # -0 * log(0)
    t = truth(SIGMOID, labels, logits)
    assert np.isfinite(t.values[0]).all()
    check_against_truth(truth(SIGMOID, labels[2:], logits[2:]), loss[2:])  # x -> -x is fine here
    for b in stable_backends():
        check_against_truth(t, b.sigmoid_cross_entropy_with_logits(labels, logits), what=b.name)


def test_sigmoid_loss_breaks_where_exp_overflows(naive):
    logits, labels = np.array([-800.0]), np.array([1.0])
    assert naive.sigmoid_cross_entropy_with_logits(labels, logits)[0] == np.inf  # -log(0)
    np.testing.assert_allclose(truth(SIGMOID, labels, logits).values[0], [800], rtol=tolerance(np.float64))


@pytest.mark.parametrize("dtype,x", [(np.float32, 12), (np.float64, 15)], ids=case_id)
def test_sigmoid_loss_is_inaccurate_outside_its_domain_long_before_it_overflows(naive, dtype, x):
    """``1 - sigmoid(x)`` cancels: finite, but far past the tolerance."""
    logits, labels = np.array([x], dtype=dtype), np.array([0], dtype=dtype)
    loss = naive.sigmoid_cross_entropy_with_logits(labels, logits)
    assert np.isfinite(loss).all()
    assert truth(SIGMOID, labels, logits).error(loss) > 10 * tolerance(dtype)


# ----------------------------------------------------------------- the edge of the domain

@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
def test_valid_at_the_edge_of_its_documented_domain(naive, function, dtype):
    limit = NAIVE_SIGMOID_LIMIT if function == SIGMOID else NAIVE_LIMIT
    labels, _ = make_inputs(function, (6, 8), dtype, 1.0, seed_of("edge", function, str(dtype)))
    rng = np.random.default_rng(seed_of("edge-signs", function))
    logits = (rng.choice([-limit, limit, 0.0], size=(6, 8))).astype(dtype)
    logits[0] = limit  # a row of maximal logits
    logits[1] = -limit  # a row of minimal ones
    check_against_truth(truth(function, labels, logits), call(naive, function, labels, logits),
                        what=f"naive.{function}")
