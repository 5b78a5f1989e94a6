"""softmax and log_softmax over the class axis: time and peak memory.

Parameters ``(backend, batch, classes, dtype)``; see ``xentbench/suite.py``.
"""

from xentbench.suite import SUITE

from .common import Timed


class Softmax(Timed):
    function = SUITE["Softmax"]

    def time_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)


class LogSoftmax(Timed):
    function = SUITE["LogSoftmax"]

    def time_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward(self, backend, batch, classes, dtype):
        self.call(*self.args)
