"""What the benchmark suite shares with the tools that read its results, defined once.

The asv suite (``benchmarks/``), ``xentbench bench`` (which selects from it),
``xentbench compare`` and ``xentbench report`` (which read its results) all
import these names; none restates them.

Naming scheme (``xentbench report`` and ``xentbench compare`` parse it)
-----------------------------------------------------------------------
A benchmark is ``<module>.<Class>.<method>``; ``SUITE`` maps each class name to
the ``impls`` function it measures, the same class name in every module:

=====================  ===================================================
class                  ``impls`` function
=====================  ===================================================
``SparseLoss``         ``sparse_softmax_cross_entropy_with_logits``
``DenseLoss``          ``softmax_cross_entropy_with_logits``
``SigmoidLoss``        ``sigmoid_cross_entropy_with_logits``
``SparseLossGrad``     ``sparse_softmax_cross_entropy_with_logits_and_grad``
``DenseLossGrad``      ``softmax_cross_entropy_with_logits_and_grad``
``Softmax``            ``softmax``
``LogSoftmax``         ``log_softmax``
=====================  ===================================================

* ``bench_losses.{SparseLoss,DenseLoss,SigmoidLoss}.{time,peakmem}_forward``
* ``bench_grads.{SparseLossGrad,DenseLossGrad}.{time,peakmem}_forward_backward``
* ``bench_activations.{Softmax,LogSoftmax}.{time,peakmem}_forward``
* ``bench_out.<Class>.time_out`` (``OUT_MODULE``): the same call with its
  outputs given (``out=``, ``loss_out=``, ``grad_out=``) and reused from call
  to call, as in a training loop; backends ``OUT_BACKENDS``, the timing grid
* ``bench_accuracy.<Class>.track_error``: the largest relative error against the
  extended-precision truth, ``xentbench.accuracy``'s one measure, unit
  ``ACCURACY_UNIT``; a NaN or inf where the truth is finite is recorded as
  ``NONFINITE_ERROR``
* ``bench_startup.NumbaFirstCall.track_first_call`` (``STARTUP``): seconds,
  params ``(function, cache)`` with ``cache`` in ``{"cold", "cached"}``
* ``bench_options`` (``OPTIONS_BENCHMARKS``), the loss options on ``options_grid()``,
  float32: ``LossOptions.time_call`` (``OPTIONS_TIME``; params ``backend, function,
  options, batch, classes``, backends ``OPTIONS_BACKENDS``), ``OptionsCost.track_cost``
  (``OPTIONS_COST``; ``function, options, batch, classes``: ``FOCUS``'s time with the
  options over its time without, paired, unit ``COST_UNIT``) and
  ``OptionsSpeedup.track_speedup`` (``OPTIONS_SPEEDUP``; the same params: ``FOCUS``'s
  speed over ``OPTIONS_PEER`` with the same options, paired, unit ``SPEEDUP_UNIT``).
  Not in ``SUITE`` (their params are not ``PARAM_NAMES``); ``xentbench bench
  --function options`` selects them, and the report's section "Loss options" reads them
* ``bench_linear`` (``LINEAR_BENCHMARKS``), the fused linear + cross-entropy's forward
  and backward (``linear_cross_entropy_and_grad``) on ``linear_grid()``, float32, params
  ``LINEAR_PARAM_NAMES``: ``LinearLossGrad.{time,peakmem}_forward_backward`` and
  ``LinearMemory.track_growth`` (the call's peak resident memory over the resident memory
  before it, unit ``MEMORY_UNIT``), backends ``LINEAR_BACKENDS``; ``LinearSpeedup.track_speedup``:
  ``FOCUS``'s speed over each of ``LINEAR_PEERS`` and ``LINEAR_GEMM`` (the products alone),
  paired. ``xentbench bench --function linear`` selects them; the report's section "Fused
  linear + cross-entropy" reads them
* ``bench_paired.<Class>.track_speedup``: ``FOCUS``'s speed over the
  ``backend`` parameter (``BASELINES``: TensorFlow and the peers), ``time(backend)
  / time(FOCUS)`` measured *paired*, unit ``SPEEDUP_UNIT``; ``PAIRED_DTYPES``,
  the timing grid
* ``bench_half.<Class>.track_cost`` (``HALF_MODULE``): ``FOCUS``'s time on
  half-precision logits over its time on float32 logits, ``time(dtype) /
  time(float32)`` measured *paired*, unit ``COST_UNIT``; ``HALF_DTYPES``, the
  timing grid, ``backend`` ``FOCUS`` only

Parameters, in this order, for every benchmark but the start-up and the options ones:
``PARAM_NAMES`` = ``(backend, batch, classes, dtype)``, e.g. asv's
``bench_losses.SparseLoss.time_forward('numba', 4096, 1000, 'float32')``.
``backend`` is an ``impls`` backend or a peer (``PEERS``); the logits are
``(batch, classes)`` of ``dtype`` with the class axis last.

The grid and what is skipped (asv's skip: ``NotImplementedError`` in ``setup``,
shown as ``n/a``; ``timing_skip_reason`` and ``accuracy_skip_reason`` say why)
------------------------------------------------------------------------------
* time and peakmem, float32: batch ``BATCHES`` x classes ``CLASSES``, except
  logits over ``MAX_LOGITS_BYTES`` (256 MiB): 21 of 25 shapes;
* time and peakmem, float64, float16 and bfloat16: batch ``SMALL_BATCHES`` x
  classes ``SMALL_CLASSES`` up to ``SMALL_MAX_ELEMENTS`` logits: 5 shapes;
* accuracy (``track_error``), every dtype: batch ``ACCURACY_BATCHES`` x classes
  ``CLASSES`` up to ``ACCURACY_MAX_ELEMENTS`` logits (the truth is computed in
  ``np.longdouble``, slowly): 8 shapes;
* the loss options (``options_skip_reason``): ``OPTIONS_BATCHES`` x
  ``OPTIONS_CLASSES`` on the float32 time grid, each option set where it applies
  (``ignore_index`` is the sparse losses' alone);
* a backend that does not import here (a peer not installed, TensorFlow
  missing) is skipped the same way.
"""

