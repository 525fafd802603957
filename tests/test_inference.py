from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import chord, synth_song, write_audio
from conftest import shared_data

from tagger.checkpoints import bundled_weights_path, card_path_for, load_checkpoint, sha256_of
from tagger.devices import select_device
from tagger.errors import ModelError, SilentAudioError, TaggerError
from tagger.inference import Tagger, tag


def test_bundled_model_card_is_complete_and_matches_its_weights() -> None:
    weights = bundled_weights_path()
    card = json.loads(card_path_for(weights).read_text())
    assert card["sha256"] == sha256_of(weights)
    assert len(card["classes"]) == 10 and "rock" in card["classes"]
    assert card["front_end"]["sample_rate"] == 8000 and card["front_end"]["n_mels"] == 128
    assert card["training"]["command"].startswith("genre-tag retrain")
    assert 0 < card["evaluation"]["valid"]["per_clip_accuracy"] <= 1
    assert weights.stat().st_size < 20 * 2**20
    # The weights file is safetensors: an 8-byte header length, then JSON; no pickle.
    header_length = int.from_bytes(weights.read_bytes()[:8], "little")
    header = json.loads(weights.read_bytes()[8 : 8 + header_length])
    assert json.loads(header["__metadata__"]["card"])["classes"] == card["classes"]


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    from tagger.checkpoints import save_checkpoint

    loaded = load_checkpoint(bundled_weights_path())
    copy = tmp_path / "copy.safetensors"
    save_checkpoint(loaded.model, loaded.card, copy)
    again = load_checkpoint(copy)
    melgrams = torch.randn(3, 21, 128) * 20 - 40
    with torch.inference_mode():
        np.testing.assert_array_equal(loaded.model(melgrams).numpy(), again.model(melgrams).numpy())


def test_damaged_checkpoints_raise_model_errors(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(bundled_weights_path().read_bytes()[:5000])
    for path in (truncated, tmp_path / "absent.safetensors"):
        with pytest.raises(ModelError):
            load_checkpoint(path)


def test_tagging_gives_one_distribution_per_second(tagger_cpu: Tagger, song_mp3: Path) -> None:
    result = tagger_cpu.tag_file(song_mp3)
    assert result.n_seconds == 13 and result.duration == pytest.approx(12.5, abs=0.06)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert list(result.partial) == [False] * 12 + [True]
    assert result.song_genre() in result.classes
    assert sum(s.share_of_seconds for s in result.summary()) == pytest.approx(1.0)


def test_batch_size_does_not_change_results(song_mp3: Path) -> None:
    small = Tagger.load(device="cpu", batch_size=3).tag_file(song_mp3)
    large = Tagger.load(device="cpu", batch_size=64).tag_file(song_mp3)
    np.testing.assert_allclose(small.probabilities, large.probabilities, atol=1e-5)


def test_silent_seconds_get_no_genre(tagger_cpu: Tagger, tmp_path: Path) -> None:
    samples = np.concatenate([synth_song(2.0, 44100), np.zeros(2 * 44100, np.float32),
                              chord(2.0, 44100)])
    result = tagger_cpu.tag_file(write_audio(tmp_path / "gap.wav", samples, 44100))
    assert result.winners()[2:4] == [None, None]
    assert None not in result.winners()[:2] + result.winners()[4:]
    silent = write_audio(tmp_path / "silent.flac", np.zeros(3 * 44100, np.float32), 44100)
    with pytest.raises(SilentAudioError):
        tagger_cpu.tag_file(silent)


def test_python_api(song_mp3: Path) -> None:
    result = tag(song_mp3, device="cpu")
    assert result.title == "synth song" and result.model == "genre-gtzan10"


def test_device_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("tagger.devices.mps_available", lambda: False)
    assert select_device("auto").type == "cpu"
    for missing in ("cuda", "mps"):
        with pytest.raises(TaggerError, match=r"is available|is not available"):
            select_device(missing)
    monkeypatch.setattr("tagger.devices.mps_available", lambda: True)
    assert select_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda"
    assert select_device("CUDA").type == "cuda"


def test_bundled_model_hears_real_music() -> None:
    """On GTZAN validation clips (never trained on), classical and metal are recognised."""
    root = shared_data("gtzan")
    tagger = Tagger.load(device="cpu")
    clips = [line.split(",") for line in (root / "clips.csv").read_text().splitlines()[1:]]
    for genre in ("classical", "metal"):
        valid = [root / f for f, g, split in clips if g == genre and split == "valid"][:4]
        genres = [tagger.tag_file(path).song_genre() for path in valid]
        assert genres.count(genre) >= 3, (genre, genres)
