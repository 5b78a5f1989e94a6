"""Cold compilation: ``xentbench warm``, after which a new process's first calls load every numba
kernel from the cache, and the inliner of ``impls._numba_setup``, which copies an inlined
function once rather than once per block."""

from __future__ import annotations

import json
import subprocess
import sys

import numba
from numba import njit
from numba.core import inline_closurecall, ir

import impls._numba_setup  # noqa: F401  (the inliner under test)
from xentbench import cli

FIRST_CALLS = r"""
import json, sys
from numba.core.registry import CPUDispatcher
from xentbench import warm
from impls import _half, _numba_kernels, _numba_math, _numba_rows
warm.compile_dtype(sys.argv[1])  # every call a user's first calls would compile for
kernels = [k for m in (_numba_kernels, _numba_math, _numba_rows, _half) for k in vars(m).values()
           if isinstance(k, CPUDispatcher)]
kernels += [k for table in (_numba_kernels.ROWS, _numba_kernels.OPTIONS) for by_grad in table for by_short in by_grad
            if by_short for parallel, serial in by_short for k in (serial, *getattr(parallel, "kernels", [parallel]))]
stats = {f"{k.py_func.__module__}.{k.__name__}": [len(k.stats.cache_hits), len(k.stats.cache_misses)] for k in kernels}
print(json.dumps({name: hm for name, hm in stats.items() if any(hm)}))
"""


def test_after_warm_no_first_call_compiles(capsys):
    """After ``warm``, a new process's first calls compile nothing. In the cache the other tests share
    (issue 28: no test compiles what another has), where ``warm`` compiles only what they have not."""
    assert cli.main(["warm", "--dtype", "float64", "--jobs", "1"]) == 0
    assert "1 of 1 dtypes compiled or loaded" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-c", FIRST_CALLS, "float64"], capture_output=True, text=True, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"impls._numba_kernels._chunks", "impls._numba_kernels.rows_sparse_whole",  # _chunks: on every core
            "impls._numba_kernels.rows_sparse_tiles", "impls._numba_kernels.rows_sparse_grad_options_whole",
            "impls._numba_kernels.sigmoid_xent"} <= set(stats)
    if numba.config.NUMBA_NUM_THREADS > 1:  # a row is cut into pieces only for two threads or more
        assert {"impls._numba_kernels._pieces", "impls._numba_kernels.pieces_stats_sparse"} <= set(stats)
    compiled = {name: misses for name, (hits, misses) in stats.items() if misses}
    assert not compiled, compiled  # every kernel loaded from the cache warm filled


@njit(inline="always")
def _branchy(x):
    """Twelve branches: a callee of many blocks, whose copies the test counts."""
    s = 0.0
    if x > 1.0:
        s += 1.0
    if x > 2.0:
        s += 2.0
    if x > 3.0:
        s += 3.0
    if x > 4.0:
        s += 4.0
    if x > 5.0:
        s += 5.0
    if x > 6.0:
        s += 6.0
    if x > 7.0:
        s += 7.0
    if x > 8.0:
        s += 8.0
    if x > 9.0:
        s += 9.0
    if x > 10.0:
        s += 10.0
    if x > 11.0:
        s += 11.0
    if x > 12.0:
        s += 12.0
    return s


def test_inlining_copies_the_callee_once_not_once_per_block(monkeypatch):
    """Numba's ``inline_ir`` copies each block of the callee with a memo of its own, and so every
    variable once per block (numba#8989); the wrapper gives the copies one memo."""
    copied = []
    var_deepcopy = ir.Var.__deepcopy__

    def counting(self, memo):
        copied.append(self.name)
        return var_deepcopy(self, memo)

    monkeypatch.setattr(ir.Var, "__deepcopy__", counting)

    def copies_to_compile() -> int:
        copied.clear()

        @njit
        def caller(x):
            return _branchy(x) + 1.0

        assert caller(6.5) == 22.0  # 1 + ... + 6, plus 1: inlined right
        return len(copied)

    ours = copies_to_compile()
    numba_inline_ir = inline_closurecall.InlineWorker.inline_ir.__wrapped__
    monkeypatch.setattr(inline_closurecall.InlineWorker, "inline_ir", numba_inline_ir)
    numbas = copies_to_compile()
    assert 0 < ours * 5 < numbas, (ours, numbas)
