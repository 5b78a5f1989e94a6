"""The loss options (``impls._options``): each backend's time with them, and what they cost numba.

* ``LossOptions.time_call``: seconds per call of ``function`` with the option set
  ``options`` (a name of ``xentbench.inputs.LOSS_OPTIONS``), float32, on
  ``xentbench.suite``'s ``OPTIONS_GRID`` x ``OPTIONS_BATCHES`` x ``OPTIONS_CLASSES``;
  params ``(backend, function, options, batch, classes)``, ``OPTIONS_BACKENDS``: the
  built-in backends and ``torch`` (``F.cross_entropy``, skipped where PyTorch is not
  installed).
* ``OptionsCost.track_cost``: numba's time per call with the options over its time
  without them, measured paired (``xentbench.timing.paired_ratio``: both in turns in
  one process, the median of the rounds), unit ``COST_UNIT``; params ``(function,
  options, batch, classes)``. The issue's target: at most 1.1 at C >= 1000.
* ``OptionsSpeedup.track_speedup``: numba's speed over PyTorch's ``F.cross_entropy`` with
  the same options (``xentbench.peers.TorchPeer.cross_entropy``), paired, unit
  ``SPEEDUP_UNIT``; params as ``OptionsCost``. The issue's target: at least 1.5.

An option set that does not apply (``ignore_index`` to dense labels) and shapes off the
timing grid are asv skips (``xentbench.suite.options_skip_reason``). Inputs are the
suite's (``common.inputs``), with every third row ignored where the options ignore one.
``xentbench bench`` runs them (``--function options`` alone): ``time_call`` in each
backend's run, ``track_cost`` in numba's, ``track_speedup`` in the paired run; the
report's section "Loss options" shows them and ``xentbench.targets`` judges the last two.
"""

from xentbench.inputs import ignoring, loss_options
from xentbench.peers import get_backend
from xentbench.suite import (COST_UNIT, FOCUS, OPTIONS_BACKENDS, OPTIONS_BATCHES, OPTIONS_CLASSES,
                             OPTIONS_FUNCTIONS, OPTIONS_GRID, OPTIONS_PEER, SPEEDUP_UNIT, options_skip_reason)
from xentbench.timing import calibrate

from .common import TIMEOUT, PairedCalls, TimingAttributes, inputs

GRID = [list(OPTIONS_FUNCTIONS), list(OPTIONS_GRID), list(OPTIONS_BATCHES), list(OPTIONS_CLASSES)]


def calls(backend: str, function: str, options: str, batch: int, classes: int) -> tuple:
    """``(without, with_options)``: two calls of ``function`` of ``backend`` on the suite's inputs.

    ``NotImplementedError`` (asv's skip) where the options do not apply or the shape is off the grid.
    """
    reason = options_skip_reason(function, options, batch, classes)
    if reason:
        raise NotImplementedError(reason)
    kwargs = loss_options(options, function, classes)
    labels, logits = inputs(function, batch, classes, "float32")
    given = ignoring(labels, kwargs) if "ignore_index" in kwargs else labels
    if backend == OPTIONS_PEER:  # F.cross_entropy as a PyTorch user calls it, with the same options
        peer, grad = get_backend(OPTIONS_PEER), function.endswith("_and_grad")
        return (lambda: peer.cross_entropy(labels, logits, grad)), \
            (lambda: peer.cross_entropy(given, logits, grad, **kwargs))
    fn = getattr(get_backend(backend), function)
    return (lambda: fn(labels, logits)), (lambda: fn(given, logits, **kwargs))


class LossOptions(TimingAttributes):
    """Seconds per call with the options: ``time_call``."""

    params = [list(OPTIONS_BACKENDS)] + GRID
    param_names = ["backend", "function", "options", "batch", "classes"]
    timeout = TIMEOUT

    def setup(self, backend, function, options, batch, classes):
        key = (backend, function, options, batch, classes)
        if self._ready == key:  # asv re-runs setup before every timed call: keep that cheap
            return
        _, self.call = calls(*key)
        self.number, _ = calibrate(self.call, ())
        self._ready = key

    def time_call(self, backend, function, options, batch, classes):
        self.call()


class _Paired(PairedCalls):
    """Two calls of the options grid timed in turns (``PairedCalls``)."""

    params = GRID
    param_names = ["function", "options", "batch", "classes"]
    timeout = TIMEOUT


class OptionsCost(_Paired):
    """numba's time with the options over its time without them: ``track_cost``."""

    unit = COST_UNIT

    def setup(self, function, options, batch, classes):
        self._prepare(*calls(FOCUS, function, options, batch, classes))

    def track_cost(self, function, options, batch, classes):
        return self.ratio()


class OptionsSpeedup(_Paired):
    """numba's speed over PyTorch's ``F.cross_entropy`` with the same options: ``track_speedup``."""

    unit = SPEEDUP_UNIT

    def setup(self, function, options, batch, classes):
        self._prepare(*(calls(backend, function, options, batch, classes)[1] for backend in (FOCUS, OPTIONS_PEER)))

    def track_speedup(self, function, options, batch, classes):
        return self.ratio()
