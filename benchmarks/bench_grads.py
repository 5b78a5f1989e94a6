"""Fused loss and gradient (``*_and_grad``), sparse and dense: time and peak memory.

For the peers this is forward plus ``backward()`` (torch) or
``jax.value_and_grad`` of the summed loss (JAX). Parameters
``(backend, batch, classes, dtype)``; see ``xentbench/suite.py``.
"""

from xentbench.suite import SUITE

from .common import Timed


class SparseLossGrad(Timed):
    function = SUITE["SparseLossGrad"]

    def time_forward_backward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward_backward(self, backend, batch, classes, dtype):
        self.call(*self.args)


class DenseLossGrad(Timed):
    function = SUITE["DenseLossGrad"]

    def time_forward_backward(self, backend, batch, classes, dtype):
        self.call(*self.args)

    def peakmem_forward_backward(self, backend, batch, classes, dtype):
        self.call(*self.args)
