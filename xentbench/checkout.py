"""The git and checkout helpers of the tools: find the checkout, resolve a revision, materialise a library.

    root = find_root()                        # the folder of asv.conf.json
    commit = resolve("main~1", root)          # the full hash; CheckoutError if git does not know it
    library = materialise(commit, tmp, root)  # impls/ of that commit, under tmp
    # put ``library`` first on sys.path (or in XENTBENCH_LIBRARY for the asv suite)
    # and ``import impls`` imports that commit's library

Only ``LIBRARY`` (``impls/``, the code under test) is materialised: the
instruments (``xentbench``, ``benchmarks``) stay those of the working tree, so
two commits are measured by the same benchmark code and judged by the same
error measure. Every git failure, git missing included, is ``CheckoutError``.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

#: what ``materialise`` exports of a commit: the code under test, not the instruments
LIBRARY = ("impls",)


class CheckoutError(RuntimeError):
    """A git command that failed, or git itself missing; the message says which."""


def find_root() -> Path:
    """The directory of ``asv.conf.json``: here or above, else the checkout of this package."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "asv.conf.json").exists():
            return folder
    package_root = Path(__file__).resolve().parents[1]
    if (package_root / "asv.conf.json").exists():
        return package_root
    raise FileNotFoundError("no asv.conf.json here or above; run from the xentbench checkout")


def git(root, *args) -> str:
    """``git args`` run in ``root``: its output, stripped; ``CheckoutError`` if it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except OSError as exc:
        raise CheckoutError(f"git {' '.join(args)}: {exc}") from None
    if done.returncode != 0:
        raise CheckoutError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(rev: str, root=".") -> str:
    """The full hash of the commit ``rev`` names in the repository at ``root``."""
    return git(root, "rev-parse", "--verify", f"{rev}^{{commit}}")


def has_path(rev: str, path: str, root=".") -> bool:
    """Whether the commit ``rev`` holds ``path`` (a file or a folder)."""
    return subprocess.run(["git", "cat-file", "-e", f"{rev}:{path}"], cwd=root, capture_output=True).returncode == 0


def is_ancestor(older: str, newer: str, root=".") -> bool:
    """Whether the commit ``older`` is ``newer`` or one of its ancestors."""
    return subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=root,
                          capture_output=True).returncode == 0


def library_changes(root) -> str:
    """``git status --porcelain`` of ``LIBRARY`` in the working tree: empty when it is that of HEAD."""
    return git(root, "status", "--porcelain", "--", *LIBRARY)


def materialise(rev: str, dest, root=".", paths=LIBRARY) -> Path:
    """``paths`` (``LIBRARY``) of the tree ``rev``, written under ``dest`` (``git archive``); returns ``dest``.

    ``dest`` then holds ``impls/`` as it was at ``rev``: the folder to put
    first on ``sys.path``. ``rev`` may name a subtree (``"<commit>:src"``),
    whose paths are then relative to it.
    """
    dest = Path(dest)
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", rev, *paths], cwd=root,
                                 capture_output=True)
    except OSError as exc:
        raise CheckoutError(f"git archive {rev}: {exc}") from None
    if archive.returncode != 0:
        raise CheckoutError(f"git archive {rev}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest
