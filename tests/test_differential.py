"""Every backend x function x dtype against the float64 truth and against TensorFlow.

Two regimes of random logits, seeded per case:

* ``valid``: ``|logits|`` within the domain where ``naive`` is documented to be
  valid (``conftest.naive_limit``); every backend is checked.
* ``wide``: logits of standard deviation 1000, far outside it; only the stable
  backends are checked (``naive`` overflows there, ``test_naive.py`` pins how).

The shapes cover batch 0, 1, 7, 1000 and classes 1, 2, 10, 1000, 32000, but
not the full product: the largest cases are 7 x 32000 and 1000 x 1000.
Inputs, truth and TensorFlow's result are computed once per case and shared by
all backends (module-scoped cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import impls
from conftest import (DTYPES, UNDER_TEST, UNSTABLE, backend_or_skip, call, case_id, check_against_truth, make_inputs,
                      naive_limit, seed_of)
from xentbench.accuracy import FUNCTIONS, Truth, truth

SHAPES = [
    (0, 1), (0, 32000),
    (1, 1), (1, 2), (1, 32000),
    (7, 1), (7, 2), (7, 10), (7, 1000), (7, 32000),
    (1000, 1), (1000, 10), (1000, 1000),
]
WIDE_SCALE = 1000.0


@dataclass
class Case:
    labels: np.ndarray | None
    logits: np.ndarray
    truth: Truth


@pytest.fixture(scope="module")
def cases():
    """``(function, shape, dtype, regime) -> Case``, generated once per module."""
    cache: dict = {}

    def get(function, shape, dtype, regime) -> Case:
        key = (function, shape, np.dtype(dtype).name, regime)
        if key not in cache:
            if regime == "valid":
                limit = naive_limit(function)
                labels, logits = make_inputs(function, shape, dtype, limit / 2, seed_of(*key), limit=limit)
            else:
                labels, logits = make_inputs(function, shape, dtype, WIDE_SCALE, seed_of(*key))
            cache[key] = Case(labels, logits, truth(function, labels, logits))
        return cache[key]

    return get


@pytest.fixture(scope="module")
def tf_results(tf_backend, cases):
    """TensorFlow's result for a case, computed once per case."""
    cache: dict = {}

    def get(function, shape, dtype, regime):
        key = (function, shape, np.dtype(dtype).name, regime)
        if key not in cache:
            c = cases(function, shape, dtype, regime)
            cache[key] = call(tf_backend, function, c.labels, c.logits)
        return cache[key]

    return get


BACKEND_REGIMES = [
    pytest.param(name, regime, id=f"{name}-{regime}")
    for regime in ("valid", "wide")
    for name in UNDER_TEST
    if regime == "valid" or name not in UNSTABLE
]
grid = pytest.mark.parametrize("shape", SHAPES, ids=case_id)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
functions = pytest.mark.parametrize("function", FUNCTIONS)
backends = pytest.mark.parametrize("name,regime", BACKEND_REGIMES)


@grid
@dtypes
@functions
@backends
def test_agrees_with_truth(name, regime, function, dtype, shape, cases):
    b = backend_or_skip(name)
    c = cases(function, shape, dtype, regime)
    got = call(b, function, c.labels, c.logits)
    check_against_truth(c.truth, got, what=f"{name}.{function}", backend=name)


@grid
@dtypes
@functions
@pytest.mark.parametrize(
    "name,regime", [p for p in BACKEND_REGIMES if p.values[0] != "tensorflow"])
def test_agrees_with_tensorflow(name, regime, function, dtype, shape, cases, tf_results):
    b = backend_or_skip(name)
    c = cases(function, shape, dtype, regime)
    got = call(b, function, c.labels, c.logits)
    reference = tf_results(function, shape, dtype, regime)
    check_against_truth(c.truth, got, reference=reference, what=f"{name}.{function} vs tensorflow", backend=name)
