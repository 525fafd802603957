"""The benchmarks' figures in the docs: benchmarks/figures.py renders results JSON between
markers, --check finds drift, and every marker in the docs names results that exist and
a benchmark that makes them (benchmarks/refresh.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import figures  # noqa: E402
import refresh  # noqa: E402
from results_file import RESULTS_FOLDER, write_results  # noqa: E402

RESULTS = {
    "command": "python benchmarks/bench_demo.py --runs 3",
    "date": "2026-12-06T02:45:48+00:00",
    "machine": {"cpu": "Demo CPU", "cores": 2, "memory_gb": 8.0, "python": "3.11.7"},
    "load_average": {"start": [0.42, 0.5, 0.5], "end": [2.06, 1.0, 0.7]},
    "tables": {
        "speed": [
            {"what": "model", "seconds": 0.1, "share": 0.33, "runs": [0.5, 0.25, 0.75]},
            {"what": "a | b", "seconds": 12.25, "share": None, "runs": [1.0, 1.0, 1.0]},
            {"what": "extra column", "note": "only here"},
        ],
    },
}
RENDERED = """\
<!-- figures: bench_demo.speed -->
| what | seconds | share | runs | note |
|---|---|---|---|---|
| model | 0.10 | 0.33 | 0.500 (0.250..0.750) |  |
| a \\| b | 12.25 | - | 1.0 |  |
| extra column |  |  |  | only here |

Measured by `python benchmarks/bench_demo.py --runs 3` on 2026-12-06, Demo CPU, 2 cores \
(load 0.4-2.1).
<!-- /figures -->"""
PAGE = """\
# Speed

Some prose.

<!-- figures: bench_demo.speed -->
| old | table |
<!-- /figures -->

```markdown
<!-- figures: not_rendered.inside_a_code_block -->
<!-- /figures -->
```
"""


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    """A results folder holding bench_demo.json, and a page quoting its table."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "bench_demo.json").write_text(json.dumps(RESULTS))
    page = tmp_path / "speed.md"
    page.write_text(PAGE)
    return results, page


def render(page: Path, results: Path, *options: str) -> int:
    return figures.main([*options, "--results", str(results), str(page)])


def test_renders_the_table_between_the_markers(demo: tuple[Path, Path], capsys) -> None:
    results, page = demo
    assert render(page, results) == 0
    text = page.read_text()
    assert RENDERED in text
    assert "| old | table |" not in text
    assert "<!-- figures: not_rendered.inside_a_code_block -->\n<!-- /figures -->" in text
    assert text.startswith("# Speed\n\nSome prose.\n\n") and text.endswith("```\n")
    assert "1 figures blocks rewritten" in capsys.readouterr().out
    assert render(page, results, "--check") == 0
    assert render(page, results) == 0
    assert page.read_text() == text


def test_check_finds_drift_and_writes_nothing(demo: tuple[Path, Path], capsys) -> None:
    results, page = demo
    render(page, results)
    changed = json.loads((results / "bench_demo.json").read_text())
    changed["tables"]["speed"][0]["seconds"] = 0.2
    (results / "bench_demo.json").write_text(json.dumps(changed))
    before = page.read_text()
    capsys.readouterr()
    assert render(page, results, "--check") == 1
    out = capsys.readouterr().out
    assert f"{page}:5: <!-- figures: bench_demo.speed -->: differs from its results" in out
    assert page.read_text() == before
    assert render(page, results) == 0
    assert "| model | 0.20 |" in page.read_text()


@pytest.mark.parametrize(("marker", "complaint"), [
    ("bench_missing.speed", "no results file"),
    ("bench_demo.nosuch", "has no table 'nosuch' (it has: speed)"),
])
def test_unknown_results_or_table_is_an_error(demo: tuple[Path, Path], capsys, marker: str,
                                              complaint: str) -> None:
    results, page = demo
    page.write_text(PAGE.replace("bench_demo.speed", marker))
    for options in ((), ("--check",)):
        assert render(page, results, *options) == 1
        error = capsys.readouterr().err
        assert f"{page}:5: <!-- figures: {marker} -->: " in error
        assert complaint in error
        assert "Traceback" not in error
    assert "| old | table |" in page.read_text()


def test_a_marker_never_closed_is_an_error(demo: tuple[Path, Path], capsys) -> None:
    results, page = demo
    page.write_text("<!-- figures: bench_demo.speed -->\nno end\n")
    assert render(page, results) == 1
    assert f"{page}:1: <!-- figures: bench_demo.speed --> is never closed" in (
        capsys.readouterr().err)


def test_what_a_benchmark_writes_renders(tmp_path: Path, capsys) -> None:
    """results_file.write_results records what figures.py prints under the table."""
    out = write_results("bench_demo", {"speed": [{"what": "model", "seconds": 0.5}]},
                        {"runs": 3}, tmp_path / "results" / "bench_demo.json")
    written = json.loads(out.read_text())
    assert written["runs"] == 3
    assert {"command", "date", "seconds", "machine", "load_average", "genre_tag"} <= set(
        written)
    assert written["machine"]["cores"] >= 1 and written["machine"]["cpu"]
    page = tmp_path / "page.md"
    page.write_text("<!-- figures: bench_demo.speed -->\n<!-- /figures -->\n")
    assert render(page, out.parent) == 0
    lines = page.read_text().splitlines()
    assert lines[1:4] == ["| what | seconds |", "|---|---|", "| model | 0.5 |"]
    measured = lines[5]
    assert measured.startswith(f"Measured by `{written['command']}` on {written['date'][:10]}, "
                               f"{written['machine']['cpu']}, {written['machine']['cores']} "
                               "cores (load ")
    assert not list(out.parent.glob(".*partial"))


def test_every_marker_in_the_docs_names_existing_results() -> None:
    results = figures.Results(RESULTS_FOLDER)
    for path in figures.documents():
        for block in figures.blocks(path, path.read_text(encoding="utf-8").split("\n")):
            results.rendered(block)  # raises FiguresError naming the page and marker


def test_the_docs_figures_are_the_results(capsys) -> None:
    """What the docs show is what benchmarks/results holds (python benchmarks/figures.py)."""
    assert figures.main(["--check"]) == 0, capsys.readouterr()


def test_every_quoted_results_has_a_benchmark_that_writes_it() -> None:
    for name in refresh.quoted():
        assert name in refresh.BENCHMARKS, f"add {name} to BENCHMARKS in benchmarks/refresh.py"
    for name, benchmark in refresh.BENCHMARKS.items():
        script = ROOT / "benchmarks" / benchmark.script
        assert name in script.read_text(), f"{script.name} never names {name}"
