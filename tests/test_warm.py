"""``xentbench warm``: after it, a new process's first calls load every numba kernel from the cache."""

from __future__ import annotations

import json
import subprocess
import sys

from xentbench import cli

FIRST_CALLS = r"""
import json, sys
from xentbench import warm
from impls import _numba_kernels as kernels
warm.compile_dtype(sys.argv[1])  # every function, both kernels' sizes: what a user's first calls would compile
print(json.dumps({name: [len(getattr(kernels, name).stats.cache_hits), len(getattr(kernels, name).stats.cache_misses)]
                  for name in ("rows", "rows_serial", "sigmoid_xent", "sigmoid_span")}))
"""


def test_after_warm_no_first_call_compiles(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # empty: warm's processes compile every kernel
    assert cli.main(["warm", "--dtype", "float64", "--jobs", "1"]) == 0
    assert "1 of 1 dtypes compiled or loaded" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-c", FIRST_CALLS, "float64"], capture_output=True, text=True, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (hits, misses) in stats.items():
        assert hits >= 1 and misses == 0, (name, stats)
