"""Are the numba backend's results the same on every CPU it compiles for?

Numba compiles the kernels for the host CPU (zmm registers on AVX-512, ymm on
AVX2), so the vector width, the order of the partial sums and the fused
multiply-adds may differ between machines. This script runs the numba backend
over a fixed, seeded set of inputs (serial and parallel calls, rows cut across
threads, NaN, +inf and -inf) and compares two recordings:

    python experiments/numba_across_cpus.py record avx512.npz
    NUMBA_CPU_NAME=... NUMBA_CPU_FEATURES=... python experiments/numba_across_cpus.py record avx2.npz
    python experiments/numba_across_cpus.py compare avx2.npz avx512.npz
    python experiments/numba_across_cpus.py digest avx2.npz     # one SHA-256 per result, to compare machines

An AVX-512 machine runs AVX2 code too, so both recordings can come from one
machine: ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` make Numba compile for
another CPU (``describe()`` prints this machine's), and the digests show that
the AVX2 code compiled there gives the very bits it gives on an AVX2 machine.
Run with the same ``NUMBA_NUM_THREADS`` everywhere: a row cut across threads
is summed in pieces, one per thread.

``compare`` prints, per function and dtype, how many results are
bit-identical and the largest difference in units of the dtype's tolerance
(``xentbench.accuracy``, the measure of every test; a NaN in one result and
not the other is an infinite difference), and exits 1 above the tolerance.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

import impls
from xentbench import accuracy, machine

SHAPES = ((7, 10), (64, 1000), (2, 40_000), (1, 70_000), (256, 33))
DTYPES = ("float16", "float32", "float64")
SCALES = (3.0, 1000.0)


def cases():
    """``(key, labels, logits)`` per case, seeded; the wide cases carry NaN, +inf and -inf."""
    for i, (function, shape, dtype, scale) in enumerate(
            (f, s, d, c) for f in accuracy.FUNCTIONS for s in SHAPES for d in DTYPES for c in SCALES):
        rng = np.random.default_rng(i)
        big = 6e4 if dtype == "float16" else 1e30
        x = np.clip(rng.standard_normal(shape) * scale, -big, big).astype(dtype)
        z = None
        if function in accuracy.SPARSE:
            z = rng.integers(0, shape[1], size=shape[0])
        elif function in accuracy.DENSE or function == "sigmoid_cross_entropy_with_logits":
            w = rng.random(shape)
            z = (w / w.sum(axis=-1, keepdims=True)).astype(dtype)
        if scale > 100:
            x[0, shape[1] // 3] = -np.inf
            if shape[0] > 2:
                x[1, -1], x[2, 0] = np.nan, np.inf
        yield f"{function}|{'x'.join(map(str, shape))}|{dtype}|{scale:g}", z, x


def describe() -> dict:
    import llvmlite.binding as ll
    import numba
    return dict(cpu=machine.cpu(), simd=machine.simd(), numba=numba.__version__, numpy=np.__version__,
                threads=numba.get_num_threads(), llvm_cpu=numba.config.CPU_NAME or ll.get_host_cpu_name(),
                llvm_features=numba.config.CPU_FEATURES or ll.get_host_cpu_features().flatten())


def record(path: str) -> None:
    numba = impls.get("numba")
    out = {}
    with np.errstate(all="ignore"):
        for key, z, x in cases():
            function = key.split("|")[0]
            got = getattr(numba, function)(x) if z is None else getattr(numba, function)(z, x)
            for j, part in enumerate(got if isinstance(got, tuple) else (got,)):
                out[f"{j}|{key}"] = part
    np.savez(path, machine=json.dumps(describe()), **out)


def compare(path_a: str, path_b: str) -> int:
    a, b = np.load(path_a), np.load(path_b)
    print("A:", a["machine"], "\nB:", b["machine"])
    rows: dict = {}
    for key, z, x in cases():
        function, _, dtype, _ = key.split("|")
        t = accuracy.truth(function, z, x)
        for j in range(len(t.values)):
            one = accuracy.Truth(function, (t.values[j],), (t.scales[j],), (t.bounds[j],), t.dtype)
            err = one.error(a[f"{j}|{key}"], reference=b[f"{j}|{key}"]) / accuracy.tolerance(dtype)
            r = rows.setdefault((function, dtype), [0, 0, 0.0])
            r[0] += np.array_equal(a[f"{j}|{key}"], b[f"{j}|{key}"], equal_nan=True)
            r[1] += 1
            r[2] = max(r[2], err)
    print(f"{'function':52} {'dtype':8} identical  largest difference / tolerance")
    for (function, dtype), (same, n, worst) in sorted(rows.items()):
        print(f"{function:52} {dtype:8} {same:3}/{n:<3}    {worst:.3g}")
    worst = max(r[2] for r in rows.values())
    print(f"identical: {sum(r[0] for r in rows.values())} of {sum(r[1] for r in rows.values())} results; "
          f"largest difference {worst:.3g} x the tolerance")
    return 0 if worst <= 1 else 1


def digest(path: str) -> None:
    with np.load(path) as data:
        print(json.dumps({k: hashlib.sha256(data[k].tobytes()).hexdigest()[:16]
                          for k in sorted(data.files) if k != "machine"}, indent=0))


def main(argv: list[str]) -> int:
    command, *paths = argv
    if command == "describe":
        print(json.dumps(describe(), indent=1))
    elif command == "record":
        record(paths[0])
    elif command == "compare":
        return compare(*paths)
    elif command == "digest":
        digest(paths[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
