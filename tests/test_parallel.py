"""--jobs: songs analysed in worker processes give the records of one process, bad files and
warnings are reported as in one process, and Ctrl-C ends the workers and keeps what was
done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import chord, synth_song, write_audio
from click.testing import CliRunner, Result
from conftest import mixed_music_folder
from run_watch import stored_results
from test_damaged_audio import write_float_wav

from tagger import analysis
from tagger.cli import main
from tagger.inference import AudioModel, outputs_of
from tagger.results_cache import DATABASE_NAME, ModelOutputs

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def no_analysis_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process refuse to analyse: only worker processes can."""
    def refuse(models: list[AudioModel], path: Path, source: str) -> None:
        raise AssertionError(f"{path} was analysed in the main process")

    monkeypatch.setattr(analysis, "outputs_of", refuse)


@pytest.mark.slow
def test_two_jobs_give_exactly_the_records_of_one(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for seed in range(4):
        write_audio(music / f"song {seed}.flac", synth_song(3.0 + seed, 44100, seed=seed), 44100)
    write_audio(music / "chord.ogg", chord(2.5, 48000), 48000)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run(str(music), "--jobs", "1", "--no-cache", "--json", str(one), "-q").exit_code == 0
    no_analysis_here(monkeypatch)
    result = run(str(music), "--jobs", "2", "--no-cache", "--json", str(two), "-q")
    assert result.exit_code == 0, result.output
    assert records(two) == records(one)  # same numbers, same order
    assert [r["title"] for r in records(two)] == ["chord", *(f"song {i}" for i in range(4))]


@pytest.mark.slow
def test_two_jobs_write_the_emotion_of_one(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folders = [tmp_path / "one", tmp_path / "two"]
    for folder in folders:
        folder.mkdir()
        for seed in range(3):
            write_audio(folder / f"song {seed}.flac", synth_song(3.0 + seed, 44100, seed=seed),
                        44100)
    reports = [tmp_path / "one.jsonl", tmp_path / "two.jsonl"]
    result = run(str(folders[0]), "--write-tags", "--write-emotion", "--jobs", "1", "--no-cache",
                 "--report", str(reports[0]))
    assert result.exit_code == 0, result.output
    no_analysis_here(monkeypatch)
    result = run(str(folders[1]), "--write-tags", "--write-emotion", "--jobs", "2", "--no-cache",
                 "--report", str(reports[1]))
    assert result.exit_code == 0, result.output
    written = [[record["written"] for record in records(report)] for report in reports]
    assert written[1] == written[0] and all("valence" in song for song in written[1])


@pytest.mark.slow
def test_bad_files_and_warnings_of_workers_are_reported_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    music = mixed_music_folder(tmp_path)
    samples = synth_song(4.0, 44100)
    samples[2 * 44100 + 10 : 2 * 44100 + 20] = np.nan
    glitch = write_float_wav(music / "glitch.wav", samples)
    out = tmp_path / "tags.jsonl"
    no_analysis_here(monkeypatch)
    result = run(str(music), "--jobs", "2", "--json", str(out), "-q")
    assert result.exit_code == 1
    assert sorted(r["title"] for r in records(out)) == ["glitch", "one", "two"]
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    for name in ("broken.mp3", "empty.wav", "silence.wav"):
        assert sum(name in line for line in lines) == 1, result.stderr
    warnings = [line for line in lines if line.startswith("genre-tag: warning:")]
    assert len(warnings) == 1 and f"{glitch}: damaged samples" in warnings[0]
    assert "3 of 6 inputs tagged, 3 failed" in result.stderr


def test_jobs_must_be_at_least_one(tmp_path: Path) -> None:
    result = run(str(tmp_path), "--jobs", "0")
    assert result.exit_code == 2 and "'--jobs'" in result.stderr and "x>=1" in result.stderr


def pool_workers_of(pid: int) -> set[int]:
    """The worker processes of ``pid``'s pool (not multiprocessing's resource tracker, which
    ends by itself once the main process has gone)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for child in (task / "children").read_text().split():
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
        except OSError:  # a thread or a child that has ended meanwhile
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.slow
def test_ctrl_c_ends_the_workers_and_the_cache_keeps_the_songs_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C once songs are done (tests/test_interrupts.py stops runs at other moments);
    the next run analyses only the others."""
    music = tmp_path / "music"
    music.mkdir()
    for seed in range(16):
        write_audio(music / f"{seed:02d}.wav", synth_song(30.0, 22050, seed=seed), 22050)
    cache_home = tmp_path / "cache"
    database = cache_home / "genre-tag" / "results" / DATABASE_NAME
    out = tmp_path / "tags.jsonl"
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": str(ROOT)}
    environment.pop("GENRE_TAG_JOBS", None)
    command = [sys.executable, "-m", "tagger", str(music), "--jobs", "2", "--quiet",
               "--json", str(out), "--device", "cpu"]
    # A session of its own, so that Ctrl-C can go to the whole group, as a terminal sends it.
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # a guard against a hung run, not a measurement
        while stored_results(database) == 0:
            assert process.poll() is None, "the run ended before a song was stored"
            assert time.monotonic() < deadline, "no song was ever stored"
            time.sleep(0.05)
        workers = pool_workers_of(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        _, errors = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, errors
    assert errors.strip().splitlines() == ["genre-tag: interrupted"]
    assert len(workers) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in workers)
    done = stored_results(database)
    assert 0 < done < 16
    # Finished songs' records are kept too; a song can be stored by its worker before the
    # main process writes its records.
    assert len(records(out) if out.exists() else []) <= done

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    analysed = []

    def counting(models: list[AudioModel], path: Path, source: str) -> list[ModelOutputs]:
        analysed.append(path)
        return outputs_of(models, path, source)

    monkeypatch.setattr(analysis, "outputs_of", counting)
    assert run(str(music), "--jobs", "1", "-q").exit_code == 0
    assert len(analysed) == 16 - done
