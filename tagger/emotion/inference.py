"""Emotion tagging: audio in, per-second valence, energy and danceability out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tagger.checkpoints import LoadedModel, bundled_weights_path, load_checkpoint
from tagger.devices import select_device
from tagger.emotion import DEFAULT_EMOTION_MODEL
from tagger.emotion.results import EmotionResult
from tagger.errors import ModelError
from tagger.features import MelgramFrontEnd
from tagger.inference import run_over_file
from tagger.models import prepare_for_inference


class EmotionTagger:
    """A loaded emotion model with its own front end, ready to tag many songs."""

    def __init__(self, loaded: LoadedModel, device: torch.device, batch_size: int = 64) -> None:
        if loaded.card.task != "emotion":
            raise ModelError(f"is a {loaded.card.task} model, not an emotion model",
                             str(loaded.path),
                             "use a checkpoint from 'genre-tag retrain --task emotion'")
        self.loaded = loaded
        self.card = loaded.card
        self.device = device
        self.batch_size = batch_size
        self.front_end = MelgramFrontEnd(loaded.card.front_end).to(device)
        self.model = prepare_for_inference(loaded.model.to(device))

    @classmethod
    def load(cls, weights: Path | None = None, device: str = "auto",
             batch_size: int = 64) -> EmotionTagger:
        """Load ``weights`` (default: the bundled emotion model) onto ``device``."""
        chosen = select_device(device)
        path = weights or bundled_weights_path(DEFAULT_EMOTION_MODEL)
        return cls(load_checkpoint(path, chosen), chosen, batch_size)

    def tag_file(
        self, path: Path, source: str | None = None, title: str | None = None
    ) -> EmotionResult:
        """Tag one audio file. ``source`` and ``title`` name it in outputs (e.g. a URL)."""
        spec = self.card.front_end
        source = source or str(path)
        values, valid, silent = run_over_file(path, source, self.front_end, self.model,
                                              self.device, self.batch_size)
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
    tagger = EmotionTagger.load(weights, device)
    text = str(source)
    if text.startswith(("http://", "https://")):
        from tagger.download import fetch_audio

        fetched = fetch_audio(text)
        return tagger.tag_file(fetched.path, source=text, title=fetched.title)
    return tagger.tag_file(Path(source))
