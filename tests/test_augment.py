"""Spectrogram augmentations, context windows and temperature calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tagger.features import FrontEndSpec, clip_with_context, stream_runs
from tagger.models.base import with_context
from tagger.training.augment import (
    Augmentation,
    cut_high_bands,
    mix_same_label,
    shift_bands,
    stretch_time,
)
from tagger.training.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    softmax,
)


def melgrams(n: int = 8, frames: int = 21, mels: int = 128, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    batch = -80 * torch.rand(n, frames, mels, generator=generator)
    return batch - batch.amax(dim=(1, 2), keepdim=True)


def test_full_augmentation_keeps_the_front_end_range() -> None:
    batch = melgrams()
    augment = Augmentation(mix=1.0, tempo=0.2, pitch=3, tilt=12, lowpass=1.0)
    out = augment(batch, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), torch.Generator().manual_seed(1))
    assert out.shape == batch.shape
    assert torch.allclose(out.amax(dim=(1, 2)), torch.zeros(8))
    assert out.min() >= -80
    assert not torch.equal(out, batch)


def test_no_augmentation_returns_the_batch_untouched() -> None:
    batch = melgrams()
    assert Augmentation()(batch, torch.zeros(8), torch.Generator()) is batch


def test_mixing_takes_partners_of_the_same_label_only() -> None:
    quiet = torch.full((4, 3, 5), -80.0)
    batch = quiet.clone()
    batch[0, :, 0] = 0.0  # label 0: energy in band 0
    batch[1, :, 1] = 0.0  # label 0: band 1
    batch[2, :, 4] = 0.0  # label 1: band 4
    batch[3, :, 3] = 0.0  # label 1: band 3
    mixed = mix_same_label(batch, torch.tensor([0, 0, 1, 1]), 1.0, torch.Generator())
    loud = mixed > -20
    assert loud[0, 0, :].tolist() == [True, True, False, False, False]
    assert loud[2, 0, :].tolist() == [False, False, False, True, True]


def test_pitch_shift_moves_a_peak_by_whole_bands() -> None:
    batch = torch.full((64, 2, 20), -80.0)
    batch[:, :, 10] = 0.0
    shifted = shift_bands(batch, 2, torch.Generator().manual_seed(0))
    peaks = shifted[:, 0].argmax(dim=1)
    assert set(peaks.tolist()) <= {8, 9, 10, 11, 12} and len(set(peaks.tolist())) > 1


def test_tempo_stretch_keeps_a_steady_sound_steady() -> None:
    steady = torch.linspace(-60, 0, 16).repeat(4, 21, 1)
    assert torch.allclose(stretch_time(steady, 0.2, torch.Generator()), steady)


def test_lowpass_floors_only_the_top_bands() -> None:
    batch = torch.linspace(0, -50, 100).repeat(16, 3, 1)  # the floor is band 99's -50 dB
    cut = cut_high_bands(batch, 1.0, torch.Generator().manual_seed(0))
    floored = (cut == -50.0).all(dim=1)
    first_cut = floored.float().argmax(dim=1)
    assert not floored[:, :70].any() and (first_cut < 99).any()
    for row, first in zip(floored, first_cut, strict=True):
        assert row[first:].all()


def test_unknown_augmentation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown augmentation reverb"):
        Augmentation.from_dict({"reverb": 1})


@pytest.mark.parametrize("context", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_streamed_context_equals_whole_song_context(context: int, batch_size: int) -> None:
    seconds = melgrams(n=13, frames=4, mels=6)
    whole = with_context(seconds, context)
    array = seconds.numpy()
    batches = (array[first : first + batch_size] for first in range(0, 13, batch_size))
    streamed = torch.cat([with_context(torch.from_numpy(run), context)[start : start + count]
                          for run, start, count in stream_runs(batches, context)])
    assert whole.shape == (13, 4 * (2 * context + 1), 6)
    assert torch.equal(whole, streamed)
    assert np.array_equal(clip_with_context(array, context), whole.numpy())  # numpy's own
    if context:  # the middle of each window is its own second; the ends repeat
        assert torch.equal(whole[5, 4 * context : 4 * (context + 1)], seconds[5])
        assert torch.equal(whole[0, :4], seconds[0])


def test_context_changes_the_model_input_not_the_melgram_cache_key() -> None:
    plain, wide = FrontEndSpec(), FrontEndSpec(context_segments=1)
    assert wide.input_shape == (63, 128) and plain.input_shape == (21, 128)
    assert plain.melgram_identity() == wide.melgram_identity()


def test_temperature_fit_recovers_the_temperature_of_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(4000, 5))
    truth = softmax(logits, 2.5)
    labels = np.array([rng.choice(5, p=p) for p in truth])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.15)
    report = calibrate(logits, labels, uncertain_below=0.5)
    assert report["ece_after"] < report["ece_before"] / 2
    assert report["accuracy_of_confident"] > report["accuracy_of_uncertain"]
    assert expected_calibration_error(truth, labels) < 0.03
