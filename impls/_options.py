"""The loss options: checked once, here, and handed to every backend in one form.

The softmax losses (dense and sparse, and their ``*_and_grad``) take, keyword-only:

* ``label_smoothing=eps`` in ``[0, 1]``: the target of a row becomes
  ``q = (1 - eps) z + eps / C`` (sparse labels one-hot first), as Keras's
  ``CategoricalCrossentropy(label_smoothing=...)`` and PyTorch's ``label_smoothing``;
* ``ignore_index=k`` (sparse only): a row whose label is ``k`` has loss 0 and a
  gradient row of 0, and ``k`` is exempt from the range check (PyTorch's ``ignore_index``);
* ``class_weights=w`` of shape ``(C,)``, finite and ``>= 0``: the loss of a row
  is ``-sum_c w_c q_c log p_c``, which for a sparse label ``y`` without
  smoothing is ``w_y * CE`` (PyTorch's ``weight``);
* ``reduction``: ``'none'`` (a loss per row), ``'sum'`` or ``'mean'``; the mean
  divides the sum by the number of rows not ignored, or, with class weights and
  sparse labels, by ``sum(w[y])`` over them (PyTorch's ``reduction``). A dense
  mean divides by the number of rows (PyTorch's, for probability targets). A
  mean over no rows (all ignored, or weights summing to 0) is NaN, and its
  gradient 0;
* ``z_loss=lam >= 0``: adds ``lam * logsumexp(x)**2`` to each row's loss (PaLM's
  z-loss, as in Megatron and Liger-Kernel); not weighted by the class weights.

So a row ``r`` not ignored has, with ``lse = logsumexp(x_r)``,

.. math::
    loss_r = -\\sum_c w_c q_c \\log p_c + \\lambda\\, lse^2, \\qquad
    \\frac{\\partial loss_r}{\\partial x_c} = (W + 2 \\lambda\\, lse)\\, p_c - w_c q_c,
    \\quad W = \\sum_c w_c q_c,

and both are multiplied by ``Options.scale`` (``1 / denominator`` for
``'mean'``, else 1). The gradient is the exact gradient of the (reduced) loss;
only a call without options keeps TensorFlow's ``softmax - labels`` for dense
labels whatever they sum to (with rows summing to 1 the two are the same).

The sigmoid loss takes ``label_smoothing`` (labels become ``z (1 - eps) + eps / 2``,
Keras's ``BinaryCrossentropy``) and ``pos_weight`` (broadcast to the logits,
finite, ``>= 0``; PyTorch's ``binary_cross_entropy_with_logits``):
``loss = -pos_weight z log(s) - (1 - z) log(1 - s)``, ``s = sigmoid(x)``. At ``x = -inf``
it is ``+inf`` for ``pos_weight z > 0``, as without ``pos_weight``, on every backend but
``tensorflow``: ``tf.nn.weighted_cross_entropy_with_logits`` computes
``(1 - z) x + (1 + (pos_weight - 1) z) softplus(-x)``, which is ``inf - inf``, NaN, there.

Half precision and outputs: a call given any option keyword on float16 or
bfloat16 logits reaches the backend with the logits converted to float32
(``Backend._takes_for``; the numba kernels read half precision directly only
without options), and its results are rounded back (with the options at their
defaults, bit for bit the direct path's). ``out=`` (``loss_out=``, ``grad_out=``) works as
without options, except that with a reduction the loss is 0-d and so must its
output be: the backend writes the per-row losses into a buffer of its own, and
the front door the sum or mean into the output.

A call without options, or with every option at its default, reaches a
backend exactly as before (``options`` is None): the front door's methods take
the options as ``**options`` and look at them only when there are some, so the
default path costs nothing. Bad options get one ``TypeError`` or
``ValueError`` from here, before any backend runs; an unknown name (or
``ignore_index`` for dense labels) Python's own ``TypeError`` for an unexpected
keyword argument.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

REDUCTIONS = ("none", "sum", "mean")


class Options(NamedTuple):
    """The checked options of one softmax-loss call, in the form a backend receives.

    ``class_weights`` is a read-only ``(C,)`` array of the compute dtype or None;
    ``ignore_index`` an int (sparse labels equal to it are the ignored rows,
    which may lie outside ``[0, C)``) or None; ``scale`` multiplies every row's
    loss and gradient (``1 / denominator`` for ``'mean'``, 0 for a mean over no
    rows, else 1). ``reduction`` is the front door's business: a backend returns
    a loss per row (times ``scale``) and the gradient of their sum.
    """

    label_smoothing: float = 0.0
    ignore_index: int | None = None
    class_weights: np.ndarray | None = None
    z_loss: float = 0.0
    scale: float = 1.0
    reduction: str = "none"


class SigmoidOptions(NamedTuple):
    """The checked options of a sigmoid-loss call: ``pos_weight`` flat like the logits, or None."""

    label_smoothing: float = 0.0
    pos_weight: np.ndarray | None = None


def _number(value, name: str) -> float:
    """A real Python or NumPy number (not a bool) as a float; else ``TypeError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Expected {name} to be a real number, got {value!r}")
    return float(value)


