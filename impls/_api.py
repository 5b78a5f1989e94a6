r"""The module-level functions of ``impls``: each checks its input at one backend's front door and runs it there.

Each is a plain ``def`` with the real signature (``help``, ``inspect.signature`` and an
IDE see every argument) that forwards to ``impls.get(backend).<function>``: the
registry's lookup and one call, no more, since the front door's fixed cost is
benchmarked. The parameters that several functions share are written once, in
``_SHARED``, and put into each docstring by ``_documented``, as SciPy's ``doccer`` does.
"""

from __future__ import annotations

import inspect

from ._registry import DEFAULT_BACKEND, get

#: The defaults of the loss options. An option is handed to the backend only when the caller
#: gave a value other than these very objects, so that a call without options takes the direct
#: path (``impls._options``: no options at all); a caller's own ``0.0`` is another object, and
#: is checked as before. The losses test the defaults inline before anything else: a helper's
#: call measured 0.25 us more on every call without options (7 us in all at 1x10).
_ZERO = 0.0
_NONE = "none"

_SHARED = {
    "logits": """\
logits : array_like of float16, bfloat16, float32 or float64, shape (..., C)
    Unnormalised log-probabilities, any rank >= 1; a 1-d array is one row.
    ``bfloat16`` is ``ml_dtypes.bfloat16``. Half precision is computed in
    float32 and the results rounded back to it.""",
    "axis": """\
axis : int, default -1
    The class axis; the results are the same as with it moved last.""",
    "dense_labels": """\
labels : array_like of float, broadcastable to ``logits.shape``
    A distribution over the classes of each row (soft labels allowed; a row
    need not sum to 1).""",
    "sparse_labels": """\
labels : array_like of int, shape ``logits.shape[:-1]``
    Class indices in ``[0, C)`` (or equal to ``ignore_index``), of any integer
    dtype; a 0-d label with 1-d logits gives a 0-d loss, as in ``tf.nn``.""",
    "out": """\
out : ndarray, optional
    Where to write the result: exactly its shape and the logits' dtype,
    C-contiguous, writable, and sharing no memory with an input (NumPy's
    convention). It is returned.""",
    "fused_out": """\
loss_out, grad_out : ndarray, optional
    Where to write the loss and the gradient, as ``out`` of the loss
    functions (with a ``reduction``, ``loss_out`` is 0-d).""",
    "options": """\
label_smoothing : float in [0, 1], default 0.0
    The targets become ``(1 - eps) * labels + eps / C`` (sparse labels
    one-hot first), as Keras and PyTorch smooth them.
class_weights : array_like of shape (C,), optional
    Finite weights ``>= 0``: a row's loss is ``-sum_c w_c q_c log p_c``
    (``w[y] * CE`` for a sparse label without smoothing).
reduction : {'none', 'sum', 'mean'}, default 'none'
    ``'none'`` gives a loss per row; ``'sum'`` and ``'mean'`` a 0-d loss. The
    mean divides by the rows not ignored, or with weights and sparse labels
    by ``sum(w[y])`` over them, as PyTorch does.
z_loss : float >= 0, default 0.0
    Adds ``z_loss * logsumexp(x)**2`` to each row's loss (PaLM's z-loss).""",
    "ignore_index": """\
ignore_index : int, optional
    Rows whose label is this value have loss 0 and gradient 0, and the value
    is exempt from the range check (PyTorch's ``ignore_index``).""",
    "linear": """\
labels : array_like of int, shape ``hidden.shape[:-1]``
    Class indices in ``[0, V)`` (or equal to ``ignore_index``).
hidden : array_like of float16, bfloat16, float32 or float64, shape (..., D)
    The hidden states.
weight : array_like of hidden's dtype, shape (V, D)
    The layer's weight, in ``nn.Linear``'s layout.
bias : array_like of hidden's dtype, shape (V,), optional
    The layer's bias.
label_smoothing, class_weights, reduction, z_loss, ignore_index
    As for :func:`sparse_softmax_cross_entropy_with_logits`.
softcap : float > 0, optional
    Caps the logits to ``softcap * tanh(logits / softcap)``.""",
    "dlogits": """\
dlogits : ndarray
    The gradient, of the logits' shape and dtype.""",
    "backend": """\
backend : str, default 'numba'
    The implementation: a name of ``impls.names()`` or an importable module
    path (``"mypkg.myloss"``).""",
    "raises": """\
Raises
------
TypeError
    Logits of another dtype (integers included: cast them first), labels of
    the wrong kind (non-integer sparse labels, non-real dense ones), an
    option of the wrong type, or an output of another dtype.
ValueError
    Scalar logits, an ``axis`` out of range, zero classes, shapes that do not
    match, a sparse label outside ``[0, C)``, an option out of its range, or
    an output of another shape, strided, read-only or overlapping an input.
impls.BackendUnavailable
    The backend cannot be imported here (the message says why).
impls.NotImplementedByBackend
    A plugin backend that lacks this function, this dtype or the options.""",
}


