"""A quick numba-vs-PyTorch figure on a machine without the asv suite's dependencies.

Used on the lent AVX-512 machine (Intel Xeon, Emerald Rapids), which has numba
and PyTorch but not TensorFlow or asv: torch time / numba time for the sparse
loss, softmax and log_softmax, float32, in alternating turns in one process
(the median of 5 turn pairs, each the median of 10 calls), both on
``NUMBA_NUM_THREADS`` threads (default 2, as on the project's machines):

    NUMBA_NUM_THREADS=2 taskset -c 0,1 python experiments/peer_ratio_quick.py

The asv suite's paired speed-ups (``benchmarks/bench_paired.py``) are the
project's measurement; this is a first look where they cannot run.
"""

import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import impls

torch.set_num_threads(int(os.environ.get("NUMBA_NUM_THREADS", "2")))
numba = impls.get("numba")


def median_time(f, calls: int = 10) -> float:
    f()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


for batch, classes in ((4096, 1000), (256, 32000), (32, 128256)):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, classes)).astype(np.float32) * 3
    y = rng.integers(0, classes, batch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    pairs = {"sparse": (lambda: numba.sparse_softmax_cross_entropy_with_logits(y, x),
                        lambda: F.cross_entropy(tx, ty, reduction="none")),
             "softmax": (lambda: numba.softmax(x), lambda: torch.softmax(tx, -1)),
             "log_softmax": (lambda: numba.log_softmax(x), lambda: torch.log_softmax(tx, -1))}
    ratios = {name: round(float(np.median([median_time(theirs) / median_time(ours) for _ in range(5)])), 2)
              for name, (ours, theirs) in pairs.items()}
    print(f"{batch}x{classes} numba/torch speed-up (torch time / numba time):", ratios, flush=True)
