"""The limits of this machine, measured, and the limit that applies to one benchmark.

``measure()`` takes about thirty seconds and returns a JSON-able dict:

* ``bandwidth``: read bandwidth in bytes/s, single-thread and all-thread, of a
  vectorised Numba sum (``parallel=True``, ``fastmath``) over an array that
  lives in L2 (half the L2 of each thread), in the last-level cache (half of
  it) and in main memory (1 GiB). Each thread sums its own chunk ``reps``
  times, so a cache-resident chunk stays with its thread. The fastest of the runs
  within about a second per figure (the least disturbed on a shared machine).
* ``exp``: exp throughput of one thread, elements/s on an in-cache array of
  ``x <= 0``, the fastest of the vectorised exps this machine has (``EXPS``):
  NumPy's ``np.exp``, the numba kernels' own polynomial
  (``impls._numba_math.exp_span``) and, where installed, ``torch.exp`` on
  one thread; ``exp_source`` names the winner per dtype. A backend whose exp
  is faster than every one of them would read over 100% of the roofline;
  with NumPy's alone, the numba kernels' did (issue 16). float16 and bfloat16
  are computed in float32 by every backend, so they get the float32 rate.
* ``exp_all``: the winner's throughput on every thread at once, one process
  each with an array of its own, in the best 50 ms that all spent computing
  (``_exp_together``). Threads that are one core's hyperthreads share its
  vector units, so this is not the one-thread rate times the threads: on the
  2-vCPU machines of this project, two threads compute 0.95x one thread's exps
  in some minutes and 1.4-2x in others (``benchmarks/NOTES.md`` entry 25);
  files measured before it was added are read as if it were (``exp_ceiling``).
* ``machine``: CPU model, cores, caches, memory, library versions, Numba's
  threading layer and thread count (the layer ``impls.numba_parallel`` selects).

``limit()`` turns that into the bound for one benchmark: the bytes one element
of logits costs (``TRAFFIC``: every array the function reads or writes, in
units of the logits' size; labels of the sparse functions are negligible) at
the bandwidth of the level its working set fits in (L2 summed over the
threads, else the last-level cache, else memory), and the transcendental
functions one element costs (``TRANSCENDENTALS``) at the all-thread exp rate;
the limit is the smaller of the two, in logits elements/s.
Writes are counted at the read bandwidth, which flatters the machine a little
(a write-allocate store costs a read and a write), so a fraction of the limit
is an upper estimate of how close a backend comes.
"""

from __future__ import annotations

import importlib.metadata
import json
import multiprocessing
import os
import platform
import queue
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from xentbench import machine, quirks

#: Arrays touched per logits element, in units of the logits' itemsize:
#: logits read, plus labels read (dense), plus outputs written of the logits' size.
TRAFFIC = {
    "softmax": 2,  # read x, write p
    "log_softmax": 2,
    "softmax_cross_entropy_with_logits": 2,  # read x, read z
    "sparse_softmax_cross_entropy_with_logits": 1,  # read x (one label per row)
    "sigmoid_cross_entropy_with_logits": 3,  # read x, read z, write loss
    "softmax_cross_entropy_with_logits_and_grad": 3,  # read x, z; write grad
    "sparse_softmax_cross_entropy_with_logits_and_grad": 2,  # read x; write grad
}
#: exp-like evaluations per element (sigmoid: exp and log1p).
TRANSCENDENTALS = {f: 1 for f in TRAFFIC} | {"sigmoid_cross_entropy_with_logits": 2}

LIBRARIES = ("numpy", "numba", "tensorflow-cpu", "tensorflow", "torch", "jax", "jaxlib", "tbb",
             "asv", "matplotlib")


def _cache_sizes() -> dict:
    """Bytes per instance of each data/unified cache level of cpu0, from sysfs."""
    sizes = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        kind = machine.read(index / "type").strip()
        if kind == "Instruction":
            continue
        text = machine.read(index / "size").strip().upper()
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            sizes[f"L{machine.read(index / 'level').strip()}"] = int(text.rstrip("KMG")) * mult
        except ValueError:
            continue
    return sizes


def machine_info() -> dict:
    """What the report header states about this machine, the reference's quirks included."""
    mem = next((int(line.split()[1]) * 1024 for line in machine.read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), None)
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    if "tensorflow-cpu" in versions:
        versions.pop("tensorflow", None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return dict(hostname=platform.node(), cpu=machine.cpu(), simd=machine.simd(), cores=cores,
                logical_cpus=os.cpu_count(), caches=_cache_sizes(), memory_bytes=mem,
                os=f"{platform.system()} {platform.release()}",
                python=platform.python_version(), libraries=versions, reference=quirks.summary())


def _kernels():
    from numba import njit, prange

    @njit(fastmath=True)
    def vector_sum(x):  # this simple form is the one LLVM vectorises
        s = np.float32(0)
        for i in range(x.shape[0]):
            s += x[i]
        return s

    @njit(parallel=True, fastmath=True)
    def chunk_sums(a, nchunks, reps):
        """Each of ``nchunks`` chunks of ``a`` summed ``reps`` times (vectorised)."""
        size = a.shape[0] // nchunks
        out = np.zeros(nchunks, dtype=np.float32)
        for c in prange(nchunks):
            chunk = a[c * size:(c + 1) * size]
            s = np.float32(0)
            for _ in range(reps):
                s += vector_sum(chunk)
            out[c] = s
        return out

    return chunk_sums


@contextmanager
def _numpy_exp(x, y):
    yield lambda: np.exp(x, out=y)


@contextmanager
def _numba_exp(x, y):
    from impls._numba_math import exp_span

    yield lambda: exp_span(x, y)


@contextmanager
def _torch_exp(x, y):
    import torch

    tx, ty, threads = torch.from_numpy(x), torch.from_numpy(y), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield lambda: torch.exp(tx, out=ty)
    finally:
        torch.set_num_threads(threads)


#: the exps the ceiling is the fastest of (``measure``): name -> context manager giving a call
#: that writes ``exp(x)`` into ``y``
EXPS = {"numpy": _numpy_exp, "numba": _numba_exp, "torch": _torch_exp}


def _best(fn, repeats: int, min_time: float = 0.0) -> float:
    """Fastest of up to ``repeats`` calls, stopping after ``min_time`` seconds (and 3 calls).

    On a shared machine the fastest of many short runs is the one least
    disturbed; spreading them over a second or two catches a quiet moment.
    """
    best = float("inf")
    start = time.perf_counter()
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if min_time and time.perf_counter() - start > min_time and i >= 2:
            break
    return best


def _exp_call(source: str, dtype):
    """``EXPS[source]`` over an in-cache array of ``x <= 0`` of ``dtype``: (context, size)."""
    x = np.random.default_rng(0).uniform(-10, 0, 1 << 14).astype(dtype)
    return EXPS[source](x, np.empty_like(x)), x.size


def _exp_rate(source: str, dtype, min_time: float = 1.0) -> float:
    """exp elements/s of ``EXPS[source]`` on one thread: the fastest run of 200 calls within
    ``min_time`` seconds."""
    context, size = _exp_call(source, dtype)
    reps = 200
    with context as call:
        call()  # compile, load

        def run():
            for _ in range(reps):
                call()

        return size * reps / _best(run, repeats=2000, min_time=min_time)


def _exp_worker(source: str, dtype, seconds: float, slot: float, barrier, results) -> None:
    """Puts the exp elements ``EXPS[source]`` computed in each ``slot`` of the monotonic clock
    (shared by every process) for ``seconds`` after ``barrier``, by the slot's number."""
    context, size = _exp_call(source, dtype)
    with context as call:
        call()  # compile, load
        done: dict[int, int] = {}
        barrier.wait()
        end = time.perf_counter() + seconds
        while (now := time.perf_counter()) < end:
            call()
            k = int(now // slot)
            done[k] = done.get(k, 0) + size
    results.put(done)


def _exp_together(source: str, dtype, processes: int, seconds: float = 2.0, slot: float = 0.05) -> float:
    """exp elements/s of ``EXPS[source]`` on ``processes`` threads at once.

    One process per thread (no GIL between their calls), started together;
    each counts the elements it computes in each slot of ``slot`` seconds of
    the clock they share. The rate is the best slot's sum over the processes,
    among the slots every process spent whole in its loop. The fastest
    single run of each process would not do: a process's fastest run is one
    that the others left the core to."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs TBB's threads
    barrier, results = context.Barrier(processes, timeout=120), context.Queue()
    workers = [context.Process(target=_exp_worker, args=(source, dtype, seconds, slot, barrier, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    done = []
    try:
        while len(done) < processes:
            try:
                done.append(results.get(timeout=1.0))
            except queue.Empty:
                if any(worker.exitcode for worker in workers):  # its traceback is on stderr
                    raise RuntimeError(f"exp of {source} ({dtype}): a measuring process failed") from None
    finally:
        for worker in workers:
            if len(done) < processes:
                worker.terminate()
            worker.join()
    whole = set.intersection(*(set(d) - {min(d), max(d)} for d in done))
    if not whole:
        raise RuntimeError(f"exp on {processes} processes: no slot of {slot} s that all spent whole in their loop")
    return max(sum(d[k] for d in done) for k in whole) / slot


def measure(memory_bytes: int = 1 << 30, progress=None) -> dict:
    """Measure this machine's bandwidths and exp rate (see the module docstring)."""
    import numba

    import impls.numba_parallel  # noqa: F401  selects the threading layer the benchmarks use

    say = progress or (lambda msg: None)
    info = machine_info()
    threads = numba.config.NUMBA_NUM_THREADS
    caches = info["caches"]
    l2 = caches.get("L2", 512 << 10)
    llc = caches.get(max(caches), 32 << 20) if caches else 32 << 20
    chunk_sums = _kernels()
    item = np.dtype(np.float32).itemsize

    def rate(nbytes: int, nthreads: int, target_bytes: float) -> float:
        n = nbytes // item
        a = np.ones(n, dtype=np.float32)  # touched: pages are resident before timing
        reps = max(1, int(target_bytes // nbytes))
        numba.set_num_threads(nthreads)
        try:
            chunk_sums(a[: nthreads * 64], nthreads, 1)  # compile
            seconds = _best(lambda: chunk_sums(a, nthreads, reps), repeats=100, min_time=1.0)
        finally:
            numba.set_num_threads(threads)
        return n * item * reps / seconds

    bandwidth = {}
    levels = {"L2": lambda t: (l2 // 2) * t, "LLC": lambda t: llc // 2, "memory": lambda t: memory_bytes}
    for level, size in levels.items():
        for label, t in (("single", 1), ("all", threads)):
            say(f"read bandwidth: {level}, {label}-thread")
            nbytes = max(size(t) // (t * 64 * item) * (t * 64 * item), t * 64 * item)
            bandwidth.setdefault(level, {})[label] = rate(nbytes, t, target_bytes=max(nbytes, 1 << 30))
    exp, exp_all, exp_source = {}, {}, {}
    for dtype in ("float32", "float64"):
        for source in EXPS:
            say(f"exp throughput: {dtype}, {source}, one thread")
            try:
                rate = _exp_rate(source, dtype)
            except ImportError:  # torch not installed
                continue
            if rate > exp.get(dtype, 0.0):
                exp[dtype], exp_source[dtype] = rate, source
        say(f"exp throughput: {dtype}, {exp_source[dtype]}, {threads} threads at once")
        exp_all[dtype] = _exp_together(exp_source[dtype], dtype, threads)
    for half in ("float16", "bfloat16"):
        exp[half], exp_source[half] = exp["float32"], exp_source["float32"]
    info.update(numba_threading_layer=numba.threading_layer(), numba_threads=threads)
    return dict(version=2, measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), machine=info,
                threads=threads, cache_bytes={"L2": l2 * threads, "LLC": llc},
                bandwidth=bandwidth, exp=exp, exp_all=exp_all, exp_source=exp_source)


def load(path) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    for key in ("bandwidth", "exp", "cache_bytes", "threads", "machine"):
        if key not in data:
            raise ValueError(f"{path}: not a roofline file (no {key!r})")
    return data


def save(data: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def same_machine(a: dict, b: dict) -> bool:
    keys = ("hostname", "cpu", "cores", "memory_bytes", "caches")
    return all(a.get("machine", {}).get(k) == b.get("machine", {}).get(k) for k in keys)


def merge(old: dict | None, new: dict) -> dict:
    """``new``, with each bandwidth and exp figure the best of ``old``'s and ``new``'s.

    A ceiling is the best the machine can do; on a shared machine every
    measurement is disturbed a little, so repeated measurements (``xentbench
    report --measure``) keep the best of each figure. ``old`` of another
    machine (hostname, CPU, cores, memory, caches) is ignored.
    """
    if not old or not same_machine(old, new):
        return dict(new, measurements=1)
    out = dict(new, measurements=old.get("measurements", 1) + 1)
    out["bandwidth"] = {lvl: {k: max(v, old["bandwidth"].get(lvl, {}).get(k, 0)) for k, v in per.items()}
                        for lvl, per in new["bandwidth"].items()}
    out["exp"], out["exp_source"] = {}, {}
    for k, v in new["exp"].items():  # the faster figure, and the exp that gave it (NumPy's in older files)
        best = new if v >= old["exp"].get(k, 0) else old
        out["exp"][k], out["exp_source"][k] = best["exp"][k], best.get("exp_source", {}).get(k, "numpy")
    if "exp_all" in new:  # older files have none: the new figures
        out["exp_all"] = {k: max(v, old.get("exp_all", {}).get(k, 0)) for k, v in new["exp_all"].items()}
    return out


def level(roof: dict, working_set_bytes: float) -> str:
    """The memory level a working set of this many bytes is served from."""
    if working_set_bytes <= roof["cache_bytes"]["L2"]:
        return "L2"
    if working_set_bytes <= roof["cache_bytes"]["LLC"]:
        return "LLC"
    return "memory"


def exp_ceiling(roof: dict, dtype: str) -> float:
    """exps/s of every thread at once in the dtype ``dtype`` is computed in: float32's for half
    precision (a file measured before bfloat16 came in names float16 alone). A file measured
    before ``exp_all`` gives its one-thread rate times the threads, as the ceiling was then."""
    name = np.dtype(dtype).name
    name = "float32" if name in ("float16", "bfloat16") else name
    if "exp_all" in roof:
        return roof["exp_all"][name]
    return roof["exp"][name] * roof["threads"]


def ceilings(roof: dict, function: str, working_set_bytes: float, dtype: str) -> tuple[float, float]:
    """(bandwidth ceiling, exp ceiling) in logits elements/s for a working set of this size."""
    traffic = TRAFFIC[function] * np.dtype(dtype).itemsize
    bw = roof["bandwidth"][level(roof, working_set_bytes)]["all"]
    return bw / traffic, exp_ceiling(roof, dtype) / TRANSCENDENTALS[function]


def limit(roof: dict, function: str, batch: int, classes: int, dtype: str) -> dict:
    """The bound on logits elements/s for one shape: its value, which limit it is
    (``"exp"`` or the memory level) and the level the working set fits in."""
    working_set = batch * classes * TRAFFIC[function] * np.dtype(dtype).itemsize
    where = level(roof, working_set)
    by_memory, compute = ceilings(roof, function, working_set, dtype)
    if by_memory <= compute:
        return dict(elements_per_s=by_memory, bound=where, level=where)
    return dict(elements_per_s=compute, bound="exp", level=where)


def main() -> int:  # python -m xentbench.roofline [out.json]: measure (and merge into out.json)
    data = measure(progress=lambda m: print(m, file=sys.stderr))
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
        data = merge(load(path) if path.exists() else None, data)
        save(data, path)
    text = json.dumps(data, indent=1, sort_keys=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
