"""What the report's tests share: the recorded fixture (tests/data/report_asv), its arguments, reading
the Markdown's tables, and a drawing stub."""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import struct
import zlib
from pathlib import Path

from xentbench.report import command as report

DATA = Path(__file__).parent / "data" / "report_asv"
RESULTS = DATA / "results"
NEW, OLD = "a1b2c3d4", "0fedcba9"


def args_for(*argv):
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    return parser.parse_args(["--results", str(RESULTS), "--jobs", "1", "--quiet", *argv])


def tables_under(md: str, heading: str) -> list[list[dict]]:
    """The Markdown tables between ``heading`` and the next heading of its level or above."""
    level = heading.split(" ")[0]
    lines = md.splitlines()
    start = lines.index(heading)
    body = []
    for line in lines[start + 1:]:
        if line.startswith("#") and len(line.split(" ")[0]) <= len(level):
            break
        body.append(line)
    tables, current = [], []
    for line in body + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip("|").split(" | ")])
        elif current:
            header, rows = current[0], current[2:]
            tables.append([dict(zip(header, r)) for r in rows])
            current = []
    return tables


def fake_render(jobs, workers, progress):
    """Instead of matplotlib: a valid 1x1 PNG per figure (for the tests of folders and failures)."""
    for _, path, _, _ in jobs:
        Path(path).write_bytes(PNG_1x1)


def _png_1x1() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


PNG_1x1 = _png_1x1()


def numba_only(tmp_path: Path) -> Path:
    """The fixture's results of NEW as a run of ``xentbench bench --backend numba`` would record them."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    path = next((results / "testbox").glob(f"{NEW}-*.json"))
    data = json.loads(path.read_text())
    for name, row in list(data["results"].items()):
        if name.startswith(("bench_paired.", "bench_options.OptionsSpeedup.")):  # the paired run's
            del data["results"][name]
        elif row[1][0][0] == "'numba'":  # the backend parameter first: the other backends are n/a
            combos = list(itertools.product(*row[1]))
            row[0] = [v if combo[0] == "'numba'" else float("nan") for v, combo in zip(row[0], combos)]
    path.write_text(json.dumps(data))
    return results
