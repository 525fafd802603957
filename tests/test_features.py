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
    return MelgramFrontEnd(SPEC)(segments)


def torch_melgrams(segments: np.ndarray, spec: FrontEndSpec) -> np.ndarray:
    """The front end as torch computes it (torch.stft): what genre-tag 0.2 tagged with."""
    from tagger.features import slaney_mel_filterbank

    spectrum = torch.stft(torch.from_numpy(segments), spec.n_fft, spec.hop_length,
                          window=torch.hann_window(spec.n_fft), center=True,
                          pad_mode=spec.pad_mode, return_complex=True)
    filterbank = slaney_mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels, spec.f_min,
                                       spec.f_max).T.astype(np.float32)
    mel = spectrum.abs().pow(spec.power).transpose(1, 2) @ torch.from_numpy(filterbank)
    if spec.compression == "log10":
        return torch.log10(1.0 + 10000.0 * mel).numpy()
    db = 10.0 * torch.log10(mel.clamp(min=spec.amin))
    db = db - 10.0 * torch.log10(mel.amax(dim=(1, 2), keepdim=True).clamp(min=spec.amin))
    return torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - spec.top_db).numpy()


@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("compression", ["db", "log10"])
def test_the_numpy_front_end_is_torch_stfts(pad_mode: str, compression: str) -> None:
    spec = FrontEndSpec(16000, 16000, 512, 256, 96, 0.0, 8000.0, pad_mode=pad_mode,
                        compression=compression)
    song = synth_song(3.0, 16000).astype(np.float32)
    segments = np.stack([*song.reshape(3, 16000), 0.01 * noise(1.0, 16000)]).astype(np.float32)
    melgrams = MelgramFrontEnd(spec)(segments)
    assert melgrams.dtype == np.float32 and melgrams.shape == (4, 63, 96)
    np.testing.assert_allclose(melgrams, torch_melgrams(segments, spec), atol=2e-4, rtol=1e-5)


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
