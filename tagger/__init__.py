"""genre-tag: per-second music genre timelines from audio files, folders and URLs.

The Python API mirrors the CLI: ``tagger.tag(path_or_url) -> SongResult`` and
``tagger.tag_emotion(path_or_url) -> EmotionResult``.
Heavy modules (torch) load on first use, so ``genre-tag --help`` is instant.
"""

from __future__ import annotations

from typing import Any

# The one place the version is written: pyproject.toml reads it from here, and it is the
# newest release heading of CHANGELOG.md (tests/test_packaging.py checks both).
__version__ = "0.2.0"

__all__ = ["EmotionResult", "EmotionTagger", "SongResult", "Tagger", "__version__", "tag",
           "tag_emotion"]


def __getattr__(name: str) -> Any:
    if name in ("tag", "Tagger", "tag_emotion", "EmotionTagger"):
        from tagger import inference

        return getattr(inference, name)
    if name in ("SongResult", "EmotionResult"):
        from tagger import results

        return getattr(results, name)
    raise AttributeError(f"module 'tagger' has no attribute {name!r}")