def _documented(function):
    """``function`` with the ``%(name)s`` slots of its docstring filled from ``_SHARED``."""
    function.__doc__ = inspect.cleandoc(function.__doc__) % _SHARED
    return function


def _given(*options) -> dict:
    """``{name: value}`` of the ``(name, value, default)`` whose value is not the default object itself."""
    return {name: value for name, value, default in options if value is not default}


def _options(label_smoothing, ignore_index, class_weights, reduction, z_loss) -> dict:
    """The softmax-loss options the caller gave, as the backend's ``**options`` (see ``_ZERO``)."""
    return _given(("label_smoothing", label_smoothing, _ZERO), ("ignore_index", ignore_index, None),
                  ("class_weights", class_weights, None), ("reduction", reduction, _NONE), ("z_loss", z_loss, _ZERO))


@_documented
def softmax(logits, axis=-1, *, out=None, backend=DEFAULT_BACKEND):
    r"""Softmax: each row of logits made into probabilities.

    .. math:: p_i = \frac{e^{x_i}}{\sum_j e^{x_j}}

    computed as :math:`e^{x_i - m} / \sum_j e^{x_j - m}`, :math:`m = \max_j x_j`. A NaN or
    ``+inf`` logit makes its row NaN; a ``-inf`` logit has probability 0.

    Parameters
    ----------
    %(logits)s
    %(axis)s
    %(out)s
    %(backend)s

    Returns
    -------
    ndarray
        The probabilities, of the logits' shape and dtype.

    %(raises)s

    See Also
    --------
    log_softmax : the same in log space.

    Examples
    --------
    >>> import impls
    >>> impls.softmax([-1.0, 0.0, 3.0, 5.0])
    array([0.0021657 , 0.00588697, 0.11824302, 0.87370431])
    """
    return get(backend).softmax(logits, axis, out=out)


@_documented
def log_softmax(logits, axis=-1, *, out=None, backend=DEFAULT_BACKEND):
    r"""Log-softmax: the log-probabilities of each row of logits.

    .. math:: \log p_i = x_i - \log \sum_j e^{x_j}

    with the log-sum-exp shifted by the row's maximum.

    Parameters
    ----------
    %(logits)s
    %(axis)s
    %(out)s
    %(backend)s

    Returns
    -------
    ndarray
        The log-probabilities, of the logits' shape and dtype.

    %(raises)s

    See Also
    --------
    softmax : the probabilities.

    Examples
    --------
    >>> import numpy as np, impls
    >>> impls.log_softmax(np.array([1.0, 2.0, 3.0], np.float32))
    array([-2.407606  , -1.407606  , -0.40760598], dtype=float32)
    """
    return get(backend).log_softmax(logits, axis, out=out)


@_documented
def softmax_cross_entropy_with_logits(labels, logits, axis=-1, *, out=None, label_smoothing=_ZERO,
                                      class_weights=None, reduction=_NONE, z_loss=_ZERO,
                                      backend=DEFAULT_BACKEND):
    r"""Softmax cross-entropy with dense (soft) labels, as ``tf.nn.softmax_cross_entropy_with_logits``.

    For each row, with :math:`q` the labels (after smoothing) and :math:`w` the class
    weights (1 by default):

    .. math:: \ell = -\sum_c w_c q_c \log \operatorname{softmax}(x)_c + \lambda \left(\log \sum_c e^{x_c}\right)^2

    Parameters
    ----------
    %(dense_labels)s
    %(logits)s
    %(axis)s
    %(out)s
    %(options)s
    %(backend)s

    Returns
    -------
    ndarray
        The loss of each row: the logits' shape without ``axis``, the logits'
        dtype; 0-d with a ``reduction``.

    %(raises)s

    See Also
    --------
    sparse_softmax_cross_entropy_with_logits : integer labels.
    softmax_cross_entropy_with_logits_and_grad : the loss and its gradient in one pass.

    Examples
    --------
    >>> import numpy as np, impls
    >>> impls.softmax_cross_entropy_with_logits(
    ...     labels=[[1, 0, 0], [0, 0.8, 0.2]], logits=np.array([[4., 2, 1], [0, 5, 1]], np.float32))
    array([0.16984601, 0.8247449 ], dtype=float32)
    """
    if label_smoothing is _ZERO and class_weights is None and reduction is _NONE and z_loss is _ZERO:
        return get(backend).softmax_cross_entropy_with_logits(labels, logits, axis, out=out)
    options = _options(label_smoothing, None, class_weights, reduction, z_loss)
    return get(backend).softmax_cross_entropy_with_logits(labels, logits, axis, out=out, **options)


