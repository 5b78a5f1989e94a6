"""The reports folder: a report's place in it, never over another, and its index.

A report is built in a hidden temporary folder (``TMP_PREFIX``) and renamed
into place only when complete; ``index.md`` lists the folders that hold a
``meta.json``, so an interrupted report is never listed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "machine"


TMP_PREFIX = ".tmp-report-"


def sweep(out: Path, age_s: float = 3600) -> None:
    """Remove the hidden folders of reports killed (SIGKILL, power cut) over an hour ago."""
    for stale in out.glob(TMP_PREFIX + "*"):
        try:
            if time.time() - stale.stat().st_mtime > age_s:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            continue


def place(tmp: Path, out: Path, base: str) -> Path:
    """Rename ``tmp`` to ``out/base`` (or ``base-2``, ...), never over an existing folder."""
    n = 1
    while True:
        final = out / (base if n == 1 else f"{base}-{n}")
        if not final.exists():
            try:
                os.rename(tmp, final)  # atomic; fails if a non-empty folder appeared meanwhile
                return final
            except OSError:
                if not final.exists():
                    raise
        n += 1


def write_index(out: Path) -> Path:
    """``index.md``: one line per complete report folder (those with ``meta.json``), newest first."""
    entries = []
    for meta_path in out.glob("*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entries.append((meta.get("generated", ""), meta_path.parent.name, meta))
    lines = ["# xentbench reports", "",
             "Made by `xentbench report` from recorded asv results (`xentbench bench`); newest first. "
             "Each folder has `report.md` with its plots and a self-contained `report.html`.", "",
             "| report | machine | commit | commit date | compared with | generated | headline |",
             "|:---|:---|:---|:---|:---|:---|:---|"]
    for generated, name, meta in sorted(entries, reverse=True):
        head = " ".join(meta.get("headline", [])[:2]).replace("|", "\\|")
        lines.append(f"| [{name}]({name}/report.md) ([html]({name}/report.html)) | {meta.get('machine', '')} "
                     f"| `{meta.get('commit', '')[:8]}` | {meta.get('commit_date', '')} "
                     f"| {('`' + meta['compare'][:8] + '`') if meta.get('compare') else ''} | {generated} | {head} |")
    index = out / "index.md"
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, index)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return index

