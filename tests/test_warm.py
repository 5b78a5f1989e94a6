"""``xentbench warm``: after it, a new process's first calls load every numba kernel from the cache."""

from __future__ import annotations

import json
import subprocess
import sys

from xentbench import cli

FIRST_CALLS = r"""
import json, sys
from numba.core.registry import CPUDispatcher
from xentbench import warm
from impls import _half, _numba_kernels
warm.compile_dtype(sys.argv[1])  # every call a user's first calls would compile for
stats = {f"{m.__name__}.{name}": [len(k.stats.cache_hits), len(k.stats.cache_misses)]
         for m in (_numba_kernels, _half) for name, k in vars(m).items() if isinstance(k, CPUDispatcher)}
print(json.dumps({name: hm for name, hm in stats.items() if any(hm)}))
"""


def test_after_warm_no_first_call_compiles(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # empty: warm's processes compile every kernel
    assert cli.main(["warm", "--dtype", "float64", "--jobs", "1"]) == 0
    assert "1 of 1 dtypes compiled or loaded" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-c", FIRST_CALLS, "float64"], capture_output=True, text=True, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"impls._numba_kernels.rows", "impls._numba_kernels.rows_serial", "impls._numba_kernels.rows_options",
            "impls._numba_kernels.sigmoid_xent"} <= set(stats)
    compiled = {name: misses for name, (hits, misses) in stats.items() if misses}
    assert not compiled, compiled  # every kernel loaded from the cache warm filled
