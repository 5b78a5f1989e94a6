"""The benchmarks' peers, PyTorch and JAX, with the seven functions of an ``impls`` backend.

PyTorch also offers the fused linear + cross-entropy (``impls.LINEAR_FUNCTIONS``) twice: unfused
as its users write it (``torch``) and by its own chunked CPU path (``torch-chunked``).

``TorchPeer`` and ``JaxPeer`` take numpy in and give numpy out, float16 and
bfloat16 (``ml_dtypes.bfloat16`` arrays) computed in float32 like ``impls``, so that whatever times backends (the asv
suite, a tool comparing commits) treats every backend alike; they are
measuring instruments, not part of ``impls``. ``get_backend(name)`` returns an
``impls`` backend or a peer by name, and raises ``NotImplementedError`` (asv's
skip) for one that cannot be imported here; ``import_peer`` imports a peer's
modules only (the suite's fork server pre-imports them).

Threads: every backend may use every core: PyTorch is set to
``torch.set_num_threads(os.cpu_count())``; JAX/XLA uses all cores by default.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before anything imports jax

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

import impls  # noqa: E402

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

_peer_modules: dict = {}


def import_peer(name: str):
    """``(torch, torch.nn.functional)`` or ``(jax, jax.numpy)``; NotImplementedError if not installed."""
    if name not in _peer_modules:
        try:
            if name == "torch":
                import torch
                import torch.nn.functional
                _peer_modules[name] = (torch, torch.nn.functional)
            else:
                import jax
                import jax.numpy
                jax.config.update("jax_enable_x64", True)  # else float64 silently runs in float32
                _peer_modules[name] = (jax, jax.numpy)
        except ImportError as exc:  # the optional extra "peers" is not installed
            _peer_modules[name] = exc
    found = _peer_modules[name]
    if isinstance(found, ImportError):
        raise NotImplementedError(f"{name} is not installed: {found}")
    return found


def _last(axis) -> None:
    if axis not in (-1,):
        raise ValueError("the peers take the classes on the last axis only (axis=-1)")


class TorchPeer:
    """``torch.nn.functional`` with the seven functions of an ``impls`` backend.

    ``cross_entropy(reduction="none")`` (integer targets for the sparse loss,
    probability targets for the dense one), ``softmax``, ``log_softmax``,
    ``binary_cross_entropy_with_logits(reduction="none")``; the fused functions
    run the forward and ``backward()`` of the summed loss. Classes on the last
    axis only (``axis=-1``), which is all the suite uses.
    """

    name = "torch"

    def __init__(self):
        self.torch, self.F = import_peer("torch")
        self.torch.set_num_threads(os.cpu_count())

    def _in(self, a):
        """float16 and bfloat16 are computed in float32, as in ``impls``, converted by torch
        (NumPy's bfloat16 reaches torch as its bits, ``torch.bfloat16`` from them)."""
        a = np.asarray(a)
        if a.dtype == BFLOAT16:
            return self.torch.from_numpy(a.view(np.int16)).view(self.torch.bfloat16).float()
        t = self.torch.from_numpy(a)
        return t.float() if t.dtype == self.torch.float16 else t

    def _sparse(self, labels):
        return self.torch.from_numpy(np.asarray(labels, np.int64))

    def _out(self, t, like):
        """Back to the logits' dtype: ``.half()``, ``.bfloat16()`` (whose bits NumPy views as bfloat16)."""
        t, dtype = t.detach(), np.asarray(like).dtype
        if dtype == BFLOAT16:
            return t.bfloat16().view(self.torch.int16).numpy().view(BFLOAT16)
        return (t.half() if dtype == np.float16 else t).numpy()

    def softmax(self, logits, axis=-1):
        _last(axis)
        return self._out(self.F.softmax(self._in(logits), dim=-1), logits)

    def log_softmax(self, logits, axis=-1):
        _last(axis)
        return self._out(self.F.log_softmax(self._in(logits), dim=-1), logits)

    def softmax_cross_entropy_with_logits(self, labels, logits, axis=-1):
        _last(axis)
        return self._out(self.F.cross_entropy(self._in(logits), self._in(labels), reduction="none"), logits)

    def sparse_softmax_cross_entropy_with_logits(self, labels, logits):
        return self._out(self.F.cross_entropy(self._in(logits), self._sparse(labels), reduction="none"), logits)

    def sigmoid_cross_entropy_with_logits(self, labels, logits):
        loss = self.F.binary_cross_entropy_with_logits(self._in(logits), self._in(labels), reduction="none")
        return self._out(loss, logits)

    def _fused(self, target, logits):
        x = self._in(logits).requires_grad_(True)
        loss = self.F.cross_entropy(x, target, reduction="none")
        loss.sum().backward()
        return self._out(loss, logits), self._out(x.grad, logits)

    def softmax_cross_entropy_with_logits_and_grad(self, labels, logits, axis=-1):
        _last(axis)
        return self._fused(self._in(labels), logits)

    def cross_entropy(self, labels, logits, grad=False, label_smoothing=0.0, ignore_index=-100,
                      class_weights=None, reduction="none", z_loss=0.0):
        """``F.cross_entropy`` with the loss options as a PyTorch user passes them
        (``weight``, ``ignore_index``, ``label_smoothing``, ``reduction``), integer
        ``labels`` as class indices; the z-loss, which PyTorch lacks, added as
        ``z_loss * logsumexp(x)**2`` to the rows not ignored (``reduction='none'`` only);
        with ``grad``, ``(loss, dlogits)`` through ``backward()`` of the (summed) loss.
        Not part of the backend interface: ``benchmarks/bench_options.py`` times it."""
        x = self._in(logits).requires_grad_(grad)
        sparse = np.asarray(labels).dtype.kind in "iu"
        target = self._sparse(labels) if sparse else self._in(labels)
        weight = None if class_weights is None else self.torch.from_numpy(np.asarray(class_weights, np.float32))
        loss = self.F.cross_entropy(x, target, weight=weight, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction=reduction)
        if z_loss:
            if reduction != "none":
                raise NotImplementedError("the z-loss is composed for reduction='none' only")
            counted = (target != ignore_index) if sparse else 1
            loss = loss + z_loss * self.torch.logsumexp(x, dim=-1) ** 2 * counted
        if not grad:
            return self._out(loss, logits)
        loss.sum().backward()
        return self._out(loss, logits), self._out(x.grad, logits)

    def sparse_softmax_cross_entropy_with_logits_and_grad(self, labels, logits):
        return self._fused(self._sparse(labels), logits)

    def linear_loss(self, labels, hidden, weight, bias, chunked: bool, grad: bool):
        """The fused linear + cross-entropy as a PyTorch user writes it: ``F.cross_entropy(F.linear(...))``,
        or with ``chunked`` PyTorch's own CPU path, ``F.linear_cross_entropy(...,
        options=LinearCrossEntropyOptions())``; ``reduction='none'``, with ``grad`` the loss and the
        gradients of its sum by ``backward()``."""
        inputs = [self._in(a).requires_grad_(grad) for a in (hidden, weight, bias) if a is not None]
        bias = inputs[2] if len(inputs) == 3 else None
        target = self._sparse(labels)
        if chunked:
            loss = self.F.linear_cross_entropy(inputs[0], inputs[1], target, linear_bias=bias, reduction="none",
                                               options=self.torch.nn.LinearCrossEntropyOptions())
        else:
            loss = self.F.cross_entropy(self.F.linear(inputs[0], inputs[1], bias), target, reduction="none")
        if not grad:
            return self._out(loss, hidden)
        loss.sum().backward()
        return (self._out(loss, hidden),) + tuple(self._out(a.grad, hidden) for a in inputs)

    def linear_cross_entropy(self, labels, hidden, weight, bias=None):
        return self.linear_loss(labels, hidden, weight, bias, chunked=False, grad=False)

    def linear_cross_entropy_and_grad(self, labels, hidden, weight, bias=None):
        return self.linear_loss(labels, hidden, weight, bias, chunked=False, grad=True)


class TorchChunkedPeer:
    """PyTorch's chunked CPU path of the fused linear + cross-entropy (``TorchPeer.linear_loss``): the
    two fused functions only, so that verify and the benchmarks treat it as a peer of its own."""

    name = "torch-chunked"

    def __init__(self):
        self._torch = TorchPeer()

    def linear_cross_entropy(self, labels, hidden, weight, bias=None):
        return self._torch.linear_loss(labels, hidden, weight, bias, chunked=True, grad=False)

    def linear_cross_entropy_and_grad(self, labels, hidden, weight, bias=None):
        return self._torch.linear_loss(labels, hidden, weight, bias, chunked=True, grad=True)


class JaxPeer:
    """JAX (``jax.nn``, ``jax.jit``, CPU) with the seven functions of an ``impls`` backend.

    The sparse loss is ``logsumexp - take_along_axis``, the dense one
    ``-sum(labels * log_softmax)``, the sigmoid loss the stable
    ``max(x, 0) - x*z + log1p(exp(-|x|))`` (no optax), the fused functions
    ``jax.value_and_grad`` of the summed loss (the per-row loss as auxiliary
    output); all under ``jax.jit``, and every call blocks until its result is
    ready. Classes on the last axis only.
    """

    name = "jax"

    def __init__(self):
        jax, jnp = import_peer("jax")
        self.jax = jax

        def sparse(y, x):
            return jax.nn.logsumexp(x, axis=-1) - jnp.take_along_axis(x, y[:, None], axis=-1)[:, 0]

        def dense(z, x):
            return -jnp.sum(z * jax.nn.log_softmax(x, axis=-1), axis=-1)

        def sigmoid(z, x):
            return jnp.maximum(x, 0) - x * z + jnp.log1p(jnp.exp(-jnp.abs(x)))

        def fused(loss):
            def summed(x, y):
                per_row = loss(y, x)
                return per_row.sum(), per_row

            value_and_grad = jax.value_and_grad(summed, has_aux=True)

            def run(y, x):
                (_, per_row), dx = value_and_grad(x, y)
                return per_row, dx
            return run

        def in_float32(fn):
            """float16 and bfloat16 are computed in float32, as in ``impls``; the casts are XLA's,
            in the jit."""
            def run(*args):
                dtype = args[-1].dtype
                up = [a.astype(jnp.float32) if a.dtype in (jnp.float16, jnp.bfloat16) else a for a in args]
                return jax.tree.map(lambda o: o.astype(dtype), fn(*up))
            return run

        self._fns = {name: jax.jit(in_float32(fn)) for name, fn in {
            "softmax": lambda x: jax.nn.softmax(x, axis=-1),
            "log_softmax": lambda x: jax.nn.log_softmax(x, axis=-1),
            "softmax_cross_entropy_with_logits": dense,
            "sparse_softmax_cross_entropy_with_logits": sparse,
            "sigmoid_cross_entropy_with_logits": sigmoid,
            "softmax_cross_entropy_with_logits_and_grad": fused(dense),
            "sparse_softmax_cross_entropy_with_logits_and_grad": fused(sparse),
        }.items()}

    def _call(self, name, logits, *labels):
        out = self.jax.block_until_ready(self._fns[name](*labels, np.asarray(logits)))
        return tuple(map(np.asarray, out)) if isinstance(out, tuple) else np.asarray(out)

    def softmax(self, logits, axis=-1):
        _last(axis)
        return self._call("softmax", logits)

    def log_softmax(self, logits, axis=-1):
        _last(axis)
        return self._call("log_softmax", logits)

    def softmax_cross_entropy_with_logits(self, labels, logits, axis=-1):
        _last(axis)
        return self._call("softmax_cross_entropy_with_logits", logits, np.asarray(labels))

    def sparse_softmax_cross_entropy_with_logits(self, labels, logits):
        return self._call("sparse_softmax_cross_entropy_with_logits", logits, np.asarray(labels, np.int64))

    def sigmoid_cross_entropy_with_logits(self, labels, logits):
        return self._call("sigmoid_cross_entropy_with_logits", logits, np.asarray(labels))

    def softmax_cross_entropy_with_logits_and_grad(self, labels, logits, axis=-1):
        _last(axis)
        return self._call("softmax_cross_entropy_with_logits_and_grad", logits, np.asarray(labels))

    def sparse_softmax_cross_entropy_with_logits_and_grad(self, labels, logits):
        return self._call("sparse_softmax_cross_entropy_with_logits_and_grad", logits,
                          np.asarray(labels, np.int64))


_PEER_CLASSES = {"torch": TorchPeer, "torch-chunked": TorchChunkedPeer, "jax": JaxPeer}
_backends: dict = {}


def get_backend(name: str):
    """An ``impls`` backend or a peer by name; ``NotImplementedError`` (asv: skipped) if unavailable."""
    if name not in _backends:
        if name in _PEER_CLASSES:
            _backends[name] = _PEER_CLASSES[name]()
        else:
            try:
                _backends[name] = impls.get(name)
            except impls.BackendUnavailable as exc:
                raise NotImplementedError(str(exc)) from exc
    return _backends[name]
