"""``genre-tag batch``: Parquet tables with the CLI's numbers, bad songs as rows, sources
of every kind, both tasks, resuming after SIGKILL, and the Ray engine on a local Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import chord, synth_song, write_audio
from click.testing import CliRunner, Result
from conftest import assert_one_line_error
from damage import cut_in_half, damage_middle

pyarrow = pytest.importorskip("pyarrow")
import pyarrow.parquet as parquet  # noqa: E402

from tagger.batch.tables import SCHEMA, SCHEMA_KEY, part_files  # noqa: E402
from tagger.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def table(results: Path, name: str) -> list[dict]:
    files = part_files(results, name)
    return [row for path in files for row in parquet.read_table(path).to_pylist()]


def cli_record(path: Path, command: str = "tag") -> dict:
    """What ``genre-tag FILE --json`` writes for ``path``."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "song.json"
        result = run(command, str(path), "--json", str(out), "--quiet")
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())


def cli_error(path: Path) -> str:
    """The one-line reason ``genre-tag FILE`` gives for a bad file."""
    result = run(str(path), "--quiet")
    assert_one_line_error(result)
    return result.stderr.strip().removeprefix("genre-tag: error: ")


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two songs (one with a silent second) and a broken file."""
    folder = tmp_path_factory.mktemp("batch") / "music"
    (folder / "album").mkdir(parents=True)
    song = synth_song(4.5, 44100, seed=3)
    song[44100:88200] = 0
    write_audio(folder / "album" / "one.flac", song, 44100)
    write_audio(folder / "two.ogg", chord(3.0, 48000), 48000)
    (folder / "broken.mp3").write_bytes(b"\xff\xfb" + bytes(range(256)) * 12)
    return folder


def assert_matches_cli(results: Path, song: Path) -> None:
    """The songs and seconds rows of ``song`` hold the numbers ``genre-tag FILE --json``
    gives (which rounds to 4 decimals)."""
    record = cli_record(song)
    source = str(song.resolve())
    [row] = [row for row in table(results, "songs") if row["source"] == source]
    assert row["title"] == record["title"] and row["model"] == record["model"]
    assert row["duration"] == pytest.approx(record["duration"], abs=1e-3)
    assert row["genre"] == record["summary"]["genre"]
    assert row["classes"] == record["classes"]
    assert row["uncertain_below"] == pytest.approx(record["uncertain_below"])
    assert row["song_genres"] == [found["genre"] for found in record["summary"]["song_genres"]]
    summary = {entry["genre"]: entry for entry in record["summary"]["genres"]}
    for genre, share, mean in zip(row["classes"], row["shares"], row["mean_probabilities"],
                                  strict=True):
        assert share == pytest.approx(summary[genre]["share_of_seconds"], abs=6e-5)
        assert mean == pytest.approx(summary[genre]["mean_probability"], abs=6e-5)
    seconds = sorted((r for r in table(results, "seconds") if r["source"] == source),
                     key=lambda r: r["second"])
    assert len(seconds) == row["n_seconds"] == len(record["seconds"])
    for ours, theirs in zip(seconds, record["seconds"], strict=True):
        assert (ours["start"], ours["end"]) == pytest.approx((theirs["start"], theirs["end"]),
                                                             abs=1e-3)
        assert ours["genre"] == theirs["genre"]
        for flag in ("partial", "silent", "uncertain"):
            assert ours[flag] == theirs[flag]
        if theirs["probabilities"] is None:
            assert ours["probabilities"] is None
        else:
            expected = [theirs["probabilities"][genre] for genre in row["classes"]]
            np.testing.assert_allclose(ours["probabilities"], expected, atol=6e-5)


@pytest.mark.slow
def test_local_batch_has_the_cli_numbers_and_a_row_per_bad_file(music: Path,
                                                                 tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = run("batch", str(music), "--out", str(results))
    assert result.exit_code == 1, result.output
    assert "2 songs tagged" in result.stderr and "1 failed" in result.stderr
    assert_matches_cli(results, music / "album" / "one.flac")
    assert_matches_cli(results, music / "two.ogg")
    seconds = table(results, "seconds")
    assert any(r["silent"] and r["genre"] is None for r in seconds)
    [error] = table(results, "errors")
    broken = music / "broken.mp3"
    assert error["source"] == str(broken.resolve()) and error["kind"] == "AudioError"
    assert error["error"] == cli_error(broken.resolve())
    for name in ("songs", "seconds", "errors"):
        metadata = parquet.read_schema(part_files(results, name)[0]).metadata
        assert metadata[SCHEMA_KEY].decode() == SCHEMA == "genre-tag/batch/2"


@pytest.mark.slow
def test_list_files_and_table_columns_are_sources(music: Path, tmp_path: Path) -> None:
    one, two = music / "album" / "one.flac", music / "two.ogg"
    listing = tmp_path / "songs.txt"
    listing.write_text(f"# my songs\n\n{os.path.relpath(one, tmp_path)}\n{tmp_path}/gone.mp3\n")
    catalogue = tmp_path / "catalogue.parquet"
    parquet.write_table(pyarrow.table({"uri": [str(two), None, str(one)]}), catalogue)
    results = tmp_path / "results"
    result = run("batch", str(listing), str(catalogue), "--column", "uri", "--out", str(results))
    assert result.exit_code == 1, result.output
    songs = table(results, "songs")
    assert sorted(row["title"] for row in songs) == ["one", "two"]  # one is named twice
    [gone] = table(results, "errors")
    assert gone["source"] == f"{tmp_path}/gone.mp3" and "no such file" in gone["error"]
    assert_one_line_error(run("batch", str(catalogue), "--out", str(results)),
                          "catalogue.parquet", "no column 'path'", "--column")


@pytest.mark.slow
def test_emotion_task_has_the_emotion_commands_numbers(music: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    two = music / "two.ogg"
    result = run("batch", str(two), "--task", "emotion", "--out", str(results))
    assert result.exit_code == 0, result.output
    record = cli_record(two, "emotion")
    [row] = table(results, "songs")
    assert row["targets"] == record["targets"]
    np.testing.assert_allclose(row["values"], [record["song"][t] for t in row["targets"]],
                               atol=6e-5)
    seconds = sorted(table(results, "seconds"), key=lambda r: r["second"])
    for ours, theirs in zip(seconds, record["seconds"], strict=True):
        np.testing.assert_allclose(ours["values"], [theirs[t] for t in row["targets"]],
                                   atol=6e-5)
    assert_one_line_error(run("batch", str(two), "--out", str(results)),
                          "holds emotion results", "its own --out")


@pytest.mark.slow
def test_without_ray_the_local_engine_runs_and_ray_says_how_to_install(
        music: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    two = str(music / "two.ogg")
    assert run("batch", two, "--out", str(tmp_path / "local")).exit_code == 0
    assert_one_line_error(run("batch", two, "--out", str(tmp_path / "ray"), "--engine", "ray"),
                          "pip install 'genre-tag[ray]'")
    misplaced = run("batch", two, "--out", str(tmp_path / "x"), "--actors", "2")
    assert misplaced.exit_code == 2 and "--actors is for --engine ray" in misplaced.stderr


def three_chords(tmp_path: Path, seconds: float) -> Path:
    """A folder of three short WAVs of different chords, a0.wav to a2.wav."""
    music = tmp_path / "music"
    music.mkdir()
    for number in range(3):
        write_audio(music / f"a{number}.wav", chord(seconds, 16000, root=200 + 50 * number),
                    16000)
    return music


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_without_duplicates(tmp_path: Path) -> None:
    music = three_chords(tmp_path, 2.0)
    write_audio(music / "z_long.flac", chord(60.0, 16000), 16000)  # still running at the kill
    results = tmp_path / "results"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tagger", "batch", str(music), "--out", str(results),
               "--songs-per-part", "1", "--device", "cpu"]
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE)
    try:
        while len(part_files(results, "songs")) < 3 and process.poll() is None:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    written = {row["source"] for row in table(results, "songs")}
    assert len(written) == 3 and str(music / "z_long.flac") not in written
    # What a kill between a part's files leaves: a seconds part without its songs part.
    orphan = part_files(results, "seconds")[0]
    shutil.copy(orphan, orphan.with_name("part-orphan.parquet"))
    (results / "songs" / ".part-left.parquet.tmp").write_bytes(b"half")

    result = run("batch", str(music), "--out", str(results))
    assert result.exit_code == 0, result.output
    assert "1 song tagged" in result.stderr and "3 already in" in result.stderr
    assert_every_song_once(results, music)
    assert not list(results.rglob(".part-*")) and not list(results.rglob("part-orphan*"))


def assert_every_song_once(results: Path, music: Path) -> None:
    """The tables hold every song of ``music`` once, with each of its seconds once."""
    songs = table(results, "songs")
    assert sorted(row["source"] for row in songs) == sorted(str(p) for p in music.iterdir())
    seconds = table(results, "seconds")
    for row in songs:
        mine = [r["second"] for r in seconds if r["source"] == row["source"]]
        assert sorted(mine) == list(range(row["n_seconds"]))


@pytest.fixture(scope="module")
def local_ray():
    """A Ray of this machine for the module's tests, nothing external; the signal handlers
    ray.init installs in this process are put back after it."""
    ray = pytest.importorskip("ray")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.mark.slow
def test_ray_engine_writes_the_same_tables_as_the_local_engine(
        local_ray: object, music: Path, tmp_path: Path) -> None:
    listing = tmp_path / "songs.txt"
    listing.write_text("".join(f"{path}\n" for path in sorted(music.rglob("*.*"))))
    errors = {}
    for engine in ("local", "ray"):
        results = tmp_path / engine
        result = run("batch", str(listing), "--out", str(results), "--engine", engine,
                     "--songs-per-part", "2")
        assert result.exit_code == 1, result.output
        assert "2 songs tagged" in result.stderr and "1 failed" in result.stderr
        assert_matches_cli(results, music / "album" / "one.flac")
        assert_matches_cli(results, music / "two.ogg")
        errors[engine] = table(results, "errors")
    assert errors["ray"] == errors["local"] and len(errors["ray"]) == 1
    rerun = run("batch", str(listing), "--out", str(tmp_path / "ray"), "--engine", "ray")
    assert "0 songs tagged" in rerun.stderr and "2 already in" in rerun.stderr
    assert len(table(tmp_path / "ray", "songs")) == 2 and len(table(tmp_path / "ray",
                                                                    "errors")) == 1


@pytest.mark.slow
def test_a_resume_redoes_the_songs_of_damaged_parts(tmp_path: Path) -> None:
    music = three_chords(tmp_path, 3.0)
    results = tmp_path / "results"
    first = run("batch", str(music), "--out", str(results), "--songs-per-part", "1")
    assert first.exit_code == 0, first.output
    songs_parts = part_files(results, "songs")
    assert len(songs_parts) == 3
    flipped = songs_parts[0]
    halved = results / "seconds" / songs_parts[1].name
    damage_middle(flipped)
    cut_in_half(halved)

    resumed = run("batch", str(music), "--out", str(results), "--songs-per-part", "1")
    assert resumed.exit_code == 0, resumed.output
    assert "Traceback" not in resumed.stderr
    warnings = [line for line in resumed.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2, resumed.stderr
    for damaged, line in zip((flipped, halved), warnings, strict=True):
        assert line.startswith(f"genre-tag: warning: {damaged}: a damaged results part (")
        assert "its songs are tagged again" in line
    assert "2 songs tagged" in resumed.stderr and "1 already in" in resumed.stderr
    assert_every_song_once(results, music)
    again = run("batch", str(music), "--out", str(results))
    assert "warning" not in again.stderr and "3 already in" in again.stderr
