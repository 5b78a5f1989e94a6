"""Issue 30's targets for the fused linear + cross-entropy, measured in one process per question.

    OPENBLAS_CORETYPE= python experiments/linear_targets.py speed  [N D V ...]   # paired speed, SGEMM share
    OPENBLAS_CORETYPE= python experiments/linear_targets.py memory [N D V ...]   # peak memory per backend
    OPENBLAS_CORETYPE= python experiments/linear_targets.py rows D V ROWS ...     # the products' rates by rows

``speed``: numba, PyTorch's ``F.linear`` + ``F.cross_entropy`` and its chunked
``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``, forward and
backward of the summed loss, float32, in alternating turns in one process (the
median of 7 turns each, each turn one untimed call then one timed); each torch time over
numba's (above 1: numba faster); and
numba's rate, ``6 N D V`` flops over its time, against this machine's SGEMM rate
(NumPy's BLAS on the ``N x D`` by ``D x V`` product, the best of 5).

``memory``: each backend in a fresh process: the peak resident memory of a call
above the resident memory before it (inputs made, every kernel compiled on a
small vocabulary first), against issue 30's allowance for numba, ``grad_weight +
grad_hidden + 64 MiB``; twice: the process's first call of the shape, and a later
call, with what the first freed given back to the system first (``malloc_trim``)
and the peak reset (``/proc/self/clear_refs``), so that the later call's growth is
the memory the call itself needs, and the first call's also holds what the process
keeps after it (the BLAS's buffers, the threads' arenas: paid once). Default shapes: issue 30's grid without its largest
(2048 x 1024 x 128256 takes minutes per call for the unfused form).

``rows``: the rate of each of a chunk's three products, as ``impls._linear`` calls them
(the logits ``x = h W^T``, ``dh = G W``, ``dW += G^T h``), on chunks of each number of
rows, the median of 5 after one untimed: how many rows a chunk needs (``_linear.MIN_ROWS``,
``benchmarks/NOTES.md`` entry 33).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

import numpy as np

from xentbench.inputs import make_linear

SHAPES = [(256, 512, 32000), (2048, 512, 32000), (256, 1024, 32000), (2048, 1024, 32000), (256, 512, 128256),
          (256, 1024, 128256), (2048, 512, 128256)]
MIB = 2 ** 20


def calls(labels, hidden, weight):
    """The three forms, each a call of no arguments (the peers from ``xentbench.peers``)."""
    import impls
    from xentbench import peers
    torch = peers.get_backend("torch")
    chunked = peers.get_backend("torch-chunked")
    return {"numba": lambda: impls.linear_cross_entropy_and_grad(labels, hidden, weight, backend="numba"),
            "torch": lambda: torch.linear_cross_entropy_and_grad(labels, hidden, weight),
            "torch-chunked": lambda: chunked.linear_cross_entropy_and_grad(labels, hidden, weight)}


def sgemm_rate(hidden, weight) -> float:
    best = min(_timed(lambda: hidden @ weight.T) for _ in range(5))
    return 2 * hidden.shape[0] * hidden.shape[1] * weight.shape[0] / best


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def speed(shapes) -> None:
    for n, d, v in shapes:
        labels, hidden, weight = make_linear(n, d, v)
        fns = calls(labels, hidden, weight)
        for f in fns.values():
            f()
        times = {k: [] for k in fns}
        for _ in range(7):
            for k, f in fns.items():
                f()  # the lead-in: the previous form's threads (PyTorch's spin after a call) settle
                times[k].append(_timed(f))
        med = {k: float(np.median(t)) for k, t in times.items()}
        rate = 6 * n * d * v / med["numba"]
        sgemm = sgemm_rate(hidden, weight)
        print(f"N={n} D={d} V={v}: numba {med['numba']:.3f} s, torch {med['torch']:.3f} s "
              f"({med['torch'] / med['numba']:.2f}x numba's time), torch-chunked {med['torch-chunked']:.3f} s "
              f"({med['torch-chunked'] / med['numba']:.2f}x); numba {rate / 1e9:.0f} GFLOP/s = "
              f"{rate / sgemm:.0%} of SGEMM's {sgemm / 1e9:.0f} GFLOP/s", flush=True)


def rows(d: int, v: int, counts) -> None:
    from impls import _linear
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((v, d), dtype=np.float32)
    grad_weight = np.zeros_like(weight)
    for n in counts:
        hidden, g = rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((n, v), dtype=np.float32)
        products = {"logits": lambda: _linear.logits(hidden, weight, None),
                    "dh": lambda: _linear.grad_hidden_of(g, weight),
                    "dW": lambda: _linear.add_grad_weight(grad_weight, g, hidden)}
        rates = {}
        for name, f in products.items():
            f()
            rates[name] = 2 * n * d * v / float(np.median([_timed(f) for _ in range(5)])) / 1e9
        print(f"D={d} V={v} rows={n}: " + ", ".join(f"{k} {r:.0f}" for k, r in rates.items()) + " GFLOP/s",
              flush=True)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def one_peak(backend: str, n: int, d: int, v: int) -> None:
    """In a fresh process: the peak growth of a first and of a later call of ``backend`` (printed in bytes)."""
    labels, hidden, weight = make_linear(n, d, v)
    f = calls(labels, hidden, weight)[backend]
    small = calls(labels[:2] % 8, hidden[:2], weight[:8])[backend]
    small()  # compiled (numba) or initialised (torch) outside the measurement, on a small vocabulary: its
    # gradients must not raise the high-water mark before the call measured
    growth = []
    for _ in range(2):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # what the previous call freed, back to the system
        with open("/proc/self/clear_refs", "w") as c:
            c.write("5")  # the peak resident memory (VmHWM), reset to the resident memory now
        before = _rss()
        f()
        growth.append(max(_peak() - before, 0))
    print(*growth)


def memory(shapes) -> None:
    for n, d, v in shapes:
        allowance = (v * d + n * d) * 4 + 64 * MIB
        first, later = {}, {}
        for backend in ("numba", "torch", "torch-chunked"):
            done = subprocess.run([sys.executable, __file__, "one-peak", backend, str(n), str(d), str(v)],
                                  capture_output=True, text=True, check=True)
            first[backend], later[backend] = map(int, done.stdout.split()[-2:])
        print(f"N={n} D={d} V={v}: peak growth numba {first['numba'] / MIB:.0f} MiB first, "
              f"{later['numba'] / MIB:.0f} MiB later (allowance {allowance / MIB:.0f} MiB: "
              f"{'met' if first['numba'] <= allowance else 'MISSED'} first, "
              f"{'met' if later['numba'] <= allowance else 'MISSED'} later), torch "
              f"{first['torch'] / MIB:.0f}/{later['torch'] / MIB:.0f} MiB, torch-chunked "
              f"{first['torch-chunked'] / MIB:.0f}/{later['torch-chunked'] / MIB:.0f} MiB; "
              f"the logits alone {n * v * 4 / MIB:.0f} MiB", flush=True)


if __name__ == "__main__":
    what, *rest = sys.argv[1:]
    if what == "one-peak":
        one_peak(rest[0], *map(int, rest[1:]))
    elif what == "rows":
        rows(int(rest[0]), int(rest[1]), list(map(int, rest[2:])))
    else:
        numbers = list(map(int, rest))
        chosen = [tuple(numbers[i:i + 3]) for i in range(0, len(numbers), 3)] or SHAPES
        {"speed": speed, "memory": memory}[what](chosen)
