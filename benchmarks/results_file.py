"""Where a benchmark's figures go: ``benchmarks/results/NAME.json``, with what they were
measured by, for ``benchmarks/figures.py`` to render into the docs.

Each file holds ``command`` (how the benchmark was run, its script relative to the
checkout), ``date`` (UTC, when it finished), ``seconds`` (its wall time), ``machine``
(CPU model, cores, memory, Python), ``load_average`` (the 1-, 5- and 15-minute load when
this module was imported, which a benchmark does first, and when the figures were written;
the end includes the benchmark's own work: a benchmark busy on both cores of a 2-core
machine adds about 2), ``genre_tag`` (the commit and the uncommitted changes under
``tagger/``), what the benchmark adds (its settings), and ``tables``: {table name: [row,
...]}, each row a dict of column name to value, the numbers rounded as they should be
shown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FOLDER = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"
LOAD_AT_START = os.getloadavg()
STARTED = time.perf_counter()

Tables = dict[str, list[dict[str, object]]]


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor())
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(memory_kb / 2**20, 1),
            "python": platform.python_version()}


def genre_tag_commit() -> dict:
    """The checkout's commit, and its uncommitted changes under tagger/ (others edit it)."""
    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *arguments], capture_output=True,
                              text=True).stdout.rstrip()
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_in_tagger": git("status", "--porcelain", "--", "tagger").splitlines()}


def results_path(name: str) -> Path:
    return RESULTS_FOLDER / f"{name}.json"


def add_out_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--out FILE``: where the figures go instead of ``benchmarks/results/NAME.json``."""
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the JSON figures (default: {results_path(name).relative_to(ROOT)}"
                             "; a trial run belongs elsewhere, e.g. /tmp)")


def command_line() -> str:
    """This process's command as one would type it in the checkout."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else Path(sys.argv[0])
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def plain(value: object) -> object:
    """numpy scalars as Python numbers, for json."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON: {value!r}")


def write_results(name: str, tables: Tables, extra: dict | None = None,
                  out: Path | None = None) -> Path:
    """Write ``tables`` and ``extra`` with the command, date, machine, load and commit to
    ``out`` (default: ``benchmarks/results/NAME.json``), replaced whole, never half-written;
    print where. A key of ``extra`` replaces the recorded one (a ``genre_tag`` taken when the
    benchmark copied the code it runs)."""
    out = out or results_path(name)
    record = {
        "command": command_line(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - STARTED, 1),
        "machine": machine(),
        "load_average": {"start": [round(v, 2) for v in LOAD_AT_START],
                         "end": [round(v, 2) for v in os.getloadavg()]},
        "genre_tag": genre_tag_commit(),
        **(extra or {}),
        "tables": tables,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=plain) + "\n",
                       encoding="utf-8")
    partial.replace(out)
    print(f"figures written to {out}")
    return out
