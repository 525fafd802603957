"""Emotion tagging: valence, energy and danceability per second and per song, on a 0-1 scale.

The model is a genre model's backbone (by default the bundled
genre-sources11's, with its weights) with a three-output regression head; see
``tagger/emotion/model.py``.
Nothing here imports torch at package import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tagger.tasks import DEFAULT_EMOTION_MODEL, TARGETS

# Defaults of the genre retrain options that ``retrain --task emotion`` replaces when not given.
EMOTION_DEFAULTS: dict[str, Any] = {
    "out_dir": Path("runs/emotion"), "name": "emotion-model", "epochs": 12,
}

__all__ = ["DEFAULT_EMOTION_MODEL", "EMOTION_DEFAULTS", "TARGETS"]
