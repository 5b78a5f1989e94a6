"""The documentation site builds with no warnings, its examples pass, and its pages work in a browser.

Sphinx builds ``docs/`` as the README says (``-W --keep-going``: any warning fails): the HTML once
for this module, then the doctest builder, which runs every example of the guides (their
```{doctest}`` blocks) and of the docstrings the API reference includes. The browser test renders
the built pages in headless Chromium (Debian's ``chromium``, which ``.ci/run`` installs) and
searches them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xentbench import cli

import impls

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: the guides the index lists, by file
GUIDES = ("getting-started", "own-implementation", "options", "precision", "gate", "benchmarks", "guarantees",
          "performance")
#: every example the docs hold runs: fewer than this many means the builder found fewer than there are
MIN_EXAMPLES = 60


def sphinx(builder: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, str(DOCS),
                           str(out)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The HTML site, built once; the build's failure fails every test that reads it."""
    out = tmp_path_factory.mktemp("docs") / "html"
    done = sphinx("html", out)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def text_of(html: str) -> str:
    """The words of some HTML, tags left out."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


#: the functions of impls._api, documented with numpydoc
PUBLIC = [name for name in impls.__all__ if getattr(getattr(impls, name), "__module__", "") == "impls._api"]


def test_the_docs_build_without_warnings_and_hold_every_guide(site):
    for guide in GUIDES:
        assert (site / "guides" / f"{guide}.html").is_file(), guide
    index = (site / "index.html").read_text(encoding="utf-8")
    for guide in GUIDES:
        assert f'href="guides/{guide}.html"' in index, guide


def test_the_api_reference_shows_every_function_with_its_real_signature(site):
    page = (site / "reference" / "api.html").read_text(encoding="utf-8")
    assert len(PUBLIC) == 11, PUBLIC
    for name in PUBLIC + ["register", "get", "names", "available", "Backend"]:
        assert f'id="impls.{name}"' in page, name
    entry = page[page.index('id="impls.sparse_softmax_cross_entropy_with_logits"'):]
    signature = text_of(entry[:entry.index("</dt>")])
    for parameter in ("labels", "logits", "label_smoothing", "ignore_index", "class_weights", "reduction",
                      "z_loss", "backend"):
        assert parameter in signature, (parameter, signature)
    assert "Raises" in entry and "Examples" in entry


def test_the_command_reference_is_every_commands_help(site):
    page = text_of((site / "reference" / "commands.html").read_text(encoding="utf-8"))
    for name in cli.COMMANDS:
        assert f"usage: xentbench {name}" in page, name
    assert "--threshold" in page and "--roofline" in page


def test_every_example_in_the_docs_runs(tmp_path):
    done = sphinx("doctest", tmp_path / "doctest")
    summary = (tmp_path / "doctest" / "output.txt").read_text(encoding="utf-8")
    assert done.returncode == 0, summary[-4000:] + done.stderr[-2000:]
    tests = int(re.search(r"^\s*(\d+) tests$", summary, re.M).group(1))
    assert tests >= MIN_EXAMPLES, summary
    assert re.search(r"^\s*0 failures in tests$", summary, re.M), summary
    # the API reference's examples are the docstrings' (autodoc includes them): at least one a function
    api = re.search(r"^Document: reference/api\n-+\n(?:.*\n)*?(\d+) tests in", summary, re.M)
    assert api and int(api.group(1)) >= len(PUBLIC), summary


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_is_documented_in_numpydoc_sections(name):
    doc = getattr(impls, name).__doc__
    for section in ("Parameters", "Returns", "Raises", "Examples"):
        assert f"\n{section}\n{'-' * len(section)}\n" in doc, (name, section)
    assert "backend : str" in doc and ">>> " in doc.split("Examples\n")[1], name


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it where apt-get runs as root)")
    return found


def dump_dom(browser: str, url: str) -> str:
    """The page's DOM once its scripts ran (5 s of virtual time: the search is JavaScript)."""
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_pages_load_in_chromium(site):
    browser = chromium()
    for page in ["index.html", "reference/api.html", "reference/commands.html"] + [
            f"guides/{g}.html" for g in GUIDES]:
        dom = dump_dom(browser, (site / page).as_uri())
        assert "<h1" in dom and "xentbench" in dom, page


def test_the_search_finds_softmax_in_chromium(site):
    dom = dump_dom(chromium(), (site / "search.html").as_uri() + "?q=softmax")
    found = re.search(r"found (\d+) pages? matching", dom)
    assert found and int(found.group(1)) > 0, dom[-3000:]
    assert 'href="reference/api.html#impls.softmax"' in dom
