"""Ground truth, the error measure and the tolerances: written once, used everywhere.

The tests, ``xentbench verify`` and the asv ``track_`` benchmarks all judge a
result the same way, with the functions of this module.

Ground truth
    ``truth()`` computes every function in extended precision (``np.longdouble``,
    80-bit on x86) from the very input the backend saw, independently of any
    backend, and rounds the result to float64.

Error measure
    ``Truth.error()`` is the largest ``|got - truth| / scale`` over the result,
    with ``scale = max(|truth|, M, floor)``: ``M`` is the magnitude of the terms
    the value is a difference of, and ``floor`` the larger of the dtype's
    smallest normal number (below it only absolute precision exists) and
    ``tiny / eps`` of the compute dtype, so that a result flushed to zero
    below the smallest normal costs at most one ulp (TensorFlow runs with
    flush-to-zero: its float32 softmax of a row of 128256 classes returns 0
    where the truth is 1e-40). Relative error alone is
    meaningless for a value near 0: a float32 loss of 1e-20 computed as 0 is the
    best float32 can do, yet reads as 100% error. Nor is "a few ulp of the row's
    log-sum-exp" floor enough: ``loss = lse - x[label]`` is a difference, so
    even a correctly rounded computation is off by about ``eps * |lse|``, which
    reads as an error near 1 for a loss of a few ulp. And ``lse = m + log(s)``
    with ``s = sum(exp(x - m)) >= 1`` rounded to a relative ``eps``, so
    ``log(s)`` is off by about ``eps`` in absolute terms even where ``lse`` is
    near 0 (float64 ``logits = [0, -40]``: the loss is 4e-18 and every backend,
    TensorFlow included, returns 0). With ``L = max(|lse|, 1)``:

    * sparse loss ``lse - x_l``: ``M = max(L, |x_l|)``; log_softmax
      ``x_j - lse``: ``M = max(L, |x_j|)``; dense loss
      ``sum z_j (lse - x_j)``: ``M = sum |z_j| max(L, |x_j|)``;
    * softmax ``p = exp(x - lse)``: ``M = p * max(1, |x - lse|)``, since the
      exponential turns the argument's rounding into relative error;
    * gradient ``p - z``: ``M = max(M_softmax, |z|)``;
    * sigmoid loss ``max(x, 0) - x*z + log1p(exp(-|x|))``: ``M = max(|x|, |x*z|)``.

    A NaN where the truth is NaN counts as no error, and so does an infinity
    where the truth rounded to the result's dtype is that infinity (float16
    overflows at 65504); any other NaN or inf is an infinite error.

Errors in ulps
    ``Truth.ulps()`` is the same error in units in the last place of the
    result's dtype, ``|got - truth| / ulp(scale)``: for a value not formed by
    cancellation (``scale = |truth|``) its own ulp, as glibc's libm tests and
    CORE-MATH count; for a difference, the ulp of the terms it is formed from.

The backward-stable bound
    A tolerance says how accurate the project's kernels are (no worse than
    TensorFlow); it is not the limit of what is correct. Higham (*Accuracy and
    Stability of Numerical Algorithms*, 1.5-1.6): an algorithm is backward
    stable when its result is the exact result for inputs perturbed by a few
    unit roundoffs ``u``, and then its forward error is at most the result's
    condition number times that. ``Truth.stability()`` is the error over the
    bound ``BACKWARD_ROUNDOFFS * u * (S + |truth|) + floor``, ``u`` the logits'
    dtype's unit roundoff (float16's for float16 logits: the input is no more
    precise than that), ``|truth|`` the rounding of the result itself, and ``S``
    the first-order change of the value when every input ``x_i`` moves by
    ``|x_i|`` (the condition number times ``|truth|``). The logits enter a
    softmax twice, in ``x_j`` and in the log-sum-exp, which a stable algorithm
    computes separately (shifting by the max), so their perturbations are
    independent and their effects add: with ``A = sum_i p_i |x_i|``, the
    change of ``lse`` per unit relative change of every logit,

    * log_softmax ``x_j - lse``: ``S = |x_j| + A``; softmax: ``S = p_j (|x_j| + A)``;
    * sparse loss ``lse - x_l``: ``S = |x_l| + A``; dense loss: ``S = sum_j |z_j| (|x_j| + A + |log p_j|)``
      (the labels perturbed too);
    * gradient ``p - z``: ``S = p_j (|x_j| + A) + |z_j|``;
    * the sigmoid loss, the options and the probability forms: ``S = M``, the
      magnitude of their terms, as above.

    So ``exp(x - logsumexp(x))``, whose error in the largest probability of a
    float32 row near 3000 is an ulp of 3000 (``u |lse|``), is within the bound;
    a log_softmax off by 1e-4 relative is not, in float32 or float64.

Verdicts (``judge``)
    *pass* within the tolerance; *less accurate* beyond it but within the
    backward-stable bound (correct for the input's precision, less accurate
    than TensorFlow: ``xentbench verify`` names it and does not fail a plugin
    for it, but fails the project's own backends); *FAIL* beyond the bound.

Tolerances (``TOLERANCE``), relative errors in that measure, per logits dtype:

* float64: 1e-12, about 4500 ulp: sums of up to 10^5-10^6 exps accumulate
  rounding (sequential sums grow ~C ulp in the worst case); the extended
  precision truth is exact to far below that.
* float32: 2e-5, about 170 ulp: the same argument for float32 rows of up
  to 128256 classes.
* float16: 4e-3, about 4 ulp of float16: every backend computes float16 in
  float32 and rounds once at the end (half an ulp), so the error is that of
  the rounding plus the float32 computation.
* bfloat16 (``ml_dtypes.bfloat16``): 3e-2, about 4 ulp of bfloat16 (8
  significant bits, ulp ``2**-7``), by the same argument: computed in float32,
  rounded once at the end.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ml_dtypes
import numpy as np

import impls
from impls import _probability

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
#: The dtypes computed in float32 by every backend.
HALF = (np.dtype(np.float16), BFLOAT16)

TOLERANCE = {
    np.dtype(np.float16): 4e-3,
    BFLOAT16: 3e-2,
    np.dtype(np.float32): 2e-5,
    np.dtype(np.float64): 1e-12,
}

FUNCTIONS = impls.FUNCTIONS  # the seven functions every backend offers

#: The functions that take labels, and whether they are class indices.
SPARSE = {"sparse_softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits_and_grad"}
DENSE = {"softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_and_grad"}
WITH_AXIS = DENSE | {"softmax", "log_softmax"}
#: The probability forms (``impls.PROBABILITY_FUNCTIONS``): their second argument is probabilities.
PROBABILITY = set(impls.PROBABILITY_FUNCTIONS)


#: The constant of the backward-stable bound: the unit roundoffs by which a stable algorithm
#: may perturb each input (shift by the max, exponentials, their sum, a log and a subtraction
#: each round once; a few more for the sum's blocks).
BACKWARD_ROUNDOFFS = 8


def tolerance(dtype) -> float:
    return TOLERANCE[np.dtype(dtype)]


def unit_roundoff(dtype) -> float:
    """Half an ulp of 1 in ``dtype``: the relative error of one correctly rounded operation."""
    return float(ml_dtypes.finfo(dtype).eps) / 2


def format_ulps(ulps: float) -> str:
    """An error in ulps in at most 5 characters: 0.5, 12, 1690, 9e+11."""
    return "inf" if ulps == np.inf else f"{ulps:.2g}" if ulps < 10 else f"{ulps:.0f}" if ulps < 1e4 else f"{ulps:.0e}"


def ulp(scale, dtype) -> np.ndarray:
    """The spacing of ``dtype``'s numbers at ``scale`` (>= 0); subnormal spacing below the smallest normal."""
    info = ml_dtypes.finfo(dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.maximum(np.floor(np.log2(np.asarray(scale, np.float64))), info.minexp)
    return np.ldexp(1.0, (np.nan_to_num(exponent, posinf=info.maxexp) - info.nmant).astype(int))


def _rows(logits, axis):
    """Rows in extended precision with the class axis last, shifted by their max.

    Returns ``(x, d, log_s, lse)`` with ``d = x - m`` (exact), ``s = sum(exp(d))``
    and ``lse = m + log(s)``. Everything downstream is computed from ``d`` and
    ``log(s)``, not from ``x - lse``: where ``|m|`` is huge (2**63, say) ``lse``
    rounds to a multiple of ``m``'s ulp and ``x - lse`` would lose ``log(s)``
    entirely, even in extended precision.
    """
    x = np.moveaxis(np.asarray(logits), axis, -1).astype(np.longdouble)
    m = x.max(axis=-1, keepdims=True)
    finite_m = np.where(np.isfinite(m), m, 0)  # a row of -inf: exp(-inf) = 0, lse = -inf
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = x - finite_m
        log_s = np.log(np.exp(d).sum(axis=-1, keepdims=True))
    return x, d, log_s, finite_m + log_s


@dataclass(frozen=True)
class Truth:
    """The extended-precision result of one call and the scale of each value."""

    function: str
    values: tuple  # (result,) or (loss, grad), float64, in the public layout
    scales: tuple  # same shapes: max(|truth|, M, tiny) of the module docstring
    bounds: tuple  # same shapes: the backward-stable bound, an absolute error
    dtype: np.dtype  # the logits' dtype, which every backend returns

    def error(self, got, reference=None) -> float:
        """Largest relative error of ``got`` against the truth or against ``reference``.

        ``reference`` (another backend's result, e.g. TensorFlow's) replaces
        the truth's values; the scales stay the truth's. For the fused
        functions the larger of the loss and gradient errors is returned.
        """
        return _worst(self.errors(got, reference))

    def errors(self, got, reference=None) -> tuple:
        """The relative error of each value of ``got``, one array per result (see ``error``)."""
        return self._errors(self._deviations(got, reference))

    def ulps(self, got, reference=None) -> float:
        """The largest error in ulps of the result's dtype at each value's scale (module docstring)."""
        return self._ulps(self._deviations(got, reference))

    def stability(self, got) -> float:
        """The largest error over the backward-stable bound: at most 1 for a backward-stable algorithm."""
        return self._stability(self._deviations(got))

    def _errors(self, deviations) -> tuple:
        return tuple(_ratio(d, s) for d, s in zip(deviations, self.scales))

    def _ulps(self, deviations) -> float:
        return _worst(_ratio(d, u) for d, u in zip(deviations, self._units))

    def _stability(self, deviations) -> float:
        return _worst(_ratio(d, b) for d, b in zip(deviations, self.bounds))

    @functools.cached_property
    def _units(self) -> tuple:
        """The ulp of the result's dtype at each value's scale."""
        return tuple(ulp(s, self.dtype) for s in self.scales)

    def _deviations(self, got, reference=None) -> tuple:
        got = got if isinstance(got, tuple) else (got,)
        want = self.values if reference is None else (
            reference if isinstance(reference, tuple) else (reference,))
        return tuple(_deviation(g, w, self.dtype) for g, w in zip(got, want))


#: The verdicts of ``judge``, from best to worst.
VERDICTS = ("pass", "less accurate", "FAIL")


@dataclass(frozen=True)
class Verdict:
    """How one result compares with the truth: the module docstring's verdict and its errors."""

    status: str  # one of VERDICTS
    error: float  # relative, in the tolerance's measure
    ulps: float
    stability: float  # the error over the backward-stable bound


#: How much more than TensorFlow's error on the same inputs a result may err and still be no worse
#: than TensorFlow (``judge``'s ``yardstick``): one more rounding of each value.
YARDSTICK_FACTOR = 2.0


def judge(t: Truth, got, yardstick: Verdict | None = None) -> Verdict:
    """*pass* within the tolerance (``LINEAR_TOLERANCE``'s for the fused linear + cross-entropy),
    *less accurate* within the backward-stable bound, else *FAIL*.

    ``yardstick``: the reference's verdict on the same inputs (``xentbench verify`` gives
    TensorFlow's). Where the reference is backward stable yet beyond the tolerance (the logits
    of the fused functions, rounded by their matrix product, carry an error of their magnitude
    times ``u`` into every implementation), a result within ``YARDSTICK_FACTOR`` times its error
    passes: the tolerance stands for the reference's accuracy, and there it is the reference's."""
    deviations = t._deviations(got)  # once: the three measures share them
    error, stability = _worst(t._errors(deviations)), t._stability(deviations)
    limit = (LINEAR_TOLERANCE if t.function in impls.LINEAR_FUNCTIONS else TOLERANCE)[np.dtype(t.dtype)]
    if yardstick is not None and yardstick.stability <= 1:
        limit = max(limit, YARDSTICK_FACTOR * yardstick.error)
    status = VERDICTS[0] if error <= limit else VERDICTS[1] if stability <= 1 else VERDICTS[2]
    return Verdict(status, error, t._ulps(deviations), stability)


def truth(function: str, labels, logits, axis: int = -1, options: dict | None = None) -> Truth:
    """``function`` computed in extended precision from the inputs a backend saw.

    ``options``: the keyword options of the call (``impls._options``), as given
    to ``impls``; their truth is ``_options_truth``'s.
    """
    dtype = np.asarray(logits).dtype
    compute = ml_dtypes.finfo(np.float32 if dtype in HALF else dtype)
    tiny = max(float(ml_dtypes.finfo(dtype).tiny), float(compute.tiny / compute.eps))
    if options and function != "sigmoid_cross_entropy_with_logits":
        return _options_truth(function, labels, logits, axis, options, dtype, tiny)
    if function in PROBABILITY:
        return _probability_truth(function, labels, logits, axis, dtype, tiny)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if function == "sigmoid_cross_entropy_with_logits":
            x = np.asarray(logits).astype(np.longdouble)
            z = np.asarray(labels).astype(np.longdouble)
            eps = (options or {}).get("label_smoothing", 0)
            z = z * (1 - np.longdouble(eps)) + np.longdouble(eps) / 2
            pos_weight = np.asarray((options or {}).get("pos_weight", 1)).astype(np.longdouble)
            # -w z log(s) - (1 - z) log(1 - s) rearranged, the linear term on the side where it
            # meets no infinite log1p term: +inf at x = -inf for w z > 0 (not inf - inf). The
            # log1p term's weight is 1 + (w - 1) z, not 1 + w z - z, which cancels to 0 for a
            # label of 1e30 (the loss of logit 0 is log 2 whatever the label)
            wz = pos_weight * z
            loss = np.where(x < 0, -wz * x, (1 - z) * x) + (1 + (pos_weight - 1) * z) * np.log1p(np.exp(-np.abs(x)))
            scale = np.maximum(np.abs(x), np.abs(x * z)) * np.maximum(pos_weight, 1)
            return _truth(function, dtype, tiny, (loss, scale, scale))
        if function in SPARSE:
            axis = -1
        x, d, log_s, lse = _rows(logits, axis)
        log_scale = np.maximum(np.abs(x), np.fmax(np.abs(lse), 1))  # M of x - lse, per element
        logp = d - log_s
        probs = np.exp(logp)
        prob_scale = probs * np.maximum(1, np.abs(logp))
        # S of x_j - lse (module docstring): A = sum p_i |x_i|, 0-probability terms left out (-inf logits)
        log_sensitivity = np.abs(x) + np.sum(np.where(probs > 0, probs * np.abs(x), 0), axis=-1, keepdims=True)
        if function in SPARSE:
            idx = np.asarray(labels)[..., None]
            loss = log_s[..., 0] - np.take_along_axis(d, idx, axis=-1)[..., 0]  # lse - x_l
            loss_scale = np.take_along_axis(log_scale, idx, axis=-1)[..., 0]
            loss_sensitivity = np.take_along_axis(log_sensitivity, idx, axis=-1)[..., 0]
            z = np.zeros_like(x)
            np.put_along_axis(z, idx, 1, axis=-1)
        elif function in DENSE:
            z = np.moveaxis(np.broadcast_to(np.asarray(labels), np.shape(logits)), axis, -1)
            z = z.astype(np.longdouble)
            loss = np.sum(z * -logp, axis=-1)
            loss_scale = np.sum(np.abs(z) * log_scale, axis=-1)
            loss_sensitivity = np.sum(np.abs(z) * (log_sensitivity + np.abs(logp)), axis=-1)

    def full(a):  # rows x classes back to the public layout
        return np.moveaxis(a, -1, axis)

    if function == "softmax":
        return _truth(function, dtype, tiny, (full(probs), full(prob_scale), full(probs * log_sensitivity)))
    if function == "log_softmax":
        return _truth(function, dtype, tiny, (full(logp), full(log_scale), full(log_sensitivity)))
    parts = [(loss, loss_scale, loss_sensitivity)]
    if function.endswith("_and_grad"):
        parts.append((full(probs - z), full(np.maximum(prob_scale, np.abs(z))),
                      full(probs * log_sensitivity + np.abs(z))))
    return _truth(function, dtype, tiny, *parts)


def _truth(function, dtype, tiny, *parts) -> Truth:
    """The ``Truth`` of extended-precision ``(value, M, S)`` parts (module docstring)."""
    roundoffs = BACKWARD_ROUNDOFFS * unit_roundoff(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        return Truth(function, tuple(_f64(v) for v, _, _ in parts),
                     tuple(_scale(v, m, tiny) for v, m, _ in parts),
                     tuple(_f64(roundoffs * (np.abs(_f64(s)) + np.abs(_f64(v))) + tiny) for v, _, s in parts),
                     dtype)


#: The fused linear + cross-entropy's tolerances, relative to each result's largest magnitude
#: (normwise, as issue 30 states them): float32 as the losses'; float64 1e-10, since the
#: gradients are products over D and N terms of a softmax over V classes, each rounding in
#: float64 with no extended-precision accumulator (BLAS); half precision as the losses', being
#: computed in float32 and rounded once.
LINEAR_TOLERANCE = {**TOLERANCE, np.dtype(np.float64): 1e-10}


def linear_truth(labels, hidden, weight, bias=None, options: dict | None = None) -> Truth:
    """``impls.linear_cross_entropy_and_grad`` in extended precision: ``(loss, grad_hidden,
    grad_weight[, grad_bias])``, from the logits ``hidden @ weight.T + bias`` (capped by
    ``softcap``) and the sparse loss's truth with the options (``_options_truth``).

    The three matrix products of float32 and half-precision inputs are float64 products through
    the BLAS: each product of two float32 numbers is exact in float64, and a sum of D of them is
    within ``D 2**-53`` of its largest term, 1e-7 of a float32 ulp at D = 1024; those of float64
    inputs in extended precision (NumPy's ``longdouble`` loops, 100x slower).

    Scales, normwise (issue 30: relative to the largest magnitude), of the magnitudes the results
    are formed from, as the module docstring's ``M``: with ``|G|`` the sparse gradient's scale
    (``|p|`` and ``|w q|``, not their difference), ``|G| |W|``, ``|G|^T |h|`` and ``sum |G|``; the
    loss's, the sparse loss's. So a gradient that cancels (a row whose label holds all of ``p``)
    is judged against what it cancels from, as the sparse loss's gradient is.

    The backward-stable bound: ``h`` and ``W`` perturbed by ``u`` each (``u`` the module's
    ``BACKWARD_ROUNDOFFS`` unit roundoffs) move a row's logits by at most
    ``e = u D max_c (|h| |W|^T + |b|)``, its loss by ``e sum_c |G|`` and its gradient by
    ``2 e |G|`` (the softmax's Jacobian ``diag(p) - p p^T``), added to the sparse loss's own bound;
    then each product rounds within ``u K`` of its magnitude, ``K`` its inner dimension (Higham 3.5).
    """
    options = dict(options or {})
    softcap = options.pop("softcap", None)
    hidden, weight = np.asarray(hidden), np.asarray(weight)
    dtype = hidden.dtype
    compute = ml_dtypes.finfo(np.float32 if dtype in HALF else dtype)
    tiny = max(float(ml_dtypes.finfo(dtype).tiny), float(compute.tiny / compute.eps))
    ld = np.longdouble if dtype == np.float64 else np.float64
    h, w = hidden.reshape(-1, hidden.shape[-1]).astype(ld), weight.astype(ld)
    x = h @ w.T + (0 if bias is None else np.asarray(bias).astype(ld))
    y = None if softcap is None else x / ld(softcap)
    if y is not None:
        x = ld(softcap) * np.tanh(y)
    sparse = _options_truth("sparse_softmax_cross_entropy_with_logits_and_grad", np.asarray(labels).reshape(-1),
                            x, -1, options, dtype, tiny)
    (loss, g), (loss_scale, g_scale), (loss_bound, g_bound) = sparse.values, sparse.scales, sparse.bounds
    if y is not None:  # sech^2: 1 - tanh^2 cancels
        sech2 = 1 / np.square(np.cosh(_f64(y)))
        g, g_scale, g_bound = g.astype(ld) * sech2.astype(ld), g_scale * sech2, g_bound * sech2
    values = [loss.reshape(np.shape(labels)) if loss.ndim else loss, _f64((g.astype(ld) @ w).reshape(hidden.shape)),
              _f64(g.astype(ld).T @ h)] + ([] if bias is None else [_f64(g.sum(axis=0))])
    h_abs, w_abs = np.abs(_f64(h)), np.abs(_f64(w))
    unit = BACKWARD_ROUNDOFFS * unit_roundoff(dtype)
    shift = unit * hidden.shape[-1] * (h_abs @ w_abs.T + (0 if bias is None else np.abs(_f64(bias)))).max(
        axis=-1, initial=0.0)[:, None]  # e of each row
    moved = shift[:, 0] * g_scale.sum(axis=-1)
    g_moved = 2 * shift * g_scale + g_bound
    batch, vocabulary = g_scale.shape
    magnitudes = [loss_scale, g_scale @ w_abs, g_scale.T @ h_abs] + ([] if bias is None else [g_scale.sum(axis=0)])
    moves = [(moved.sum() if loss.ndim == 0 else moved) + loss_bound, g_moved @ w_abs, g_moved.T @ h_abs,
             g_moved.sum(axis=0)]
    inner = [0, vocabulary, batch, batch]
    scales = tuple(np.full(v.shape, max(float(np.max(m, initial=0.0)), tiny)) for v, m in zip(values, magnitudes))
    bounds = tuple(np.full(v.shape, float(np.max(d, initial=0.0)) + unit * k * float(np.max(s, initial=0.0)))
                   for v, d, k, s in zip(values, moves, inner, scales))
    return Truth("linear_cross_entropy_and_grad", tuple(values), scales, bounds, dtype)


def _options_truth(function, labels, logits, axis, options, dtype, tiny) -> Truth:
    """A softmax loss with options, from their definitions (``impls._options``), in extended precision.

    Each row's target is ``q = (1 - eps) z + eps / C`` (``z`` one-hot for
    sparse labels), its loss ``-sum_c w_c q_c log p_c + lam lse**2`` (a
    sparse row's sum taken over the terms of ``q``, so that a ``-inf`` logit
    where ``q`` is 0 adds nothing), 0 for a row whose label is
    ``ignore_index``; its gradient ``(sum_c w_c q_c + 2 lam lse) p - w q``, 0
    for an ignored row. ``'sum'`` adds the rows; ``'mean'`` divides that by
    the rows not ignored, or for sparse labels with weights by ``sum w[y]``
    over them (NaN, gradient 0, when that is 0). Scales: the dense loss's for
    the weighted target ``w q``, plus ``2 lam L**2`` (``L = max(|lse|, |m|, 1)``)
    for the z-loss; a sum's scale is the sum of its rows'.
    """
    ld = np.longdouble
    eps = ld(options.get("label_smoothing", 0))
    lam = ld(options.get("z_loss", 0))
    ignore = options.get("ignore_index")
    reduction = options.get("reduction", "none")
    sparse = function in SPARSE
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x, d, log_s, lse = _rows(logits, -1 if sparse else axis)
        classes = x.shape[-1]
        w = np.asarray(options.get("class_weights", np.ones(classes))).astype(ld)
        logp = d - log_s
        probs = np.exp(logp)
        m = lse - log_s  # the row's max where finite, else 0
        L = np.maximum(np.abs(lse), np.maximum(np.abs(m), 1))[..., 0]
        log_scale = np.maximum(np.abs(x), np.fmax(np.abs(lse), 1))
        if sparse:
            y = np.asarray(labels)
            keep = np.ones(y.shape, bool) if ignore is None else y != ignore
            y = np.where(keep, y, 0)[..., None]
            z = np.zeros_like(x)
            np.put_along_axis(z, y, 1, axis=-1)
            wq = ((1 - eps) * z + eps / classes) * w
            w_y = np.take_along_axis(w * np.ones_like(x), y, axis=-1)[..., 0]
            loss = (1 - eps) * w_y * -np.take_along_axis(logp, y, axis=-1)[..., 0]
            if eps:
                loss = loss + eps / classes * np.sum(w * -logp, axis=-1)
            denominator = np.sum(np.where(keep, w_y, 0)) if "class_weights" in options else np.sum(keep)
        else:
            z = np.moveaxis(np.broadcast_to(np.asarray(labels), np.shape(logits)), axis, -1).astype(ld)
            keep = np.ones(x.shape[:-1], bool)
            wq = ((1 - eps) * z + eps / classes) * w
            loss = np.sum(wq * -logp, axis=-1)
            denominator = np.sum(keep)
        loss = loss + lam * lse[..., 0] ** 2
        loss_scale = np.sum(np.abs(wq) * log_scale, axis=-1) + 2 * lam * L * L
        coefficient = np.sum(wq, axis=-1) + 2 * lam * lse[..., 0]
        grad = coefficient[..., None] * probs - wq
        grad_scale = np.maximum((np.abs(coefficient) + 2 * lam * L)[..., None] * probs * np.maximum(1, np.abs(logp)),
                                np.abs(wq))
        loss, loss_scale = np.where(keep, loss, 0), np.where(keep, loss_scale, 0)
        grad, grad_scale = np.where(keep[..., None], grad, 0), np.where(keep[..., None], grad_scale, 0)
        if reduction != "none":
            scale = ld(1)
            if reduction == "mean":
                scale = ld(1) / denominator if denominator > 0 else ld(0)
            loss = np.sum(loss) * scale if denominator > 0 or reduction == "sum" else ld(np.nan)
            loss_scale = np.sum(loss_scale) * scale
            grad, grad_scale = grad * scale, grad_scale * scale
    grad, grad_scale = (np.moveaxis(a, -1, -1 if sparse else axis) for a in (grad, grad_scale))
    parts = [(loss, loss_scale, loss_scale)]
    if function.endswith("_and_grad"):
        parts.append((grad, grad_scale, grad_scale))
    return _truth(function, dtype, tiny, *parts)


def _probability_truth(function, labels, probs, axis, dtype, tiny) -> Truth:
    """A probability form (``impls._probability``) from its definition, in extended precision.

    The probabilities (rescaled to sum to 1 by row, for the categorical form)
    are clipped to ``[EPSILON, 1 - EPSILON]`` computed in the compute dtype
    (``impls._probability.EPSILON``, as Keras), then ``-(z log q + (1 - z) log(1 - q))`` elementwise, or
    ``-sum z log q`` by row. Scale: ``|z| max(|log q|, 1)`` per term, since the
    rescaling and ``1 - q`` round ``q`` to a relative ``eps``, which is an
    absolute ``eps`` in ``log q``.
    """
    ld = np.longdouble
    compute = np.dtype(np.float32 if dtype in HALF else dtype).type
    low, high = ld(compute(_probability.EPSILON)), ld(compute(1) - compute(_probability.EPSILON))
    with np.errstate(invalid="ignore", divide="ignore"):
        if function == "binary_cross_entropy":
            q = np.clip(np.asarray(probs).astype(ld), low, high)
            z = np.asarray(labels).astype(ld)
            loss = -(z * np.log(q) + (1 - z) * np.log1p(-q))
            scale = np.abs(z) * np.fmax(np.abs(np.log(q)), 1) + np.abs(1 - z) * np.fmax(np.abs(np.log1p(-q)), 1)
        else:
            p = np.moveaxis(np.asarray(probs), axis, -1).astype(ld)
            z = np.moveaxis(np.broadcast_to(np.asarray(labels), np.shape(probs)), axis, -1).astype(ld)
            log_q = np.log(np.clip(p / p.sum(axis=-1, keepdims=True), low, high))
            loss = -np.sum(z * log_q, axis=-1)
            scale = np.sum(np.abs(z) * np.fmax(np.abs(log_q), 1), axis=-1)
    return _truth(function, dtype, tiny, (loss, scale, scale))


def _f64(a):
    return np.asarray(a).astype(np.float64)


def _scale(value, magnitude, tiny):
    with np.errstate(invalid="ignore"):
        return np.fmax(np.fmax(np.abs(_f64(value)), _f64(magnitude)), tiny)


def _worst(errors) -> float:
    return max((float(e.max()) if e.size else 0.0 for e in errors), default=0.0)


def _ratio(deviation, unit) -> np.ndarray:
    """``deviation / unit``, 0 where there is no deviation, inf where the ratio is undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = deviation / unit
    return np.where(deviation == 0, 0.0, np.where(np.isnan(r), np.inf, r))


def _deviation(got, want, dtype) -> np.ndarray:
    """``|got - want|``: 0 where both are the same NaN or infinity ``dtype`` rounds the truth to,
    inf for any other NaN or inf (module docstring)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise ValueError(f"result of shape {got.shape}, expected {want.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = want.astype(dtype).astype(np.float64)  # what the dtype can hold: inf past its max
        same = (got == want) | (np.isinf(got) & (got == rounded)) | (np.isnan(got) & np.isnan(want))
        err = np.where(same, 0.0, np.abs(got - want))
    return np.where(np.isnan(err), np.inf, err)  # NaN or inf where the truth has neither
