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


def test_an_error_in_ulps_counts_the_dtypes_spacing():
    t = accuracy.truth("softmax", None, np.zeros((1, 2), np.float32))  # [0.5, 0.5] exactly
    got = t.values[0].astype(np.float32)
    got[0, 1] = np.nextafter(got[0, 1], np.float32(1))  # one float32 step above 0.5
    assert t.ulps(got) == 1
    assert t.ulps(got.astype(np.float64) + 2.0 ** -25) == 1.5  # ulp(0.5) is 2**-24


def test_the_backward_stable_bound_of_a_softmax_by_hand():
    # p = [1/4, 3/4], A = sum p_i |x_i| = 3/4 log 3, S_j = p_j (|x_j| + A), bound = 8 u (S + p) + floor
    x = np.array([0.0, np.log(3.0)])
    t = accuracy.truth("softmax", None, x)
    p, a = np.array([0.25, 0.75]), 0.75 * np.log(3.0)
    u, floor = 2.0 ** -53, np.finfo(np.float64).tiny / np.finfo(np.float64).eps
    np.testing.assert_allclose(t.bounds[0], 8 * u * (p * (x + a) + p) + floor, rtol=1e-12)


def lse(x):
    m = x.max(axis=-1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def test_a_softmax_through_logsumexp_is_less_accurate_not_wrong_on_wide_logits():
    # float32 logits near 3000: x - lse carries an ulp of 3000 (2.4e-4), which exp makes relative
    x = (np.random.default_rng(0).standard_normal((50, 1000)) * 1000).astype(np.float32)
    t = accuracy.truth("softmax", None, x)
    judged = accuracy.judge(t, np.exp(x - lse(x)))
    assert judged.status == "less accurate", judged
    assert judged.error > 2 * accuracy.tolerance(np.float32) and judged.stability < 0.5 and judged.ulps > 100


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_log_softmax_off_by_1e_4_fails_whatever_the_logits(dtype):
    for scale in (5, 1000):
        x = (np.random.default_rng(1).standard_normal((50, 1000)) * scale).astype(dtype)
        t = accuracy.truth("log_softmax", None, x)
        judged = accuracy.judge(t, (x - lse(x)) * (1 + 1e-4))
        assert judged.status == "FAIL" and judged.stability > 50, (scale, judged)


def test_a_result_no_worse_than_a_stable_reference_beyond_the_tolerance_passes():
    """``judge``'s yardstick: where the reference (TensorFlow in ``verify``) is beyond the tolerance
    but backward stable, a result within ``YARDSTICK_FACTOR`` times its error passes, and one beyond
    is judged as without it; a reference beyond its bound is no yardstick."""
    x = (np.random.default_rng(0).standard_normal((50, 1000)) * 1000).astype(np.float32)
    t = accuracy.truth("softmax", None, x)
    reference = accuracy.judge(t, np.exp(x - lse(x)))  # less accurate: beyond the tolerance, stable
    assert reference.status == "less accurate"
    assert accuracy.judge(t, np.exp(x - lse(x)), reference).status == "pass"
    worse = accuracy.judge(t, np.exp(x - lse(x)) * (1 + 3 * reference.error))
    assert worse.error > accuracy.YARDSTICK_FACTOR * reference.error
    assert accuracy.judge(t, np.exp(x - lse(x)) * (1 + 3 * reference.error), reference).status == worse.status != "pass"
    unstable = accuracy.Verdict("FAIL", 1.0, 1e9, 2.0)
    assert accuracy.judge(t, np.exp(x - lse(x)), unstable).status == "less accurate"


def test_the_sigmoid_truth_of_a_huge_label_does_not_cancel():
    # loss(x=0) = z log 2 + (1 - z) log 2 = log 2 for every z: the weight 1 + z - z cancelled to 0 at 1e30
    t = accuracy.truth("sigmoid_cross_entropy_with_logits", np.array([1e30], np.float32), np.array([0.0], np.float16))
    assert t.values[0][0] == pytest.approx(np.log(2), rel=1e-15)
