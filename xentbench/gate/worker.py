"""The worker process of ``xentbench gate``: loads one or two copies of ``impls`` and times their turns.

    python -m xentbench.gate.worker [--module MODULE] LIBRARY [LIBRARY ...]

Each ``LIBRARY`` is a folder holding an ``impls/`` (``checkout.materialise``).
With one, the worker imports it as ``impls``, first on ``sys.path``. With
two (the gate's ``--mode inprocess``), both are loaded into this process: each
import runs with the other's ``impls`` modules out of ``sys.modules``, so each
copy's relative imports and its backend registry find its own files, and each
copy's Numba kernels are cached beside its own files (Numba keys its cache by
the source file's path).

With ``--module`` (``gate --repo``), each ``LIBRARY`` holds instead the
backend module ``MODULE``'s top-level package or file: each copy is imported
from its folder, with the other's modules out of ``sys.modules`` in the same
way, and registered under a name of its own with this checkout's ``impls``,
whose front door and contract checks every plugin goes through.

The parent speaks JSON, one object a line, on the worker's stdin and on a
private copy of its stdout (the worker points file descriptor 1 at stderr, so
that nothing a library prints can break the protocol):

* ``{"op": "load", "function", "backend", "dtype", "inputs", "outputs"}``: load
  the inputs saved at ``inputs`` (``.logits.npy`` as ``dtype``: NumPy saves
  bfloat16 as raw 2-byte records; ``.labels.npy``), make the
  function's arguments (``xentbench.inputs.arguments``; the fused linear's,
  ``linear_cross_entropy_and_grad``, are saved as ``.labels.npy``, ``.hidden.npy``
  and ``.weight.npy``), call it once per
  version (compilation or cache loading: ``first`` seconds, untimed), time a
  second call (``estimate``), and save each version's result to ``outputs`` +
  ``.v<i>.npz`` when ``outputs`` is given. Answer
  ``{"versions": [{"ok", "error", "estimate", "first"}, ...]}``.
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


def top_level(module: str) -> str:
    """The top-level package of an import path (``"pkg.mod:attr"`` -> ``"pkg"``)."""
    return module.partition(":")[0].split(".")[0]


class Version:
    """One copy of ``impls`` (or of the backend module ``module``), its modules kept aside while another
    copy is active."""

    def __init__(self, folder: str, module: str | None = None):
        self.folder = folder
        self.top = "impls" if module is None else top_level(module)
        self.name = None if module is None else f"{module}@{folder}"  # its name in the registry
        self.modules: dict = {}
        if module is not None:
            self.impls = importlib.import_module("impls")  # this checkout's, shared by the copies
            if self.top == "impls":
                raise ValueError("the gated module cannot be called impls: that is the front door's name")
        with self.active():
            sys.path.insert(0, folder)
            try:
                if module is None:
                    self.impls = importlib.import_module("impls")
                else:
                    self.impls.register(self.name, module)
                    self.impls.get(self.name)  # imports the copy now, from its folder
                    found = os.path.abspath(getattr(sys.modules[self.top], "__file__", None) or "")
                    if not found.startswith(os.path.abspath(folder) + os.sep):
                        raise ImportError(f"{module} was imported from {found}, not from {folder} "
                                          "(an installed copy shadows it)")
            finally:
                sys.path.remove(folder)

    def owns(self, name: str) -> bool:
        return name == self.top or name.startswith(self.top + ".")

    def active(self):
        return _Swap(self)


class _Swap:
    """Within ``with``: ``sys.modules`` holds this version's ``impls`` modules and no other's."""

    def __init__(self, version: Version):
        self.version = version
        self.saved: dict = {}

    def __enter__(self):
        owns = self.version.owns
        self.saved = {k: sys.modules.pop(k) for k in list(sys.modules) if owns(k)}
        sys.modules.update(self.version.modules)
        return self.version

    def __exit__(self, *exc):
        owns = self.version.owns
        self.version.modules = {k: sys.modules.pop(k) for k in list(sys.modules) if owns(k)}
        sys.modules.update(self.saved)
        return False


def _call_of(version: Version, backend: str, function: str):
    impls = version.impls
    if version.name is not None:  # a copy of a backend module: its own name in the registry
        return getattr(impls.get(version.name), function)
    if hasattr(impls, "get"):
        return getattr(impls.get(backend), function)
    dispatch = getattr(impls, function)  # a library without the registry: the dispatching function
    return lambda *args: dispatch(*args, backend=backend)


def _save(path: str, result) -> None:
    import numpy as np

    values = result if isinstance(result, tuple) else (result,)
    np.savez(path, **{f"value{i}": np.asarray(v) for i, v in enumerate(values)})


class Worker:
    def __init__(self, folders, module: str | None = None):
        self.versions = [Version(f, module) for f in folders]
        self.calls: list = []
        self.args: tuple = ()

    def load(self, function: str, backend: str, dtype: str, inputs: str, outputs: str | None) -> dict:
        import ml_dtypes  # noqa: F401  (registers bfloat16 by name)
        import numpy as np

        from xentbench.inputs import LINEAR_ARGUMENTS, arguments
        from xentbench.suite import LINEAR_FUNCTION

        if function == LINEAR_FUNCTION:  # its arguments as saved
            self.args = tuple(np.load(f"{inputs}.{name}.npy") for name in LINEAR_ARGUMENTS)
        else:
            logits = np.load(inputs + ".logits.npy").view(np.dtype(dtype))
            self.args = arguments(function, logits, np.load(inputs + ".labels.npy"))
        self.calls, answers = [], []
        for i, version in enumerate(self.versions):
            try:
                start = time.perf_counter()
                with version.active():
                    call = _call_of(version, backend, function)
                    result = call(*self.args)  # compilation or cache loading, untimed
                first = time.perf_counter() - start
                start = time.perf_counter()
                call(*self.args)
                estimate = time.perf_counter() - start
                if outputs:
                    _save(f"{outputs}.v{i}.npz", result)
                answers.append({"ok": True, "error": None, "estimate": estimate, "first": first})
            except Exception as exc:  # noqa: BLE001  (a failing version is a verdict, not a crash)
                call = None
                answers.append({"ok": False, "error": f"{type(exc).__name__}: {exc}", "estimate": None,
                                "first": None})
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
    module = None
    if argv[:1] == ["--module"]:
        module, argv = argv[1], argv[2:]
    try:
        worker = Worker(argv, module)
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
