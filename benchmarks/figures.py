"""Render the benchmarks' tables into the docs, between markers, so quoted figures cannot
drift from what was measured.

Run: python benchmarks/figures.py [--check] [--results DIR] [FILE ...]

In README.md, docs/*.md and weights/*.md (or the FILEs given), each block

    <!-- figures: NAME.TABLE -->
    ...
    <!-- /figures -->

is replaced by table TABLE of benchmarks/results/NAME.json (see results_file.py) as a
Markdown table, a blank line and one line saying what measured it:
"Measured by `COMMAND` on DATE, CPU, N cores (load A-B)." (A and B: the 1-minute load
average when the benchmark started and when it wrote its figures). Numbers are shown as
the JSON holds them (the benchmarks round them), the trailing zeros JSON drops put back so
that a column's decimals line up (0.1 beside 0.33 shows as 0.10); a list (one value per
seed or repeat) as its mean and range, "0.740 (0.726..0.767)"; a missing value as "-".
Markers inside fenced code blocks are left alone.

Without --check the files are rewritten in place. With --check nothing is written: every
block whose content differs from what its results render is listed, and the exit status
is 1. A marker naming a results file or table that does not exist is an error either way.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from results_file import RESULTS_FOLDER, ROOT

OPENING = re.compile(r"^<!-- figures: (?P<name>[^\s.]+)\.(?P<table>\S+) -->$")
CLOSING = "<!-- /figures -->"
FENCE = re.compile(r"^\s*(```|~~~)")


def documents() -> list[Path]:
    """The pages whose figures are rendered: the README, the manual and the model cards."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "weights").glob("*.md"))]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


class FiguresError(Exception):
    """A marker that cannot be rendered; the message says where and why."""


@dataclass(frozen=True)
class Block:
    """A figures block: the results it names and the lines between its markers."""

    path: Path
    line: int  # of the opening marker, from 1
    name: str
    table: str
    first: int  # index of the first line inside
    end: int  # index of the closing marker

    @property
    def where(self) -> str:
        return f"{shown(self.path)}:{self.line}: <!-- figures: {self.name}.{self.table} -->"


def blocks(path: Path, lines: list[str]) -> list[Block]:
    """The figures blocks of a page's ``lines`` (without line ends)."""
    found: list[Block] = []
    opened: re.Match | None = None
    opened_at = 0
    fenced = False
    for index, line in enumerate(lines):
        if FENCE.match(line) and opened is None:
            fenced = not fenced
            continue
        if fenced:
            continue
        if match := OPENING.match(line.strip()):
            if opened is not None:
                raise FiguresError(f"{shown(path)}:{index + 1}: a figures marker inside the "
                                   f"block opened on line {opened_at + 1}; close it with "
                                   f"{CLOSING}")
            opened, opened_at = match, index
        elif line.strip() == CLOSING:
            if opened is None:
                raise FiguresError(f"{shown(path)}:{index + 1}: {CLOSING} without an opening "
                                   "<!-- figures: NAME.TABLE -->")
            found.append(Block(path, opened_at + 1, opened["name"], opened["table"],
                               opened_at + 1, index))
            opened = None
    if opened is not None:
        raise FiguresError(f"{shown(path)}:{opened_at + 1}: <!-- figures: "
                           f"{opened['name']}.{opened['table']} --> is never closed; "
                           f"add {CLOSING} after it")
    return found


def per_seed(values: list) -> str:
    """A list of values (one per seed or repeat) as its mean and range, NaN left out."""
    numbers = [float(v) for v in values if v is not None]
    finite = [v for v in numbers if not math.isnan(v)]
    if not finite:
        return "-"
    whole = all(v == round(v) for v in finite)
    digits = 1 if whole or max(abs(v) for v in finite) >= 2 else 3
    mean = f"{math.fsum(finite) / len(finite):.{digits}f}"
    if len(numbers) == 1 or min(finite) == max(finite):
        return mean
    return f"{mean} ({min(finite):.{digits}f}..{max(finite):.{digits}f})"


