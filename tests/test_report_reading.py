"""A report a newcomer can read: a headline of plain sentences, each backed by a table; how its figures
were measured; single calls shown as such and never judged; no absolute path of the machine that made it.

The reports are made from the recorded fixture (tests/data/report_asv) with the drawing stubbed out.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from xentbench import timing
from xentbench.report import command as report
from xentbench.report.document import anchor

from reporting import NEW, OLD, RESULTS, args_for, fake_render, tables_under

REPORTS = Path(__file__).resolve().parents[1] / "reports"
#: what an absolute path of a POSIX machine starts with, as a report would show it
ABSOLUTE = re.compile(r"(?:^|[\s`(='\"])/(?:work|tmp|home|root|usr|opt|var|mnt)/")


def section(md: str, heading: str) -> str:
    return md.split(f"\n## {heading}\n")[1].split("\n## ")[0]


def make(tmp_path: Path, monkeypatch, *argv, results: Path = RESULTS) -> tuple[Path, str]:
    monkeypatch.setattr(report, "render", fake_render)
    args = args_for("--commit", NEW, "--out", str(tmp_path / "reports"), *argv)
    args.results = results
    folder = report.make_report(args, argv=["report", "--results", str(results), *argv])
    return folder, (folder / "report.md").read_text(encoding="utf-8")


@pytest.fixture
def made(tmp_path, monkeypatch):
    return make(tmp_path, monkeypatch, "--compare", OLD)


def test_the_headline_is_three_to_five_sentences_each_backed_by_a_section(made):
    folder, md = made
    items = [line[2:] for line in section(md, "Headline").splitlines() if line.startswith("- ")]
    assert 3 <= len(items) <= 5, items
    headings = {anchor(line.lstrip("# ")) for line in md.splitlines() if line.startswith("## ")}
    for item in items:
        found = re.fullmatch(r"(.+) \(see \[([^\]]+)\]\(#([^)]+)\)\)\.", item)
        assert found, item
        assert found.group(3) in headings and anchor(found.group(2)) == found.group(3), item
        assert not re.search(r"\w+ \d+, \w+ \d+ of \d+", found.group(1)), item  # no "numba 1, numpy 1 of 2"
    meta = json.loads((folder / "meta.json").read_text())
    assert [h[:-1] for h in meta["headline"]] == [re.sub(r" \(see .*$", "", i) for i in items]


def test_the_headline_quotes_the_paired_geometric_means(made):
    _, md = made
    (_, means) = tables_under(md, "## Paired speed-up")[-2:]
    sparse = next(row for row in means if row["function"] == "sparse")
    headline = section(md, "Headline")
    assert (f"numba is {sparse['vs TF']} (sparse) to {sparse['vs TF']} (sparse) as fast as TensorFlow on float32"
            in headline), headline  # the fixture pairs the sparse loss only
    assert "timed in turns with it" in headline


def test_the_report_says_how_its_figures_were_measured(made):
    _, md = made
    measured = section(md, "How the figures were measured")
    assert re.search(r"\*\*Times\*\* \(\d+, numba, tensorflow, torch, jax\): seconds per call", measured)
    assert "the files record no counts of calls and samples" in measured  # the fixture records none
    assert "a ratio of two of these times is not paired" in measured
    assert (f"the median over {timing.PAIRED_ROUNDS} rounds ({timing.PAIRED_SLOW_ROUNDS} for calls over "
            f"{timing.SLOW_CALL:g} s)") in measured
    assert "Single calls" not in measured


def with_calls(tmp_path: Path, number: int, repeat: int) -> Path:
    """The fixture's results with every timing recorded as ``repeat`` samples of ``number`` calls."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    for path in (results / "testbox").glob("*.json"):
        data = json.loads(path.read_text())
        if "results" not in data:  # machine.json
            continue
        columns = data["result_columns"]
        for name, row in data["results"].items():
            if ".time_" in name:
                row += [None] * (len(columns) - len(row))
                values = row[columns.index("result")]
                row[columns.index("stats_number")] = [number] * len(values)
                row[columns.index("stats_repeat")] = [repeat] * len(values)
        path.write_text(json.dumps(data))
    return results


def test_the_counts_of_calls_and_samples_are_given(tmp_path, monkeypatch):
    _, md = make(tmp_path, monkeypatch, results=with_calls(tmp_path, 250, 10))
    assert "asv's median over samples of 250 calls each, 10 samples a combination" in md


def test_single_calls_are_named_and_never_judged(tmp_path, monkeypatch):
    _, md = make(tmp_path, monkeypatch, results=with_calls(tmp_path, 1, 1))
    measured = section(md, "How the figures were measured")
    assert re.search(r"\*\*Single calls\*\* \(\d+, from `xentbench bench --quick`\)", measured), measured
    assert "**Times**" not in measured
    headline = section(md, "Headline")
    assert "timings are single calls, which show that a combination runs but not how fast" in headline
    assert "from separate timings" not in headline  # no speed judged from them; the paired figures remain
    assert "No speed-up to show" in section(md, "Speed-up")
    (targets,) = tables_under(md, "## Targets")
    on_times_alone = [row for row in targets if row["target"].startswith("float64") or "roofline" in row["target"]]
    assert len(on_times_alone) == 3 and all(row["verdict"] == "*not measured*" for row in on_times_alone)


def test_a_report_names_no_absolute_path(tmp_path, monkeypatch):
    results = tmp_path / "elsewhere" / "results"
    shutil.copytree(RESULTS, results)
    roof = tmp_path / "limits.json"
    shutil.copy(RESULTS.parent / "roofline" / "testbox.json", roof)
    folder, md = make(tmp_path, monkeypatch, f"--roofline={roof}", results=results)
    for name in ("report.md", "report.html", "meta.json"):
        text = (folder / name).read_text(encoding="utf-8")
        assert not ABSOLUTE.search(text), (name, ABSOLUTE.search(text))
    assert "elsewhere/results/testbox/" in section(md, "How this report was made")  # named, relatively
    assert "limits.json`" in section(md, "Machine")


@pytest.mark.parametrize("committed", sorted(REPORTS.glob("*/report.md")), ids=lambda p: p.parent.name)
def test_the_committed_sample_reports_name_no_absolute_path(committed):
    for text in (committed.read_text(encoding="utf-8"), (committed.parent / "report.html").read_text("utf-8")):
        assert not ABSOLUTE.search(text), ABSOLUTE.search(text)
