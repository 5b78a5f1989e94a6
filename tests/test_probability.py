"""The probability forms ``binary_cross_entropy`` and ``categorical_cross_entropy`` (``impls._probability``).

Every backend against the extended-precision truth (the definition, clipping
included), the tensorflow backend being Keras's own ``from_logits=False``
losses; hand-computed values at the clipping bounds; and where the probability
form loses accuracy against the logits form, with the numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, case_id, check_against_truth, seed_of
from xentbench.accuracy import tolerance, truth

BINARY, CATEGORICAL = "binary_cross_entropy", "categorical_cross_entropy"


def probabilities(function: str, shape, dtype, axis: int = -1):
    """Seeded labels and probabilities, some exactly 0 and 1 (clipped), the rest skewed towards both ends."""
    rng = np.random.default_rng(seed_of("probability", function, shape, str(dtype), axis))
    p = rng.random(shape) ** 3
    p.reshape(-1)[::7] = 0.0
    p.reshape(-1)[3::11] = 1.0
    if function == BINARY:
        return rng.random(shape).astype(dtype), p.astype(dtype)
    z = rng.random(shape) ** 4
    return (z / z.sum(axis=axis, keepdims=True)).astype(dtype), p.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
@pytest.mark.parametrize("function,shape,axis", [(BINARY, (7, 10), -1), (BINARY, (300, 300), -1),
                                                 (CATEGORICAL, (7, 10), -1), (CATEGORICAL, (300, 300), -1),
                                                 (CATEGORICAL, (3, 5, 4), 1)],
                         ids=lambda v: case_id(v) if isinstance(v, tuple) else str(v))
def test_probability_forms_agree_with_the_truth(backend, function, shape, axis, dtype):
    labels, probs = probabilities(function, shape, dtype, axis)
    if function == BINARY:
        got = backend.binary_cross_entropy(labels, probs)
    else:
        got = backend.categorical_cross_entropy(labels, probs, axis=axis)
    check_against_truth(truth(function, labels, probs, axis), got, what=f"{backend.name}.{function}")


def test_the_clipping_bounds_by_hand():
    """A probability of 0 costs -log(1e-7) = 16.118; of 1, -log(1 - 1e-7) = 1e-7 (float64);
    in float32 the upper bound is 1 - 2**-23 (1 - 1e-7 rounded), so -log(2**-23) = 15.942."""
    t = truth(BINARY, np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(t.values[0], [-np.log(1e-7), 0.0 - np.log1p(-1e-7)], rtol=1e-15)
    t = truth(BINARY, np.array([0.0], np.float32), np.array([1.0], np.float32))
    np.testing.assert_allclose(t.values[0], [23 * np.log(2)], rtol=1e-7)
    t = truth(CATEGORICAL, np.array([[1.0, 0.0]]), np.array([[2.0, 6.0]]))  # rescaled to (0.25, 0.75)
    np.testing.assert_allclose(t.values[0], [np.log(4)], rtol=1e-15)


def test_where_the_probability_form_loses_accuracy_against_the_logits_form(backend):
    """Label 1 at logits x = -20, 20 (float64) and 10 (float32), the probability form given sigmoid(x).

    The logits form is within the tolerance everywhere. The probability form:
    at x = -20 the clipping caps the loss at 16.12 where it is 20 (19% low); at x = 20 it
    gives 1.0e-7 where the loss is 2.1e-9 (48x); in float32 at x = 10, where nothing is
    clipped, sigmoid(x) = 0.99995460 rounds to an ulp of 6e-8 and the loss of 4.5e-5
    keeps 3 digits (relative error 1e-3, 50x the float32 tolerance).
    """
    cases = [(-20.0, np.float64, 0.19, 0.20), (20.0, np.float64, 46.0, 49.0), (10.0, np.float32, 2e-4, 2e-3)]
    for x, dtype, low, high in cases:
        logits, labels = np.array([x], dtype), np.array([1.0], dtype)
        want = truth("sigmoid_cross_entropy_with_logits", labels, logits)
        check_against_truth(want, backend.sigmoid_cross_entropy_with_logits(labels, logits))
        probs = (1 / (1 + np.exp(-np.float64(x)))).astype(dtype).reshape(1)
        got = backend.binary_cross_entropy(labels, probs)
        error = abs(float(got[0]) - want.values[0][0]) / want.values[0][0]
        assert low < error < high, f"x = {x} {np.dtype(dtype).name}: relative error {error:.3g}"
        assert error > 10 * tolerance(dtype)
