from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import chord, noise, synth_song
from conftest import shared_data

from tagger.audio import decode_to_array
from tagger.features import FrontEndSpec, MelgramFrontEnd

REGRESSION = Path(__file__).parent / "data" / "melgram_regression.npz"
SPEC = FrontEndSpec()


def librosa_melgrams(segments: np.ndarray) -> np.ndarray:
    """The course helper's pipeline, second by second."""
    librosa = pytest.importorskip("librosa")
    out = []
    for segment in segments:
        power = librosa.feature.melspectrogram(y=segment, sr=8000, n_fft=400, hop_length=400,
                                               n_mels=128, fmax=4000)
        out.append(librosa.power_to_db(power, ref=np.max).T)
    return np.stack(out)


def ours(segments: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return MelgramFrontEnd(SPEC)(torch.from_numpy(segments)).numpy()


def assert_parity(segments: np.ndarray) -> None:
    difference = np.abs(ours(segments) - librosa_melgrams(segments))
    assert difference.mean() < 0.01
    assert difference.max() < 0.5


def test_shape_range_and_per_second_normalisation() -> None:
    segments = np.stack([chord(1.0, 8000), 0.01 * noise(1.0, 8000)])
    melgrams = ours(segments)
    assert melgrams.shape == (2, SPEC.n_frames, SPEC.n_mels) == (2, 21, 128)
    np.testing.assert_allclose(melgrams.max(axis=(1, 2)), 0.0, atol=1e-5)
    assert melgrams.min() >= -80.0 - 1e-4
    # Each second is normalised to its own maximum: a second 20 dB quieter looks the same.
    quiet = ours(0.1 * segments)
    np.testing.assert_allclose(quiet, melgrams, atol=0.05)


def test_parity_with_librosa_on_generated_signals() -> None:
    song = synth_song(6.0, 8000)
    segments = np.stack([*song.reshape(6, 8000), chord(1.0, 8000), noise(1.0, 8000)])
    assert_parity(segments)


@pytest.mark.slow
def test_parity_with_librosa_on_real_music() -> None:
    folder = shared_data("gtzan")
    for genre in ("rock", "classical", "hiphop"):
        clip = sorted((folder / genre).glob("*.opus"))[0]
        samples = decode_to_array(clip, 8000)
        n = len(samples) // 8000
        assert_parity(samples[: n * 8000].reshape(n, 8000))


def test_melgrams_match_the_stored_regression() -> None:
    """A change that shifts the front end's numbers must be deliberate."""
    stored = np.load(REGRESSION)
    np.testing.assert_allclose(ours(stored["segments"]), stored["melgrams"], atol=1e-3)


def test_spec_round_trips_and_rejects_unknown_fields() -> None:
    assert FrontEndSpec.from_dict(SPEC.to_dict()) == SPEC
    with pytest.raises(ValueError, match="unknown"):
        FrontEndSpec.from_dict({**SPEC.to_dict(), "hop": 1})
    assert SPEC.min_partial_samples == 800


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    from tagger.features import slaney_mel_filterbank

    for sample_rate, n_fft, n_mels, f_max in ((8000, 400, 128, 4000.0), (16000, 512, 96, 8000.0)):
        ours = slaney_mel_filterbank(sample_rate, n_fft, n_mels, 0.0, f_max)
        theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmax=f_max)
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
