"""Forward losses: sparse, dense (soft labels) and sigmoid, time and peak memory.

Parameters ``(backend, batch, classes, dtype)``; see ``xentbench/suite.py``
for the grid and what is skipped, ``benchmarks/common.py`` for the inputs.
"""

from xentbench.suite import SUITE

from .common import Timed


class SparseLoss(Timed):
    function = SUITE["SparseLoss"]

    def time_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)


class DenseLoss(Timed):
    function = SUITE["DenseLoss"]

    def time_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)


class SigmoidLoss(Timed):
    function = SUITE["SigmoidLoss"]

    def time_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)
