"""Every function with its outputs given and reused (``out=``, ``loss_out=``, ``grad_out=``): time.

The same classes, parameters and inputs as ``bench_losses``, ``bench_grads`` and
``bench_activations``, beside which it is read: the difference is the cost of
allocating (and, above 32 MiB, faulting in) the outputs on every call. Parameters
``(backend, batch, classes, dtype)``, backends ``OUT_BACKENDS``; see ``xentbench/suite.py``.
"""

from xentbench.suite import SUITE

from .common import TimedOut


class SparseLoss(TimedOut):
    function = SUITE["SparseLoss"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)


class DenseLoss(TimedOut):
    function = SUITE["DenseLoss"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)


class SigmoidLoss(TimedOut):
    function = SUITE["SigmoidLoss"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)


class SparseLossGrad(TimedOut):
    function = SUITE["SparseLossGrad"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)


class DenseLossGrad(TimedOut):
    function = SUITE["DenseLossGrad"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)


class Softmax(TimedOut):
    function = SUITE["Softmax"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)


class LogSoftmax(TimedOut):
    function = SUITE["LogSoftmax"]

    def time_out(self, backend, batch, classes, dtype):
        self.call(*self.args)
