"""The worker process of ``xentbench gate``: loads one or two copies of ``impls`` and times their turns.

    python -m xentbench.gate.worker LIBRARY [LIBRARY ...]

Each ``LIBRARY`` is a folder holding an ``impls/`` (``checkout.materialise``).
With one, the worker imports it as ``impls``, first on ``sys.path``. With
two (the gate's ``--mode inprocess``), both are loaded into this process: each
import runs with the other's ``impls`` modules out of ``sys.modules``, so each
copy's relative imports and its backend registry find its own files, and each
copy's Numba kernels are cached beside its own files (Numba keys its cache by
the source file's path).

The parent speaks JSON, one object a line, on the worker's stdin and on a
private copy of its stdout (the worker points file descriptor 1 at stderr, so
that nothing a library prints can break the protocol):

* ``{"op": "load", "function", "backend", "dtype", "inputs", "outputs"}``: load
  the inputs saved at ``inputs`` (``.logits.npy`` as ``dtype``: NumPy saves
  bfloat16 as raw 2-byte records; ``.labels.npy``), make the
  function's arguments (``xentbench.inputs.arguments``), call it once per
  version (compilation or cache loading, untimed), time a second call, and
  save each version's result to ``outputs`` + ``.v<i>.npz`` when ``outputs``
  is given. Answer ``{"versions": [{"ok", "error", "estimate"}, ...]}``.
* ``{"op": "turns", "turns": [[version, number, lead_in, samples], ...]}``:
  for each turn in order, ``lead_in`` untimed calls, then ``samples`` timed
  samples of ``number`` calls. Answer ``{"times": [seconds per call, ...]}``,
  each the fastest sample of its turn: a sample during which another tenant
  took the core is slower, never faster.
* ``{"op": "interleaved", "order", "number", "lead_in", "samples"}`` (both
  versions in this process): one round with the two versions' samples
  alternating (ABBA...), after a lead-in of each. Answer ``{"times": [t0, t1]}``.
* ``{"op": "quit"}`` or end of input: exit.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback


def _is_library(name: str) -> bool:
    return name == "impls" or name.startswith("impls.")


class Version:
    """One copy of ``impls``, its modules kept aside while another copy is active."""

    def __init__(self, folder: str):
        self.folder = folder
        self.modules: dict = {}
        with self.active():
            sys.path.insert(0, folder)
            try:
                self.impls = importlib.import_module("impls")
            finally:
                sys.path.remove(folder)

    def active(self):
        return _Swap(self)


class _Swap:
    """Within ``with``: ``sys.modules`` holds this version's ``impls`` modules and no other's."""

    def __init__(self, version: Version):
        self.version = version
        self.saved: dict = {}

    def __enter__(self):
        self.saved = {k: sys.modules.pop(k) for k in list(sys.modules) if _is_library(k)}
        sys.modules.update(self.version.modules)
        return self.version

    def __exit__(self, *exc):
        self.version.modules = {k: sys.modules.pop(k) for k in list(sys.modules) if _is_library(k)}
        sys.modules.update(self.saved)
        return False


def _call_of(version: Version, backend: str, function: str):
    impls = version.impls
    if hasattr(impls, "get"):
        return getattr(impls.get(backend), function)
    dispatch = getattr(impls, function)  # a library without the registry: the dispatching function
    return lambda *args: dispatch(*args, backend=backend)


def _save(path: str, result) -> None:
    import numpy as np

    values = result if isinstance(result, tuple) else (result,)
    np.savez(path, **{f"value{i}": np.asarray(v) for i, v in enumerate(values)})


class Worker:
    def __init__(self, folders):
        self.versions = [Version(f) for f in folders]
        self.calls: list = []
        self.args: tuple = ()

    def load(self, function: str, backend: str, dtype: str, inputs: str, outputs: str | None) -> dict:
        import ml_dtypes  # noqa: F401  (registers bfloat16 by name)
        import numpy as np

        from xentbench.inputs import arguments

        logits = np.load(inputs + ".logits.npy").view(np.dtype(dtype))
        self.args = arguments(function, logits, np.load(inputs + ".labels.npy"))
        self.calls, answers = [], []
        for i, version in enumerate(self.versions):
            try:
                with version.active():
                    call = _call_of(version, backend, function)
                    result = call(*self.args)  # compilation or cache loading, untimed
                start = time.perf_counter()
                call(*self.args)
                estimate = time.perf_counter() - start
                if outputs:
                    _save(f"{outputs}.v{i}.npz", result)
                answers.append({"ok": True, "error": None, "estimate": estimate})
            except Exception as exc:  # noqa: BLE001  (a failing version is a verdict, not a crash)
                call = None
                answers.append({"ok": False, "error": f"{type(exc).__name__}: {exc}", "estimate": None})
            self.calls.append(call)
        return {"versions": answers}

    def turns(self, turns) -> dict:
        times, args, clock = [], self.args, time.perf_counter
        for version, number, lead_in, samples in turns:
            call = self.calls[version]
            for _ in range(lead_in):
                call(*args)
            best = float("inf")
            for _ in range(samples):
                start = clock()
                for _ in range(number):
                    call(*args)
                best = min(best, clock() - start)
            times.append(best / number)
        return {"times": times}


    def interleaved(self, order, number: int, lead_in: int, samples: int) -> dict:
        """Both versions in one round, sample by sample: ``lead_in`` untimed calls of each, then
        ``samples`` samples of each in ABBA order; the fastest sample of each version."""
        args, clock = self.args, time.perf_counter
        for version in order:
            for _ in range(lead_in):
                self.calls[version](*args)
        best = [float("inf")] * len(self.calls)
        for s in range(samples):
            for version in (order if s % 2 == 0 else order[::-1]):
                call = self.calls[version]
                start = clock()
                for _ in range(number):
                    call(*args)
                best[version] = min(best[version], clock() - start)
        return {"times": [b / number for b in best]}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to stderr
    sys.stdout = sys.stderr
    try:
        worker = Worker(argv)
        protocol.write(json.dumps({"ready": True}) + "\n")
    except Exception as exc:  # noqa: BLE001
        protocol.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        return 1
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            break
        try:
            answer = getattr(worker, op)(**request)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
