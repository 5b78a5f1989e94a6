"""What the asv benchmarks share: the inputs, the truth cache and the base classes.

The naming scheme, the grid and what is skipped are ``xentbench.suite``'s
(every tool that reads the results imports them from there); this module makes
the inputs and truths and holds the asv base classes that run the grid.

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
sample, about ``SAMPLE_TIME`` = 5 ms; ``xentbench.timing`` times) and
``repeat``: at least 3 samples, at most 8, about 0.08 s of sampling; 2 samples of one call for calls over 0.25 s,
one for calls over 1 s (whose relative noise is small).
``rounds = 1``, no warm-up beyond those calls. ``xentbench bench`` runs
every process with glibc's malloc keeping arrays up to 32 MiB on a heap that
is never trimmed (``xentbench.timing.MALLOC_TUNABLES``), so that a call does not
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
``xentbench.peers`` adapts PyTorch and JAX to the interface of an ``impls``
backend (``get_backend``). ``XENTBENCH_PREIMPORT`` (comma-separated backend
names, or ``none``) limits what the suite imports up front (``xentbench bench
--backend`` sets it); a backend not pre-imported is imported in ``setup``.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import impls  # noqa: E402
from xentbench import accuracy  # noqa: E402
from xentbench.inputs import arguments, make_logits  # noqa: E402
from xentbench.peers import get_backend, import_peer  # noqa: E402
from xentbench.suite import (  # noqa: E402
    ACCURACY_BATCHES, ACCURACY_UNIT, BACKENDS, BASELINES, BATCHES, CLASSES, COST_UNIT, DTYPES, FOCUS,
    HALF_DTYPES, NONFINITE_ERROR, OUT_BACKENDS, PAIRED_DTYPES, PARAM_NAMES, PEERS, SPEEDUP_UNIT,
    accuracy_skip_reason, timing_skip_reason)
from xentbench.timing import (  # noqa: E402
    SAMPLE_TIME, calibrate, lead_in_calls, paired_ratio, paired_rounds)

TIMEOUT = 180  # seconds per parameter combination (setup included)


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


_make_logits = make_logits  # xentbench.inputs: the one generator, shared with xentbench gate


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
    # .view: np.save writes bfloat16 (ml_dtypes, not a NumPy builtin) as raw 2-byte voids
    return np.load(stem + ".logits.npy").view(np.dtype(dtype)), np.load(stem + ".labels.npy")


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
        return arguments(function, *_logits(batch, classes, dtype))

    return _remember("inputs", (function, batch, classes, dtype), make)


#: The arrays of an ``accuracy.Truth``, in its order, as a cached truth's file names them.
PARTS = ("value", "scale", "bound")


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
                return accuracy.Truth(function, *(tuple(f[f"{part}{i}"] for i in range(n)) for part in PARTS),
                                      np.dtype(dtype))
        result = accuracy.truth(function, labels, logits)
        if path:
            arrays = {f"{part}{i}": a for part, parts in zip(PARTS, (result.values, result.scales, result.bounds))
                      for i, a in enumerate(parts)}
            tmp = path + ".part.npz"
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        return result

    return _remember("truth", (function, batch, classes, dtype), make)


# --------------------------------------------------------------------------- pre-imports

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
        if name in impls.BUILTIN:
            try:
                impls.get(name)
            except impls.BackendUnavailable:
                pass
        elif name in PEERS:
            try:
                import_peer(name)
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


class TimingAttributes:
    """asv's timing settings of every time_ benchmark of the suite: one round, no warm-up (``setup``
    calibrates ``number`` and keeps its inputs for the next call; ``_ready`` says for which parameters)."""

    rounds = 1
    warmup_time = 0.0
    min_run_count = 1
    repeat = (3, 8, 0.08)
    sample_time = SAMPLE_TIME
    number = 0
    _ready = None


class Timed(TimingAttributes, _Benchmark):
    """time_ and peakmem_ benchmarks of ``function`` over the time/peakmem grid."""

    def setup(self, backend, batch, classes, dtype):
        key = (backend, batch, classes, dtype)
        if self._ready == key:  # asv re-runs setup before every timed call: keep that cheap
            return
        reason = timing_skip_reason(batch, classes, dtype)
        if reason:
            raise NotImplementedError(reason)
        self.args = inputs(self.function, batch, classes, dtype)
        self.call = self._backend_call(backend)
        # compile / trace / first-call costs, outside the timed region
        self.number, estimate = calibrate(self.call, self.args)
        if estimate > 1.0:
            self.repeat = (1, 1, 0.0)
        elif estimate > 0.25:
            self.repeat = (2, 2, 0.0)
        self._ready = key


class TimedOut(Timed):
    """time_ of ``function`` with its outputs given, the results of a first call
    reused as ``out=`` (``loss_out=``, ``grad_out=``) from call to call, as a
    training loop reuses its buffers: no output is allocated (and, above 32 MiB,
    faulted in) per call. ``OUT_BACKENDS`` only. Subclasses define ``time_out``
    as ``self.call(*self.args)``.
    """

    params = [list(OUT_BACKENDS), list(BATCHES), list(CLASSES), list(DTYPES)]

    def _backend_call(self, backend):
        call = super()._backend_call(backend)
        results = call(*self.args)
        if isinstance(results, tuple):
            return functools.partial(call, loss_out=results[0], grad_out=results[1])
        return functools.partial(call, out=results)


class PairedCalls:
    """Two calls timed in turns in one process: ``ratio()`` is ``time(second) / time(first)``,
    the median of ``paired_ratio``'s rounds (``paired_rounds`` of them), numbers of calls
    chosen as in ``Timed``, each turn after ``lead_in_calls`` untimed calls. On a shared
    machine whose load drifts over minutes, the ratio of two ``time_`` benchmarks run minutes
    apart moves with the drift (the same float32 cell by up to 3x between full runs,
    benchmarks/NOTES.md); a paired ratio does not. ``setup`` gives the calls to ``_prepare``."""

    def _prepare(self, first, second):
        """Calibrate the two calls (no arguments each); the first call of each is made here."""
        self.calls = (first, second)
        calibrated = [calibrate(call, ()) for call in self.calls]
        self.numbers = [number for number, _ in calibrated]
        self.lead_ins = [lead_in_calls(t) for _, t in calibrated]
        self.paired_rounds = paired_rounds(max(t for _, t in calibrated))

    def ratio(self) -> float:
        return paired_ratio(*self.calls, self.numbers, self.lead_ins, self.paired_rounds)


class Paired(PairedCalls, _Benchmark):
    """numba's speed over one baseline, measured paired (``PairedCalls``): ``track_speedup``.

    ``time(backend) / time(numba)`` per call (above 1 when numba is faster),
    ``backend`` one of ``BASELINES``, with the same inputs. Float32, the timing grid.
    Subclasses define ``track_speedup`` as ``return self.ratio()``.
    """

    unit = SPEEDUP_UNIT
    params = [list(BASELINES), list(BATCHES), list(CLASSES), list(PAIRED_DTYPES)]

    def setup(self, backend, batch, classes, dtype):
        reason = timing_skip_reason(batch, classes, dtype)
        if reason:
            raise NotImplementedError(reason)
        args = inputs(self.function, batch, classes, dtype)
        self._prepare(*(functools.partial(self._backend_call(b), *args) for b in (FOCUS, backend)))


class HalfCost(PairedCalls, _Benchmark):
    """numba's time on half-precision logits over its time on float32 logits, measured
    paired (``PairedCalls``): ``track_cost``.

    ``time(dtype) / time(float32)`` per call, the suite's inputs of each dtype at the
    same shape (labels as the dtype's call takes them), ``dtype`` one of ``HALF_DTYPES``,
    the half-precision time grid; ``backend`` is ``FOCUS`` only. Unit ``COST_UNIT``; the
    report judges the half-precision targets on these where a run has them.
    Subclasses define ``track_cost`` as ``return self.ratio()``.
    """

    unit = COST_UNIT
    params = [[FOCUS], list(BATCHES), list(CLASSES), list(HALF_DTYPES)]

    def setup(self, backend, batch, classes, dtype):
        reason = timing_skip_reason(batch, classes, dtype)
        if reason:
            raise NotImplementedError(reason)
        call = self._backend_call(backend)
        self._prepare(*(functools.partial(call, *inputs(self.function, batch, classes, d))
                        for d in ("float32", dtype)))


class Accuracy(_Benchmark):
    """The accuracy of ``function`` over the accuracy grid.

    Subclasses define ``track_error`` as ``return self.error()``: a base class
    with a benchmark method would itself be collected by asv.
    """

    unit = ACCURACY_UNIT
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
