"""What tagging produces: one ``SongResult`` that every renderer takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GenreShare:
    genre: str
    share_of_seconds: float
    mean_probability: float


@dataclass
class TimedResult:
    """Where each analysed second of a song lies.

    ``valid_seconds`` is how much real audio each second holds (less than a
    second only for the zero-padded last one); ``silent`` marks silent seconds.
    """

    source: str
    title: str
    model: str
    segment_seconds: float
    valid_seconds: np.ndarray
    silent: np.ndarray

    @property
    def n_seconds(self) -> int:
        return len(self.valid_seconds)

    @property
    def duration(self) -> float:
        return float(self.valid_seconds.sum())

    @property
    def partial(self) -> np.ndarray:
        return self.valid_seconds < self.segment_seconds - 1e-9

    @property
    def starts(self) -> np.ndarray:
        return np.arange(self.n_seconds) * self.segment_seconds

    @property
    def ends(self) -> np.ndarray:
        return self.starts + self.valid_seconds


@dataclass
class SongResult(TimedResult):
    """Per-second genre probabilities of one song: ``probabilities`` is ``(seconds, classes)``;
    rows of silent seconds are zeros and carry no winner."""

    classes: list[str]
    probabilities: np.ndarray

    def winners(self) -> list[str | None]:
        """The winning genre of every second, or None for a silent one."""
        best = self.probabilities.argmax(axis=1)
        return [None if s else self.classes[b] for b, s in zip(best, self.silent, strict=True)]

    def song_genre(self) -> str:
        """The genre with the highest mean probability over the audible seconds."""
        return self.classes[int(self.mean_probabilities().argmax())]

    def mean_probabilities(self) -> np.ndarray:
        return self.probabilities[~self.silent].mean(axis=0)

    def summary(self, top: int | None = None) -> list[GenreShare]:
        """Genres by share of audible seconds won, then by mean probability."""
        audible = ~self.silent
        counts = np.bincount(self.probabilities[audible].argmax(axis=1),
                             minlength=len(self.classes))
        shares = counts / max(1, int(audible.sum()))
        means = self.mean_probabilities()
        order = sorted(range(len(self.classes)), key=lambda i: (-shares[i], -means[i]))
        ranked = [GenreShare(self.classes[i], float(shares[i]), float(means[i])) for i in order]
        return ranked[:top] if top else ranked