def check_label_smoothing(eps) -> float:
    eps = _number(eps, "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"Expected label_smoothing in [0, 1], got {eps!r}")
    return eps


def check_z_loss(lam) -> float:
    lam = _number(lam, "z_loss")
    if not 0.0 <= lam < math.inf:
        raise ValueError(f"Expected z_loss to be finite and >= 0, got {lam!r}")
    return lam


def check_reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"Expected reduction to be one of 'none', 'sum' or 'mean', got {reduction!r}")
    return reduction


def check_ignore_index(k) -> int | None:
    if k is None:
        return None
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"Expected ignore_index to be an integer or None, got {k!r}")
    if not -2**63 <= int(k) < 2**63:
        raise ValueError(f"Expected ignore_index to fit in int64, got {k!r}")
    return int(k)


def _weights(w, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Real weights broadcast to ``shape``, as a read-only copy in ``dtype`` (the caller's
    array is never touched), finite there and ``>= 0``."""
    array = np.asarray(w)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"Expected real {name}, got {array.dtype}")
    copy = np.empty(shape, dtype)
    with np.errstate(over="ignore"):  # a weight beyond the dtype's range becomes inf, refused below
        np.copyto(copy, array if array.shape == shape else np.broadcast_to(array, shape), casting="unsafe")
    # min and max are NaN where any weight is (and NaN fails both comparisons): two reductions,
    # against four ufunc calls and two reductions for isfinite, < 0, all and any (14 us -> 6 us a call)
    if copy.size and not (np.minimum.reduce(copy, axis=None) >= 0 and np.maximum.reduce(copy, axis=None) < np.inf):
        raise ValueError(f"Expected {name} to be finite and >= 0 in {np.dtype(dtype).name}, got {array!r}")
    copy.setflags(write=False)
    return copy


def check_class_weights(w, num_classes: int, dtype: np.dtype) -> np.ndarray | None:
    if w is None:
        return None
    shape = np.shape(w)
    if shape != (num_classes,):
        raise ValueError(f"Expected class_weights of shape ({num_classes},) (one per class), got {shape}")
    return _weights(w, "class_weights", (num_classes,), dtype)


#: The options of the softmax losses; the dense ones take all but ``ignore_index``.
SOFTMAX_OPTION_NAMES = ("label_smoothing", "ignore_index", "class_weights", "reduction", "z_loss")
SIGMOID_OPTION_NAMES = ("label_smoothing", "pos_weight")


def _known(function: str, given: dict, names: tuple) -> None:
    """Python's own ``TypeError`` for a keyword ``function`` does not take."""
    for name in given:
        if name not in names:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")


def softmax_options(function: str, num_classes: int, dtype: np.dtype, sparse: bool, given: dict) -> Options | None:
    """The checked options ``given`` to ``function`` over ``num_classes`` classes, None if all are defaults.

    ``scale`` is left at 1: ``with_scale`` sets it once the labels are known.
    """
    _known(function, given, SOFTMAX_OPTION_NAMES if sparse else SOFTMAX_OPTION_NAMES[:1] + SOFTMAX_OPTION_NAMES[2:])
    options = Options(check_label_smoothing(given.get("label_smoothing", 0.0)),
                      check_ignore_index(given.get("ignore_index")),
                      check_class_weights(given.get("class_weights"), num_classes, dtype),
                      check_z_loss(given.get("z_loss", 0.0)), 1.0, check_reduction(given.get("reduction", "none")))
    if (options.label_smoothing == 0 and options.ignore_index is None and options.class_weights is None
            and options.z_loss == 0 and options.reduction == "none"):
        return None
    return options


def kept(labels: np.ndarray, options: Options) -> np.ndarray | None:
    """Whether each row of canonical sparse labels counts (its label is not ``ignore_index``), or None for all."""
    return None if options.ignore_index is None else labels != options.ignore_index


def with_scale(options: Options | None, labels: np.ndarray | None, rows: int):
    """``options`` with ``scale`` set for its reduction, and the denominator of a mean (else None).

    ``labels``: the canonical sparse labels, or None for dense labels (whose mean
    divides by ``rows``).
    """
    if options is None or options.reduction != "mean":
        return options, None
    if labels is None:
        denominator = float(rows)
    else:
        keep = kept(labels, options)
        counted = labels if keep is None else labels[keep]
        w = options.class_weights
        denominator = float(len(counted)) if w is None else float(np.sum(w[counted], dtype=np.float64))
    return options._replace(scale=1.0 / denominator if denominator > 0 else 0.0), denominator


def reduce(loss: np.ndarray, options: Options | None, denominator: float | None) -> np.ndarray:
    """The loss as the reduction asks: per row (as given), or a 0-d sum or mean of the logits' dtype.

    The backend already multiplied each row by ``1 / denominator`` for a mean; a
    mean over no rows (``denominator`` 0) is NaN.
    """
    if options is None or options.reduction == "none":
        return loss
    total = np.nan if denominator == 0 else np.add.reduce(loss, axis=None, dtype=np.float64)  # np.sum: 2 us more
    return np.array(total, dtype=loss.dtype)


def sigmoid_options(function: str, shape: tuple, dtype: np.dtype, given: dict) -> SigmoidOptions | None:
    """The checked options ``given`` to a sigmoid loss over logits of ``shape``, None if both are defaults.

    ``pos_weight`` broadcasts to the logits' shape and arrives flat in ``dtype``.
    """
    _known(function, given, SIGMOID_OPTION_NAMES)
    eps = check_label_smoothing(given.get("label_smoothing", 0.0))
    pos_weight = given.get("pos_weight")
    if pos_weight is not None:
        try:
            np.broadcast_shapes(np.shape(pos_weight), shape)
        except ValueError:
            raise ValueError(f"pos_weight of shape {np.shape(pos_weight)} does not broadcast to logits of "
                             f"shape {shape}") from None
        pos_weight = _weights(pos_weight, "pos_weight", shape, dtype).reshape(-1)
    if eps == 0.0 and pos_weight is None:
        return None
    return SigmoidOptions(eps, pos_weight)


# --------------------------------------------------------------------------- NumPy form

def softmax_loss(labels, logp, lse, options: Options, sparse: bool, probs=None):
    """Each row's loss (times ``scale``) from its log-probabilities ``logp`` and
    ``lse = logsumexp(x)``, in NumPy; with ``probs`` (``exp(logp)``) also the gradient
    of their sum: the options' math for the ``naive`` and ``numpy`` backends.

    Sparse: ``(1 - eps) w_y (-log p_y) + eps / C sum_c w_c (-log p_c)``;
    dense: ``-sum_c w_c q_c log p_c``; then ``+ lam lse**2``, times ``scale``,
    and 0 for ignored rows. The gradient is ``(W + 2 lam lse) p - w q``, ``W = sum w q``.
    """
    n, classes = logp.shape
    eps, w, lam, scale = options.label_smoothing, options.class_weights, options.z_loss, options.scale
    ones = np.ones(classes, logp.dtype) if w is None else w
    if sparse:
        keep = kept(labels, options)
        y = labels if keep is None else np.where(keep, labels, 0)
        rows = np.arange(n)
        w_y = ones[y]
        loss = (1 - eps) * w_y * -logp[rows, y]
        if eps:
            loss = loss + eps / classes * -(logp @ ones)
        total_weight = (1 - eps) * w_y + eps / classes * ones.sum()
    else:
        keep = None
        wq = ((1 - eps) * labels + eps / classes) * ones
        loss = -np.sum(wq * logp, axis=-1)
        total_weight = wq.sum(axis=-1)
    if lam:
        loss = loss + lam * lse * lse
    loss = loss * logp.dtype.type(scale)
    if keep is not None:
        loss = np.where(keep, loss, 0).astype(logp.dtype)
    if probs is None:
        return loss
    coefficient = total_weight + 2 * lam * lse if lam else total_weight
    if sparse:
        grad = coefficient[:, None] * probs - eps / classes * ones
        grad[rows, y] -= (1 - eps) * w_y
    else:
        grad = coefficient[:, None] * probs - wq
    grad = grad * logp.dtype.type(scale)
    if keep is not None:
        grad = np.where(keep[:, None], grad, 0).astype(logp.dtype)
    return loss, grad


def sigmoid_targets(labels, options: SigmoidOptions):
    """The smoothed labels ``z (1 - eps) + eps / 2`` and the weight of the positive
    term ``pos_weight`` (1 if none), in NumPy: for the ``naive`` and ``numpy`` backends."""
    eps = options.label_smoothing
    z = labels * (1 - eps) + 0.5 * eps if eps else labels
    return z, 1 if options.pos_weight is None else options.pos_weight
