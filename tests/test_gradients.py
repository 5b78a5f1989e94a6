"""The fused ``dlogits`` of ``*_and_grad`` against TensorFlow's tape and a finite difference.

* TensorFlow: ``numpy`` and ``numba`` against ``tf.GradientTape`` through
  ``tf.nn`` (the ``tensorflow`` backend), loss and gradient, every dtype, dense
  along several axes and sparse, with the tolerances of ``xentbench.accuracy``.
* Finite difference: every backend's float64 ``dlogits`` against a central
  difference of ``sum(loss)``, the loss being the extended-precision truth (so
  the expected value owes nothing to the code under test).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import (DTYPES, UNDER_TEST, UNSTABLE, backend_or_skip, case_id, check_against_truth, make_inputs,
                      naive_limit, seed_of)
from xentbench.accuracy import truth

DENSE_GRAD = "softmax_cross_entropy_with_logits_and_grad"
SPARSE_GRAD = "sparse_softmax_cross_entropy_with_logits_and_grad"

#: The issue's bound for the finite-difference check (absolute, on gradients in
#: [-1, 1]). With the step ``H`` in float64 the central difference is off by
#: about ``H**2 / 6 * |f'''|`` (1e-11) plus ``eps * |sum(loss)| / H`` (1e-10).
FD_TOLERANCE = 1e-7
H = 1e-5

# (function, shape, axis): dense along every axis of a 2-D and a 3-D input, sparse on the last.
CASES = [pytest.param(DENSE_GRAD, shape, axis, id=f"dense-{'x'.join(map(str, shape))}-axis{axis}")
         for shape, axes in (((5, 7), (-1, 0)), ((3, 4, 5), (0, 1, -1))) for axis in axes]
CASES += [pytest.param(SPARSE_GRAD, shape, -1, id=f"sparse-{'x'.join(map(str, shape))}")
          for shape in ((5, 7), (2, 3, 7), (4, 1))]
cases = pytest.mark.parametrize("function,shape,axis", CASES)


def grad_inputs(function, shape, axis, dtype):
    return make_inputs(function, shape, dtype, 4.0, seed_of("grad", function, shape, axis, str(dtype)),
                       axis=axis, limit=naive_limit(function))


def call_grad(backend, function, labels, logits, axis):
    if function == DENSE_GRAD:
        return backend.softmax_cross_entropy_with_logits_and_grad(labels, logits, axis=axis)
    return backend.sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits)


def finite_difference(function, labels, logits, axis):
    """Central difference of ``sum(loss)`` of the truth, for every logit at once.

    The ``2n`` perturbed copies of the logits are stacked on a new leading axis
    and go through one call of the truth.
    """
    n = logits.size
    step = (np.eye(n) * H).reshape((n,) + logits.shape)
    up, down = logits + step, logits - step
    stacked = np.concatenate([up, down])
    loss = function.removesuffix("_and_grad")
    if function == SPARSE_GRAD:
        labels = np.broadcast_to(labels, stacked.shape[:-1])
        axis = -1
    totals = truth(loss, labels, stacked, axis if axis < 0 else axis + 1).values[0]
    totals = totals.reshape(2 * n, -1).sum(axis=1)
    h2 = (up - down).reshape(n, -1).sum(axis=1)  # the step actually taken, 2H up to rounding
    return ((totals[:n] - totals[n:]) / h2).reshape(logits.shape)


#: The backends whose fused gradients are compared with TensorFlow's tape (not the reference itself,
#: nor naive, which is valid only in its domain).
AGAINST_THE_TAPE = [n for n in UNDER_TEST if n not in UNSTABLE and n != "tensorflow"]


@pytest.mark.parametrize("name", AGAINST_THE_TAPE)
@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
@cases
def test_fused_gradient_agrees_with_the_tensorflow_tape(name, dtype, function, shape, axis, tf_backend):
    b = backend_or_skip(name)
    labels, logits = grad_inputs(function, shape, axis, dtype)
    got = call_grad(b, function, labels, logits, axis)
    reference = call_grad(tf_backend, function, labels, logits, axis)
    t = truth(function, labels, logits, axis)
    check_against_truth(t, reference, what="tensorflow")  # the reference itself is right
    check_against_truth(t, got, reference=reference, what=f"{name} vs tensorflow", backend=name)


@pytest.mark.parametrize("name", AGAINST_THE_TAPE)
@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
def test_fused_gradient_is_softmax_minus_labels_like_tensorflow_even_if_labels_do_not_sum_to_one(
        name, dtype, tf_backend):
    """As TF's fused kernel: ``softmax - labels``, not the gradient ``sum(z) * softmax - z``."""
    b = backend_or_skip(name)
    labels, logits = grad_inputs(DENSE_GRAD, (4, 6), -1, dtype)
    labels = (labels * 2).astype(dtype)
    got = b.softmax_cross_entropy_with_logits_and_grad(labels, logits)
    reference = tf_backend.softmax_cross_entropy_with_logits_and_grad(labels, logits)
    check_against_truth(truth(DENSE_GRAD, labels, logits), got, reference=reference)


@cases
def test_fused_gradient_agrees_with_a_finite_difference(backend, function, shape, axis):
    labels, logits = grad_inputs(function, shape, axis, np.float64)
    _, grad = call_grad(backend, function, labels, logits, axis)
    fd = finite_difference(function, labels, logits, axis)
    err = np.max(np.abs(grad - fd))
    assert err < FD_TOLERANCE, f"{backend.name}: |dlogits - finite difference| = {err:.3g}"


def test_the_finite_difference_sees_a_wrong_gradient():
    """The check can fail: for labels ``z`` summing to 2 the gradient is ``2p - z``, not ``p - z``."""
    labels, logits = grad_inputs(DENSE_GRAD, (3, 4), -1, np.float64)
    z = 2 * labels
    fd = finite_difference(DENSE_GRAD, z, logits, -1)
    p = truth("softmax", None, logits).values[0]
    assert np.max(np.abs((p - z) - fd)) > 100 * FD_TOLERANCE
    assert np.max(np.abs((2 * p - z) - fd)) < FD_TOLERANCE
