"""Re-measure every figure the docs quote, in one step, then re-render them.

Run (from anywhere; each benchmark runs in the checkout):

    python benchmarks/refresh.py                # the benchmarks the docs quote, then figures
    python benchmarks/refresh.py --list         # which ones, their commands and durations
    python benchmarks/refresh.py --only bench_pipeline [--only bench_library ...]
    python benchmarks/refresh.py --data DIR     # the shared data elsewhere

The benchmarks to run are the results NAMEs of the ``<!-- figures: NAME.TABLE -->``
markers in README.md, docs/*.md and weights/*.md (benchmarks/figures.py), so what is
re-measured is exactly what is quoted. ``--only NAME`` runs that one whether quoted or not
(the way to make a results file before its first marker). Each runs as its own process,
one after another, with the arguments below (BENCHMARKS: "{data}" is the shared data
folder, default ../shared/data), and writes benchmarks/results/NAME.json; a benchmark
whose data or modules are absent is skipped with a one-line note. Then figures.py
rewrites the marked tables. A failed or skipped benchmark leaves its last results, and
the docs keep saying when and where those were measured.

Speed figures are only as good as the machine is quiet: each results file records the
load average at the benchmark's start and end, and the docs print it beside the table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import figures
from results_file import ROOT, SHARED_DATA, results_path


@dataclass(frozen=True)
class Benchmark:
    """How one results file is made."""

    script: str  # in benchmarks/
    arguments: tuple[str, ...]  # "{data}" stands for the shared data folder
    minutes: float  # rough duration on the 2-core development machine, quiet
    data: tuple[str, ...] = ()  # sub-folders of the shared data it reads
    modules: tuple[str, ...] = ()  # what it imports beyond a plain install

    def command(self, data: Path) -> list[str]:
        shown = os.path.relpath(data, ROOT)
        return ["python", f"benchmarks/{self.script}",
                *(argument.format(data=shown) for argument in self.arguments)]


BENCHMARKS = {
    "bench_pipeline": Benchmark("bench_pipeline.py",
                                ("--weights", "genre-musicnn17", "genre-sources11"), 4,
                                modules=("torch", "librosa")),
    "bench_backends": Benchmark("bench_backends.py", ("--runs", "3"), 4,
                                modules=("torch", "librosa")),
    "bench_agreement": Benchmark("bench_agreement.py", ("--data", "{data}"), 4,
                                 data=("gtzan", "emotify", "4q"),
                                 modules=("torch", "onnxruntime")),
    "bench_int8": Benchmark("bench_int8.py", ("--data", "{data}"), 10,
                            data=("gtzan", "emotify", "4q"), modules=("nncf",)),
    "bench_library": Benchmark("bench_library.py", ("--data", "{data}", "--songs", "100"), 2,
                               data=("gtzan",)),
    "bench_library_emotion": Benchmark(
        "bench_library.py", ("--data", "{data}", "--songs", "60", "--write-emotion"), 2,
        data=("gtzan",)),
    "bench_batch": Benchmark("bench_batch.py", ("--data", "{data}"), 5, data=("gtzan",),
                             modules=("ray",)),
    "bench_costs": Benchmark("bench_costs.py", ("--data", "{data}"), 3, data=("gtzan",),
                             modules=("torch",)),
    "bench_segments": Benchmark("bench_segments.py", ("--data", "{data}/gtzan"), 5,
                                data=("gtzan",)),
    "bench_training": Benchmark("bench_training.py", (), 1, modules=("torch",)),
    "bench_genres": Benchmark("bench_genres.py", ("--data", "{data}"), 25,
                              data=("gtzan", "emotify", "4q"), modules=("torch",)),
    "bench_library_scale": Benchmark("bench_library_scale.py", ("--files", "20000"), 60),
}


def quoted() -> dict[str, list[str]]:
    """The results NAMEs the docs' markers name, each with where it is quoted."""
    names: dict[str, list[str]] = {}
    for path in figures.documents():
        lines = path.read_text(encoding="utf-8").split("\n")
        for block in figures.blocks(path, lines):
            names.setdefault(block.name, []).append(block.where)
    return names