@_documented
def sparse_softmax_cross_entropy_with_logits(labels, logits, *, out=None, label_smoothing=_ZERO, ignore_index=None,
                                             class_weights=None, reduction=_NONE, z_loss=_ZERO,
                                             backend=DEFAULT_BACKEND):
    r"""Softmax cross-entropy with integer labels, as ``tf.nn.sparse_softmax_cross_entropy_with_logits``.

    For a row of logits :math:`x` over the last axis and its label :math:`y`:

    .. math:: \ell = \log \sum_j e^{x_j} - x_y

    with the options as in :func:`softmax_cross_entropy_with_logits` (the label one-hot).

    Parameters
    ----------
    %(sparse_labels)s
    %(logits)s
    %(out)s
    %(options)s
    %(ignore_index)s
    %(backend)s

    Returns
    -------
    ndarray
        The loss of each row, of the labels' shape and the logits' dtype; 0-d
        with a ``reduction``.

    %(raises)s

    See Also
    --------
    softmax_cross_entropy_with_logits : dense labels.
    sparse_softmax_cross_entropy_with_logits_and_grad : the loss and its gradient in one pass.
    linear_cross_entropy : the same loss of ``hidden @ weight.T + bias``, without the logits.

    Examples
    --------
    >>> import numpy as np, impls
    >>> x = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    >>> impls.sparse_softmax_cross_entropy_with_logits([0, 1, 2], x)
    array([0.2413113 , 0.16984602, 1.09861229])
    >>> impls.sparse_softmax_cross_entropy_with_logits([0, 1, -100], x, ignore_index=-100, reduction="mean")
    array(0.20557866)
    """
    if (label_smoothing is _ZERO and ignore_index is None and class_weights is None and reduction is _NONE
            and z_loss is _ZERO):
        return get(backend).sparse_softmax_cross_entropy_with_logits(labels, logits, out=out)
    options = _options(label_smoothing, ignore_index, class_weights, reduction, z_loss)
    return get(backend).sparse_softmax_cross_entropy_with_logits(labels, logits, out=out, **options)


@_documented
def sigmoid_cross_entropy_with_logits(labels, logits, *, out=None, label_smoothing=_ZERO, pos_weight=None,
                                      backend=DEFAULT_BACKEND):
    r"""Elementwise sigmoid cross-entropy, as ``tf.nn.sigmoid_cross_entropy_with_logits``.

    For a logit :math:`x` and a label :math:`z`, with :math:`s = \operatorname{sigmoid}(x)`:

    .. math:: \ell = -z \log s - (1 - z) \log (1 - s) = \max(x, 0) - x z + \log(1 + e^{-|x|})

    (the second form is the stable one computed).

    Parameters
    ----------
    labels : array_like of float, ``logits.shape``
        The targets, usually in [0, 1].
    %(logits)s
    %(out)s
    label_smoothing : float in [0, 1], default 0.0
        The labels become ``z (1 - eps) + eps / 2`` (Keras's ``BinaryCrossentropy``).
    pos_weight : array_like, broadcastable to ``logits.shape``, optional
        Finite weights ``>= 0`` of the positive term,
        ``-pos_weight z log(s) - (1 - z) log(1 - s)`` (PyTorch's).
    %(backend)s

    Returns
    -------
    ndarray
        The loss of each element, of the logits' shape and dtype.

    %(raises)s

    See Also
    --------
    binary_cross_entropy : the same loss of probabilities, clipped.

    Examples
    --------
    >>> import impls
    >>> impls.sigmoid_cross_entropy_with_logits(labels=[1.0, 0.0], logits=[2.0, -1.0])
    array([0.12692801, 0.31326169])
    """
    if label_smoothing is _ZERO and pos_weight is None:
        return get(backend).sigmoid_cross_entropy_with_logits(labels, logits, out=out)
    options = _given(("label_smoothing", label_smoothing, _ZERO), ("pos_weight", pos_weight, None))
    return get(backend).sigmoid_cross_entropy_with_logits(labels, logits, out=out, **options)


