"""The front door's half precision <-> float32 conversions (``impls._half``) are NumPy's and
``ml_dtypes``' casts, bit for bit."""

import ml_dtypes
import numpy as np
import pytest

import impls
from impls import _half, _numba_setup

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
HALF = [np.dtype(np.float16), BFLOAT16]


def _to(a: np.ndarray, dtype) -> np.ndarray:
    return _half.convert(a, np.empty(a.shape, dtype))


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal bit patterns, except that any NaN matches any NaN (payloads may differ)."""
    nan = np.isnan(want.astype(np.float32))
    got_nan = np.isnan(got.astype(np.float32))
    uint = np.dtype(f"uint{8 * want.itemsize}")
    return (np.array_equal(got_nan, nan)
            and np.array_equal(got.view(uint)[~nan], want.view(uint)[~nan]))


@pytest.mark.parametrize("half", HALF, ids=str)
def test_widening_is_exact_for_every_half(half):
    every = np.arange(2**16, dtype=np.uint16).view(half)
    assert _same_bits(_to(every, np.float32), every.astype(np.float32))
    many = np.tile(every, _numba_setup.SERIAL_BELOW // every.size + 1)[1:]  # on every core, odd chunk edges
    assert _same_bits(_to(many, np.float32), many.astype(np.float32))


def _narrowing_cases(half) -> np.ndarray:
    """Random float32 bit patterns plus the values where rounding to ``half`` is delicate."""
    rng = np.random.default_rng(7)
    random_bits = rng.integers(0, 2**32, size=2_000_000, dtype=np.uint64).astype(np.uint32)
    halves = np.arange(2**16, dtype=np.uint16).view(half).astype(np.float32)
    finite = halves[np.isfinite(halves)]
    neighbours = np.concatenate([np.nextafter(finite, np.float32(np.inf)),
                                 np.nextafter(finite, np.float32(-np.inf))])
    ordered = np.sort(finite)
    ties = ordered[:-1] + (ordered[1:] - ordered[:-1]) / np.float32(2)  # halfway (exact): round to even
    edges = np.array([65504, 65519.996, 65520, 1e30, 6.1035156e-05, 5.96e-08, 2.98e-08,
                      2.9802322e-08, 1e-30, 3.3895314e38, 3.3961775e38, 1.1754944e-38, 9.2e-41,
                      0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    return np.concatenate([random_bits.view(np.float32), finite, neighbours, ties, edges, -edges])


@pytest.mark.parametrize("half", HALF, ids=str)
def test_narrowing_rounds_like_numpy(half):
    values = _narrowing_cases(half)
    assert values.size >= _numba_setup.SERIAL_BELOW  # on every core; test_shapes_and_layouts: on one
    with np.errstate(over="ignore", invalid="ignore"):
        want = values.astype(half)
    assert _same_bits(_to(values, half), want)


def test_bfloat16_nan_is_the_quiet_nan_of_its_sign():
    """As ``ml_dtypes``' cast: any NaN payload becomes 0x7FC0, or 0xFFC0 with the sign bit."""
    nans = np.array([0x7F800001, 0x7FFFFFFF, 0xFF800001, 0x7FC00000], np.uint32).view(np.float32)
    assert _to(nans, BFLOAT16).view(np.uint16).tolist() == [0x7FC0, 0x7FC0, 0xFFC0, 0x7FC0]


@pytest.mark.parametrize("half", HALF, ids=str)
@pytest.mark.parametrize("shape", [(0,), (3,), (4, 5), (2, 3, 4)])
def test_shapes_and_layouts(shape, half):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert _to(x, half).shape == shape
    assert _to(x.astype(half), np.float32).shape == shape
    transposed = x.T  # not C-contiguous
    assert _same_bits(_to(transposed, half), transposed.astype(half))


def test_float16_results_that_are_subnormal_in_float16():  # bfloat16 has float32's range
    """Most probabilities of a wide softmax are below float16's smallest normal
    (6.1e-5), where NumPy's cast is slow: the results must still be NumPy's."""
    x = np.random.default_rng(1).standard_normal((8, 30000)).astype(np.float16) * 3
    got = impls.get("numpy").softmax(x)
    assert got.dtype == np.float16
    with np.errstate(under="ignore"):
        want = impls.get("numpy").softmax(x.astype(np.float32)).astype(np.float16)
    assert (np.abs(want) < 6.1e-5).mean() > 0.5
    assert _same_bits(got, want)


#: Shapes through every path of the numba kernels: tiles of short rows, a row per
#: task, rows cut into pieces; on the calling thread and on every core.
KERNEL_SHAPES = [(300, 7), (8, 300), (40, 2000), (1, 40000), (3, 70000)]


