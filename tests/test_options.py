"""The loss options (``impls._options``) on every backend.

* Values: every option and the combinations PyTorch got wrong (smoothing with
  ignored rows, pytorch#73205; weights with smoothing and ignored rows,
  pytorch#69339), on the four softmax losses, against the extended-precision
  truth of ``xentbench.accuracy`` (written from the definitions), with its
  tolerances; shapes that take each path of the numba kernels (tiles of short
  rows, a row per task, a row cut into pieces).
* Gradients: every option combination against a central difference of the
  truth's (reduced) loss, in float64.
* Bad options: one error, the same message from every backend.
* PyTorch: ``F.cross_entropy`` with the same options against the same truth,
  where torch is installed (a skip elsewhere, never a pass).
"""

from __future__ import annotations

import numpy as np
import pytest

import impls
from conftest import DTYPES, case_id, check_against_truth, make_inputs, naive_limit, seed_of
from xentbench.accuracy import tolerance, truth
from xentbench.inputs import IGNORE_INDEX, LOSS_OPTIONS, SIGMOID_OPTIONS, ignoring, loss_options

SPARSE = "sparse_softmax_cross_entropy_with_logits"
DENSE = "softmax_cross_entropy_with_logits"
SIGMOID = "sigmoid_cross_entropy_with_logits"
LOSSES = (SPARSE, DENSE, SPARSE + "_and_grad", DENSE + "_and_grad")
IGNORE = IGNORE_INDEX


def cases_of(functions):
    """(function, option name) pairs, without dense ones that would have no option left."""
    return [pytest.param(f, o, id=f"{f.replace('softmax_cross_entropy_with_logits', 'xent')}-{o}")
            for f in functions for o in LOSS_OPTIONS if loss_options(o, f, 3)]


def inputs(function: str, shape, dtype, options: dict, scale: float = 4.0):
    """Seeded labels and logits valid for every backend (``|x| <= 20``); every third
    row from the second ignored when ``ignore_index`` is set."""
    labels, logits = make_inputs(function, shape, dtype, scale, seed_of("options", function, shape, str(dtype)),
                                 limit=naive_limit(function))
    return (ignoring(labels, options) if labels is not None else None), logits


def call(b, function: str, labels, logits, options: dict):
    return getattr(b, function)(labels, logits, **options)


# (shape, dtype): the numba kernels' tiles (C < 64), rows, and a row cut into pieces (a parallel
# call with fewer rows than threads); float16 and float64 where they are cheap.
SHAPES = [((7, 10), np.float16), ((7, 10), np.float32), ((7, 10), np.float64), ((9, 300), np.float32),
          ((9, 300), np.float64), ((1, 70000), np.float32)]


@pytest.mark.parametrize("shape,dtype", SHAPES, ids=lambda v: case_id(np.dtype(v) if isinstance(v, type) else v))
@pytest.mark.parametrize("function,option", cases_of(LOSSES))
def test_options_agree_with_the_truth(backend, function, option, shape, dtype):
    options = loss_options(option, function, shape[-1])
    labels, logits = inputs(function, shape, dtype, options)
    got = call(backend, function, labels, logits, options)
    want = truth(function, labels, logits, options=options)
    if options.get("reduction", "none") != "none":
        assert all(np.shape(g) == np.shape(v) for g, v in zip(got if isinstance(got, tuple) else (got,), want.values))
    check_against_truth(want, got, what=f"{backend.name}.{function} {option}", backend=backend.name)


def test_the_truth_matches_hand_computed_values():
    """Two classes, logits (0, log 3): p = (1/4, 3/4); label 0 smoothed by 0.2 is q = (0.9, 0.1)."""
    logits = np.array([[0.0, np.log(3.0)]])
    t = truth(SPARSE + "_and_grad", np.array([0]), logits, options=dict(label_smoothing=0.2))
    np.testing.assert_allclose(t.values[0], [0.9 * np.log(4) + 0.1 * np.log(4 / 3)], rtol=1e-15)
    np.testing.assert_allclose(t.values[1], [[0.25 - 0.9, 0.75 - 0.1]], rtol=1e-15)
    w = np.array([2.0, 0.5])
    t = truth(SPARSE, np.array([0, 1, IGNORE]), np.repeat(logits, 3, axis=0),
              options=dict(class_weights=w, ignore_index=IGNORE, reduction="mean"))
    # (2 log 4 + 0.5 log(4/3)) / (2 + 0.5); the ignored row counts in neither
    np.testing.assert_allclose(t.values[0], (2 * np.log(4) + 0.5 * np.log(4 / 3)) / 2.5, rtol=1e-15)
    t = truth(DENSE, np.array([[0.5, 0.5]]), logits, options=dict(z_loss=0.1))
    np.testing.assert_allclose(t.values[0], [0.5 * np.log(4) + 0.5 * np.log(4 / 3) + 0.1 * np.log(4) ** 2],
                               rtol=1e-15)