@_documented
def softmax_cross_entropy_with_logits_and_grad(labels, logits, axis=-1, *, loss_out=None, grad_out=None,
                                               label_smoothing=_ZERO, class_weights=None, reduction=_NONE,
                                               z_loss=_ZERO, backend=DEFAULT_BACKEND):
    r"""The dense loss and its gradient with respect to the logits, in one pass.

    Without options the gradient is TensorFlow's fused kernel's

    .. math:: \frac{\partial \ell}{\partial x_c} = \operatorname{softmax}(x)_c - z_c,

    the gradient of ``sum(loss)`` where each row of labels sums to 1. With any
    option it is the exact gradient of the reduced loss (of ``sum(loss)`` for
    ``reduction='none'``): :math:`(W + 2 \lambda\, \mathrm{lse})\, p_c - w_c q_c`,
    :math:`W = \sum_c w_c q_c`.

    Parameters
    ----------
    %(dense_labels)s
    %(logits)s
    %(axis)s
    %(fused_out)s
    %(options)s
    %(backend)s

    Returns
    -------
    loss : ndarray
        As :func:`softmax_cross_entropy_with_logits` returns it.
    %(dlogits)s

    %(raises)s

    Examples
    --------
    >>> import impls
    >>> impls.softmax_cross_entropy_with_logits_and_grad(labels=[[0.0, 1.0]], logits=[[1.0, 1.0]])
    (array([0.69314718]), array([[ 0.5, -0.5]]))
    """
    if label_smoothing is _ZERO and class_weights is None and reduction is _NONE and z_loss is _ZERO:
        return get(backend).softmax_cross_entropy_with_logits_and_grad(labels, logits, axis, loss_out=loss_out,
                                                                       grad_out=grad_out)
    options = _options(label_smoothing, None, class_weights, reduction, z_loss)
    return get(backend).softmax_cross_entropy_with_logits_and_grad(labels, logits, axis, loss_out=loss_out,
                                                                   grad_out=grad_out, **options)


@_documented
def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, *, loss_out=None, grad_out=None,
                                                      label_smoothing=_ZERO, ignore_index=None, class_weights=None,
                                                      reduction=_NONE, z_loss=_ZERO, backend=DEFAULT_BACKEND):
    r"""The sparse loss and its gradient with respect to the logits, in one pass.

    .. math:: \frac{\partial \ell}{\partial x_c} = \operatorname{softmax}(x)_c - [c = y]

    With options, the gradient of the reduced loss (of ``sum(loss)`` for
    ``reduction='none'``); an ignored row's gradient is 0.

    Parameters
    ----------
    %(sparse_labels)s
    %(logits)s
    %(fused_out)s
    %(options)s
    %(ignore_index)s
    %(backend)s

    Returns
    -------
    loss : ndarray
        As :func:`sparse_softmax_cross_entropy_with_logits` returns it.
    %(dlogits)s

    %(raises)s

    Examples
    --------
    >>> import impls
    >>> impls.sparse_softmax_cross_entropy_with_logits_and_grad(labels=[1], logits=[[1.0, 1.0]])
    (array([0.69314718]), array([[ 0.5, -0.5]]))
    """
    if (label_smoothing is _ZERO and ignore_index is None and class_weights is None and reduction is _NONE
            and z_loss is _ZERO):
        return get(backend).sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=loss_out,
                                                                              grad_out=grad_out)
    options = _options(label_smoothing, ignore_index, class_weights, reduction, z_loss)
    return get(backend).sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, loss_out=loss_out,
                                                                          grad_out=grad_out, **options)


@_documented
def binary_cross_entropy(labels, probs, *, out=None, backend=DEFAULT_BACKEND):
    r"""Elementwise cross-entropy of probabilities, as Keras's ``binary_crossentropy(from_logits=False)``.

    .. math:: \ell = -z \log q - (1 - z) \log(1 - q), \qquad q = \operatorname{clip}(p, 10^{-7}, 1 - 10^{-7})

    The clip bounds a loss by :math:`-\log 10^{-7} = 16.1` and keeps it above 0;
    :func:`sigmoid_cross_entropy_with_logits` has neither limit.

    Parameters
    ----------
    labels : array_like of float, ``probs.shape``
        The targets.
    probs : array_like of float16, bfloat16, float32 or float64
        Probabilities, any rank >= 1.
    %(out)s
    %(backend)s

    Returns
    -------
    ndarray
        The loss of each element, of the probabilities' shape and dtype.

    %(raises)s

    Examples
    --------
    >>> import impls
    >>> impls.binary_cross_entropy([1.0, 0.0], [0.9, 0.2])
    array([0.10536052, 0.22314355])
    """
    return get(backend).binary_cross_entropy(labels, probs, out=out)


