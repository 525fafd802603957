"""Every way a run is stopped early ends it with the right exit status, one line on standard
error and, for --write-tags, the summary of what was done; never a traceback, never click's
'Aborted!', and every file whole. Each test runs the real CLI in a process of its own
session, signals it as a terminal (the whole group) or as ``kill`` (the main process
alone) does once a condition it can see holds, and reads what it printed.

Exit statuses: 130 Ctrl-C (SIGINT), 143 SIGTERM, 141 standard output closed by its reader.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_fixtures import synth_song, write_audio
from run_watch import stored_results, wait_for

from tagger import analysis
from tagger.results_cache import DATABASE_NAME

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="watches processes through Linux's /proc")

ROOT = Path(__file__).resolve().parents[1]
INTERRUPTED = "genre-tag: interrupted"
TERMINATED = "genre-tag: terminated"
OUTPUT_CLOSED = "genre-tag: stopped: standard output was closed by the program reading it"
SONGS = 32
# Long names make long lines: what a run prints after its first line is more than a pipe
# holds, so a run can neither finish early nor write everything before its reader goes.
LONG_TITLE = " and".join(["a song with a long name"] * 8)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    music = tmp_path_factory.mktemp("interrupts") / "music"
    music.mkdir()
    for seed in range(SONGS):
        write_audio(music / f"{seed:02d} {LONG_TITLE}.wav", synth_song(3.0, 22050, seed=seed),
                    22050)
    return music


@pytest.fixture(scope="module")
def warm_cache(library: Path) -> Path:
    """A results cache that remembers every song of ``library``."""
    cache_home = library.parent / "cache"
    completed = subprocess.run(command(str(library), "--jobs", "2", "--quiet"),
                               env=environment(cache_home), capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    return cache_home


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tagger", *args, "--device", "cpu"]


def environment(cache_home: Path, *first_on_path: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(map(str, [*first_on_path, ROOT]))}
    env.pop("GENRE_TAG_JOBS", None)
    return env


# The runs a test started: ended with their process group when the test is over.
STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_run_left_behind() -> Iterator[None]:
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:  # a test that failed while the run was held
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start(args: list[str], env: dict[str, str], stdout: int = subprocess.DEVNULL
          ) -> subprocess.Popen:
    """The CLI in a session of its own, so that a signal can go to its whole group."""
    process = subprocess.Popen(command(*args), env=env, stdout=stdout,
                               stderr=subprocess.PIPE, start_new_session=True)
    STARTED.append(process)
    return process


def send(process: subprocess.Popen, number: int, to_group: bool) -> None:
    if to_group:
        os.killpg(process.pid, number)  # a terminal's Ctrl-C
    else:
        os.kill(process.pid, number)


def signal_mask(pid: int, field: str) -> int:
    """A signal mask of /proc/PID/status: SigBlk, SigIgn or SigCgt."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def has(mask: int, number: int) -> bool:
    return bool(mask >> (number - 1) & 1)


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:  # the thread has ended
            continue
    return found


def pool_workers(pid: int) -> set[int]:
    """The pool's worker processes (not multiprocessing's resource tracker)."""
    workers = set()
    for child in children(pid):
        try:
            if b"--multiprocessing-fork" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(child)
        except OSError:  # ended meanwhile
            continue
    return workers


def stored_songs(cache_home: Path) -> int:
    return stored_results(cache_home / "genre-tag" / "results" / DATABASE_NAME)


def finish(process: subprocess.Popen) -> tuple[str, list[str]]:
    """What the run printed (standard output, and standard error's lines) once it ended."""
    out, err = process.communicate(timeout=300)  # a guard against a hung run
    return (out or b"").decode(), err.decode().strip().splitlines()


def whole_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


HOLD = '''"""Holds a genre-tag process at one moment of its run, for a test to signal it there.

TEST_HOLD_AT is a module (the process is held as it first imports it) or 'worker start'
(each --jobs worker is held before it imports anything). A held process says so with a
file PID.held beside this one, and waits on a FIFO that nobody opens.
"""

import os
import pathlib
import sys

GATE = pathlib.Path(__file__).parent
HOLD_AT = os.environ.get("TEST_HOLD_AT")


def hold():
    (GATE / f"{os.getpid()}.held").touch()
    open(GATE / "fifo", "rb")


class HoldAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == HOLD_AT:
            sys.meta_path.remove(self)
            hold()


if HOLD_AT == "worker start":
    if "--multiprocessing-fork" in sys.argv:
        hold()
elif HOLD_AT:
    sys.meta_path.insert(0, HoldAtImport())
'''