def missing(benchmark: Benchmark, data: Path) -> str | None:
    """What the benchmark needs and this machine lacks, or None."""
    for folder in benchmark.data:
        if not (data / folder).is_dir():
            return f"needs {os.path.relpath(data / folder, ROOT)} (give --data DIR)"
    for module in benchmark.modules:
        if importlib.util.find_spec(module) is None:
            return f"needs {module} (pip install {module})"
    return None


def last_minutes(name: str) -> float | None:
    """How long the benchmark's last recorded run took, when its results say."""
    try:
        seconds = json.loads(results_path(name).read_text(encoding="utf-8")).get("seconds")
    except (OSError, ValueError):
        return None
    return seconds / 60 if isinstance(seconds, int | float) else None


def show_list(names: list[str], data: Path) -> None:
    total = 0.0
    for name in BENCHMARKS:
        benchmark = BENCHMARKS[name]
        last = last_minutes(name)
        minutes = last if last is not None else benchmark.minutes
        how_long = (f"{minutes:.0f} min last run" if last is not None
                    else f"about {minutes:.0f} min")
        runs = name in names
        total += minutes if runs else 0.0
        note = missing(benchmark, data)
        print(f"{'quoted' if runs else 'not quoted':<10} {name:<22} {how_long:<18} "
              f"{' '.join(benchmark.command(data))}" + (f"  [skipped: {note}]" if note else ""))
    print(f"refresh runs the quoted ones: about {total:.0f} min on the 2-core development "
          "machine")


def run(name: str, data: Path) -> str | None:
    """Run one benchmark; what went wrong, or None."""
    benchmark = BENCHMARKS[name]
    note = missing(benchmark, data)
    if note:
        print(f"refresh: skipped {name}: {note}", flush=True)
        return None
    command = benchmark.command(data)
    print(f"refresh: {name}: {' '.join(command)} (about {benchmark.minutes:.0f} min)",
          flush=True)
    results = results_path(name)
    before = results.stat().st_mtime if results.exists() else 0.0
    status = subprocess.run([sys.executable, *command[1:]], cwd=ROOT).returncode
    if status != 0:
        return f"{name}: exit status {status}; its last results stay"
    if not results.exists() or results.stat().st_mtime == before:
        return f"{name}: wrote no {os.path.relpath(results, ROOT)}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", choices=list(BENCHMARKS),
                        help="run this benchmark (repeatable), quoted or not")
    parser.add_argument("--list", action="store_true",
                        help="show the benchmarks, their commands and durations; run nothing")
    parser.add_argument("--data", type=Path, default=SHARED_DATA,
                        help="the shared data folder (default: ../shared/data)")
    options = parser.parse_args()
    try:
        places = quoted()
    except figures.FiguresError as error:
        print(f"refresh: error: {error}", file=sys.stderr)
        return 1
    unknown = [where for name, wheres in places.items() if name not in BENCHMARKS
               for where in wheres]
    for where in unknown:
        print(f"refresh: error: {where}: no benchmark makes these results; add one to "
              "BENCHMARKS in benchmarks/refresh.py", file=sys.stderr)
    if options.list:
        show_list(list(places), options.data.resolve())
        return 1 if unknown else 0
    names = options.only or [name for name in BENCHMARKS if name in places]
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores / 2:
        print(f"refresh: the machine is busy (load {load:.1f} on {cores} cores): times "
              "measured now will be high, and the docs will show the load", flush=True)
    started = time.perf_counter()
    failures = [failure for name in names
                if (failure := run(name, options.data.resolve())) is not None]
    print(f"refresh: {len(names)} benchmarks in {(time.perf_counter() - started) / 60:.0f} "
          "min; rendering the figures", flush=True)
    status = figures.main([])
    for failure in failures:
        print(f"refresh: error: {failure}", file=sys.stderr)
    return 1 if failures or unknown or status else 0


if __name__ == "__main__":
    sys.exit(main())