@pytest.mark.parametrize("function", LOSSES)
def test_options_at_their_defaults_change_nothing(backend, function):
    labels, logits = inputs(function, (5, 70), np.float32, {})
    defaults = dict(label_smoothing=0, class_weights=None, reduction="none", z_loss=0.0)
    if function.startswith("sparse"):
        defaults["ignore_index"] = None
    for plain, given in zip(*(np.atleast_1d(r) if not isinstance(r, tuple) else r for r in (
            call(backend, function, labels, logits, {}), call(backend, function, labels, logits, defaults)))):
        np.testing.assert_array_equal(plain, given)


@pytest.mark.parametrize("function", [f for f in LOSSES if f.startswith("sparse")])
def test_ignored_rows_are_exempt_from_the_range_check_and_give_zero(backend, function):
    """An ignored row is 0 in the loss and the gradient whatever its logits, NaN and inf included."""
    logits = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, np.inf], [0.0, 0.0, 0.0]])
    labels = np.array([2, IGNORE, IGNORE])
    with pytest.raises(ValueError, match="label value of -100 which is outside the valid range"):
        call(backend, function, labels, logits, {})
    got = call(backend, function, labels, logits, dict(ignore_index=IGNORE))
    loss, grad = got if isinstance(got, tuple) else (got, None)
    assert loss[1] == 0 and loss[2] == 0 and np.isfinite(loss[0])
    if grad is not None:
        assert np.all(grad[1:] == 0)
    with pytest.raises(ValueError, match="label value of 3 which is outside"):
        call(backend, function, np.array([3, IGNORE, 0]), logits, dict(ignore_index=IGNORE))
    # a class index may be the one ignored: then it is never a target
    got = call(backend, function, np.array([0, 1, 0]), logits[[0, 0, 2]], dict(ignore_index=0, reduction="sum"))
    want = truth(function, np.array([0, 1, 0]), logits[[0, 0, 2]], options=dict(ignore_index=0, reduction="sum"))
    check_against_truth(want, got)


@pytest.mark.parametrize("function", [f for f in LOSSES if f.startswith("sparse")])
@pytest.mark.parametrize("options", [dict(ignore_index=IGNORE), dict(class_weights=np.zeros(4))],
                         ids=["ignored", "weights0"])
def test_a_mean_over_no_rows_is_nan_with_a_zero_gradient(backend, function, options):
    labels = np.full(3, IGNORE) if "ignore_index" in options else np.array([0, 1, 2])
    got = call(backend, function, labels, np.ones((3, 4)), dict(options, reduction="mean"))
    loss, grad = got if isinstance(got, tuple) else (got, None)
    assert np.isnan(loss) and loss.shape == ()
    if grad is not None:
        assert np.all(grad == 0)


@pytest.mark.parametrize("function", LOSSES)
def test_options_on_an_empty_batch(backend, function):
    """No rows: a loss of shape (0,), a sum of 0, a mean of nothing (NaN); gradients of shape (0, C)."""
    labels = np.zeros(0, np.int64) if function.startswith("sparse") else np.zeros((0, 5))
    for reduction, want in (("none", np.zeros(0)), ("sum", 0.0), ("mean", np.nan)):
        got = call(backend, function, labels, np.zeros((0, 5)), dict(label_smoothing=0.1, reduction=reduction))
        loss = got[0] if isinstance(got, tuple) else got
        np.testing.assert_array_equal(loss, want)
        if isinstance(got, tuple):
            assert got[1].shape == (0, 5)


# --------------------------------------------------------------------------- sigmoid

@pytest.mark.parametrize("dtype", DTYPES, ids=case_id)
@pytest.mark.parametrize("option", SIGMOID_OPTIONS)
def test_sigmoid_options_agree_with_the_truth(backend, option, dtype):
    labels, logits = make_inputs(SIGMOID, (9, 300), dtype, 2.0, seed_of("sigmoid options", str(dtype)),
                                 limit=naive_limit(SIGMOID))
    options = SIGMOID_OPTIONS[option](300)
    got = backend.sigmoid_cross_entropy_with_logits(labels, logits, **options)
    check_against_truth(truth(SIGMOID, labels, logits, options=options), got, what=f"{backend.name} {option}",
                        backend=backend.name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=case_id)