@_documented
def categorical_cross_entropy(labels, probs, axis=-1, *, out=None, backend=DEFAULT_BACKEND):
    r"""Cross-entropy of probabilities per row, as Keras's ``categorical_crossentropy(from_logits=False)``.

    .. math:: \ell = -\sum_c z_c \log q_c, \qquad
        q = \operatorname{clip}\left(\frac{p}{\sum_c p_c}, 10^{-7}, 1 - 10^{-7}\right)

    :func:`softmax_cross_entropy_with_logits` is the logits form, exact where this one clips.

    Parameters
    ----------
    labels : array_like of float, broadcastable to ``probs.shape``
        A distribution over the classes of each row.
    probs : array_like of float16, bfloat16, float32 or float64, shape (..., C)
        Probabilities; each row is rescaled to sum to 1 first.
    %(axis)s
    %(out)s
    %(backend)s

    Returns
    -------
    ndarray
        The loss of each row: the probabilities' shape without ``axis``, their dtype.

    %(raises)s

    Examples
    --------
    >>> import impls
    >>> impls.categorical_cross_entropy([[0.0, 1.0]], [[0.25, 0.75]])
    array([0.28768207])
    """
    return get(backend).categorical_cross_entropy(labels, probs, axis, out=out)


@_documented
def linear_cross_entropy(labels, hidden, weight, bias=None, *, label_smoothing=_ZERO, ignore_index=None,
                         class_weights=None, reduction=_NONE, z_loss=_ZERO, softcap=None, backend=DEFAULT_BACKEND):
    r"""The sparse cross-entropy of a linear layer's logits, without holding the logits (an LM head).

    .. math:: x = h W^\top + b, \qquad \ell = \log \sum_j e^{x_j} - x_y

    with :math:`x \leftarrow c \tanh(x / c)` under a ``softcap`` :math:`c` (Gemma 2). The
    numba and numpy backends compute it a chunk of rows at a time (12 MiB of logits), so the
    ``N x V`` logits are never held.

    Parameters
    ----------
    %(linear)s
    %(backend)s

    Returns
    -------
    ndarray
        The loss of each row, of the labels' shape and hidden's dtype; 0-d with a ``reduction``.

    %(raises)s

    See Also
    --------
    linear_cross_entropy_and_grad : with the gradients.

    Examples
    --------
    >>> import numpy as np, impls
    >>> impls.linear_cross_entropy([0, 1], np.eye(2), np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
    array([0.40760596, 0.40760596])
    """
    options = _options(label_smoothing, ignore_index, class_weights, reduction, z_loss)
    if softcap is not None:
        options["softcap"] = softcap
    return get(backend).linear_cross_entropy(labels, hidden, weight, bias, **options)


@_documented
def linear_cross_entropy_and_grad(labels, hidden, weight, bias=None, *, label_smoothing=_ZERO, ignore_index=None,
                                  class_weights=None, reduction=_NONE, z_loss=_ZERO, softcap=None,
                                  backend=DEFAULT_BACKEND):
    r""":func:`linear_cross_entropy` and the gradients of the summed (or reduced) loss.

    With :math:`G = \partial \ell / \partial x` (times :math:`\operatorname{sech}^2(x / c)`
    under a softcap):

    .. math:: \frac{\partial}{\partial h} = G W, \qquad \frac{\partial}{\partial W} = G^\top h,
        \qquad \frac{\partial}{\partial b} = \sum_{\text{rows}} G

    Parameters
    ----------
    %(linear)s
    %(backend)s

    Returns
    -------
    loss : ndarray
        As :func:`linear_cross_entropy` returns it.
    grad_hidden, grad_weight : ndarray
        The gradients, of hidden's and weight's shapes, in hidden's dtype.
    grad_bias : ndarray
        The bias's gradient, returned only where a bias is given.

    %(raises)s

    Examples
    --------
    >>> import numpy as np, impls
    >>> loss, grad_hidden, grad_weight = impls.linear_cross_entropy_and_grad([0], [[1.0, 0.0]], np.eye(2))
    >>> grad_weight
    array([[-0.26894142,  0.        ],
           [ 0.26894142,  0.        ]])
    """
    options = _options(label_smoothing, ignore_index, class_weights, reduction, z_loss)
    if softcap is not None:
        options["softcap"] = softcap
    return get(backend).linear_cross_entropy_and_grad(labels, hidden, weight, bias, **options)
