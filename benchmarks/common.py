"""Everything the asv suite shares: the grid, the inputs, the backends, the base classes.

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
* ``bench_accuracy.<Class>.track_error``: the largest relative error against the
  extended-precision truth, ``xentbench.accuracy``'s one measure, unit
  ``"relative error"``
* ``bench_startup.NumbaFirstCall.track_first_call``: seconds, params
  ``(function, cache)`` with ``cache`` in ``{"cold", "cached"}``
* ``bench_paired.<Class>.track_speedup``: numba's speed over the ``backend``
  parameter (``BASELINES``: TensorFlow and the peers), ``time(backend) /
  time(numba)`` measured *paired*, unit ``"speedup"``; float32, the timing
  grid (see ``Paired``)

Parameters, in this order, for every benchmark but the start-up one:
``(backend, batch, classes, dtype)``, e.g. asv's
``bench_losses.SparseLoss.time_forward('numba', 4096, 1000, 'float32')``.
``backend`` is an ``impls`` backend or a peer (``"torch"``, ``"jax"``); the
logits are ``(batch, classes)`` of ``dtype`` with the class axis last.

The grid and what is skipped (asv's skip: ``NotImplementedError`` in ``setup``,
shown as ``n/a``; ``timing_skip_reason`` and ``accuracy_skip_reason`` say why)
------------------------------------------------------------------------------
* time and peakmem, float32: batch ``BATCHES`` x classes ``CLASSES``, except
  logits over ``MAX_LOGITS_BYTES`` (256 MiB): 21 of 25 shapes;
* time and peakmem, float64 and float16: batch ``SMALL_BATCHES`` x classes
  ``SMALL_CLASSES`` up to ``SMALL_MAX_ELEMENTS`` logits: 5 shapes;
* accuracy (``track_error``), every dtype: batch ``ACCURACY_BATCHES`` x classes
  ``CLASSES`` up to ``ACCURACY_MAX_ELEMENTS`` logits (the truth is computed in
  ``np.longdouble``, slowly): 8 shapes;
* a backend that does not import here (a peer not installed, TensorFlow
  missing) is skipped the same way.

Inputs (``inputs``)
-------------------
Made once per ``(batch, classes, dtype)`` from a seed derived from the shape,
the same for every backend: logits ``3 * N(0, 1)`` plus a per-row offset
``N(0, 2)`` plus a bump of ``+5`` at the label (a classifier that has learnt
something; never zeros, never constant). Sparse labels are uniform in
``[0, classes)``; dense labels are the same labels one-hot with label smoothing
0.1 (every row sums to 1); sigmoid labels are the one-hot rows. The logits,
sparse labels and truths are written once to a shared directory and loaded by
the other benchmarks and backends: ``XENTBENCH_CACHE_DIR`` (``xentbench
bench`` makes one for all its asv runs), else asv's ``setup_cache`` directory
(the working directory every benchmark of one ``asv run`` shares); outside
asv they are recomputed.

Timing
------
``setup`` calls the function once (Numba compilation or cache loading, JAX
``jit`` tracing and compilation, TensorFlow's kernel start-up, all outside the
timed region), times a second call to choose asv's ``number`` (calls per
sample, about ``SAMPLE_TIME`` = 5 ms) and ``repeat``: at least 3 samples, at
most 8, about 0.08 s of sampling; 2 samples of one call for calls over 0.25 s,
one for calls over 1 s (whose relative noise is small).
``rounds = 1``, no warm-up beyond those calls. ``xentbench bench`` runs
every process with glibc's malloc keeping arrays up to 32 MiB on a heap that
is never trimmed (``xentbench.bench.MALLOC_TUNABLES``), so that a call does not
pay page faults for its outputs depending on what ran before it. These keep the full suite
under 30 minutes on 2 cores; asv's stored quartiles tell how noisy a figure
is. Every backend gets numpy arrays in and numpy arrays out
(the conversion is part of what is timed, as it is in ``impls.tensorflow``).

Threads: every backend may use every core: Numba (``NUMBA_NUM_THREADS``
defaults to the core count), TensorFlow and JAX/XLA (all cores by default),
PyTorch (``torch.set_num_threads(os.cpu_count())``); ``naive`` and ``numpy``
are single-threaded NumPy.

peakmem is asv's: the peak resident memory of the benchmark process, inputs
and outputs included, on top of the interpreter and the pre-imported backends
(asv forks each benchmark from one server process, ``launch_method:
forkserver`` in ``asv.conf.json``; ``xentbench bench`` pre-imports only the
backend measured). Compare it between commits measured the same way, or
between shapes of one backend, not as an absolute.

Peers
-----
``TorchPeer`` and ``JaxPeer`` offer the seven functions of an ``impls`` backend
(numpy in, numpy out, float16 computed in float32 like ``impls``), so the
benchmark classes treat every backend alike; they are benchmark code, not part
of ``impls``. ``XENTBENCH_PREIMPORT`` (comma-separated backend names, or
``none``) limits what the suite imports up front (``xentbench bench
--backend`` sets it); a backend not pre-imported is imported in ``setup``.
"""

