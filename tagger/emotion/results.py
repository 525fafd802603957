"""What emotion tagging produces: one ``EmotionResult`` that every emotion renderer takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EmotionResult:
    """Per-second values (0-1) of each target for one song.

    ``values`` is ``(seconds, targets)``; rows of silent seconds are NaN and
    count for nothing. ``valid_seconds`` is how much real audio each row holds
    (less than a second only for the zero-padded last row).
    """

    source: str
    title: str
    model: str
    targets: list[str]
    segment_seconds: float
    values: np.ndarray
    valid_seconds: np.ndarray
    silent: np.ndarray

    @property
    def n_seconds(self) -> int:
        return len(self.values)

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

    def song_values(self) -> dict[str, float]:
        """Each target's song value: the mean over the audible seconds (as the model was scored)."""
        means = self.values[~self.silent].mean(axis=0)
        return {target: float(v) for target, v in zip(self.targets, means, strict=True)}