def test_sigmoid_pos_weight_is_plus_inf_at_minus_inf(backend, dtype):
    """At ``x = -inf``, ``-w z log(s) - (1 - z) log(1 - s)`` is ``+inf`` wherever ``w z > 0``
    (``log(s) = -inf``), as the loss without ``pos_weight`` is. TensorFlow's
    ``weighted_cross_entropy_with_logits`` computes ``(1 - z) x + (1 + (w - 1) z) softplus(-x)``,
    ``-inf + inf`` there: NaN, recorded here as its finding (``impls._options``)."""
    labels = np.array([0.25, 0.5, 1.0], dtype)
    logits = np.full(3, -np.inf, dtype)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        plain = backend.sigmoid_cross_entropy_with_logits(labels, logits)
        for pos_weight in (1.0, 0.5, 3.0):
            got = backend.sigmoid_cross_entropy_with_logits(labels, logits, pos_weight=pos_weight)
            if backend.name == "tensorflow":
                assert np.isnan(got).all(), f"TensorFlow's weighted loss at -inf is no longer NaN: {got}"
            else:
                np.testing.assert_array_equal(got, np.full(3, np.inf, dtype), err_msg=f"pos_weight={pos_weight}")
    np.testing.assert_array_equal(plain, np.full(3, np.inf, dtype))


# --------------------------------------------------------------------------- gradients

H = 1e-5
#: As in test_gradients: with the step ``H`` in float64 the central difference is off by
#: about ``H**2 / 6 |f'''|`` plus ``eps |loss| / H``, far below this on gradients of order 1.
FD_TOLERANCE = 1e-7


def finite_difference(function: str, labels, logits, options: dict) -> np.ndarray:
    """Central difference of the truth's (summed, or reduced) loss, one logit at a time."""
    loss = function.removesuffix("_and_grad")

    def total(x):
        return float(np.sum(truth(loss, labels, x, options=options).values[0]))

    fd = np.empty_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += H
        down[i] -= H
        fd[i] = (total(up) - total(down)) / (up[i] - down[i])
    return fd


@pytest.mark.parametrize("function,option", cases_of([SPARSE + "_and_grad", DENSE + "_and_grad"]))
def test_option_gradients_agree_with_a_finite_difference(backend, function, option):
    options = loss_options(option, function, 7)
    labels, logits = inputs(function, (5, 7), np.float64, options)
    _, grad = call(backend, function, labels, logits, options)
    err = np.max(np.abs(grad - finite_difference(function, labels, logits, options)))
    assert err < FD_TOLERANCE, f"{backend.name} {option}: |dlogits - finite difference| = {err:.3g}"


@pytest.mark.parametrize("function,option", cases_of([SPARSE + "_and_grad", DENSE + "_and_grad"]))
def test_the_truths_gradient_is_the_derivative_of_its_loss(function, option):
    options = loss_options(option, function, 7)
    labels, logits = inputs(function, (5, 7), np.float64, options)
    grad = truth(function, labels, logits, options=options).values[1]
    assert np.max(np.abs(grad - finite_difference(function, labels, logits, options))) < FD_TOLERANCE


# --------------------------------------------------------------------------- bad options

#: (options, error type, the message's start): the same from every backend and every loss.
BAD = [
    (dict(label_smoothing=-0.1), ValueError, "Expected label_smoothing in [0, 1], got -0.1"),
    (dict(label_smoothing=1.5), ValueError, "Expected label_smoothing in [0, 1], got 1.5"),
    (dict(label_smoothing=float("nan")), ValueError, "Expected label_smoothing in [0, 1], got nan"),
    (dict(label_smoothing="0.1"), TypeError, "Expected label_smoothing to be a real number, got '0.1'"),
    (dict(class_weights=np.ones(3)), ValueError, "Expected class_weights of shape (4,) (one per class), got (3,)"),
    (dict(class_weights=np.ones((1, 4))), ValueError, "Expected class_weights of shape (4,)"),
    (dict(class_weights=[1.0, -1.0, 1.0, 1.0]), ValueError, "Expected class_weights to be finite and >= 0"),
    (dict(class_weights=[1.0, np.inf, 1.0, 1.0]), ValueError, "Expected class_weights to be finite and >= 0"),
    (dict(class_weights=[1.0, np.nan, 1.0, 1.0]), ValueError, "Expected class_weights to be finite and >= 0"),
    (dict(class_weights=["a"] * 4), TypeError, "Expected real class_weights, got <U1"),
    (dict(reduction="avg"), ValueError, "Expected reduction to be one of 'none', 'sum' or 'mean', got 'avg'"),
    (dict(reduction=None), ValueError, "Expected reduction to be one of 'none', 'sum' or 'mean', got None"),
    (dict(z_loss=-1e-4), ValueError, "Expected z_loss to be finite and >= 0, got -0.0001"),
    (dict(z_loss=np.inf), ValueError, "Expected z_loss to be finite and >= 0, got inf"),
    (dict(ignore_index=1.0), TypeError, "Expected ignore_index to be an integer or None, got 1.0"),
    (dict(ignore_index=True), TypeError, "Expected ignore_index to be an integer or None, got True"),
    (dict(ignore_index=2**63), ValueError, "Expected ignore_index to fit in int64"),
]


