"""The fused linear + cross-entropy of an LM head: time, memory and speed against PyTorch and the BLAS.

Every benchmark calls ``linear_cross_entropy_and_grad(labels, hidden, weight)``: the summed sparse
loss of ``hidden @ weight.T`` and its gradients (forward and backward), float32, on
``xentbench.suite``'s ``linear_grid()`` (batch x hidden x vocabulary), the inputs of
``xentbench.inputs.make_linear``. Params ``(backend, batch, hidden, vocabulary)``.

* ``LinearLossGrad.time_forward_backward`` and ``.peakmem_forward_backward``: seconds per call
  and asv's peak resident memory of the process, per backend of ``LINEAR_BACKENDS`` and for
  ``LINEAR_GEMM``: the three matrix products alone (``6 N D V`` flops) through the BLAS numba's
  path uses, whose time gives the machine's SGEMM rate.
* ``LinearMemory.track_growth``: the peak resident memory of one call over the resident memory
  before it, in MiB (``xentbench.timing.peak_growth``): the memory a call adds to its inputs,
  its results included. Issue 30's target for numba: at most ``grad_weight + grad_hidden + 64 MiB``.
* ``LinearSpeedup.track_speedup``: ``time(backend) / time(numba)``, paired (both timed in turns in
  one process), ``backend`` one of ``LINEAR_PEERS`` or ``LINEAR_GEMM``, whose ratio is numba's share
  of the machine's SGEMM rate.

``xentbench bench --function linear`` runs them: the time and memory in each backend's run (the
PyTorch ones in torch's, the products alone in numba's), the speed-ups in the paired run; the
report's section "Fused linear + cross-entropy" shows them and ``xentbench.targets`` judges issue
30's targets on them.
"""

from scipy.linalg import blas

from impls import _linear
from xentbench.inputs import make_linear
from xentbench.peers import get_backend
from xentbench.suite import (FOCUS, LINEAR_BACKENDS, LINEAR_BATCHES, LINEAR_GEMM, LINEAR_HIDDEN, LINEAR_PARAM_NAMES,
                             LINEAR_PEERS, LINEAR_VOCABULARIES, MEMORY_UNIT, SPEEDUP_UNIT, linear_skip_reason)
from xentbench.timing import calibrate, peak_growth

from .common import PairedCalls, TimingAttributes

GRID = [list(LINEAR_BATCHES), list(LINEAR_HIDDEN), list(LINEAR_VOCABULARIES)]
#: seconds per combination, setup included: PyTorch's chunked path takes tens of seconds a call at V = 128256
TIMEOUT = 900


def products(hidden, weight):
    """The BLAS's work in the fused loss and its gradients, and nothing else: ``x = h W^T``, then
    ``x W`` and ``x^T h`` with ``x`` standing for the logits' gradient: ``6 N D V`` flops, SciPy's
    ``gemm`` on the arrays' Fortran views, as ``impls._linear`` calls it (no copies): its own
    ``logits`` for the first product."""
    x = _linear.logits(hidden, weight, None)  # C-ordered (N, V)
    gemm = blas.get_blas_funcs("gemm", (hidden,))
    gemm(1.0, weight.T, x.T)  # (D, N): dh^T = W^T x^T
    gemm(1.0, hidden.T, x.T, trans_b=1)  # (D, V): dW^T = h^T x


def call(backend: str, batch: int, hidden: int, vocabulary: int):
    """One forward + backward call of ``backend`` (or of ``LINEAR_GEMM``'s products) with no arguments.

    ``NotImplementedError`` (asv's skip) off the grid, or where the backend does not import here.
    """
    reason = linear_skip_reason(batch, hidden, vocabulary)
    if reason:
        raise NotImplementedError(reason)
    labels, h, weight = make_linear(batch, hidden, vocabulary)
    if backend == LINEAR_GEMM:
        return lambda: products(h, weight)
    fn = get_backend(backend).linear_cross_entropy_and_grad
    return lambda: fn(labels, h, weight)


class _Linear:
    params = [list(LINEAR_BACKENDS)] + GRID
    param_names = list(LINEAR_PARAM_NAMES)
    timeout = TIMEOUT


class LinearLossGrad(TimingAttributes, _Linear):
    """Seconds and peak memory per call: ``time_forward_backward``, ``peakmem_forward_backward``."""

    params = [list(LINEAR_BACKENDS) + [LINEAR_GEMM]] + GRID

    def setup(self, backend, batch, hidden, vocabulary):
        key = (backend, batch, hidden, vocabulary)
        if self._ready == key:  # asv re-runs setup before every timed call: keep that cheap
            return
        self.call = call(*key)
        self.number, estimate = calibrate(self.call, ())
        if estimate > 0.25:  # 2 samples of one call, one past a second (its relative noise is small)
            self.repeat = (1, 1, 0.0) if estimate > 1.0 else (2, 2, 0.0)
        self._ready = key

    def time_forward_backward(self, backend, batch, hidden, vocabulary):
        self.call()

    def peakmem_forward_backward(self, backend, batch, hidden, vocabulary):
        self.call()


class LinearMemory(_Linear):
    """The memory one call adds to its inputs, results included: ``track_growth`` (MiB)."""

    unit = MEMORY_UNIT

    def setup(self, backend, batch, hidden, vocabulary):
        self.call = call(backend, batch, hidden, vocabulary)
        # compiled (numba) or initialised (PyTorch) on 8 words, so that the measured call is not a first call
        # and no earlier call of this size has left its buffers in the heap
        call(backend, 2, 16, 8)()

    def track_growth(self, backend, batch, hidden, vocabulary):
        return peak_growth(self.call) / 2**20


class LinearSpeedup(PairedCalls, _Linear):
    """numba's speed over each peer and over the BLAS alone, paired: ``track_speedup``."""

    unit = SPEEDUP_UNIT
    params = [list(LINEAR_PEERS) + [LINEAR_GEMM]] + GRID

    def setup(self, backend, batch, hidden, vocabulary):
        self._prepare(*(call(b, batch, hidden, vocabulary) for b in (FOCUS, backend)))

    def track_speedup(self, backend, batch, hidden, vocabulary):
        return self.ratio()
