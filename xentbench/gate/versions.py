"""The two versions a gate compares: this checkout's ``impls/``, or a backend module of another repository.

    folder, commit = library("origin/main", "base", cache_dir, root)                # impls/ of that commit
    folder, commit = library("v1.2", "base", cache_dir, repo, module="mypkg.loss")  # a plugin's module

Each revision is materialised (``checkout.materialise``, ``git archive``)
once into a folder of ``cache_dir`` named after the git tree of its ``impls/``,
so that each version keeps its own Numba disk cache, and two revisions with the
same ``impls/`` (an A/A gate, CI's smoke run, a change that leaves the library
alone) share one: the worker imports each copy from that folder, and the
second loads what the first compiled (Numba keys its cache by the source
file's path). The folder is the one the worker puts first on ``sys.path``. With ``module`` (``--repo PATH --backend MODULE``), what is
materialised is the module's top-level package or file, found at the root of
the repository or under ``src/`` (the two layouts of ``pyproject.toml``
projects); the instruments, ``impls``' front door included, stay this
checkout's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from xentbench import checkout
from xentbench.gate.measure import GateError
from xentbench.gate.worker import top_level

#: where a module's top-level package or file may lie in its repository: the flat and the src layouts
LAYOUTS = ("", "src")


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xentbench" / "gate"


def module_source(commit: str, module: str, root) -> tuple[str, str]:
    """``(tree, path)`` of the module's top-level package or file at ``commit``, for ``checkout.materialise``."""
    top = top_level(module)
    tried = []
    for layout in LAYOUTS:
        for name in (top, f"{top}.py"):
            path = f"{layout}/{name}" if layout else name
            tried.append(path)
            if checkout.has_path(commit, path, root):
                return (f"{commit}:{layout}" if layout else commit), name
    raise GateError(f"module {module!r} not found at {commit[:12]} in {root}: none of {', '.join(tried)}")


def resolve(rev: str, root) -> str:
    """The full hash of ``rev`` in the repository at ``root``; ``GateError`` if git does not know it."""
    try:
        return checkout.resolve(rev, root)
    except checkout.CheckoutError as exc:
        raise GateError(str(exc)) from None


def library(rev: str, role: str, cache_dir: Path, root, module: str | None = None) -> tuple[Path, str]:
    """``(folder to put first on sys.path, full commit hash or the folder's name)`` of a revision.

    Without ``module``: the folder holding ``impls/`` of ``rev`` of this checkout (one per tree of
    ``impls/``, whatever the ``role``), or ``rev`` itself when it is such a folder. With ``module``: the
    folder holding the module's top-level package or file at ``rev`` of the repository at ``root``, one
    per commit and ``role`` (``"base"``, ``"head"``).
    """
    given = Path(rev)
    if module is None and (given / "impls" / "__init__.py").is_file():
        return given.resolve(), str(given)
    commit = resolve(rev, root)
    if module is None:
        tree, paths = commit, checkout.LIBRARY
    else:
        tree, path = module_source(commit, module, root)
        paths = (path,)
    if module is None:
        folder = cache_dir / ("impls-" + "-".join(checkout.git(root, "rev-parse", f"{commit}:{p}") for p in paths))
    else:
        folder = cache_dir / f"{commit}-{role}-{top_level(module)}"
    if not folder.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=cache_dir))
        try:
            checkout.materialise(tree, staging, root, paths)
        except checkout.CheckoutError as exc:
            raise GateError(str(exc)) from None
        try:
            os.replace(staging, folder)
        except OSError:  # another gate materialised it meanwhile
            pass
    return folder, commit
