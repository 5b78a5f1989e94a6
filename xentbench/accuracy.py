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


def tolerance(dtype) -> float:
    return TOLERANCE[np.dtype(dtype)]


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
    dtype: np.dtype  # the logits' dtype, which every backend returns

    def error(self, got, reference=None) -> float:
        """Largest relative error of ``got`` against the truth or against ``reference``.

        ``reference`` (another backend's result, e.g. TensorFlow's) replaces
        the truth's values; the scales stay the truth's. For the fused
        functions the larger of the loss and gradient errors is returned.
        """
        return max((float(e.max()) if e.size else 0.0 for e in self.errors(got, reference)), default=0.0)

    def errors(self, got, reference=None) -> tuple:
        """The relative error of each value of ``got``, one array per result (see ``error``)."""
        got = got if isinstance(got, tuple) else (got,)
        want = self.values if reference is None else (
            reference if isinstance(reference, tuple) else (reference,))
        return tuple(_relative(g, w, s, self.dtype) for g, w, s in zip(got, want, self.scales))


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
            # meets no infinite log1p term: +inf at x = -inf for w z > 0 (not inf - inf)
            wz = pos_weight * z
            loss = np.where(x < 0, -wz * x, (1 - z) * x) + (1 + wz - z) * np.log1p(np.exp(-np.abs(x)))
            scale = np.maximum(np.abs(x), np.abs(x * z)) * np.maximum(pos_weight, 1)
            return Truth(function, (_f64(loss),), (_scale(loss, scale, tiny),), dtype)
        if function in SPARSE:
            axis = -1
        x, d, log_s, lse = _rows(logits, axis)
        log_scale = np.maximum(np.abs(x), np.fmax(np.abs(lse), 1))  # M of x - lse, per element
        logp = d - log_s
        probs = np.exp(logp)
        prob_scale = probs * np.maximum(1, np.abs(logp))
        if function in SPARSE:
            idx = np.asarray(labels)[..., None]
            loss = log_s[..., 0] - np.take_along_axis(d, idx, axis=-1)[..., 0]  # lse - x_l
            loss_scale = np.take_along_axis(log_scale, idx, axis=-1)[..., 0]
            z = np.zeros_like(x)
            np.put_along_axis(z, idx, 1, axis=-1)
        elif function in DENSE:
            z = np.moveaxis(np.broadcast_to(np.asarray(labels), np.shape(logits)), axis, -1)
            z = z.astype(np.longdouble)
            loss = np.sum(z * -logp, axis=-1)
            loss_scale = np.sum(np.abs(z) * log_scale, axis=-1)

    def full(a):  # rows x classes back to the public layout
        return np.moveaxis(a, -1, axis)

    if function == "softmax":
        return Truth(function, (_f64(full(probs)),), (_scale(full(probs), full(prob_scale), tiny),), dtype)
    if function == "log_softmax":
        return Truth(function, (_f64(full(logp)),), (_scale(full(logp), full(log_scale), tiny),), dtype)
    values, scales = (_f64(loss),), (_scale(loss, loss_scale, tiny),)
    if function.endswith("_and_grad"):
        grad = probs - z
        values += (_f64(full(grad)),)
        scales += (_scale(full(grad), full(np.maximum(prob_scale, np.abs(z))), tiny),)
    return Truth(function, values, scales, dtype)


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
    values, scales = (_f64(loss),), (_scale(loss, loss_scale, tiny),)
    if function.endswith("_and_grad"):
        values += (_f64(grad),)
        scales += (_scale(grad, grad_scale, tiny),)
    return Truth(function, values, scales, dtype)


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
    return Truth(function, (_f64(loss),), (_scale(loss, scale, tiny),), dtype)


def _f64(a):
    return np.asarray(a).astype(np.float64)


def _scale(value, magnitude, tiny):
    with np.errstate(invalid="ignore"):
        return np.fmax(np.fmax(np.abs(_f64(value)), _f64(magnitude)), tiny)


def _relative(got, want, scale, dtype) -> np.ndarray:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise ValueError(f"result of shape {got.shape}, expected {want.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = want.astype(dtype).astype(np.float64)  # what the dtype can hold: inf past its max
        same = (got == want) | (np.isinf(got) & (got == rounded)) | (np.isnan(got) & np.isnan(want))
        err = np.abs(got - want) / scale
    err = np.where(same, 0.0, err)
    return np.where(np.isnan(err), np.inf, err)  # NaN or inf where the truth has neither
