"""numba's speed over TensorFlow and each peer, measured paired (``Paired``).

``track_speedup`` of every class is ``time(backend) / time(numba)`` per call,
both timed back to back in rounds within one process (``paired_ratio`` in
``xentbench/timing.py``), unit ``"speedup"``, float32 over the timing grid;
``backend`` is one of ``BASELINES``. The report judges the speed targets on
these ratios when a run has them. Class names are those of the time/peakmem
benchmarks (``SUITE``).
"""

from xentbench.suite import SUITE

from .common import Paired


class SparseLoss(Paired):
    function = SUITE["SparseLoss"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()


class DenseLoss(Paired):
    function = SUITE["DenseLoss"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()


class SigmoidLoss(Paired):
    function = SUITE["SigmoidLoss"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()


class SparseLossGrad(Paired):
    function = SUITE["SparseLossGrad"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()


class DenseLossGrad(Paired):
    function = SUITE["DenseLossGrad"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()


class Softmax(Paired):
    function = SUITE["Softmax"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()


class LogSoftmax(Paired):
    function = SUITE["LogSoftmax"]

    def track_speedup(self, backend, batch, classes, dtype):
        return self.ratio()
