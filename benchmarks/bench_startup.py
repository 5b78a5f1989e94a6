"""First-call latency of the numba backend, without and with its on-disk cache.

Each measurement is a fresh Python process that imports ``impls``, makes a
32 x 1000 float32 input and times the first call of one function through the
public interface (``impls.get("numba")``), with ``NUMBA_CACHE_DIR`` pointed at
an empty temporary directory ("cold": the kernels are compiled) or at one that
a previous process has filled ("cached": the kernels are loaded; the cache the
"cold" measurement of the same function filled, kept in the suite's shared
directory, else one filled in ``setup``). The interpreter start and the imports
are not counted; initialising Numba's compiler is, since a user's first call
pays for it. Unit: seconds.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import impls

from .common import shared_dir

_FIRST_CALL = r"""
import os, sys, time
if os.environ.get("XENTBENCH_LIBRARY"):  # xentbench bench --commit: that commit's library
    sys.path.insert(0, os.environ["XENTBENCH_LIBRARY"])
import numpy as np
import impls

function = sys.argv[1]
backend = impls.get("numba")
rng = np.random.default_rng(0)
logits = rng.standard_normal((32, 1000), dtype=np.float32) * 3
if function in ("softmax", "log_softmax"):
    args = (logits,)
elif function.startswith("sparse"):
    args = (rng.integers(0, 1000, 32), logits)
else:
    args = (np.full_like(logits, 1 / 1000), logits)
start = time.perf_counter()
getattr(backend, function)(*args)
print(time.perf_counter() - start)
"""


#: One function per kind of kernel: a forward loss, a fused loss and gradient, an
#: activation. A cold compile of the numba backend costs up to ~30 s per function
#: on 2 busy cores; all seven would take a quarter of the suite's time budget.
FIRST_CALL_FUNCTIONS = [
    "sparse_softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_and_grad",
    "softmax",
]


class NumbaFirstCall:
    params = [FIRST_CALL_FUNCTIONS, ["cold", "cached"]]
    param_names = ["function", "cache"]
    unit = "seconds"
    timeout = 300

    def setup(self, function, cache):
        try:
            impls.get("numba")
        except impls.BackendUnavailable as exc:
            raise NotImplementedError(str(exc)) from exc
        self.cache_dir = tempfile.mkdtemp(prefix="xentbench-numba-cache-")
        if cache == "cached":
            filled = self._kept(function)
            if filled and os.path.isdir(filled):
                shutil.copytree(filled, self.cache_dir, dirs_exist_ok=True)
            else:
                self._first_call(function)  # compiles and fills the cache

    def teardown(self, function, cache):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def _first_call(self, function) -> float:
        env = dict(os.environ, NUMBA_CACHE_DIR=self.cache_dir)
        done = subprocess.run([sys.executable, "-c", _FIRST_CALL, function], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"first-call process failed:\n{done.stderr}")
        return float(done.stdout.split()[-1])

    @staticmethod
    def _kept(function) -> str | None:
        """Where the "cold" measurement of ``function`` keeps the cache it filled."""
        shared = shared_dir()
        return os.path.join(shared, f"numba-cache-{function}") if shared else None

    def track_first_call(self, function, cache):
        seconds = self._first_call(function)
        kept = self._kept(function)
        if cache == "cold" and kept and not os.path.exists(kept):  # for the "cached" combination
            shutil.copytree(self.cache_dir, kept + ".part", dirs_exist_ok=True)
            os.replace(kept + ".part", kept)
        return seconds
