"""A library of 20,000 files through `genre-tag LIB --write-tags`: kill -9 twice, resumed,
restored.

Run: nice -n 19 python benchmarks/bench_library_scale.py [--files 20000] [--seconds 3]
     [--jobs 2] [--workdir DIR] [--keep]

Generates --files distinct clips of --seconds in every format genre-tag writes that the
local FFmpeg encodes (mp3, wav, aiff, flac, Ogg Vorbis, Opus, m4a, wma), in folders of
1000: one in ten with a genre set by hand, half with title, artist, album and track (the
MP3s among them half ID3v2.3, half ID3v2.4), the rest as the encoder left them
(benchmarks/scale_library.py). HOME and the XDG folders point into the work folder, so the
user's caches and undo store are untouched, and genre-tag runs from a copy of tagger/ made
at the start (its commit and uncommitted changes recorded), so edits made meanwhile do not
mix versions. Then, each phase one command in its own process group:

1. `genre-tag LIB --write-tags --jobs 2 --report R.jsonl`, killed with SIGKILL (the whole
   process group) once a third of the files without a hand-set genre are written, counted
   from its per-file lines: at a random moment (seeded) up to 1 s after that line, so the
   kill may land in the middle of a write;
2. the same, killed at two thirds;
3. the same, to the end;
4. `genre-tag LIB --restore-tags`.

Each phase: wall time, files it got through (its per-file lines), and the peak memory of
its process tree: the sum of RSS, and of PSS (shared pages counted once), over its process
group, sampled from /proc every 0.2 s. Then the checks: every file decodes and its audio
checksum is unchanged; after the writes every file without a hand-set genre has one (or
its report says why not), hand-set genres and the other tags are untouched, no
`.genre-tag-partial` copy is left; how many files two runs wrote (from the reports; a
killed run's records are read from the temporary file it leaves); after the restore, how
many files hold the tags they held before and how many are byte-identical, and what
differs in the others (reported, not failed). The figures go to
benchmarks/results/bench_library_scale.json (--out: elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from results_file import add_out_option, genre_tag_commit, write_results
from scale_library import (
    FORMATS,
    FileState,
    PlannedFile,
    encodable,
    make_library,
    plan_library,
    restore_comparison,
    states,
    write_checks,
)

from tagger.audio import PARTIAL_COPY_MARK

ROOT = Path(__file__).resolve().parents[1]
STATUS_WIDTH = 13  # genre-tag prints each file as f"{status:<13} {path}: ..."
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def group_members(group: int) -> list[int]:
    """The processes of process group ``group``, from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                line = stat.read()
        except OSError:
            continue
        if int(line[line.rindex(b")") + 2:].split()[2]) == group:
            members.append(int(entry.name))
    return members


