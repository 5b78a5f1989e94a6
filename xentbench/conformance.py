"""Run the test suite's checks against any backend: ``xentbench conformance NAME``.

What ``tests/`` proves for the built-in backends, proved for one backend (a
registered name, a plugin's entry point, or a module path such as
``mypkg.myloss``): agreement with TensorFlow and the extended-precision truth
over the grid of shapes, dtypes and logit scales (``test_differential``),
gradients against TensorFlow's tape and finite differences
(``test_gradients``), the named edge cases, NaN and inf semantics and the
documented errors (``test_edge_cases``), properties (``test_properties``),
hostile input and inputs never modified (``test_hostile_input``), the fused linear
+ cross-entropy where the backend offers it (``test_linear``), and eight
concurrent callers getting the sequential results (``test_reliability``).

It runs pytest on the repository's ``tests/`` with ``--backend NAME`` (which
keeps the tests that check that backend, ``tests/conftest.py``), shows
pytest's progress on stderr, then prints one table: per test, how many cases
passed, failed, were not implemented by the backend, were less accurate
than TensorFlow but within what a backward-stable algorithm gives (a pass,
counted apart: ``xentbench.accuracy``), or were skipped. Exit
status: 0 when nothing failed, 1 on any failure or when the run outlasts
``--timeout`` (a backend that hangs), 2 when it cannot run: the backend is
unknown or cannot import here (the message says why), or there is no
``tests/`` beside the package (not a clone of the repository). pytest runs
from the repository's root with the current folder on ``PYTHONPATH``, so it
finds the modules this command finds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import impls

TESTS = Path(__file__).resolve().parents[1] / "tests"
OUTCOMES = ("passed", "failed", "not implemented", "less accurate", "skipped")
#: The skips that are outcomes of their own, by how their message begins (tests/conftest.py): a
#: function the backend does not offer, and a result beyond the tolerance but within the
#: backward-stable bound (``xentbench.accuracy``: correct for the input's precision).
COUNTED_SKIPS = {"not implemented": "not implemented", "less accurate than TensorFlow": "less accurate"}
#: Seconds the whole run may take (a built-in backend needs 2-3 minutes here) before it is failed as hanging.
RUN_TIMEOUT = 1800.0
PARAMETERS = re.compile(r"\[.*$")  # a test case's parameters, "[...]" at the end of its name


def add_arguments(parser) -> None:
    parser.add_argument("backend", metavar="NAME", help="a registered backend name or a module path")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, metavar="SECONDS",
                        help=f"time limit of the whole run (default {RUN_TIMEOUT:g}): a backend that hangs fails")
    parser.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARG",
                        help="passed on to pytest, after -- and after the options above: "
                             "xentbench conformance --timeout 600 NAME -- -x -k sparse")


def outcomes(junit: Path) -> dict[str, Counter]:
    """Per test (its name without the parameters): how many cases ended each way, from pytest's JUnit XML."""
    table: dict[str, Counter] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").rpartition(".")[2]
        test = f"{module}::{PARAMETERS.sub('', case.get('name', ''))}"
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif skipped is not None:
            message = skipped.get("message", "")
            outcome = next((o for start, o in COUNTED_SKIPS.items() if start in message), "skipped")
        else:
            outcome = "passed"
        table.setdefault(test, Counter())[outcome] += 1
    return table


def format_table(name: str, table: dict[str, Counter]) -> str:
    rows = [["test"] + list(OUTCOMES)] + [[test] + [str(c[o]) for o in OUTCOMES] for test, c in table.items()]
    total = sum(table.values(), Counter())
    rows.append(["total"] + [str(total[o]) for o in OUTCOMES])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    verdict = "FAIL" if total["failed"] else "pass"
    return "\n".join([f"conformance of backend {name!r}: {verdict}"] + lines)


def run(args) -> int:
    if not TESTS.is_dir():
        print(f"xentbench conformance: no test suite at {TESTS}; it runs the repository's tests/, so "
              "install xentbench from a clone (pip install -e .)", file=sys.stderr)
        return 2
    try:
        impls.get(args.backend)  # fail fast: every test of a backend that cannot load would be skipped
    except (ValueError, impls.BackendUnavailable) as exc:
        print(f"xentbench conformance: cannot run: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", str(TESTS), "--backend", args.backend, "-q", "-p",
               "no:cacheprovider", "-rf", f"--junitxml={junit}", *args.pytest_args]
        try:
            done = subprocess.run(cmd, cwd=TESTS.parent, env=env, stdout=sys.stderr, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"conformance of backend {args.backend!r}: FAIL\nno result after {args.timeout:g} s: "
                  "a call hangs (pytest's progress above shows the last test that started)")
            return 1
        if not junit.exists() or done.returncode not in (0, 1):
            print(f"xentbench conformance: pytest ended with status {done.returncode}", file=sys.stderr)
            return 2
        print(format_table(args.backend, outcomes(junit)))
    return 1 if done.returncode else 0