from __future__ import annotations

import os

import numpy as np

import impls
from xentbench.inputs import loss_options

# --------------------------------------------------------------------------- backends

#: the benchmarks' peers: not ``impls`` backends, adapted in ``xentbench.peers``
PEERS = ("torch", "jax")
#: the variable in which ``xentbench bench --backend NAME`` hands asv's processes the backends
#: that are neither built in nor peers (plugins, module paths), so that they join the grid
PLUGINS_ENV = "XENTBENCH_PLUGINS"
#: those backends, in this process
PLUGINS = tuple(name for name in os.environ.get(PLUGINS_ENV, "").split(",") if name)
#: every backend parameter of the suite
BACKENDS = tuple(impls.BUILTIN) + PEERS + PLUGINS
#: the backend the targets and the paired benchmarks are about
FOCUS = "numba"
#: the backend everything is checked against
REFERENCE = "tensorflow"
#: what the paired benchmarks measure ``FOCUS`` against
BASELINES = (REFERENCE,) + PEERS
#: the backends timed with their outputs given (``OUT_MODULE``): ``FOCUS`` writes into them;
#: the other built-in backends compute as usual and copy, which costs a copy more, not less
OUT_BACKENDS = (FOCUS,) + PLUGINS

# --------------------------------------------------------------------------- the grid

BATCHES = (1, 32, 256, 4096, 65536)
CLASSES = (2, 10, 1000, 32000, 128256)
DTYPES = ("float32", "float64", "float16", "bfloat16")
#: the half-precision dtypes: computed in float32, results rounded back
HALF_DTYPES = ("float16", "bfloat16")
PARAM_NAMES = ("backend", "batch", "classes", "dtype")
PAIRED_DTYPES = ("float32",)

MAX_LOGITS_BYTES = 256 * 2**20
SMALL_BATCHES = (32, 4096)
SMALL_CLASSES = (10, 1000, 32000)
SMALL_MAX_ELEMENTS = 2**22
ACCURACY_BATCHES = (32, 4096)
ACCURACY_MAX_ELEMENTS = 2**22

# --------------------------------------------------------------------------- the functions

#: benchmark class name -> the ``impls`` function it benchmarks (the report parses this)
SUITE = {
    "SparseLoss": "sparse_softmax_cross_entropy_with_logits",
    "DenseLoss": "softmax_cross_entropy_with_logits",
    "SigmoidLoss": "sigmoid_cross_entropy_with_logits",
    "SparseLossGrad": "sparse_softmax_cross_entropy_with_logits_and_grad",
    "DenseLossGrad": "softmax_cross_entropy_with_logits_and_grad",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
}
#: the class of the Numba first-call latency benchmark (bench_startup), params (function, cache)
STARTUP = "NumbaFirstCall"
#: ``impls`` function -> its short name, for titles, tables and file names: the seven's, the fused linear +
#: cross-entropy's
SHORT_NAMES = {
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "softmax_cross_entropy_with_logits": "dense",
    "sparse_softmax_cross_entropy_with_logits": "sparse",
    "sigmoid_cross_entropy_with_logits": "sigmoid",
    "softmax_cross_entropy_with_logits_and_grad": "dense_grad",
    "sparse_softmax_cross_entropy_with_logits_and_grad": "sparse_grad",
    "linear_cross_entropy": "linear",
    "linear_cross_entropy_and_grad": "linear_grad",
}