from __future__ import annotations

import math
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before anything imports jax
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import impls  # noqa: E402
from xentbench import accuracy  # noqa: E402

# --------------------------------------------------------------------------- the grid

PEERS = ("torch", "jax")
BACKENDS = tuple(impls.names()) + PEERS
#: the backend the paired benchmarks are about, and what they measure it against
FOCUS = "numba"
BASELINES = ("tensorflow",) + PEERS
BATCHES = (1, 32, 256, 4096, 65536)
CLASSES = (2, 10, 1000, 32000, 128256)
DTYPES = ("float32", "float64", "float16")
PARAM_NAMES = ("backend", "batch", "classes", "dtype")

MAX_LOGITS_BYTES = 256 * 2**20
SMALL_BATCHES = (32, 4096)
SMALL_CLASSES = (10, 1000, 32000)
SMALL_MAX_ELEMENTS = 2**22
ACCURACY_BATCHES = (32, 4096)
ACCURACY_MAX_ELEMENTS = 2**22

#: class name -> the ``impls`` function it benchmarks (the report parses this).
SUITE = {
    "SparseLoss": "sparse_softmax_cross_entropy_with_logits",
    "DenseLoss": "softmax_cross_entropy_with_logits",
    "SigmoidLoss": "sigmoid_cross_entropy_with_logits",
    "SparseLossGrad": "sparse_softmax_cross_entropy_with_logits_and_grad",
    "DenseLossGrad": "softmax_cross_entropy_with_logits_and_grad",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
}

TIMEOUT = 180  # seconds per parameter combination (setup included)
NONFINITE_ERROR = 1e30  # the track_error of a result that is NaN or inf where the truth is finite
SAMPLE_TIME = 0.005  # seconds of calls per timing sample
PAIRED_ROUNDS = 15  # rounds of a paired measurement (3 for calls over SLOW_CALL seconds)
SLOW_CALL = 0.25
#: seconds of untimed calls before each timed turn of a paired measurement:
#: PyTorch's OpenMP worker spins for ~9 ms after a call returns (measured:
#: it burns 8-9 ms of CPU in the 10-200 ms after a call; numba's TBB workers
#: 0.3-0.5 ms, JAX's and TensorFlow's none), which takes a core from the
#: next backend's first milliseconds
LEAD_IN = 0.01


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


def missing_benchmarks(classes, functions=accuracy.FUNCTIONS) -> list[str]:
    """What the suite lacks: for every function, a time_, a peakmem_ and a track_ benchmark.

    ``classes`` are benchmark classes with a ``function`` attribute. Returns one
    line per missing ``(function, kind)``; empty when the suite is complete.
    """
    have = set()
    for cls in classes:
        for attr in dir(cls):
            for kind in ("time_", "peakmem_", "track_"):
                if attr.startswith(kind) and callable(getattr(cls, attr)):
                    have.add((getattr(cls, "function", None), kind))
    return [f"{function}: no {kind} benchmark" for function in functions
            for kind in ("time_", "peakmem_", "track_") if (function, kind) not in have]


# --------------------------------------------------------------------------- inputs

LOGIT_STD = 3.0
ROW_OFFSET_STD = 2.0
LABEL_BUMP = 5.0
LABEL_SMOOTHING = 0.1
_SEED = 20240611

