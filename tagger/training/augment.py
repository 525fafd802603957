"""Augmentation of melgram batches ``(B, frames, mels)`` in dB, for training on little data.

Each transform imitates something that changes between recordings but not
between genres. The front end puts every second's maximum at 0 dB, so a gain
change alone would change nothing; what recordings differ by is the balance
of the spectrum, the codec and the performance:

- ``mix``: with this probability, add another example of the same genre from
  the batch, 0 to 6 dB quieter (in power, then back to dB);
- ``tempo``: stretch time by a factor within 1 +- ``tempo``;
- ``pitch``: shift the mel bands by up to this many bands (3 bands are about
  a semitone above 1 kHz);
- ``tilt``: add a spectral tilt of up to +- ``tilt`` dB from the lowest band
  to the highest (microphone, radio and mastering colour);
- ``lowpass``: with this probability, cut the bands above a random band in
  the top 30 %, as lossy codecs at low bit rates do;

then every example is put back to 0 dB maximum and the 80 dB floor, and the
SpecAugment-style masks of ``tagger.training.loop.mask_spectrograms`` follow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

TOP_DB = 80.0


@dataclass(frozen=True)
class Augmentation:
    """How strong each transform is (see above); 0 leaves it out."""

    mix: float = 0.0  # probability
    tempo: float = 0.0  # largest relative change
    pitch: int = 0  # mel bands
    tilt: float = 0.0  # dB
    lowpass: float = 0.0  # probability

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Augmentation:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown augmentation {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(known))})")
        return cls(**{k: type(getattr(cls, k))(v) for k, v in data.items()})

    def __call__(self, batch: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        if batch.dim() != 3 or not self.active:
            return batch
        if self.mix:
            batch = mix_same_label(batch, labels, self.mix, generator)
        if self.tempo:
            batch = stretch_time(batch, self.tempo, generator)
        if self.pitch:
            batch = shift_bands(batch, self.pitch, generator)
        if self.tilt:
            batch = batch + random_tilt(batch, self.tilt, generator)
        if self.lowpass:
            batch = cut_high_bands(batch, self.lowpass, generator)
        return renormalise(batch)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def renormalise(batch: torch.Tensor) -> torch.Tensor:
    """0 dB maximum and an 80 dB floor per example, as the front end gives."""
    batch = batch - batch.amax(dim=(1, 2), keepdim=True)
    return batch.clamp(min=-TOP_DB)


def mix_same_label(batch: torch.Tensor, labels: torch.Tensor, probability: float,
                   generator: torch.Generator) -> torch.Tensor:
    n = len(batch)
    partners = torch.arange(n)
    for i in range(n):
        same = torch.nonzero((labels == labels[i]) & (torch.arange(n) != i)).flatten()
        if len(same) and torch.rand(1, generator=generator).item() < probability:
            partners[i] = same[torch.randint(len(same), (1,), generator=generator)]
    chosen = partners != torch.arange(n)
    if not chosen.any():
        return batch
    gain_db = _uniform(n, -6.0, 0.0, generator).view(n, 1, 1)
    mixed = 10 * torch.log10(10 ** (batch / 10) + 10 ** ((batch[partners] + gain_db) / 10))
    return torch.where(chosen.view(n, 1, 1), mixed, batch)


def stretch_time(batch: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Read each example at a rate within 1 +- ``amount``, from a random start, edges held."""
    n, frames, _ = batch.shape
    rates = _uniform(n, 1 - amount, 1 + amount, generator)
    span = (frames - 1) * rates
    starts = torch.rand(n, generator=generator) * (frames - 1 - span).clamp(min=0)
    positions = (starts[:, None] + torch.arange(frames)[None, :] * rates[:, None])
    positions = positions.clamp(0, frames - 1)
    low = positions.floor().long()
    high = (low + 1).clamp(max=frames - 1)
    weight = (positions - low).unsqueeze(2)
    gather = lambda index: batch.gather(1, index.unsqueeze(2).expand(-1, -1, batch.shape[2]))  # noqa: E731
    return gather(low) * (1 - weight) + gather(high) * weight


def shift_bands(batch: torch.Tensor, most: int, generator: torch.Generator) -> torch.Tensor:
    """Move each example up or down by up to ``most`` mel bands; vacated bands are floor."""
    n, _, mels = batch.shape
    shifts = torch.randint(-most, most + 1, (n,), generator=generator)
    source = torch.arange(mels)[None, :] - shifts[:, None]  # (n, mels)
    inside = (source >= 0) & (source < mels)
    index = source.clamp(0, mels - 1).unsqueeze(1).expand(-1, batch.shape[1], -1)
    shifted = batch.gather(2, index)
    floor = batch.amin(dim=(1, 2), keepdim=True)
    return torch.where(inside.unsqueeze(1), shifted, floor)


def random_tilt(batch: torch.Tensor, most_db: float, generator: torch.Generator) -> torch.Tensor:
    n, _, mels = batch.shape
    slopes = _uniform(n, -most_db, most_db, generator)
    return (slopes[:, None] * torch.linspace(-0.5, 0.5, mels)[None, :]).unsqueeze(1)


def cut_high_bands(batch: torch.Tensor, probability: float,
                   generator: torch.Generator) -> torch.Tensor:
    n, _, mels = batch.shape
    cut = torch.rand(n, generator=generator) < probability
    first_cut = (mels * _uniform(n, 0.7, 1.0, generator)).long()
    above = torch.arange(mels)[None, :] >= first_cut[:, None]
    silenced = (cut[:, None] & above).unsqueeze(1)
    return torch.where(silenced, batch.amin(dim=(1, 2), keepdim=True), batch)