def _numba_backend():
    try:
        return impls.get("numba")
    except impls.BackendUnavailable as exc:
        pytest.skip(str(exc))


def _arguments(function: str, x: np.ndarray, rng) -> tuple:
    """``function``'s arguments on the logits ``x``: int64 labels, float32 labels of ``x``'s shape, or none."""
    if function in ("softmax", "log_softmax"):
        return (x,)
    labels = rng.integers(0, x.shape[1], x.shape[0]) if "sparse" in function else rng.random(x.shape).astype(np.float32)
    return labels, x


@pytest.mark.parametrize("function", impls.FUNCTIONS)
@pytest.mark.parametrize("half", HALF, ids=str)
def test_numba_reads_and_writes_half_precision_bit_for_bit(half, function):
    """The numba kernels widen half precision as they load it and narrow their results as
    they store them: bit for bit the float32 kernels' results on the widened logits, rounded,
    which is the conversion path they replace."""
    numba_backend = _numba_backend()
    rng = np.random.default_rng(3)
    for shape in KERNEL_SHAPES:
        args = _arguments(function, (rng.standard_normal(shape) * 4).astype(half), rng)
        x = args[-1]
        got = getattr(numba_backend, function)(*args)
        via_float32 = getattr(numba_backend, function)(*args[:-1], _to(x, np.float32))
        for g, w in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, via_float32))):
            assert g.dtype == half
            assert _same_bits(g, _to(w, half)), f"{shape}: {np.flatnonzero(g.view(np.uint16) != _to(w, half).view(np.uint16))[:5]}"


@pytest.mark.parametrize("half", HALF, ids=str)
def test_half_precision_compiles_no_tile_or_piece_kernel_of_its_own(half):
    """Tiles of short rows and rows cut into pieces are computed by the float32 kernels on widened
    rows (``impls._numba_kernels.HALF``): no kernel of theirs is ever compiled for half precision's
    bits, and the shim that widens tiles is; whole rows have kernels of their own."""
    numba_backend = _numba_backend()
    from numba import types
    from impls import _numba_kernels as kernels
    rng = np.random.default_rng(4)
    for shape in KERNEL_SHAPES:
        x = (rng.standard_normal(shape) * 4).astype(half)
        for function in (f for f in impls.FUNCTIONS if "softmax" in f):  # the row kernels' six
            getattr(numba_backend, function)(*_arguments(function, x, rng))
    bits = types.Array(types.int16 if half == np.float16 else types.uint16, 2, "C", readonly=True)
    row_kernels = {k for by_grad in kernels.ROWS for by_short in by_grad for parallel, serial in by_short
                   for k in (serial, *parallel.kernels)} - {kernels._chunks}  # the driver runs any kernel
    compiled_for_bits = {k.__name__ for k in row_kernels for signature in k.signatures if bits in signature}
    assert {"rows_sparse_grad_whole", "rows_softmax_whole"} <= compiled_for_bits  # the calls reached them
    assert not {name for name in compiled_for_bits if "tiles" in name or "pieces" in name}
    assert any(signature[0] == bits for signature in kernels._widened.signatures)


#: Options that reach every option term of the kernels (``impls._options``), per loss.
_HALF_OPTIONS = {"sparse": dict(label_smoothing=0.1, ignore_index=1, z_loss=1e-3, reduction="mean"),
                 "dense": dict(label_smoothing=0.1, z_loss=1e-3, reduction="none")}


@pytest.mark.parametrize("function", [f for f in impls.FUNCTIONS if "softmax_cross_entropy" in f])
@pytest.mark.parametrize("half", HALF, ids=str)
def test_loss_options_on_half_precision_are_the_float32_call_rounded(backend, half, function):
    """A call with loss options is computed from the logits converted to float32 (the front
    door's rule, whichever backend): its gradient and per-row loss are the float32 call's,
    rounded once; a reduced loss is 0-d of the logits' dtype."""
    rng = np.random.default_rng(5)
    options = _HALF_OPTIONS["sparse" if "sparse" in function else "dense"]
    for shape in KERNEL_SHAPES if backend.name == "numba" else KERNEL_SHAPES[:2]:
        x = (rng.standard_normal(shape) * 4).astype(half)
        labels = (rng.integers(0, shape[1], shape[0]) if "sparse" in function
                  else rng.random(shape).astype(np.float32))
        got = getattr(backend, function)(labels, x, **options)
        via_float32 = getattr(backend, function)(labels, _to(x, np.float32), **options)
        for g, w in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, via_float32))):
            assert g.dtype == half and g.shape == w.shape
            if g.ndim:  # a reduced loss is rounded twice on the float32 call's way (its sum, then to half)
                assert _same_bits(g, _to(w, half)), f"{shape}"