#: Marker that ``setup_cache`` leaves in asv's shared working directory.
_CACHE_MARKER = "xentbench-benchmark-cache"
_memo: dict = {}  # kind -> (key, value): the latest of each kind only, to bound memory


def shared_dir() -> str | None:
    """Where inputs and truths are shared between benchmarks and backends, if anywhere.

    ``XENTBENCH_CACHE_DIR`` (``xentbench bench`` sets it for all its asv runs and
    deletes it afterwards), else asv's ``setup_cache`` directory when running in
    it (one ``asv run``), else ``None``: everything is recomputed.
    """
    given = os.environ.get("XENTBENCH_CACHE_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    return os.getcwd() if os.path.exists(_CACHE_MARKER) else None


def _remember(kind: str, key, make):
    """``make()`` once per process and ``kind`` (asv re-runs ``setup`` between samples)."""
    if kind not in _memo or _memo[kind][0] != key:
        _memo.pop(kind, None)
        _memo[kind] = (key, make())
    return _memo[kind][1]


def _make_logits(batch: int, classes: int, dtype: str):
    rng = np.random.default_rng([_SEED, batch, classes])
    gen = np.float64 if dtype == "float64" else np.float32
    logits = rng.standard_normal((batch, classes), dtype=gen)
    logits *= LOGIT_STD
    logits += (rng.standard_normal((batch, 1)) * ROW_OFFSET_STD).astype(gen)
    labels = rng.integers(0, classes, size=batch, dtype=np.int64)
    logits[np.arange(batch), labels] += LABEL_BUMP
    return logits.astype(dtype, copy=False), labels


def _logits(batch: int, classes: int, dtype: str):
    shared = shared_dir()
    if shared is None:
        return _make_logits(batch, classes, dtype)
    stem = os.path.join(shared, f"inputs-{batch}x{classes}-{dtype}")
    if not os.path.exists(stem + ".labels.npy"):
        logits, labels = _make_logits(batch, classes, dtype)
        _save(stem + ".logits.npy", logits)
        _save(stem + ".labels.npy", labels)  # written last: the pair is complete
        return logits, labels
    return np.load(stem + ".logits.npy"), np.load(stem + ".labels.npy")


def _save(path: str, array) -> None:
    tmp = path + ".part.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def inputs(function: str, batch: int, classes: int, dtype: str) -> tuple:
    """The positional arguments of ``function`` for one parameter set, made once.

    ``(logits,)`` for softmax and log_softmax, ``(labels, logits)`` for the
    losses; see the module docstring for what they contain.
    """
    def make():
        logits, sparse = _logits(batch, classes, dtype)
        if function in ("softmax", "log_softmax"):
            return (logits,)
        if function in accuracy.SPARSE:
            return sparse, logits
        rows = np.arange(batch)
        if function in accuracy.DENSE:
            labels = np.full((batch, classes), LABEL_SMOOTHING / classes, dtype=dtype)
            labels[rows, sparse] += 1 - LABEL_SMOOTHING
            return labels, logits
        labels = np.zeros((batch, classes), dtype=dtype)  # sigmoid: multi-label targets
        labels[rows, sparse] = 1
        return labels, logits

    return _remember("inputs", (function, batch, classes, dtype), make)


def truth(function: str, batch: int, classes: int, dtype: str) -> accuracy.Truth:
    """``xentbench.accuracy.truth`` of ``inputs(...)``, computed once per asv run."""
    def make():
        args = inputs(function, batch, classes, dtype)
        labels, logits = (None, args[0]) if len(args) == 1 else args
        shared = shared_dir()
        path = shared and os.path.join(shared, f"truth-{function}-{batch}x{classes}-{dtype}.npz")
        if path and os.path.exists(path):
            with np.load(path) as f:
                n = len([k for k in f.files if k.startswith("value")])
                return accuracy.Truth(function, tuple(f[f"value{i}"] for i in range(n)),
                                      tuple(f[f"scale{i}"] for i in range(n)), np.dtype(dtype))
        result = accuracy.truth(function, labels, logits)
        if path:
            arrays = {f"value{i}": v for i, v in enumerate(result.values)}
            arrays.update({f"scale{i}": s for i, s in enumerate(result.scales)})
            tmp = path + ".part.npz"
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        return result

    return _remember("truth", (function, batch, classes, dtype), make)


# --------------------------------------------------------------------------- peers

_peer_modules: dict = {}


def _import_peer(name: str):
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
        self.torch, self.F = _import_peer("torch")
        self.torch.set_num_threads(os.cpu_count())

    def _in(self, a):
        """float16 is computed in float32, as in ``impls``, converted by torch."""
        t = self.torch.from_numpy(np.asarray(a))
        return t.float() if t.dtype == self.torch.float16 else t

    def _sparse(self, labels):
        return self.torch.from_numpy(np.asarray(labels, np.int64))

    def _out(self, t, like):
        t = t.detach()
        return (t.half() if np.asarray(like).dtype == np.float16 else t).numpy()

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

    def sparse_softmax_cross_entropy_with_logits_and_grad(self, labels, logits):
        return self._fused(self._sparse(labels), logits)


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
        jax, jnp = _import_peer("jax")
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
            """float16 is computed in float32, as in ``impls``; the casts are XLA's, in the jit."""
            def run(*args):
                dtype = args[-1].dtype
                up = [a.astype(jnp.float32) if a.dtype == jnp.float16 else a for a in args]
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


_PEER_CLASSES = {"torch": TorchPeer, "jax": JaxPeer}
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


def _preimport() -> None:
    """Import the backends once, in asv's fork server, so each benchmark needn't.

    Only imports: nothing here may start a thread pool (the benchmarks are
    forked from this process). Numba's compiler is initialised with a trivial
    function, which makes each forked benchmark's first call load the cached
    kernels in ~30 ms instead of ~0.8 s.
    """
    wanted = os.environ.get("XENTBENCH_PREIMPORT", ",".join(BACKENDS))
    names = [] if wanted.strip() == "none" else [n.strip() for n in wanted.split(",") if n.strip()]
    for name in names:
        if name in impls.names():
            try:
                impls.get(name)
            except impls.BackendUnavailable:
                pass
        elif name in PEERS:
            try:
                _import_peer(name)
            except NotImplementedError:
                pass
    if "numba" in names:
        try:
            import numba
            numba.njit(lambda a: a + 1)(1)
        except ImportError:
            pass


_preimport()


# --------------------------------------------------------------------------- base classes

class _Benchmark:
    params = [list(BACKENDS), list(BATCHES), list(CLASSES), list(DTYPES)]
    param_names = list(PARAM_NAMES)
    timeout = TIMEOUT
    #: the ``impls`` function this class measures (``SUITE``)
    function: str = ""

    def setup_cache(self):
        """Make asv run the whole suite in one shared working directory (see ``inputs``)."""
        with open(_CACHE_MARKER, "w") as f:
            f.write("inputs and truths shared between the benchmarks of one asv run\n")

    def _backend_call(self, backend):
        return getattr(get_backend(backend), self.function)


def calibrate(call, args) -> tuple[int, float]:
    """``(number, estimate)``: calls per timing sample (about ``SAMPLE_TIME``
    seconds of them, 1 to 1000) and the seconds of one call.

    The first call, untimed, pays compilation, tracing or cache loading; the
    second is the estimate (the first is estimate enough past 1 s).
    """
    start = time.perf_counter()
    call(*args)
    estimate = time.perf_counter() - start
    if estimate < 1.0:
        start = time.perf_counter()
        call(*args)
        estimate = time.perf_counter() - start
    return max(1, min(1000, round(SAMPLE_TIME / max(estimate, 1e-9)))), estimate


def paired_ratio(first, second, numbers, lead_ins, rounds: int, clock=time.perf_counter) -> float:
    """The median over ``rounds`` of ``time(second) / time(first)`` per call.

    In each round both are timed back to back, ``numbers[0]`` calls of
    ``first`` and ``numbers[1]`` of ``second``, first-second in even rounds and
    second-first in odd ones: a change in the machine's load between rounds
    (other tenants, frequency) moves both times of a round alike, and the order
    within a round does not favour either. Each turn starts with
    ``lead_ins[i]`` untimed calls (``LEAD_IN``), so that the threads the other
    one left spinning have stopped when the clock starts.
    """
    ratios = []
    for r in range(rounds):
        per_call = {}
        for slot in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn, number = (first, second)[slot], numbers[slot]
            for _ in range(lead_ins[slot]):
                fn()
            start = clock()
            for _ in range(number):
                fn()
            per_call[slot] = (clock() - start) / number
        ratios.append(per_call[1] / per_call[0])
    return float(np.median(ratios))


_warm: set = set()


class Timed(_Benchmark):
    """time_ and peakmem_ benchmarks of ``function`` over the time/peakmem grid."""

    rounds = 1
    warmup_time = 0.0
    min_run_count = 1
    repeat = (3, 8, 0.08)
    sample_time = SAMPLE_TIME
    number = 0
    _ready = None

    def setup(self, backend, batch, classes, dtype):
        key = (backend, batch, classes, dtype)
        if self._ready == key:  # asv re-runs setup before every timed call: keep that cheap
            return
        reason = timing_skip_reason(batch, classes, dtype)
        if reason:
            raise NotImplementedError(reason)
        self.call = self._backend_call(backend)
        self.args = inputs(self.function, batch, classes, dtype)
        # compile / trace / first-call costs, outside the timed region
        self.number, estimate = calibrate(self.call, self.args)
        if estimate > 1.0:
            self.repeat = (1, 1, 0.0)
        elif estimate > 0.25:
            self.repeat = (2, 2, 0.0)
        self._ready = key


class Paired(_Benchmark):
    """numba's speed over one baseline, measured paired: ``track_speedup``.

    ``time(backend) / time(numba)`` per call (above 1 when numba is faster),
    ``backend`` one of ``BASELINES``: the median of ``paired_ratio``'s rounds,
    both timed back to back in one process, with the same inputs, numbers of
    calls chosen as in ``Timed``, each turn after ``LEAD_IN`` seconds of
    untimed calls. On a shared machine whose load drifts over
    minutes, the ratio of two ``time_`` benchmarks run minutes apart moves
    with the drift (the same float32 cell by up to 3x between full runs,
    benchmarks/NOTES.md); a paired ratio does not. Float32, the timing grid.
    Subclasses define ``track_speedup`` as ``return self.speedup()``.
    """

    unit = "speedup"
    params = [list(BASELINES), list(BATCHES), list(CLASSES), ["float32"]]

    def setup(self, backend, batch, classes, dtype):
        reason = timing_skip_reason(batch, classes, dtype)
        if reason:
            raise NotImplementedError(reason)
        self.args = inputs(self.function, batch, classes, dtype)
        self.calls = [self._backend_call(b) for b in (FOCUS, backend)]
        calibrated = [calibrate(call, self.args) for call in self.calls]
        self.numbers = [number for number, _ in calibrated]
        self.lead_ins = [max(1, math.ceil(LEAD_IN / max(t, 1e-9))) for _, t in calibrated]
        self.paired_rounds = 3 if max(t for _, t in calibrated) > SLOW_CALL else PAIRED_ROUNDS

    def speedup(self) -> float:
        focus, baseline = (lambda call=call: call(*self.args) for call in self.calls)
        return paired_ratio(focus, baseline, self.numbers, self.lead_ins, self.paired_rounds)


class Accuracy(_Benchmark):
    """The accuracy of ``function`` over the accuracy grid.

    Subclasses define ``track_error`` as ``return self.error()``: a base class
    with a benchmark method would itself be collected by asv.
    """

    unit = "relative error"
    params = [list(BACKENDS), list(ACCURACY_BATCHES), list(CLASSES), list(DTYPES)]

    def setup(self, backend, batch, classes, dtype):
        reason = accuracy_skip_reason(batch, classes, dtype)
        if reason:
            raise NotImplementedError(reason)
        self.call = self._backend_call(backend)
        self.args = inputs(self.function, batch, classes, dtype)
        self.truth = truth(self.function, batch, classes, dtype)
        self.call(*self.args)  # compile outside the tracked call

    def error(self) -> float:
        """``Truth.error`` of one call: the largest relative error against the truth.

        An infinite error (a NaN or inf where the truth is finite: ``naive``'s
        sigmoid loss overflows on these logits) is recorded as
        ``NONFINITE_ERROR``, since ``asv publish`` cannot graph inf.
        """
        error = self.truth.error(self.call(*self.args))
        return error if error < NONFINITE_ERROR else NONFINITE_ERROR  # NaN too
