"""The error measure itself: it must accept the best a dtype can do and reject real errors."""

import numpy as np
import pytest

from xentbench import accuracy

SPARSE = "sparse_softmax_cross_entropy_with_logits"


def test_truth_matches_hand_computed_values():
    # log(1 + e^-1) and its softmax, computed by hand
    t = accuracy.truth(SPARSE, np.array([0]), np.array([[1.0, 0.0]]))
    assert t.values[0][0] == pytest.approx(np.log1p(np.exp(-1)), rel=1e-15)
    t = accuracy.truth("softmax", None, np.array([0.0, np.log(3.0)]))
    np.testing.assert_allclose(t.values[0], [0.25, 0.75], rtol=1e-15)


def test_a_tiny_loss_rounded_to_zero_is_the_best_the_dtype_can_do():
    # loss = log(1 + e^-40) = 4.2e-18: s = 1 + 4e-18 rounds to 1 in float64, so 0 is all
    # any lse - x formulation (TensorFlow's included) can give.
    logits = np.array([[0.0, -40.0]])
    t = accuracy.truth(SPARSE, np.array([0]), logits)
    assert t.values[0][0] == pytest.approx(4.248354255291589e-18, rel=1e-12)
    assert t.error(np.array([0.0])) <= accuracy.tolerance(np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_relative_error_beyond_the_tolerance_is_rejected(dtype):
    logits = np.array([[2.0, -1.0, 0.5]], dtype=dtype)
    t = accuracy.truth(SPARSE, np.array([1]), logits)  # loss 3.2, lse 2.2: the scale is the loss
    wrong = t.values[0] * (1 + 3 * accuracy.tolerance(dtype))
    assert 2 * accuracy.tolerance(dtype) < t.error(wrong) < 4 * accuracy.tolerance(dtype)


def test_nan_only_matches_nan_and_inf_only_an_overflowing_truth():
    logits = np.array([[np.nan, 1.0], [1.0, 2.0]])
    t = accuracy.truth("log_softmax", None, logits)
    assert np.isnan(t.values[0][0]).all()
    good = t.values[0].copy()
    assert t.error(good) == 0
    bad = good.copy()
    bad[1, 0] = np.nan
    assert t.error(bad) == np.inf
    # float16 overflows at 65504: -inf is the right float16 log_softmax of this row
    big = np.array([[-60000.0, 60000.0]], dtype=np.float16)
    t16 = accuracy.truth("log_softmax", None, big)
    assert t16.error(np.array([[-np.inf, 0.0]], dtype=np.float16)) == 0
