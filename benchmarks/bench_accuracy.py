"""Accuracy over commits: the largest relative error against the extended-precision truth.

``track_error`` of every class is ``xentbench.accuracy.Truth.error`` (the one
error measure of the project) of one call, unit ``"relative error"``; for the
fused functions, the larger of the loss and gradient errors. The truth is
computed in ``setup`` (in ``np.longdouble``, slow, hence the smaller grid:
``ACCURACY_BATCHES`` and ``ACCURACY_MAX_ELEMENTS`` in ``xentbench/suite.py``)
and shared by the backends within one asv run. Class names are those of the
time/peakmem benchmarks (``SUITE``).
"""

from xentbench.suite import SUITE

from .common import Accuracy


class SparseLoss(Accuracy):
    function = SUITE["SparseLoss"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()


class DenseLoss(Accuracy):
    function = SUITE["DenseLoss"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()


class SigmoidLoss(Accuracy):
    function = SUITE["SigmoidLoss"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()


class SparseLossGrad(Accuracy):
    function = SUITE["SparseLossGrad"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()


class DenseLossGrad(Accuracy):
    function = SUITE["DenseLossGrad"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()


class Softmax(Accuracy):
    function = SUITE["Softmax"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()


class LogSoftmax(Accuracy):
    function = SUITE["LogSoftmax"]

    def track_error(self, backend, batch, classes, dtype):
        return self.error()
