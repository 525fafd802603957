"""A run killed outright (SIGKILL: ``kill -9``, the OOM killer) keeps, at each record
output's path, the whole records of the songs it finished and leaves no temporary file;
the temporary files a killed run left are removed by the next run that writes the output,
and those of a live run never are."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_fixtures import synth_song, write_audio
from run_watch import wait_for

ROOT = Path(__file__).resolve().parents[1]
SONGS = 4
HELD_AT = 3  # the song being analysed when the run is killed

# genre-tag with its analysis held, as the song HELD_AT starts, on a FIFO nobody opens:
# it says so with the file argv[1] and stays there until killed.
HELD_RUN = f"""
import pathlib, sys
from tagger import analysis
from tagger.cli import main

analyse = analysis.outputs_of
songs = []

def held_at_song_{HELD_AT}(*args):
    songs.append(args)
    if len(songs) == {HELD_AT}:
        pathlib.Path(sys.argv[1]).touch()
        open(sys.argv[2], "rb")
    return analyse(*args)

analysis.outputs_of = held_at_song_{HELD_AT}
main(sys.argv[3:], prog_name="genre-tag")
"""


@pytest.fixture
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "music"
    folder.mkdir()
    for seed in range(SONGS):
        write_audio(folder / f"{seed + 1}.wav", synth_song(2.0, 22050, seed=seed), 22050)
    return folder


def environment(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    env.pop("GENRE_TAG_JOBS", None)
    return env


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    """The runs a test starts, killed with their group if the test fails while one is held."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def hidden_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.mark.parametrize(("options", "output"), [
    (["--json", "{out}"], "out.jsonl"),
    (["--write-tags", "--report", "{out}"], "r.jsonl"),
], ids=["json", "write-tags report"])
def test_a_killed_run_keeps_the_whole_records_of_the_songs_it_finished(
        music: Path, tmp_path: Path, started: list[subprocess.Popen], options: list[str],
        output: str) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    out = outputs / output
    out.write_text("an earlier run\n")
    held, gate = tmp_path / "held", tmp_path / "gate"
    os.mkfifo(gate)
    args = [str(music), *(option.format(out=out) for option in options), "--jobs", "1",
            "--quiet", "--device", "cpu"]
    process = subprocess.Popen([sys.executable, "-c", HELD_RUN, str(held), str(gate), *args],
                               env=environment(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    started.append(process)
    wait_for(held.exists, process, f"song {HELD_AT} analysed")  # songs before it written
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    text = out.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    paths = [record.get("source", record.get("path")) for record in records]
    assert paths == [str(music / f"{song}.wav") for song in range(1, HELD_AT)]
    assert hidden_files(outputs) == []


def hold_lock(path: Path) -> int:
    """``path`` made and locked as a live run's temporary file is; its descriptor."""
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(handle, b'{"a live run": 1}\n')
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def test_the_next_run_removes_what_killed_runs_left_and_nothing_else(
        music: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    abandoned = [outputs / ".out.jsonl.v2tv9bgx", outputs / ".out.jsonl.k_1lled0",
                 outputs / ".timeline.png.x8a0_q2z"]  # a record file's and a picture's
    for path in abandoned:
        path.write_text('{"song": "half')
    others = [outputs / ".out.jsonl.notes", outputs / ".other.jsonl.v2tv9bgx"]
    for path in others:
        path.write_text("someone else's\n")
    live = outputs / ".out.jsonl.l1ve0run"
    handle = hold_lock(live)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "tagger", str(music / "1.wav"), "--json",
             str(outputs / "out.jsonl"), "--png", str(outputs / "timeline.png"), "--quiet",
             "--device", "cpu"],
            env=environment(tmp_path), capture_output=True, text=True, timeout=600)
        assert completed.returncode == 0, completed.stderr
        assert live.read_text() == '{"a live run": 1}\n'
    finally:
        os.close(handle)
    assert json.loads((outputs / "out.jsonl").read_text())["title"] == "1"
    assert hidden_files(outputs) == sorted(path.name for path in [*others, live])
