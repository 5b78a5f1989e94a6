"""The README's examples run: every ``>>>`` line of README.md shows what it prints.

The ```python blocks that hold ``>>>`` lines run in order, as one doctest
session (a later block uses the names an earlier one imported), with
whitespace normalised and ``...`` matching anything; a failure names the
README's line.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[int, str]]:
    """``(line of the block's first line, text)`` of each ```python block with a ``>>>`` line."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)), m.group(1)) for m in BLOCK.finditer(text) if ">>>" in m.group(1)]


def test_readme_has_examples():
    assert len(blocks()) >= 1


def test_readme_examples_print_what_they_show():
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report: list[str] = []
    globs: dict = {}
    for line, text in blocks():
        test = parser.get_doctest(text, globs, f"README.md, the block at line {line + 1}", str(README), line)
        runner.run(test, out=report.append, clear_globs=False)
        globs.update(test.globs)  # a DocTest runs in a copy of the names it is given
    assert runner.failures == 0, "".join(report)