def decimals(value: object) -> int:
    """How many decimals a float's shortest form has (0 for anything else)."""
    if not isinstance(value, float) or not math.isfinite(value) or "e" in repr(value):
        return 0
    return len(repr(value).partition(".")[2])


def cell(value: object, places: int = 0) -> str:
    """A table cell; a float with at least ``places`` decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return per_seed(value)
    if decimals(value) and places > decimals(value):
        return f"{value:.{places}f}"
    return " ".join(str(value).split()).replace("|", "\\|")


def measured_by(results: dict) -> str:
    machine = results.get("machine") or {}
    where = (f"{machine['cpu']}, {machine['cores']} cores" if machine
             else "machine not recorded")
    load = results.get("load_average")
    busy = (f"load {load['start'][0]:.1f}-{load['end'][0]:.1f}" if load
            else "load not recorded")
    return (f"Measured by `{results['command']}` on {results['date'][:10]}, {where} "
            f"({busy}).")


def render(results: dict, table: str) -> list[str]:
    """The lines of one table of ``results``, and the line saying what measured it."""
    rows = results["tables"][table]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    places = {column: max(decimals(row.get(column)) for row in rows) for column in columns}
    lines = ["| " + " | ".join(cell(column) for column in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[column], places[column]) if column in row else ""
                                for column in columns) + " |" for row in rows]
    return [*lines, "", measured_by(results)]


class Results:
    """The results files of a folder, each read once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.read: dict[str, dict] = {}

    def rendered(self, block: Block) -> list[str]:
        if block.name not in self.read:
            path = self.folder / f"{block.name}.json"
            try:
                self.read[block.name] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise FiguresError(f"{block.where}: no results file {shown(path)}; run "
                                   f"python benchmarks/refresh.py --only {block.name}") from None
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise FiguresError(f"{block.where}: unreadable {shown(path)}: {error}") from None
        results = self.read[block.name]
        missing = [key for key in ("command", "date", "tables") if key not in results]
        if missing:
            raise FiguresError(f"{block.where}: {block.name}.json has no "
                               f"{', '.join(missing)}; write it with results_file.py")
        tables = results["tables"]
        if block.table not in tables:
            raise FiguresError(f"{block.where}: {block.name}.json has no table "
                               f"{block.table!r} (it has: {', '.join(tables) or 'none'})")
        rows = tables[block.table]
        if not rows or not isinstance(rows, list) or not all(isinstance(row, dict)
                                                              for row in rows):
            raise FiguresError(f"{block.where}: table {block.table!r} of {block.name}.json "
                               "is not a list of rows (objects)")
        return render(results, block.table)


def update(path: Path, results: Results) -> tuple[str, list[str], list[str]]:
    """The page's text with its blocks rendered, the blocks that changed, and the errors
    (a block in error is left as it is)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return "", [], [f"{shown(path)}: unreadable: {error}"]
    lines = text.split("\n")
    try:
        found = blocks(path, lines)
    except FiguresError as error:
        return text, [], [str(error)]
    changed, errors = [], []
    for block in reversed(found):
        try:
            wanted = results.rendered(block)
        except FiguresError as error:
            errors.append(str(error))
            continue
        if lines[block.first:block.end] != wanted:
            lines[block.first:block.end] = wanted
            changed.append(block.where)
    return "\n".join(lines), changed[::-1], errors[::-1]


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md, docs/*.md, "
                        "weights/*.md")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the blocks that differ, exit 1 if any")
    parser.add_argument("--results", type=Path, default=RESULTS_FOLDER,
                        help="the folder of results JSON (default: benchmarks/results)")
    options = parser.parse_args(arguments)
    results = Results(options.results)
    stale, failed = [], []
    for path in options.files or documents():
        text, changed, errors = update(path, results)
        failed += errors
        if options.check:
            stale += changed
        elif changed:
            path.write_text(text, encoding="utf-8")
            print(f"{shown(path)}: {len(changed)} figures blocks rewritten")
    for where in stale:
        print(f"{where}: differs from its results; run python benchmarks/figures.py")
    for error in failed:
        print(f"figures: error: {error}", file=sys.stderr)
    return 1 if stale or failed else 0


if __name__ == "__main__":
    sys.exit(main())