def process_memory(pid: int) -> tuple[int, int]:
    """RSS and PSS of one process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            rss = int(statm.read().split()[1]) * PAGE_SIZE
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            pss = next(int(line.split()[1]) * 1024 for line in rollup
                       if line.startswith("Pss:"))
    except (OSError, StopIteration, ValueError):
        return 0, 0
    return rss, pss


class GroupMemory(threading.Thread):
    """Peak summed RSS and PSS of a process group, sampled every 0.2 s until ``stop``."""

    def __init__(self, group: int) -> None:
        super().__init__(daemon=True)
        self.group = group
        self.finished = threading.Event()
        self.peak_rss = self.peak_pss = self.peak_processes = 0

    def run(self) -> None:
        while True:
            members = group_members(self.group)
            usage = [process_memory(pid) for pid in members]
            self.peak_rss = max(self.peak_rss, sum(rss for rss, _ in usage))
            self.peak_pss = max(self.peak_pss, sum(pss for _, pss in usage))
            self.peak_processes = max(self.peak_processes, len(members))
            if self.finished.wait(0.2):
                return

    def stop(self) -> None:
        self.finished.set()
        self.join()


@dataclass
class Phase:
    """One genre-tag command: how it went and what it printed per file."""

    name: str
    command: list[str]
    kill_delay: float = 0.0  # from the line the kill waits for to the kill
    seconds: float = 0.0
    ended: str = ""
    lines: Counter = field(default_factory=Counter)  # per-file lines by status
    summary: str = ""
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    peak_processes: int = 0
    partial_copies_after: int = 0
    errors: int = 0  # its one-line errors on stderr
    error_examples: list[str] = field(default_factory=list)
    report_source: str = ""

    @property
    def files(self) -> int:
        return sum(self.lines.values())


def run_phase(phase: Phase, environment: dict[str, str], logs: Path, library: Path,
              kill_when: Callable[[Counter], bool] | None = None) -> None:
    """Run the phase's command in its own process group, reading its per-file lines; once
    ``kill_when(lines)`` holds, SIGKILL the whole group after ``phase.kill_delay`` seconds."""
    started = time.perf_counter()
    killed_at: list[float] = []

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
            killed_at.append(time.perf_counter())

    timer = threading.Timer(phase.kill_delay, kill)
    with open(logs / f"{phase.name}.err", "wb") as errors:
        process = subprocess.Popen(phase.command, env=environment, stdout=subprocess.PIPE,
                                   stderr=errors, text=True, encoding="utf-8",
                                   errors="replace", start_new_session=True)
    memory = GroupMemory(process.pid)
    memory.start()
    with open(logs / f"{phase.name}.out", "w", encoding="utf-8") as out:
        for line in process.stdout:
            out.write(line)
            if line.startswith("processed="):
                phase.summary = line.strip()
                continue
            phase.lines[line[:STATUS_WIDTH].strip()
                        if line[STATUS_WIDTH:STATUS_WIDTH + 1] == " " else "other"] += 1
            if kill_when is not None and kill_when(phase.lines):
                timer.start()
                kill_when = None
    timer.cancel()
    status = process.wait()
    ended = time.perf_counter()
    deadline = ended + 60
    while (survivors := group_members(process.pid)) and time.perf_counter() < deadline:
        time.sleep(0.05)
    memory.stop()
    phase.seconds = (killed_at[0] if killed_at else ended) - started
    phase.ended = ("killed (SIGKILL to the process group)" if killed_at
                   else f"exit status {status}")
    if survivors:
        phase.ended += f"; {len(survivors)} processes of the group still alive after 60 s"
    phase.peak_rss_mb = memory.peak_rss / 2**20
    phase.peak_pss_mb = memory.peak_pss / 2**20
    phase.peak_processes = memory.peak_processes
    phase.partial_copies_after = sum(1 for _ in library.rglob(f"*{PARTIAL_COPY_MARK}*"))
    errors = [line for line in (logs / f"{phase.name}.err").read_text(
        errors="replace").splitlines() if line.startswith("genre-tag: error:")]
    phase.errors = len(errors)
    phase.error_examples = list(dict.fromkeys(errors))[:3]


def read_report(path: Path) -> tuple[list[dict], str]:
    """The records of a --report file, and where they were read: the file itself, or the
    temporary file beside it that a killed run leaves (a cut-off last line is dropped)."""
    leftovers = sorted(path.parent.glob(f".{path.name}.*"))
    source = path if path.exists() else (leftovers[-1] if leftovers else None)
    if source is None:
        return [], "none"
    records = []
    for line in source.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    where = "the report" if source == path else f"the temporary file left: {source.name}"
    return records, where


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def phase_table(phases: list[dict]) -> list[dict]:
    """The table of the recorded phases (``results["phases"]``)."""
    return [{"phase": phase["name"],
             "ended": "killed" if phase["ended"].startswith("killed") else phase["ended"],
             "files seen": phase["files"],
             "written": phase["lines"].get("written", 0) + phase["lines"].get("restored", 0),
             "errors": phase["errors"],
             "seconds": round(phase["seconds"]),
             "files/s": round(phase["files"] / phase["seconds"]) if phase["seconds"] else None,
             "peak PSS MB": round(phase["peak_pss_mb"])}
            for phase in phases]


def print_errors(phase: Phase) -> None:
    if phase.errors:
        print(f"  {phase.errors} errors, e.g.", *phase.error_examples, sep="\n    ")


def print_table(rows: list[tuple]) -> None:
    print(f"{'phase':<10} {'files':>6} {'written':>7} {'errors':>6} {'seconds':>8} "
          f"{'files/s':>8} {'peak RSS MB':>11} {'peak PSS MB':>11}  ended")
    for name, files, written, errors, seconds, rss, pss, ended in rows:
        written, errors = ("-" if value is None else value for value in (written, errors))
        rate = f"{files / seconds:8.1f}" if seconds else f"{'-':>8}"
        memory = f"{rss:11.0f} {pss:11.0f}" if rss else f"{'-':>11} {'-':>11}"
        print(f"{name:<10} {files:>6} {written:>7} {errors:>6} {seconds:8.1f} {rate} {memory}"
              f"  {ended}")


def generate(options: argparse.Namespace, library: Path, workdir: Path
             ) -> tuple[list[PlannedFile], dict]:
    """Make the library; what it holds, for the figures."""
    extensions, left_out = encodable(list(FORMATS), workdir)
    for extension, reason in left_out.items():
        print(f"left out {extension}: the local FFmpeg cannot encode it ({reason})")
    planned = plan_library(library, options.files, extensions)
    started = time.perf_counter()
    make_library(planned, options.seconds)
    seconds = time.perf_counter() - started
    hand_set = sum(1 for file in planned if file.hand_genre)
    print(f"generated {len(planned)} files of {options.seconds:g} s ({', '.join(extensions)}) "
          f"in {seconds:.1f} s with {os.cpu_count()} processes; {hand_set} with a genre set "
          "by hand", flush=True)
    return planned, {"files": len(planned), "seconds_per_clip": options.seconds,
                     "formats": extensions, "formats_left_out": left_out,
                     "hand_set_genres": hand_set, "generation_seconds": round(seconds, 1)}


def killed_runs(phases: list[Phase], to_write: int, environment: dict[str, str], logs: Path,
                library: Path) -> None:
    """Run the write phases, each but the last killed once (all runs together) a third more
    of the ``to_write`` files are written."""
    written_before = 0
    for number, phase in enumerate(phases, 1):
        goal = to_write * number / len(phases)
        kill_when = (None if number == len(phases) else
                     lambda lines, earlier=written_before, goal=goal:
                     earlier + lines["written"] >= goal)
        print(f"{phase.name}: {' '.join(phase.command[1:])}", flush=True)
        run_phase(phase, environment, logs, library, kill_when)
        written_before += phase.lines["written"]
        delay = f" ({phase.kill_delay:.2f} s after the line)" if kill_when else ""
        print(f"  {phase.ended}{delay} after {phase.seconds:.1f} s: {dict(phase.lines)}; "
              f"{phase.partial_copies_after} partial copies left", flush=True)
        print_errors(phase)


def written_counts(phases: list[Phase], reports: Path, planned: list[PlannedFile],
                   after: list[FileState]) -> tuple[list[dict], dict[str, int]]:
    """Every run's report records, and how many files two runs wrote or no record shows."""
    records = []
    for phase in phases:
        run_records, phase.report_source = read_report(reports / f"{phase.name}.jsonl")
        records += run_records
    runs_per_file = Counter(record["path"] for record in records
                            if record["status"] == "written")
    with_genre = {str(file.path) for file, new in zip(planned, after, strict=True)
                  if not file.hand_genre and new.genre}
    return records, {
        "written by two or more runs (reports)": sum(
            1 for count in runs_per_file.values() if count >= 2),
        "written, with no 'written' record in any report": len(with_genre - set(runs_per_file))}


