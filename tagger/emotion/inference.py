"""Emotion tagging: audio in, per-second valence, energy and danceability out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tagger.emotion import DEFAULT_EMOTION_MODEL
from tagger.emotion.results import EmotionResult
from tagger.inference import AudioModel


class EmotionTagger(AudioModel):
    """The emotion tagger: valence, energy and danceability per second."""

    task = "emotion"
    default_weights = DEFAULT_EMOTION_MODEL

    def tag_file(
        self, path: Path, source: str | None = None, title: str | None = None
    ) -> EmotionResult:
        """Tag one audio file. ``source`` and ``title`` name it in outputs (e.g. a URL)."""
        spec = self.card.front_end
        source = source or str(path)
        values, valid, silent = self.outputs(path, source)
        values[silent] = np.nan
        return EmotionResult(
            source=source,
            title=title or Path(path).stem,
            model=self.card.name,
            targets=list(self.card.classes),
            segment_seconds=spec.segment_seconds,
            values=values,
            valid_seconds=valid,
            silent=silent,
        )


def tag_emotion(source: str | Path, weights: Path | None = None, device: str = "auto"
            ) -> EmotionResult:
    """Emotion of one file or URL with the bundled model (or ``weights``): the Python API."""
    return EmotionTagger.load(weights, device).tag_source(source)
