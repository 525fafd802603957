from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import chord, synth_song, write_audio
from conftest import shared_data

from tagger import inference
from tagger.cards import bundled_weights_path, card_path_for, sha256_of
from tagger.checkpoints import load_checkpoint, save_checkpoint
from tagger.datasets.vocabulary import CLASSES as VOCABULARY
from tagger.devices import select_device
from tagger.errors import ModelError, SilentAudioError, TaggerError
from tagger.inference import EmotionTagger, Tagger, outputs_of, tag
from tagger.results import smooth_probabilities
from tagger.tasks import DEFAULT_GENRE_MODEL


def calibrated_copy(folder: Path, calibration: dict[str, float]) -> Path:
    """The bundled genre checkpoint saved again with ``calibration`` in its card."""
    loaded = load_checkpoint(bundled_weights_path())
    loaded.card.calibration = calibration
    path = folder / "calibrated.safetensors"
    save_checkpoint(loaded.model, loaded.card, path)
    return path


@pytest.fixture(scope="module")
def chord_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of a major chord, then one of silence, then two more of the chord."""
    samples = np.concatenate([chord(6.0, 44100), np.zeros(44100, np.float32),
                              chord(2.0, 44100, root=330.0)])
    return write_audio(tmp_path_factory.mktemp("chords") / "chord.wav", samples, 44100)


def test_bundled_model_card_is_complete_and_matches_its_weights() -> None:
    weights = bundled_weights_path()
    card = json.loads(card_path_for(weights).read_text())
    assert card["sha256"] == sha256_of(weights)
    assert card["classes"] == list(VOCABULARY)
    assert card["calibration"]["temperature"] > 0 and card["calibration"]["uncertain_below"] > 0
    assert set(card["song_genres"]["thresholds"]) == set(VOCABULARY)
    assert isinstance(card["song_genres"]["familiarity_below"], float)
    assert card["front_end"]["sample_rate"] == 16000 and card["front_end"]["n_mels"] == 96
    assert card["architecture"] == "joint"
    assert card["training"]["init"]["model"] == "musicnn-msd + musicnn-mtt"
    assert "--format vocabulary" in card["training"]["command"]
    assert card["training"]["command"].startswith("genre-tag retrain")
    figures = card["evaluation"]["cross_validation"]  # trained on every clip, so its recipe
    assert set(figures["sources"]) == {"gtzan", "emotify", "4q", "all"}  # is cross-validated
    assert 0.6 < figures["sources"]["all"]["top_genre_right"] <= 1
    assert set(figures["genres"]) == set(VOCABULARY)
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


def test_models_with_one_front_end_share_one_decode_and_keep_their_own_outputs(
        tagger_cpu: Tagger, song_mp3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emotion = EmotionTagger.load(device="cpu")
    excerpts = Tagger.load(device="cpu", excerpts=1)
    course = Tagger.load(bundled_weights_path("genre-gtzan10"), device="cpu")
    assert course.card.front_end != tagger_cpu.card.front_end
    models = [tagger_cpu, emotion, excerpts, course]
    alone = [model.outputs(song_mp3, "song") for model in models]
    decodes = []
    decode = inference.file_segments

    def counted(*args: object) -> object:
        decodes.append(args[0])
        return decode(*args)

    monkeypatch.setattr(inference, "file_segments", counted)
    together = outputs_of(models, song_mp3, "song")
    assert len(decodes) == 2  # the musicnn front end once, the course model's once
    for own, shared in zip(alone, together, strict=True):
        np.testing.assert_array_equal(shared.values, own.values)
        np.testing.assert_array_equal(shared.valid_seconds, own.valid_seconds)
        np.testing.assert_array_equal(shared.silent, own.silent)
    assert together[2].silent.sum() == len(together[2].silent) - 5  # one excerpt analysed
    assert not together[0].silent.any()


@pytest.mark.slow
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


@pytest.mark.slow
def test_temperature_divides_the_logits_and_keeps_every_winner(
    tagger_cpu: Tagger, chord_wav: Path, tmp_path: Path
) -> None:
    temperature = 2.5
    calibrated = Tagger.load(calibrated_copy(tmp_path, {"temperature": temperature}), "cpu")
    plain, softened = tagger_cpu.tag_file(chord_wav), calibrated.tag_file(chord_wav)
    audible = ~plain.silent
    # Logits are the bundled temperature times log-probabilities, up to a constant per row,
    # which the softmax ignores.
    logits = tagger_cpu.temperature * np.log(plain.probabilities[audible].astype(np.float64))
    expected = np.exp(logits / temperature)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softened.probabilities[audible], expected, atol=1e-4)
    assert softened.winners() == plain.winners()
    assert (softened.probabilities[audible].max(axis=1)
            < plain.probabilities[audible].max(axis=1)).all()
    np.testing.assert_array_equal(softened.probabilities[plain.silent], 0.0)


@pytest.mark.slow
def test_uncertain_threshold_comes_from_the_card_unless_given(
    tagger_cpu: Tagger, chord_wav: Path, tmp_path: Path
) -> None:
    bundled = tagger_cpu.card.calibration["uncertain_below"]
    assert tagger_cpu.tag_file(chord_wav).uncertain_below == bundled
    uncalibrated = Tagger.load(calibrated_copy(tmp_path, {}), "cpu").tag_file(chord_wav)
    assert uncalibrated.uncertain_below == 0.0 and not uncalibrated.uncertain.any()
    calibrated = Tagger.load(calibrated_copy(tmp_path, {"uncertain_below": 0.999}), "cpu")
    result = calibrated.tag_file(chord_wav)
    assert result.uncertain_below == 0.999
    tops = result.probabilities.max(axis=1)
    assert result.uncertain.tolist() == [bool(t < 0.999) and not s
                                         for t, s in zip(tops, result.silent, strict=True)]
    assert result.uncertain.sum() >= 6 and not result.uncertain[6]  # the silent second
    assert not calibrated.tag_file(chord_wav, uncertain_below=0).uncertain.any()
    assert tagger_cpu.tag_file(chord_wav, uncertain_below=0.999).uncertain.sum() >= 6


@pytest.mark.slow
def test_smoothing_is_applied_to_the_calibrated_probabilities(
    tagger_cpu: Tagger, chord_wav: Path
) -> None:
    plain = tagger_cpu.tag_file(chord_wav)
    smoothed = tagger_cpu.tag_file(chord_wav, smooth_seconds=3)
    assert smoothed.smooth_seconds == 3
    np.testing.assert_allclose(smoothed.probabilities,
                               smooth_probabilities(plain.probabilities, plain.silent, 3),
                               atol=1e-6)
    assert not np.allclose(smoothed.probabilities, plain.probabilities, atol=1e-3)
    # Applied before the uncertain test: take the second whose top probability smoothing
    # moved most and a threshold halfway between its two tops.
    plain_tops, smoothed_tops = plain.probabilities.max(axis=1), smoothed.probabilities.max(axis=1)
    second = int(np.argmax(np.abs(plain_tops - smoothed_tops)))
    threshold = float(plain_tops[second] + smoothed_tops[second]) / 2
    marked = tagger_cpu.tag_file(chord_wav, smooth_seconds=3, uncertain_below=threshold)
    assert marked.uncertain[second] == (smoothed_tops[second] < threshold)
    assert marked.uncertain[second] != (plain_tops[second] < threshold)


@pytest.mark.parametrize(("options", "message"), [
    ({"smooth_seconds": 4}, "odd number"), ({"smooth_seconds": -1}, "odd number"),
    ({"uncertain_below": 1.5}, "between 0 and 1"), ({"uncertain_below": -0.1}, "between 0 and 1"),
])
def test_bad_tagging_options_are_refused(tagger_cpu: Tagger, chord_wav: Path,
                                         options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tagger_cpu.tag_file(chord_wav, **options)


@pytest.mark.parametrize("calibration", [{"temperature": 0.0}, {"temperature": -1.0},
                                         {"uncertain_below": 2.0}])
def test_an_invalid_calibration_is_refused_on_load(tmp_path: Path,
                                                   calibration: dict[str, float]) -> None:
    with pytest.raises(ModelError, match="invalid calibration"):
        Tagger.load(calibrated_copy(tmp_path, calibration), "cpu")


def test_python_api(song_mp3: Path) -> None:
    result = tag(song_mp3, device="cpu")
    assert result.title == "synth song" and result.model == DEFAULT_GENRE_MODEL


def test_device_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagger.devices.gpu_may_exist", lambda: True)
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


@pytest.mark.slow
def test_bundled_model_hears_real_music() -> None:
    """On GTZAN's 73 validation clips (never trained on): well above the first bundled
    model's 0.534 and the second's 0.644 per clip, and classical always recognised."""
    from tagger.training.evaluate import evaluate_checkpoint

    root = shared_data("gtzan")
    result = evaluate_checkpoint(bundled_weights_path(), root, "audio", {},
                                 torch.device("cpu"))["splits"]["valid"]
    assert result["summary"]["per_clip"]["n"] == 73
    assert result["summary"]["per_clip"]["accuracy"] >= 0.75
    classical = result["reports"]["per_clip"]["per_class"]["classical"]
    assert classical["recall"] == 1.0 and classical["support"] == 19
