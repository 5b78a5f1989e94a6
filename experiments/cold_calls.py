"""First calls in a fresh process: the seconds each took, and the process's total (issue 28,
``benchmarks/NOTES.md`` entry 27). Run it with an empty cache to time compilation, and compare two
versions of ``impls/`` in alternating processes:

    NUMBA_CACHE_DIR=$(mktemp -d) PYTHONPATH=<folder holding impls/> python experiments/cold_calls.py LABEL

The calls, float32, in this order: the sparse loss on the calling thread (64x1000) and on every
core (128x1000), the tiles' sparse loss + gradient on every core (8192x10), a row cut into pieces
(softmax, 1x65536), log_softmax on every core (256x1000).
"""

import sys
import time

started = time.perf_counter()

import numpy as np  # noqa: E402

import impls  # noqa: E402

CALLS = (("sparse_softmax_cross_entropy_with_logits", (64, 1000)),
         ("sparse_softmax_cross_entropy_with_logits", (128, 1000)),
         ("sparse_softmax_cross_entropy_with_logits_and_grad", (8192, 10)),
         ("softmax", (1, 65536)),
         ("log_softmax", (256, 1000)))

if __name__ == "__main__":
    times = []
    for function, shape in CALLS:
        logits = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        args = (np.arange(shape[0]) % shape[1], logits) if "cross_entropy" in function else (logits,)
        start = time.perf_counter()
        getattr(impls, function)(*args)
        times.append(f"{function} {shape[0]}x{shape[1]}: {time.perf_counter() - start:.2f}")
    print(sys.argv[1], f"total {time.perf_counter() - started:.1f} s;", "; ".join(times), flush=True)