# --------------------------------------------------------------------------- the loss options (bench_options)

#: the option sets (``xentbench.inputs.LOSS_OPTIONS``) that ``bench_options`` times: each alone
#: and the combination of weights, smoothing, ignored rows and a mean
OPTIONS_GRID = ("smoothing", "ignore", "weights", "z_loss", "mean", "weights+smoothing+ignore+mean")
#: the losses that take them
OPTIONS_FUNCTIONS = ("sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
                     "sparse_softmax_cross_entropy_with_logits_and_grad",
                     "softmax_cross_entropy_with_logits_and_grad")
#: their float32 shapes: the classes where the issue's target applies (C >= 1000)
OPTIONS_BATCHES = (256, 4096)
OPTIONS_CLASSES = (1000, 32000)
#: the peer that takes the same options: PyTorch's ``F.cross_entropy`` (``xentbench.peers.TorchPeer.cross_entropy``)
OPTIONS_PEER = "torch"
#: the backends of ``OPTIONS_TIME``
OPTIONS_BACKENDS = tuple(impls.BUILTIN) + (OPTIONS_PEER,)
#: the classes of ``bench_options``: seconds per call with the options, per backend (``OPTIONS_BACKENDS``);
#: ``FOCUS``'s time with them over its time without (``COST_UNIT``); ``FOCUS``'s speed over ``OPTIONS_PEER``
#: with the same options (``SPEEDUP_UNIT``); the last two measured paired
OPTIONS_TIME, OPTIONS_COST, OPTIONS_SPEEDUP = "LossOptions", "OptionsCost", "OptionsSpeedup"
OPTIONS_BENCHMARKS = (OPTIONS_TIME, OPTIONS_COST, OPTIONS_SPEEDUP)
#: the unit of ``bench_options.OptionsCost.track_cost``: time with options / time without (lower is better)
COST_UNIT = "cost ratio"

# --------------------------------------------------------------------------- the fused linear + cross-entropy (bench_linear)

#: the module of the fused linear + cross-entropy's benchmarks, params ``LINEAR_PARAM_NAMES``
LINEAR_MODULE = "bench_linear"
LINEAR_PARAM_NAMES = ("backend", "batch", "hidden", "vocabulary")
#: the ``impls`` function they measure: forward and backward
LINEAR_FUNCTION = "linear_cross_entropy_and_grad"
#: its float32 grid, ``batch x hidden x vocabulary``: issue 30's, an LLM's loss over 32k and 128k words...
LINEAR_BATCHES = (256, 2048)
LINEAR_HIDDEN = (512, 1024)
LINEAR_VOCABULARIES = (32000, 128256)
#: ...up to this many multiply-adds of one product ``N D V`` (2048 x 1024 x 128256 is twice it: 11 s a call
#: for numba and minutes for PyTorch's chunked path, paired, on 2 cores of Zen 4)
LINEAR_MAX_PRODUCT = 2048 * 512 * 128256
#: the peers it is measured against: PyTorch's ``F.linear`` + ``F.cross_entropy`` and its chunked
#: ``F.linear_cross_entropy`` (``xentbench.peers``)...
LINEAR_PEERS = ("torch", "torch-chunked")
#: ...and the BLAS alone: the three matrix products of the loss and its gradients (``6 N D V`` flops) and
#: nothing else, so that ``time(LINEAR_GEMM) / time(FOCUS)`` is ``FOCUS``'s share of the machine's SGEMM rate
LINEAR_GEMM = "gemm"
#: the backends of the time, peakmem and memory-growth benchmarks (TensorFlow and naive hold the logits
#: by design: they are checked, ``xentbench verify``, not timed)
LINEAR_BACKENDS = ("numba", "numpy") + LINEAR_PEERS
#: the classes of ``bench_linear``: seconds and peak memory per forward + backward call; the peak growth of
#: the resident memory over the call, in ``MEMORY_UNIT``; ``FOCUS``'s paired speed-up over each of
#: ``LINEAR_PEERS`` and ``LINEAR_GEMM``
LINEAR_TIME, LINEAR_MEMORY, LINEAR_SPEEDUP = "LinearLossGrad", "LinearMemory", "LinearSpeedup"
LINEAR_BENCHMARKS = (LINEAR_TIME, LINEAR_MEMORY, LINEAR_SPEEDUP)
#: the unit of ``LinearMemory.track_growth``
MEMORY_UNIT = "MiB"