def holding(tmp_path: Path, where: str) -> tuple[Path, dict[str, str]]:
    """A folder whose sitecustomize holds genre-tag at ``where``, and the environment
    variables that name it (see ``HOLD``)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    os.mkfifo(gate / "fifo")
    (gate / "sitecustomize.py").write_text(HOLD)
    return gate, {"TEST_HOLD_AT": where}


def held(gate: Path) -> set[int]:
    return {int(marker.stem) for marker in gate.glob("*.held")}


# Where a run is held or watched for: before the action (click reads the options, the
# command imports the runner), while the model is built, while the --jobs workers start
# (see test_ctrl_c_while_workers_start_ends_them), while songs are analysed.
MOMENTS = {"starting": "tagger.runner", "loading the model": "openvino",
           "analysing": None}


def start_at(moment: str, library: Path, tmp_path: Path, out: Path
             ) -> tuple[subprocess.Popen, Path]:
    """A run over ``library`` (cold cache, two jobs, JSON Lines into ``out``), held at or
    watched until ``moment``; its cache folder."""
    cache_home = tmp_path / "cache"
    args = [str(library), "--jobs", "2", "--quiet", "--json", str(out)]
    if MOMENTS[moment] is None:
        process = start(args, environment(cache_home))
        wait_for(lambda: stored_songs(cache_home) > 0, process, "a song analysed")
    else:
        gate, hold_at = holding(tmp_path, MOMENTS[moment])
        process = start(args, {**environment(cache_home, gate), **hold_at})
        wait_for(lambda: process.pid in held(gate), process, moment)
    return process, cache_home


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [True, False], ids=["to the group", "to genre-tag"])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_at_any_moment_is_one_line_and_130(library: Path, tmp_path: Path,
                                                   moment: str, to_group: bool) -> None:
    out = tmp_path / "tags.jsonl"
    process, cache_home = start_at(moment, library, tmp_path, out)
    send(process, signal.SIGINT, to_group)
    _, errors = finish(process)
    assert process.returncode == 130, errors
    assert errors == [INTERRUPTED]
    assert len(whole_records(out)) <= stored_songs(cache_home) < SONGS


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigterm_ends_a_run_like_ctrl_c_with_143(library: Path, tmp_path: Path,
                                                 moment: str) -> None:
    out = tmp_path / "tags.jsonl"
    process, cache_home = start_at(moment, library, tmp_path, out)
    send(process, signal.SIGTERM, to_group=False)
    _, errors = finish(process)
    assert process.returncode == 143, errors
    assert errors == [TERMINATED]
    assert len(whole_records(out)) <= stored_songs(cache_home) < SONGS


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [True, False], ids=["to the group", "to genre-tag"])
def test_ctrl_c_while_workers_start_ends_them(library: Path, tmp_path: Path,
                                              to_group: bool) -> None:
    gate, hold_at = holding(tmp_path, "worker start")
    process = start([str(library), "--jobs", "2", "--quiet"],
                    {**environment(tmp_path / "cache", gate), **hold_at})
    wait_for(lambda: len(held(gate)) == 2, process, "two workers starting")
    workers = pool_workers(process.pid)
    assert held(gate) == workers
    for worker in workers:  # started with Ctrl-C held back, as the main process set it
        assert has(signal_mask(worker, "SigBlk"), signal.SIGINT)
    send(process, signal.SIGINT, to_group)
    _, errors = finish(process)
    assert process.returncode == 130, errors
    assert errors == [INTERRUPTED]
    assert not any(Path(f"/proc/{worker}").exists() for worker in workers)


def test_a_ctrl_c_while_workers_are_started_is_raised_once_they_are_up() -> None:
    """The few milliseconds in which the pool starts its processes: a Ctrl-C is neither
    lost nor raised half-way; the processes started meanwhile hold it back."""
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt), analysis._signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        reached_the_end = True
    try:
        assert reached_the_end
        assert has(signal_mask(child.pid, "SigBlk"), signal.SIGINT)
    finally:
        child.communicate(b"")


def small_pipe() -> tuple[int, int]:
    """A pipe that holds a page: what a run prints after its first line does not fit."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, os.sysconf("SC_PAGE_SIZE"))
    return read_end, write_end


