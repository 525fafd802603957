from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from audio_fixtures import chord, synth_song, tone, write_audio
from click.testing import Result

from tagger.inference import Tagger

# The shared training data: ../shared/data beside the checkout, or GENRE_TAG_SHARED_DATA
# (for a checkout elsewhere, such as a git worktree).
SHARED_DATA = Path(os.environ.get("GENRE_TAG_SHARED_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")
# musicnn's layout at a size that trains in a test.
SMALL_MUSICNN = {"timbral_channels": 8, "temporal_channels": 4, "midend_channels": 8,
                 "embedding": 16}


def shared_data(subfolder: str) -> Path:
    """A folder of ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / subfolder
    if not path.is_dir():
        pytest.skip(f"shared training data not present at {path}")
    return path


def mixed_music_folder(root: Path) -> Path:
    """Two good files (one in a sub-folder) and three bad ones: broken, empty, silent."""
    music = root / "music"
    (music / "album").mkdir(parents=True)
    write_audio(music / "album" / "one.flac", synth_song(3.0, 44100, seed=1), 44100)
    write_audio(music / "two.ogg", chord(2.0, 48000), 48000)
    (music / "broken.mp3").write_bytes(b"\xff\xfb" + os.urandom(3000))
    (music / "empty.wav").touch()
    write_audio(music / "silence.wav", 0 * chord(2.0, 44100), 44100)
    return music


BAD_INPUTS = ["missing.mp3", "short.wav", "text.mp3", "empty.flac"]


def bad_input(folder: Path, name: str) -> Path:
    """One of ``BAD_INPUTS`` in ``folder``: missing, too short, not audio, or empty."""
    path = folder / name
    if name == "short.wav":
        write_audio(path, chord(0.5, 44100), 44100)
    elif name == "text.mp3":
        path.write_text("hello\n" * 100)
    elif name == "empty.flac":
        path.touch()
    return path


def assert_bad_files_reported_and_good_ones_kept(result: Result, jsonl: Path,
                                                 pngs: Path) -> None:
    """A run over ``mixed_music_folder``: the two good songs written, each bad file named."""
    assert result.exit_code == 1
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted(r["title"] for r in records) == ["one", "two"]
    errors = result.stderr.strip().splitlines()
    assert any("broken.mp3" in line for line in errors)
    assert any("empty.wav" in line and "empty" in line for line in errors)
    assert any("silence.wav" in line and "silence" in line for line in errors)
    assert "2 of 5 inputs tagged, 3 failed" in result.stderr
    assert sorted(p.name for p in pngs.iterdir()) == ["one.png", "two.png"]


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """The CLI failed with exactly one line on stderr, holding every fragment, no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="session")
def exported_graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of exported model graphs for the whole session: each is built once."""
    return tmp_path_factory.mktemp("graphs")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                   exported_graphs: Path):
    """Keep download, feature and results caches and the undo store out of the user's real
    folders; tag in one process (worker processes are tested with --jobs in
    test_parallel.py)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.setenv("GENRE_TAG_GRAPHS", str(exported_graphs))
    monkeypatch.setenv("GENRE_TAG_JOBS", "1")
    return cache


@pytest.fixture(scope="session")
def tagger_cpu() -> Tagger:
    return Tagger.load(device="cpu")


@pytest.fixture(scope="session")
def song_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12.5-second synthetic song as MP3."""
    folder = tmp_path_factory.mktemp("songs")
    return write_audio(folder / "synth song.mp3", synth_song(12.5, 44100), 44100, channels=2)


@pytest.fixture(scope="session")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tones")
    return write_audio(folder / "tone.wav", tone(3.0, 44100), 44100)
