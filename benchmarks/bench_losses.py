"""Forward losses: sparse, dense (soft labels) and sigmoid, time and peak memory.

Parameters ``(backend, batch, classes, dtype)``; see ``benchmarks/common.py``
for the grid, the inputs and what is skipped.
"""

from .common import SUITE, Timed


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
