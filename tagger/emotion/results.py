"""What emotion tagging produces: one ``EmotionResult`` that every emotion renderer takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagger.results import TimedResult


@dataclass
class EmotionResult(TimedResult):
    """Per-second values (0-1) of each target for one song: ``values`` is
    ``(seconds, targets)``; rows of silent seconds are NaN and count for nothing."""

    targets: list[str]
    values: np.ndarray

    def song_values(self) -> dict[str, float]:
        """Each target's song value: the mean over the audible seconds (as the model was scored)."""
        means = self.values[~self.silent].mean(axis=0)
        return {target: float(v) for target, v in zip(self.targets, means, strict=True)}
