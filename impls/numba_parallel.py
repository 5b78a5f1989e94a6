"""Parallel Numba kernels: one ``prange`` over rows, no temporaries beyond the output.

Each row ``x`` of ``C`` logits is reduced to ``m = max(x)`` and
``s = sum(exp(x - m))`` (accumulated in float64), and then

* ``softmax(x) = exp(x - m) / s``, ``log_softmax(x) = (x - m) - log(s)``
* dense loss ``sum(z * (log(s) - (x - m)))``, sparse loss ``log(s) - (x[label] - m)``
* fused gradient ``exp(x - m) / s - z`` (``z`` one-hot for the sparse loss)
* sigmoid loss, elementwise: ``max(x, 0) - x*z + log1p(exp(-|x|))``

As in TensorFlow the max is never added back, so small losses keep their
precision. NaN propagates: a NaN anywhere in a row makes ``s`` NaN, and so
the whole row; ``+inf`` makes ``x - m`` NaN; a row of ``-inf`` is NaN.

The kernels are pure functions of checked input (``impls._validate`` guarantees
C-contiguous 2-D rows, ``C >= 1``, labels in ``[0, C)``); the wrappers only
allocate the outputs. Threading: the TBB layer, safe for concurrent callers
(see ``_threading_layer``).
"""

import ctypes
import math
import os
import sys

import numba
import numpy as np
from numba import njit, prange

name = "numba"


def _threading_layer() -> None:
    """Select a threading layer that is safe for concurrent callers.

    Numba's default ``workqueue`` layer aborts when two threads call a parallel
    kernel at once. The ``tbb`` wheel (a dependency) installs ``libtbb.so.12``
    into the environment's ``lib/``, which the dynamic loader does not search,
    so Numba would silently fall back to OpenMP (not fork-safe). Loading the
    library by path first lets Numba's TBB pool find it. ``NUMBA_THREADING_LAYER``
    set by the user wins.
    """
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    lib = os.path.join(sys.prefix, "lib", "libtbb.so.12")
    if os.path.exists(lib):
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    numba.config.THREADING_LAYER = "threadsafe"  # tbb where found, else omp


_threading_layer()


@njit(cache=True, inline="always")
def _max_sumexp(x):
    """``(max(x), sum(exp(x - max(x))))`` of one row; NaN in, NaN out."""
    m = x[0]
    for v in x:
        if v > m:
            m = v
    s = 0.0
    for v in x:
        s += math.exp(v - m)
    return m, s


@njit(parallel=True, cache=True)
def _softmax(x, out):
    for i in prange(x.shape[0]):
        m, s = _max_sumexp(x[i])
        inv = 1.0 / s
        for j in range(x.shape[1]):
            out[i, j] = math.exp(x[i, j] - m) * inv


@njit(parallel=True, cache=True)
def _log_softmax(x, out):
    for i in prange(x.shape[0]):
        m, s = _max_sumexp(x[i])
        log_s = math.log(s)
        for j in range(x.shape[1]):
            out[i, j] = (x[i, j] - m) - log_s


@njit(parallel=True, cache=True)
def _dense_xent(z, x, loss, grad, with_grad):
    for i in prange(x.shape[0]):
        m, s = _max_sumexp(x[i])
        log_s = math.log(s)
        inv = 1.0 / s
        acc = 0.0
        for j in range(x.shape[1]):
            shifted = x[i, j] - m
            acc += z[i, j] * (log_s - shifted)
            if with_grad:
                grad[i, j] = math.exp(shifted) * inv - z[i, j]
        loss[i] = acc


@njit(parallel=True, cache=True)
def _sparse_xent(labels, x, loss, grad, with_grad):
    for i in prange(x.shape[0]):
        m, s = _max_sumexp(x[i])
        label = labels[i]
        loss[i] = math.log(s) - (x[i, label] - m)
        if with_grad:
            inv = 1.0 / s
            for j in range(x.shape[1]):
                grad[i, j] = math.exp(x[i, j] - m) * inv
            grad[i, label] -= 1.0


@njit(parallel=True, cache=True)
def _sigmoid_xent(z, x, out):
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = max(v, 0.0) - v * z[i] + math.log1p(math.exp(-abs(v)))


def _no_grad(x):
    """A placeholder gradient for the forward-only calls (never written)."""
    return np.empty((0, 0), dtype=x.dtype)


def softmax(logits):
    out = np.empty_like(logits)
    _softmax(logits, out)
    return out


def log_softmax(logits):
    out = np.empty_like(logits)
    _log_softmax(logits, out)
    return out


def softmax_cross_entropy_with_logits(labels, logits):
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    _dense_xent(labels, logits, loss, _no_grad(logits), False)
    return loss


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    _sparse_xent(labels, logits, loss, _no_grad(logits), False)
    return loss


def sigmoid_cross_entropy_with_logits(labels, logits):
    out = np.empty_like(logits)
    _sigmoid_xent(labels, logits, out)
    return out


def softmax_cross_entropy_with_logits_and_grad(labels, logits):
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    grad = np.empty_like(logits)
    _dense_xent(labels, logits, loss, grad, True)
    return loss, grad


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits):
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    grad = np.empty_like(logits)
    _sparse_xent(labels, logits, loss, grad, True)
    return loss, grad
