from __future__ import annotations

from pathlib import Path

import pytest
from audio_fixtures import synth_song, tone, write_audio
from click.testing import Result

from tagger.inference import Tagger

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(subfolder: str) -> Path:
    """A folder of ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / subfolder
    if not path.is_dir():
        pytest.skip(f"shared training data not present at {path}")
    return path


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """The CLI failed with exactly one line on stderr, holding every fragment, no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep download and feature caches out of the user's real cache folder."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
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
