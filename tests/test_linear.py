"""The fused linear + cross-entropy (``impls._linear``): every backend against the extended-precision
truth, with every option alone and together, the chunking invisible in the results, no N x V array,
and one front door's errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from conftest import UNDER_TEST

import impls
from impls import _linear
from xentbench import accuracy
from xentbench.accuracy import BFLOAT16, LINEAR_TOLERANCE, linear_truth

#: PyTorch's unfused F.linear + F.cross_entropy and its chunked F.linear_cross_entropy (xentbench.peers):
#: no options, so those cases read "not implemented" (a skip).
PEERS = ["torch", "torch-chunked"]
DTYPES = [np.float16, BFLOAT16.type, np.float32, np.float64]
#: Each option alone, then together (the sparse loss's, and the softcap).
OPTIONS = {
    "none": {},
    "label_smoothing": dict(label_smoothing=0.1),
    "ignore_index": dict(ignore_index=3),
    "class_weights": dict(class_weights=np.linspace(0.5, 2.0, 50)),
    "sum": dict(reduction="sum"),
    "mean": dict(reduction="mean"),
    "z_loss": dict(z_loss=1e-3),
    "softcap": dict(softcap=2.0),
    "together": dict(label_smoothing=0.1, ignore_index=3, class_weights=np.linspace(0.5, 2.0, 50),
                     reduction="mean", z_loss=1e-3, softcap=2.0),
}


def backend_or_skip(name):
    try:
        return impls.get(name)
    except impls.BackendUnavailable as exc:
        pytest.skip(f"{name} unavailable here: {exc}")


def make(dtype, batch=(2, 5), size=16, vocabulary=50, seed=0):
    """Seeded ``(labels, hidden, weight, bias)``: logits of a few units, a label 3 among them (ignore_index)."""
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal(batch + (size,)).astype(dtype)
    weight = (rng.standard_normal((vocabulary, size)) / np.sqrt(size) * 2).astype(dtype)
    bias = rng.standard_normal(vocabulary).astype(dtype)
    labels = rng.integers(0, vocabulary, batch)
    labels.flat[0] = 3
    return labels, hidden, weight, bias


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(dict.fromkeys(UNDER_TEST + PEERS)))  # the built-in backends, or --backend
def test_agrees_with_the_truth(name, dtype, with_bias, option):
    backend = backend_or_skip(name)
    labels, hidden, weight, bias = make(dtype)
    bias = bias if with_bias else None
    options = OPTIONS[option]
    t = linear_truth(labels, hidden, weight, bias, options)
    try:
        got = backend.linear_cross_entropy_and_grad(labels, hidden, weight, bias, **options)
    except impls.NotImplementedByBackend as exc:
        pytest.skip(f"not implemented: {exc}")
    assert len(got) == len(t.values) and all(g.dtype == np.dtype(dtype) for g in got)
    assert [g.shape for g in got] == [v.shape for v in t.values]
    tol = LINEAR_TOLERANCE[np.dtype(dtype)]
    for part, err in zip(("loss", "grad_hidden", "grad_weight", "grad_bias"), t.errors(got)):
        assert err.max() <= tol, f"{name} {part}: error {err.max():.3g} exceeds {tol:g}"
    loss = backend.linear_cross_entropy(labels, hidden, weight, bias, **options)
    np.testing.assert_array_equal(loss, got[0])


def test_the_truth_by_hand():
    # one row, D = 1, V = 2: logits [h w0, h w1] = [1, 0], label 0: loss log(1 + e^-1),
    # dlogits = p - onehot = [-1/(1+e), 1/(1+e)], grad_hidden = dlogits . w, grad_weight = dlogits h
    t = linear_truth(np.array([0]), np.array([[1.0]]), np.array([[1.0], [0.0]]))
    q = 1 / (1 + np.e)
    np.testing.assert_allclose(t.values[0], [np.log1p(np.exp(-1))], rtol=1e-15)
    np.testing.assert_allclose(t.values[1], [[-q]], rtol=1e-15)
    np.testing.assert_allclose(t.values[2], [[-q], [q]], rtol=1e-15)


def test_a_gradient_that_cancels_is_judged_against_what_it_cancels_from():
    """One row whose label's logit exceeds the others by 32.75: p = 1 - 6e-15 at the label, so a
    float32 computation of p - onehot gives 0 there, and the gradients are all cancellation. The
    truth's scale is that of |p| and |onehot| (as the sparse loss's gradient is judged), so the
    float32 result passes; one 0.1% of that scale off fails."""
    hidden = np.array([[4.0, -2.0]], np.float32)
    weight = np.array([[2.0, 1.0], [-2.0, 1.0], [10.0, 0.625]], np.float32)  # logits [6, -10, 38.75]
    t = linear_truth(np.array([2]), hidden, weight)
    x = hidden.astype(np.float64) @ weight.T.astype(np.float64)
    p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    g = p.astype(np.float32) - np.eye(3, dtype=np.float32)[2]  # 0 at the label: 1 - p rounds away
    got = (np.float32(-np.log(p[0, 2])).reshape(1), g @ weight, g.T @ hidden)
    assert g[0, 2] == 0 and accuracy.judge(t, got).status == "pass"
    wrong = (got[0], got[1], got[2] + np.float32(1e-3 * float(t.scales[2].max())))
    assert accuracy.judge(t, wrong).status == "FAIL"


@pytest.mark.parametrize("block_rows", [2, 5])
@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_the_chunks_do_not_change_the_results(name, block_rows, monkeypatch):
    backend = backend_or_skip(name)
    labels, hidden, weight, bias = make(np.float32, batch=(37,), vocabulary=300)
    whole = backend.linear_cross_entropy_and_grad(labels, hidden, weight, bias, softcap=5.0, reduction="mean")
    monkeypatch.setattr(_linear, "CHUNK_BYTES", 300 * 4 * 5)  # at most 5 rows a chunk: 8 chunks of 4 or 5
    monkeypatch.setattr(_linear, "MIN_ROWS", 1)
    monkeypatch.setattr(_linear, "BLOCK_BYTES", 300 * 4 * block_rows)  # the loss on 2 rows at a time, or 5
    parts = backend.linear_cross_entropy_and_grad(labels, hidden, weight, bias, softcap=5.0, reduction="mean")
    for a, b in zip(whole, parts):  # the sums over rows (grad_weight, grad_bias, the mean) may round apart
        np.testing.assert_allclose(a, b, rtol=0, atol=4 * np.finfo(np.float32).eps * np.abs(a).max())


@pytest.mark.parametrize("rows", [0, 1, 85, 86, 87, 256, 2048])
@pytest.mark.parametrize("vocabulary", [1000, 32000, 128256, 1 << 20])
def test_the_chunks_are_as_few_as_the_bytes_allow_and_equal(rows, vocabulary):
    row_bytes = vocabulary * 4
    most = max(_linear.MIN_ROWS, _linear.CHUNK_BYTES // row_bytes)
    sizes = [part.stop - part.start for part in _linear._parts(rows, row_bytes)]
    assert sum(sizes) == rows and all(part.step is None for part in _linear._parts(rows, row_bytes))
    assert len(sizes) == -(-rows // most), (sizes, most)  # no more chunks than the most rows need
    assert not sizes or (max(sizes) <= most and max(sizes) - min(sizes) <= 1), (sizes, most)
    assert [p.stop - p.start for p in _linear._parts(rows, row_bytes, whole=True)] == ([rows] if rows else [])


def test_the_grid_at_128256_takes_three_chunks_of_256_rows():
    """256 rows of V = 128256 (issue 30's grid): three chunks of 85-86 rows, not four of 64 (entry 33)."""
    assert [p.stop - p.start for p in _linear._parts(256, 128256 * 4)] == [85, 85, 86]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_chunks_reach_the_kernels_warm_compiled(dtype):
    """Each chunk's logits reach numba's sparse loss read-only, as the front door's logits do, so that the
    fused functions run the kernels ``xentbench warm`` compiled, not copies compiled for writable logits."""
    backend = backend_or_skip("numba")
    from impls import _numba_kernels as kernels
    labels, hidden, weight, bias = make(dtype, batch=(8,), size=4, vocabulary=300)
    backend.linear_cross_entropy_and_grad(labels, hidden, weight, bias)
    serial = kernels.ROWS[kernels.SPARSE][True][False][1]  # the gradient's, whole rows, on the calling thread
    logits = [signature[0] for signature in serial.signatures]
    assert logits and not any(x.mutable for x in logits), logits


@pytest.mark.parametrize("softcap", [None, 30.0])
@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_no_array_of_the_logits_size_is_made(name, softcap, monkeypatch):
    backend = backend_or_skip(name)
    labels, hidden, weight, bias = make(np.float32, batch=(512,), size=32, vocabulary=32768)
    backend.linear_cross_entropy_and_grad(labels[:2], hidden[:2], weight, bias, softcap=softcap)  # compiled
    monkeypatch.setattr(_linear, "CHUNK_BYTES", 4 << 20)
    monkeypatch.setattr(_linear, "MIN_ROWS", 1)
    monkeypatch.setattr(_linear, "BLOCK_BYTES", 1 << 20)
    logits_bytes = 512 * 32768 * 4  # 64 MiB
    tracemalloc.start()
    try:
        backend.linear_cross_entropy_and_grad(labels, hidden, weight, bias, softcap=softcap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the gradients (4 MiB of grad_weight, 64 KiB of grad_hidden) and a few 4 MiB chunks
    assert peak < logits_bytes / 2, f"{name}: a peak of {peak / 2**20:.1f} MiB, the logits are 64 MiB"
    if name == "numba":  # its kernels make no temporary: the gradients, a chunk's logits (their gradient
        # written over them) and a block's gradient; under a softcap also the block's capped logits
        grads, chunk, block = weight.nbytes + hidden.nbytes + bias.nbytes, 4 << 20, 1 << 20
        blocks = 1 if softcap is None else 2
        assert peak < grads + chunk + (blocks + 1) * block, \
            f"a peak of {peak / 2**20:.1f} MiB: more than a 4 MiB chunk and {blocks} 1 MiB block(s) at once"


BAD = [
    (dict(hidden=np.ones((3, 4), np.int32)), TypeError, "Expected hidden of dtype float16, bfloat16, float32"),
    (dict(weight=np.ones((5, 3), np.float32)), ValueError, "Expected weight of shape (V, 4) with V >= 1"),
    (dict(weight=np.ones((5, 4), np.float64)), TypeError, "Expected weight of hidden's dtype float32"),
    (dict(bias=np.ones(4, np.float32)), ValueError, "Expected bias of shape (5,)"),
    (dict(labels=np.array([0, 5, 1])), ValueError, "label value of 5 which is outside the valid range of [0, 5)"),
    (dict(labels=np.array([0, 1])), ValueError, "Expected labels of shape (3,)"),
    (dict(softcap=0.0), ValueError, "softcap must be None or a finite number > 0"),
    (dict(reduction="avg"), ValueError, "reduction"),
]


@pytest.mark.conformance
@pytest.mark.parametrize("change,error,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_gets_the_same_error_from_every_backend(change, error, message):
    call = dict(labels=np.array([0, 1, 2]), hidden=np.ones((3, 4), np.float32), weight=np.ones((5, 4), np.float32),
                bias=None)
    call.update(change)
    options = {k: call.pop(k) for k in ("softcap", "reduction") if k in call}
    for name in UNDER_TEST:
        with pytest.raises(error) as raised:
            impls.linear_cross_entropy_and_grad(**call, **options, backend=name)
        assert message in str(raised.value), (name, str(raised.value))


@pytest.mark.conformance
def test_an_empty_batch_gives_empty_results_and_zero_gradients():
    for name in UNDER_TEST:
        loss, grad_hidden, grad_weight = impls.linear_cross_entropy_and_grad(
            np.zeros(0, int), np.zeros((0, 4), np.float32), np.ones((5, 4), np.float32), backend=name)
        assert (loss.shape, grad_hidden.shape, grad_weight.shape) == ((0,), (0, 4), (5, 4)), name
        assert not grad_weight.any(), name


@pytest.mark.conformance
def test_the_inputs_are_left_as_they_were():
    labels, hidden, weight, bias = make(np.float32)
    before = [a.copy() for a in (labels, hidden, weight, bias)]
    for name in impls.available(UNDER_TEST):
        impls.linear_cross_entropy_and_grad(labels, hidden, weight, bias, softcap=2.0, backend=name)
        for a, b in zip((labels, hidden, weight, bias), before):
            np.testing.assert_array_equal(a, b)


def test_half_precision_is_computed_in_float32_and_rounded_once():
    labels, hidden, weight, bias = make(np.float16)
    got = impls.linear_cross_entropy_and_grad(labels, hidden, weight, bias, backend="numba")
    ref = impls.linear_cross_entropy_and_grad(labels, hidden.astype(np.float32), weight.astype(np.float32),
                                              bias.astype(np.float32), backend="numba")
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r.astype(np.float16))
    assert accuracy.tolerance(np.float16) == LINEAR_TOLERANCE[np.dtype(np.float16)]


class OffByOneIn10000:
    """A plugin with the fused functions only, its grad_weight 1e-4 too large (relative)."""

    def linear_cross_entropy_and_grad(self, labels, hidden, weight, bias=None, options=None, softcap=None):
        loss, *grads = impls.get("numpy").module.linear_cross_entropy_and_grad(labels, hidden, weight, bias, options,
                                                                               softcap)
        grads[1] = grads[1] * (1 + 1e-4)
        return (loss, *grads)


def test_verify_checks_the_fused_functions_and_fails_a_wrong_gradient(monkeypatch):
    from xentbench import verify
    monkeypatch.setattr(verify, "SHAPES", ())
    monkeypatch.setattr(verify, "OPTION_SHAPES", ())
    monkeypatch.setattr(verify, "LINEAR_SHAPES", ((64, 32, 1000),))
    monkeypatch.setattr(impls._registry, "_sources", dict(impls._registry._sources))
    monkeypatch.setattr(impls._registry, "_loaded", dict(impls._registry._loaded))
    impls.register("off", OffByOneIn10000)
    rows = {(r["backend"], r["function"]): r for r in verify.check(["numba", "off"])}
    for function in impls.LINEAR_FUNCTIONS:
        row = rows["numba", function]
        assert row["status"] == "pass" and {d for d, _ in row["ulps"]} == {"float16", "bfloat16", "float32", "float64"}
    assert rows["off", "linear_cross_entropy"]["status"] == "not implemented"
    off = rows["off", "linear_cross_entropy_and_grad"]
    # float64: 1e-4 is far beyond its bound; float32: beyond the tolerance (and TensorFlow's error), within
    # the worst-case bound of logits that D = 32 products of perturbed inputs round (named, not failed)
    assert off["verdict"] == "FAIL: float64" and off["worst"]["float32"].status == "less accurate"