def print_checks(checks: dict, restore_checks: dict, files: int) -> int:
    """Print the checks; the number of failures (restore differences are not failures)."""
    failures = 0
    print("checks after the writes:")
    for name, failure in checks["failures"].items():
        failures += failure["files"]
        shown = f"  e.g. {', '.join(failure['examples'])}" if failure["files"] else ""
        print(f"  {name}: {failure['files']}{shown}")
    for name, value in checks.items():
        if name != "failures":
            print(f"  {name}: {value}")
    print("after the restore:")
    for name, value in restore_checks.items():
        if name != "differences":
            print(f"  {name}: {value} of {files}")
    for difference in restore_checks["differences"]:
        print(f"  differs: {difference['files']:>6} {difference['what']}  "
              f"(e.g. {difference['example']})")
    return failures + restore_checks["does not decode"] + restore_checks["audio changed"]


def benchmark(options: argparse.Namespace, workdir: Path) -> int:
    library, home, reports, logs = (workdir / name for name in
                                    ("library", "home", "reports", "logs"))
    for folder in (library, home, reports, logs):
        folder.mkdir(parents=True)
    version = genre_tag_commit()
    shutil.copytree(ROOT / "tagger", workdir / "code" / "tagger",
                    ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
                   "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                   "PYTHONPATH": str(workdir / "code"), "PYTHONUNBUFFERED": "1"}
    environment.pop("GENRE_TAG_JOBS", None)

    planned, library_figures = generate(options, library, workdir)
    paths = [file.path for file in planned]
    started = time.perf_counter()
    before = states(paths, decode=False)
    reading_before = time.perf_counter() - started
    print(f"read before: audio checksums, tags and bytes in {reading_before:.1f} s")

    tag = [sys.executable, "-m", "tagger", str(library), "--device", "cpu"]
    phases = [Phase(f"run{n}", [*tag, "--write-tags", "--jobs", str(options.jobs),
                                "--report", str(reports / f"run{n}.jsonl")],
                    kill_delay=random.Random(n).uniform(0, 1) if n < 3 else 0.0)
              for n in (1, 2, 3)]
    killed_runs(phases, sum(1 for file in planned if not file.hand_genre), environment, logs,
                library)
    started = time.perf_counter()
    after = states(paths)
    reading_after = time.perf_counter() - started
    records, counts = written_counts(phases, reports, planned, after)
    checks = {**write_checks(planned, before, after, records, library), **counts}

    restore = Phase("restore", [*tag, "--restore-tags",
                                "--report", str(reports / "restore.jsonl")])
    print(f"restore: {' '.join(restore.command[1:])}", flush=True)
    run_phase(restore, environment, logs, library)
    print(f"  {restore.ended} after {restore.seconds:.1f} s: {dict(restore.lines)}")
    print_errors(restore)
    restored = states(paths)
    restore_checks = {
        "does not decode": sum(1 for state in restored if state.decode_error),
        "audio changed": sum(1 for old, new in zip(before, restored, strict=True)
                             if old.audio_sha256 != new.audio_sha256),
        **restore_comparison(before, restored, paths, library)}

    commands = [*phases, restore]
    print()
    print_table([("generate", len(paths), None, None, library_figures["generation_seconds"],
                  0.0, 0.0, "")] +
                [(p.name, p.files, p.lines["written"] + p.lines["restored"], p.errors,
                  p.seconds, p.peak_rss_mb, p.peak_pss_mb, p.ended) for p in commands])
    print(f"\nmemory: the sum over each phase's process group, sampled from /proc every 0.2 s; "
          f"peak processes {', '.join(str(p.peak_processes) for p in commands)}")
    print(f"reports: {'; '.join(f'{p.name} from {p.report_source}' for p in phases)}")
    print(f"files read (checksums, tags, bytes) in {reading_before:.1f} s before, "
          f"and decoded too in {reading_after:.1f} s after the writes")
    failures = print_checks(checks, restore_checks, len(paths))
    failures += sum(phase.errors for phase in commands)
    stores = {"library MB": folder_mb(library), "undo store MB": folder_mb(home / "data"),
              "results cache MB": folder_mb(home / "cache")}
    print("sizes: " + ", ".join(f"{name} {size:.1f}" for name, size in stores.items()))

    recorded = [{**asdict(p), "lines": dict(p.lines), "files": p.files,
                 "files_per_second": round(p.files / p.seconds, 2) if p.seconds else None}
                for p in commands]
    results = {
        "genre_tag": version, **library_figures,
        "reading_before_seconds": round(reading_before, 1),
        "reading_after_writes_seconds": round(reading_after, 1),
        "memory_measure": "sum of RSS and of PSS over the phase's process group, "
                          "from /proc every 0.2 s",
        "phases": recorded, "after_writes": checks, "after_restore": restore_checks, **stores}
    write_results("bench_library_scale", {"phases": phase_table(recorded)}, results,
                  options.out)
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each clip")
    parser.add_argument("--jobs", type=int, default=2, help="genre-tag --jobs")
    parser.add_argument("--workdir", type=Path,
                        help="where the library, caches and logs go (default: a temporary "
                             "folder); new or empty")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    add_out_option(parser, "bench_library_scale")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="bench_library_scale."))
    if workdir.exists() and any(workdir.iterdir()):
        sys.exit(f"{workdir}: not empty; give a new or empty --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        status = benchmark(options, workdir)
    finally:
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