def linear_skip_reason(batch: int, hidden: int, vocabulary: int) -> str | None:
    """Why ``(batch, hidden, vocabulary)`` is off ``bench_linear``'s grid, or ``None``."""
    if batch * hidden * vocabulary > LINEAR_MAX_PRODUCT:
        return f"{batch}x{hidden}x{vocabulary}: over {LINEAR_MAX_PRODUCT:,} multiply-adds a product"
    return None


def linear_grid() -> list[tuple[int, int, int]]:
    """The ``(batch, hidden, vocabulary)`` of ``bench_linear`` that ``linear_skip_reason`` keeps."""
    return [(n, d, v) for n in LINEAR_BATCHES for d in LINEAR_HIDDEN for v in LINEAR_VOCABULARIES
            if linear_skip_reason(n, d, v) is None]


# --------------------------------------------------------------------------- units

#: the unit of the accuracy benchmarks (``track_error``)
ACCURACY_UNIT = "relative error"
#: the unit of the paired speed-ups (``track_speedup``); higher is better, unlike a time
SPEEDUP_UNIT = "speedup"
#: the ``track_error`` of a result that is NaN or inf where the truth is finite
#: (``asv publish`` cannot graph inf)
NONFINITE_ERROR = 1e30


#: the module of the reuse case (``out=`` given), whose classes are named as everywhere
OUT_MODULE = "bench_out"
#: the report's name of a backend's reuse case (``OUT_MODULE``), shown as a backend of its own
OUT_SUFFIX = "+out"


def is_out(result) -> bool:
    """Whether an ``asvresults.Result`` times a call with its outputs given (``OUT_MODULE``)."""
    return result.module == OUT_MODULE


#: the module of the paired half-precision costs (``bench_half``), whose classes are named as everywhere
HALF_MODULE = "bench_half"


def is_half_cost(result) -> bool:
    """Whether an ``asvresults.Result`` is a paired half-precision cost (``HALF_MODULE``)."""
    return result.module == HALF_MODULE and result.kind == "track"


def is_accuracy(result) -> bool:
    """Whether an ``asvresults.Result`` is an accuracy figure (``track_error``)."""
    return result.kind == "track" and result.unit == ACCURACY_UNIT


def is_speedup(result) -> bool:
    """Whether an ``asvresults.Result`` is a paired speed-up: higher is better, unlike a time."""
    return result.kind == "track" and result.unit == SPEEDUP_UNIT


# --------------------------------------------------------------------------- skip rules

def timing_skip_reason(batch: int, classes: int, dtype: str) -> str | None:
    """Why ``(batch, classes, dtype)`` is off the time/peakmem grid, or ``None``."""
    nbytes = batch * classes * np.dtype(dtype).itemsize
    if nbytes > MAX_LOGITS_BYTES:
        return f"{batch}x{classes} {dtype} logits are {nbytes / 2**20:.0f} MiB, over the 256 MiB limit"
    if dtype != "float32":
        if batch not in SMALL_BATCHES or classes not in SMALL_CLASSES:
            return f"{dtype} runs only batch {SMALL_BATCHES} x classes {SMALL_CLASSES}"
        if batch * classes > SMALL_MAX_ELEMENTS:
            return f"{dtype} runs only up to {SMALL_MAX_ELEMENTS} logits"
    return None


def accuracy_skip_reason(batch: int, classes: int, dtype: str) -> str | None:
    """Why ``(batch, classes, dtype)`` is off the accuracy grid, or ``None``."""
    if batch not in ACCURACY_BATCHES:
        return f"accuracy runs only batch {ACCURACY_BATCHES}"
    if batch * classes > ACCURACY_MAX_ELEMENTS:
        return f"accuracy runs only up to {ACCURACY_MAX_ELEMENTS} logits (longdouble truth)"
    return None


def grid(skip_reason, batches=BATCHES) -> list[tuple[int, int, str]]:
    """The ``(batch, classes, dtype)`` that ``skip_reason`` keeps."""
    return [(b, c, d) for b in batches for c in CLASSES for d in DTYPES
            if skip_reason(b, c, d) is None]


def options_skip_reason(function: str, options: str, batch: int, classes: int) -> str | None:
    """Why ``(function, options, batch, classes)`` is off ``bench_options``' grid (float32), or ``None``."""
    reason = timing_skip_reason(batch, classes, "float32")
    if reason:
        return reason
    if not loss_options(options, function, classes):
        return f"the option set {options!r} does not apply to {function}"
    return None


def options_grid() -> list[tuple[str, str, int, int]]:
    """The ``(function, options, batch, classes)`` of ``bench_options`` that ``options_skip_reason`` keeps."""
    return [(f, o, b, c) for f in OPTIONS_FUNCTIONS for o in OPTIONS_GRID for b in OPTIONS_BATCHES
            for c in OPTIONS_CLASSES if options_skip_reason(f, o, b, c) is None]
