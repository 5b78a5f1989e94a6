"""First-call latency of the numba backend, without and with its on-disk cache.

Each measurement is a fresh Python process that imports ``impls``, makes a
32 x 1000 input of one dtype and times the first call of one function through the
public interface (``impls.get("numba")``), with ``NUMBA_CACHE_DIR`` pointed at
an empty temporary directory ("cold": the kernels are compiled) or at one that
a previous process has filled ("cached": the kernels are loaded; the cache the
"cold" measurement of the same function filled, kept in the suite's shared
directory, else one filled in ``setup``). The interpreter start and the imports
are not counted; initialising Numba's compiler is, since a user's first call
pays for it. Every function on every dtype of the suite: a first call compiles
only its own kernels (``impls._numba_kernels``), about 2-4 s each. Unit: seconds.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from xentbench.suite import DTYPES

import impls

from .common import shared_dir

_FIRST_CALL = r"""
import os, sys, time
if os.environ.get("XENTBENCH_LIBRARY"):  # xentbench bench --commit: that commit's library
    sys.path.insert(0, os.environ["XENTBENCH_LIBRARY"])
import ml_dtypes
import numpy as np
import impls

function, dtype = sys.argv[1], np.dtype(getattr(ml_dtypes, sys.argv[2], sys.argv[2]))
backend = impls.get("numba")
rng = np.random.default_rng(0)
logits = (rng.standard_normal((32, 1000), dtype=np.float32) * 3).astype(dtype)
if function in ("softmax", "log_softmax"):
    args = (logits,)
elif function.startswith("sparse"):
    args = (rng.integers(0, 1000, 32), logits)
elif function.startswith("sigmoid"):
    args = (np.full_like(logits, 0.5), logits)
else:
    args = (np.full_like(logits, 1 / 1000), logits)
start = time.perf_counter()
getattr(backend, function)(*args)
print(time.perf_counter() - start)
"""


class NumbaFirstCall:
    params = [list(impls.FUNCTIONS), list(DTYPES), ["cold", "cached"]]
    param_names = ["function", "dtype", "cache"]
    unit = "seconds"
    timeout = 300

    def setup(self, function, dtype, cache):
        try:
            impls.get("numba")
        except impls.BackendUnavailable as exc:
            raise NotImplementedError(str(exc)) from exc
        self.cache_dir = tempfile.mkdtemp(prefix="xentbench-numba-cache-")
        if cache == "cached":
            filled = self._kept(function, dtype)
            if filled and os.path.isdir(filled):
                shutil.copytree(filled, self.cache_dir, dirs_exist_ok=True)
            else:
                self._first_call(function, dtype)  # compiles and fills the cache

    def teardown(self, function, dtype, cache):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def _first_call(self, function, dtype) -> float:
        env = dict(os.environ, NUMBA_CACHE_DIR=self.cache_dir)
        done = subprocess.run([sys.executable, "-c", _FIRST_CALL, function, dtype], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"first-call process failed:\n{done.stderr}")
        return float(done.stdout.split()[-1])

    @staticmethod
    def _kept(function, dtype) -> str | None:
        """Where the "cold" measurement of ``function`` on ``dtype`` keeps the cache it filled."""
        shared = shared_dir()
        return os.path.join(shared, f"numba-cache-{function}-{dtype}") if shared else None

    def track_first_call(self, function, dtype, cache):
        seconds = self._first_call(function, dtype)
        kept = self._kept(function, dtype)
        if cache == "cold" and kept and not os.path.exists(kept):  # for the "cached" combination
            shutil.copytree(self.cache_dir, kept + ".part", dirs_exist_ok=True)
            os.replace(kept + ".part", kept)
        return seconds