def start_into_pipe(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """The run, with standard output into a small pipe; the pipe's read end."""
    read_end, write_end = small_pipe()
    process = start(args, env, stdout=write_end)
    os.close(write_end)
    return process, read_end


def first_line(read_end: int) -> bytes:
    """The first line of the pipe, read byte by byte: the rest stays in the pipe."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(read_end, 1)
        assert byte, f"the run printed no whole line: {line!r}"
        line += byte
    return line


def copy_of(library: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = shutil.copytree(library, tmp_path / "library")
    return folder, {path.name: sha256(path) for path in folder.iterdir()}


def tagged_files(folder: Path, before: dict[str, str]) -> int:
    """How many files of ``folder`` were written; every other one is as it was, and
    nothing was left beside them."""
    assert sorted(path.name for path in folder.iterdir()) == sorted(before)
    return sum(sha256(folder / name) != digest for name, digest in before.items())


def summary_counts(line: str) -> dict[str, str]:
    return dict(word.split("=") for word in line.split(" (")[0].split())


@pytest.mark.slow
@pytest.mark.parametrize(("number", "to_group", "status", "said"), [
    (signal.SIGINT, True, 130, INTERRUPTED),
    (signal.SIGINT, False, 130, INTERRUPTED),
    (signal.SIGTERM, False, 143, TERMINATED),
], ids=["ctrl-c", "ctrl-c to genre-tag", "sigterm"])
def test_stopped_while_writing_tags_gives_the_summary_and_whole_files(
        library: Path, warm_cache: Path, tmp_path: Path, number: int, to_group: bool,
        status: int, said: str) -> None:
    folder, before = copy_of(library, tmp_path)
    process, read_end = start_into_pipe([str(folder), "--write-tags", "--jobs", "1"],
                                        environment(warm_cache))
    with os.fdopen(read_end, "rb") as output:
        assert first_line(output.fileno()).startswith(b"written")
        send(process, number, to_group)  # the run is writing tags, held by the full pipe
        out = output.read().decode()  # until the run ends
    _, errors = finish(process)
    assert process.returncode == status, errors
    assert errors == [said]
    summary = out.strip().splitlines()[-1]
    assert summary.endswith("(interrupted: every file is as it was or fully written)")
    counts = summary_counts(summary)
    assert counts["processed"] == str(SONGS) and counts["errors"] == "0"
    assert 1 <= int(counts["written"]) == tagged_files(folder, before) < SONGS


@pytest.mark.slow
def test_ctrl_c_while_restoring_gives_the_summary_and_whole_files(
        library: Path, warm_cache: Path, tmp_path: Path) -> None:
    folder, before = copy_of(library, tmp_path)
    written = subprocess.run(command(str(folder), "--write-tags", "--jobs", "1"),
                             env=environment(warm_cache), capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    process, read_end = start_into_pipe(["--restore-tags", str(folder)],
                                        environment(warm_cache))
    with os.fdopen(read_end, "rb") as output:
        assert first_line(output.fileno()).startswith(b"restored")
        send(process, signal.SIGINT, True)  # restoring, held by the full pipe
        out = output.read().decode()
    _, errors = finish(process)
    assert process.returncode == 130 and errors == [INTERRUPTED]
    summary = out.strip().splitlines()[-1]
    assert summary.endswith("(interrupted: every file is as it was or fully written)")
    counts = summary_counts(summary)
    assert 1 <= int(counts["written"]) == SONGS - tagged_files(folder, before) < SONGS


@pytest.mark.slow
@pytest.mark.parametrize("options", [["--json", "-"], ["--csv", "-"], []],
                         ids=["json", "csv", "timeline"])
def test_a_closed_standard_output_stops_the_run_with_141(
        library: Path, warm_cache: Path, options: list[str]) -> None:
    process, read_end = start_into_pipe([str(library), "--jobs", "1", *options],
                                        environment(warm_cache))
    first_line(read_end)
    os.close(read_end)  # as `| head -1` does
    _, errors = finish(process)
    assert process.returncode == 141, errors
    assert errors == [OUTPUT_CLOSED]


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], ["--json", "-"]], ids=["lines", "json"])
def test_a_closed_standard_output_stops_writing_tags_with_the_summary(
        library: Path, warm_cache: Path, tmp_path: Path, options: list[str]) -> None:
    folder, before = copy_of(library, tmp_path)
    process, read_end = start_into_pipe([str(folder), "--write-tags", "--jobs", "1",
                                         *options], environment(warm_cache))
    first_line(read_end)
    os.close(read_end)
    _, errors = finish(process)
    assert process.returncode == 141, errors
    assert errors[-1] == OUTPUT_CLOSED
    summary = errors[-2]
    assert summary.endswith("(stopped: standard output was closed; every file is as it was "
                            "or fully written)")
    assert 1 <= int(summary_counts(summary)["written"]) == tagged_files(folder, before) < SONGS
    assert not any("Traceback" in line for line in errors)
