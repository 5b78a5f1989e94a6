"""numba's time on float16 and bfloat16 logits over its time on float32 logits, measured paired.

``track_cost`` of every class is ``time(dtype) / time(float32)`` per call, both timed in
turns in one process (``HalfCost``), unit ``COST_UNIT``, ``dtype`` one of ``HALF_DTYPES``,
over the half-precision time grid; ``backend`` is ``FOCUS`` only. The report judges the
half-precision targets on these where a run has them: from the ``time_`` benchmarks, run
minutes apart, the same ratio moved by up to 3x on this project's machines
(benchmarks/NOTES.md entry 18). Class names are those of the time/peakmem benchmarks (``SUITE``).
"""

from xentbench.suite import SUITE

from .common import HalfCost


class SparseLoss(HalfCost):
    function = SUITE["SparseLoss"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()


class DenseLoss(HalfCost):
    function = SUITE["DenseLoss"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()


class SigmoidLoss(HalfCost):
    function = SUITE["SigmoidLoss"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()


class SparseLossGrad(HalfCost):
    function = SUITE["SparseLossGrad"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()


class DenseLossGrad(HalfCost):
    function = SUITE["DenseLossGrad"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()


class Softmax(HalfCost):
    function = SUITE["Softmax"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()


class LogSoftmax(HalfCost):
    function = SUITE["LogSoftmax"]

    def track_cost(self, backend, batch, classes, dtype):
        return self.ratio()
