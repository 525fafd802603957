"""Tagging: audio in, per-second genre probabilities out, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from tagger.audio import Segment
from tagger.checkpoints import LoadedModel, bundled_weights_path, load_checkpoint
from tagger.devices import select_device
from tagger.errors import ModelError
from tagger.features import MelgramFrontEnd, file_segments
from tagger.results import SongResult


def _batches(segments: Iterable[Segment], size: int) -> Iterator[list[Segment]]:
    iterator = iter(segments)
    while batch := list(islice(iterator, size)):
        yield batch


class Tagger:
    """A loaded model with its own front end, ready to tag many songs."""

    def __init__(self, loaded: LoadedModel, device: torch.device, batch_size: int = 128) -> None:
        if loaded.card.task != "genre":
            raise ModelError(f"is a {loaded.card.task} model, not a genre model", str(loaded.path),
                             f"use it with 'genre-tag {loaded.card.task}'")
        self.loaded = loaded
        self.card = loaded.card
        self.device = device
        self.batch_size = batch_size
        self.front_end = MelgramFrontEnd(loaded.card.front_end).to(device)
        self.model = loaded.model.to(device).eval()

    @classmethod
    def load(cls, weights: Path | None = None, device: str = "auto",
             batch_size: int = 128) -> Tagger:
        """Load ``weights`` (default: the bundled genre model) onto ``device``."""
        chosen = select_device(device)
        return cls(load_checkpoint(weights or bundled_weights_path(), chosen), chosen, batch_size)

    def tag_file(
        self, path: Path, source: str | None = None, title: str | None = None
    ) -> SongResult:
        """Tag one audio file. ``source`` and ``title`` name it in outputs (e.g. a URL)."""
        spec = self.card.front_end
        source = source or str(path)
        segments = file_segments(path, spec, source)
        probabilities, valid, silent = [], [], []
        with torch.inference_mode():
            for batch in _batches(segments, self.batch_size):
                audio = torch.from_numpy(np.stack([s.samples for s in batch])).to(self.device)
                logits = self.model(self.front_end(audio))
                probabilities.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
                valid += [s.valid_samples / spec.sample_rate for s in batch]
                silent += [s.silent for s in batch]
        stacked = np.concatenate(probabilities).astype(np.float32)
        silent_mask = np.array(silent, dtype=bool)
        stacked[silent_mask] = 0.0
        return SongResult(
            source=source,
            title=title or Path(path).stem,
            model=self.card.name,
            classes=list(self.card.classes),
            segment_seconds=spec.segment_seconds,
            probabilities=stacked,
            valid_seconds=np.array(valid, dtype=np.float64),
            silent=silent_mask,
        )


def tag(source: str | Path, weights: Path | None = None, device: str = "auto") -> SongResult:
    """Tag one file or URL with the bundled model (or ``weights``): the Python API."""
    tagger = Tagger.load(weights, device)
    text = str(source)
    if text.startswith(("http://", "https://")):
        from tagger.download import fetch_audio

        fetched = fetch_audio(text)
        return tagger.tag_file(fetched.path, source=text, title=fetched.title)
    return tagger.tag_file(Path(source))
