"""The two tasks genre-tag tags for, side by side, and the bundled model of each.

Genre classes come from a model's card; emotion has three fixed targets on a
0-1 scale. Nothing here imports torch.
"""

from __future__ import annotations

GENRE, EMOTION = "genre", "emotion"
TASKS = (GENRE, EMOTION)
TARGETS = ("valence", "energy", "danceability")
DEFAULT_GENRE_MODEL = "genre-musicnn17"
DEFAULT_EMOTION_MODEL = "emotion-musicnn"
