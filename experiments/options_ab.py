"""The numba backend's calls with loss options, two versions of ``impls/`` timed in turns in one process
(issue 28, ``benchmarks/NOTES.md`` entry 30): what ``xentbench gate`` does for the calls without options,
which its grid does not hold.

    NUMBA_CACHE_DIR=$(mktemp -d) python experiments/options_ab.py OLD_FOLDER NEW_FOLDER

Each folder holds an ``impls/`` (``git archive REV impls | tar -x -C FOLDER``). Both are loaded as the gate's
worker loads them (``xentbench.gate.worker.Version``). Per call, ``ROUNDS`` rounds: a lead-in of each, then
``SAMPLES`` samples of about 2 ms of calls of each in turns, the first version to run alternating by round; a
round's ratio is NEW's fastest sample over OLD's. Printed: the median ratio and the interquartile range.
"""

import statistics
import sys
import time

import numpy as np

from xentbench.gate.worker import Version

ROUNDS, SAMPLES = 21, 5
SHAPES = ((4096, 1000), (256, 32000), (4096, 10), (2, 65536))


def calls(version: Version) -> list:
    """``(name, function, args, options)`` of every shape: the sparse and dense losses with options."""
    backend, found = version.impls.get("numba"), []
    for shape in SHAPES:
        rng = np.random.default_rng(shape[0])
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
        y = rng.integers(0, shape[1], shape[0])
        z = rng.random(shape).astype(np.float32)
        z /= z.sum(axis=1, keepdims=True)
        weights = (rng.random(shape[1]) + 0.5).astype(np.float32)
        found += [(f"sparse_grad {shape}", backend.sparse_softmax_cross_entropy_with_logits_and_grad, (y, x),
                   dict(label_smoothing=0.1, class_weights=weights, ignore_index=int(y[0]))),
                  (f"dense_grad {shape}", backend.softmax_cross_entropy_with_logits_and_grad, (z, x),
                   dict(label_smoothing=0.1, z_loss=1e-3)),
                  (f"sparse {shape}", backend.sparse_softmax_cross_entropy_with_logits, (y, x),
                   dict(label_smoothing=0.1))]
    return found


def sample(call, number: int) -> float:
    """Seconds per call of ``number`` calls of ``call = (function, args, options)``."""
    function, args, options = call
    start = time.perf_counter()
    for _ in range(number):
        function(*args, **options)
    return (time.perf_counter() - start) / number


def main(old_folder: str, new_folder: str) -> None:
    old, new = calls(Version(old_folder)), calls(Version(new_folder))
    for (name, *a), (_, *b) in zip(old, new):
        number = max(1, int(2e-3 / sample(a, 3)))  # the first calls compile
        sample(b, 3)
        ratios = []
        for turn in range(ROUNDS):
            order = (a, b) if turn % 2 == 0 else (b, a)
            for call in order:
                sample(call, number)  # lead-in
            times = {id(a): [], id(b): []}
            for _ in range(SAMPLES):
                for call in order:
                    times[id(call)].append(sample(call, number))
            ratios.append(min(times[id(b)]) / min(times[id(a)]))
        q = statistics.quantiles(ratios, n=4)
        print(f"{name:28s} new/old {statistics.median(ratios):.3f} [{q[0]:.3f}, {q[2]:.3f}]", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