@pytest.mark.parametrize("function", LOSSES)
@pytest.mark.parametrize("options,error,message", BAD, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_bad_options_get_one_error_from_the_front_door(backend, function, options, error, message):
    if "ignore_index" in options and not function.startswith("sparse"):
        with pytest.raises(TypeError, match="unexpected keyword argument 'ignore_index'"):
            call(backend, function, None, np.zeros((2, 4)), options)
        return
    labels, logits = inputs(function, (2, 4), np.float32, {})
    with pytest.raises(error) as info:
        call(backend, function, labels, logits, options)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("options,error,message", [
    (dict(label_smoothing=2.0), ValueError, "Expected label_smoothing in [0, 1], got 2.0"),
    (dict(pos_weight=-1.0), ValueError, "Expected pos_weight to be finite and >= 0"),
    (dict(pos_weight=np.ones(3)), ValueError, "pos_weight of shape (3,) does not broadcast to logits of shape (2, 4)"),
])
def test_bad_sigmoid_options_get_one_error_from_the_front_door(backend, options, error, message):
    with pytest.raises(error) as info:
        backend.sigmoid_cross_entropy_with_logits(np.zeros((2, 4)), np.zeros((2, 4)), **options)
    assert str(info.value).startswith(message)


def test_the_weights_given_are_left_as_they_were(backend):
    """The front door copies the weights: the caller's array stays writeable and unchanged."""
    w = np.array([1.0, 2.0, 0.5])
    call(backend, SPARSE, np.array([0, 2]), np.zeros((2, 3)), dict(class_weights=w))
    assert w.flags.writeable and list(w) == [1.0, 2.0, 0.5]
    with pytest.raises(ValueError, match="Expected class_weights to be finite and >= 0 in float32"):
        call(backend, SPARSE, np.array([0, 2]), np.zeros((2, 3), np.float32), dict(class_weights=[1.0, 1e39, 1.0]))


def test_a_plugin_without_options_says_so(monkeypatch):
    """A backend that does not declare ``takes_options`` is "not implemented" for options, not wrong."""
    class Plain:
        def sparse_softmax_cross_entropy_with_logits(self, labels, logits):
            return np.zeros(len(logits), logits.dtype)
    monkeypatch.setitem(impls._registry._sources, "plain", Plain)
    monkeypatch.setattr(impls._registry, "_loaded", {})
    assert impls.sparse_softmax_cross_entropy_with_logits([0], [[1.0, 2.0]], backend="plain").shape == (1,)
    with pytest.raises(impls.NotImplementedByBackend, match="does not implement the loss options"):
        impls.sparse_softmax_cross_entropy_with_logits([0], [[1.0, 2.0]], backend="plain", label_smoothing=0.1)


# --------------------------------------------------------------------------- PyTorch

#: Options of torch.nn.functional.cross_entropy, by our names.
TORCH_NAMES = {"label_smoothing": "label_smoothing", "ignore_index": "ignore_index", "class_weights": "weight",
               "reduction": "reduction"}


@pytest.mark.parametrize("function,option", [c for c in cases_of([SPARSE, DENSE])
                                             if "z_loss" not in LOSS_OPTIONS[c.values[1]](3)])
def test_pytorch_cross_entropy_agrees_with_the_truth(function, option):
    """torch's ``F.cross_entropy`` with the same options, judged by the same truth: a
    disagreement fails naming the option (a PyTorch bug is a finding: docs/guides/options.md)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no cross-check with it here")
    options = loss_options(option, function, 300)
    labels, logits = inputs(function, (9, 300), np.float64, options)
    kwargs = {TORCH_NAMES[k]: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    kwargs.setdefault("reduction", "none")
    got = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), **kwargs).numpy()
    err = truth(function, labels, logits, options=options).error(got)
    assert err <= tolerance(np.float64), f"torch F.cross_entropy with {option}: error {err:.3g} against the truth"
