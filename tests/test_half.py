"""The front door's float16 <-> float32 conversion (``impls._half``) is NumPy's cast, bit for bit."""

import numpy as np
import pytest

import impls
from impls import _half


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal bit patterns, except that any NaN matches any NaN (payloads may differ)."""
    nan = np.isnan(want)
    uint = np.dtype(f"uint{8 * want.itemsize}")
    return (np.array_equal(np.isnan(got), nan)
            and np.array_equal(got.view(uint)[~nan], want.view(uint)[~nan]))


def test_widening_is_exact_for_every_float16():
    every = np.arange(2**16, dtype=np.uint16).view(np.float16)
    assert _same_bits(_half.to_float32(every), every.astype(np.float32))
    many = np.tile(every, _half.PARALLEL_FROM // every.size + 1)[1:]  # on every core, odd chunk edges
    assert _same_bits(_half.to_float32(many), many.astype(np.float32))


def _narrowing_cases() -> np.ndarray:
    """Random float32 bit patterns plus the values where rounding to float16 is delicate."""
    rng = np.random.default_rng(7)
    random_bits = rng.integers(0, 2**32, size=2_000_000, dtype=np.uint64).astype(np.uint32)
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)
    finite = halves[np.isfinite(halves)]
    neighbours = np.concatenate([np.nextafter(finite, np.float32(np.inf)),
                                 np.nextafter(finite, np.float32(-np.inf))])
    ordered = np.sort(finite)
    ties = (ordered[:-1] + ordered[1:]) / np.float32(2)  # halfway: round to even
    edges = np.array([65504, 65519.996, 65520, 1e30, 6.1035156e-05, 5.96e-08, 2.98e-08,
                      2.9802322e-08, 1e-30, 0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    return np.concatenate([random_bits.view(np.float32), finite, neighbours, ties, edges, -edges])


def test_narrowing_rounds_like_numpy():
    values = _narrowing_cases()
    assert values.size >= _half.PARALLEL_FROM  # on every core; test_shapes_and_layouts: on one
    with np.errstate(over="ignore"):
        want = values.astype(np.float16)
    assert _same_bits(_half.to_float16(values), want)


@pytest.mark.parametrize("shape", [(0,), (3,), (4, 5), (2, 3, 4)])
def test_shapes_and_layouts(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert _half.to_float16(x).shape == shape
    assert _half.to_float32(x.astype(np.float16)).shape == shape
    transposed = x.T  # not C-contiguous
    assert _same_bits(_half.to_float16(transposed), transposed.astype(np.float16))


def test_float16_results_that_are_subnormal_in_float16():
    """Most probabilities of a wide softmax are below float16's smallest normal
    (6.1e-5), where NumPy's cast is slow: the results must still be NumPy's."""
    x = np.random.default_rng(1).standard_normal((8, 30000)).astype(np.float16) * 3
    got = impls.get("numpy").softmax(x)
    assert got.dtype == np.float16
    with np.errstate(under="ignore"):
        want = impls.get("numpy").softmax(x.astype(np.float32)).astype(np.float16)
    assert (np.abs(want) < 6.1e-5).mean() > 0.5
    assert _same_bits(got, want)
