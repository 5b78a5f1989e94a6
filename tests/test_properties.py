"""Property-based tests: random shapes (rank 1-4), dtypes, logit scales 1e-3 to 1e4,
soft labels and axes; every backend agrees with the extended-precision truth.

The stable backends are checked on every input, ``naive`` only on logits
inside its documented domain (``test_naive.py`` pins where it breaks). The
settings profile (few examples, no deadline, deterministic) is in conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import impls
from conftest import (DTYPES, UNDER_TEST, UNSTABLE, as_tuple, backend_or_skip, call, check_against_truth,
                      make_labels, make_logits, naive_limit)
from xentbench.accuracy import FUNCTIONS, WITH_AXIS, truth

SIGMOID = "sigmoid_cross_entropy_with_logits"
functions = pytest.mark.parametrize("function", FUNCTIONS)


def draw_problem(data, function, max_scale=1e4, limit=None):
    """Draw ``(labels, logits, axis)`` for ``function``.

    Rank 1-4 with small batch dimensions, up to 64 classes (a class axis of
    length 0 is an error, except for the elementwise sigmoid loss); the scale
    is log-uniform from 1e-3 to ``max_scale``; sometimes the logits are rounded
    to integers, which makes ties and exactly equal rows.
    """
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    rank = data.draw(st.integers(1, 4), label="rank")
    axis = data.draw(st.integers(-rank, rank - 1), label="axis") if function in WITH_AXIS else -1
    shape = [data.draw(st.integers(0, 5)) for _ in range(rank)]
    min_classes = 0 if function == SIGMOID else 1
    shape[axis] = data.draw(st.integers(min_classes, 64), label="classes")
    log_scale = data.draw(st.floats(-3, np.log10(max_scale)), label="log10(scale)")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    logits = make_logits(rng, tuple(shape), dtype, 10.0 ** log_scale, limit)
    if data.draw(st.booleans(), label="integer logits"):
        logits = np.round(logits)
    labels = make_labels(function, rng, logits, axis)
    note(f"logits {logits.dtype} {logits.shape}, axis {axis}")
    return labels, logits, axis


@functions
@pytest.mark.parametrize("name", [n for n in UNDER_TEST if n not in UNSTABLE])
@given(data=st.data())
def test_stable_backends_agree_with_the_truth(name, function, data):
    b = backend_or_skip(name)
    labels, logits, axis = draw_problem(data, function)
    got = call(b, function, labels, logits, axis)
    check_against_truth(truth(function, labels, logits, axis), got, what=f"{name}.{function}")


@functions
@given(data=st.data())
def test_naive_agrees_with_the_truth_where_it_is_valid(function, data):
    b = backend_or_skip("naive")
    limit = naive_limit(function)
    labels, logits, axis = draw_problem(data, function, max_scale=limit, limit=limit)
    got = call(b, function, labels, logits, axis)
    check_against_truth(truth(function, labels, logits, axis), got, what=f"naive.{function}")


@pytest.mark.parametrize("function", sorted(WITH_AXIS))
@pytest.mark.parametrize("name", UNDER_TEST)
@given(data=st.data())
def test_any_axis_is_the_last_axis_moved(name, function, data):
    """Along ``axis`` the result is that of the logits with ``axis`` moved last, moved back."""
    backend = backend_or_skip(name)
    limit = None if name not in UNSTABLE else naive_limit(function)
    labels, logits, axis = draw_problem(data, function, max_scale=limit or 1e4, limit=limit)
    got = as_tuple(call(backend, function, labels, logits, axis))
    moved = [None if a is None else np.moveaxis(a, axis, -1) for a in (labels, logits)]
    want = as_tuple(call(backend, function, *moved, -1))
    np.testing.assert_array_equal(got[0], want[0] if want[0].ndim < logits.ndim
                                  else np.moveaxis(want[0], -1, axis))
    if len(got) == 2:
        np.testing.assert_array_equal(got[1], np.moveaxis(want[1], -1, axis))
