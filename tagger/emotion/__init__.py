"""Emotion tagging: valence, energy and danceability per second and per song, on a 0-1 scale.

The model is a genre model's backbone (by default the bundled
genre-musicnn11's, with its weights) with a three-output regression head; see
``tagger/training/transfer.py``.
Nothing here imports torch at package import time.
"""

from __future__ import annotations

from tagger.tasks import DEFAULT_EMOTION_MODEL, TARGETS

__all__ = ["DEFAULT_EMOTION_MODEL", "TARGETS"]
