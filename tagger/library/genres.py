"""Which genres go into a song's tag, and how they are spelled there.

A song's genres come from ``SongResult.song_genres``. With a model whose card
has per-genre thresholds they are the genres whose mean probability reaches
their threshold, best first, up to ``max_genres``; ``min_share`` does not
apply. With any other model a song gets its top genre (highest mean
probability over its audible seconds, the JSON summary's ``genre``), then
further genres, best first, that win at least ``min_share`` of its audible
seconds, up to ``max_genres`` in all. An uncertain song (no genre reaches its
threshold, or the top genre's mean probability is below the model's uncertain
threshold) gets none, unless ``force_uncertain``: then its top genre alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.errors import TaggerError

if TYPE_CHECKING:  # the CLI reads the defaults here without loading numpy
    from tagger.results import SongResult

DEFAULT_MIN_SHARE = 0.3
DEFAULT_MAX_GENRES = 2
# How the bundled models' classes are spelled in tags: the names tag editors, Picard and
# streaming servers use. A class missing here keeps the model's own name.
TAG_NAMES: Mapping[str, str] = {
    "blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Disco",
    "electronic": "Electronic", "hiphop": "Hip-Hop", "jazz": "Jazz", "metal": "Metal",
    "pop": "Pop", "reggae": "Reggae", "rock": "Rock", "rock_metal_hardrock": "Rock",
    "rnb": "R&B", "folk": "Folk", "latin": "Latin", "world": "World",
    "soundtrack": "Soundtrack", "ambient": "Ambient",
}


@dataclass(frozen=True)
class GenrePolicy:
    min_share: float = DEFAULT_MIN_SHARE
    max_genres: int = DEFAULT_MAX_GENRES
    force_uncertain: bool = False
    names: Mapping[str, str] = field(default_factory=lambda: dict(TAG_NAMES))

    def spell(self, genre: str) -> str:
        return self.names.get(genre, genre)


@dataclass(frozen=True)
class GenreChoice:
    """The genres to write, best first (empty: none), the top genre's mean probability,
    and why there are none (``uncertain``, ``unfamiliar`` or ``silent``)."""

    genres: list[str]
    confidence: float
    reason: str | None = None


def choose_genres(result: SongResult, policy: GenrePolicy) -> GenreChoice:
    if (reason := result.no_genre_reason()) == "silent":
        return GenreChoice([], 0.0, reason)
    means = result.mean_probabilities()
    top = result.song_genre()
    confidence = float(means[result.classes.index(top)])
    if reason in ("uncertain", "unfamiliar") and not policy.force_uncertain:
        return GenreChoice([], confidence, reason)
    if result.thresholds is not None:
        chosen = [found.genre for found in result.song_genres()] or [top]
        spelled = list(dict.fromkeys(policy.spell(genre) for genre in chosen))
        return GenreChoice(spelled[: policy.max_genres], confidence)
    chosen = [top]
    for share in result.summary():
        if len(chosen) >= policy.max_genres:
            break
        if share.genre != top and share.share_of_seconds >= policy.min_share:
            chosen.append(share.genre)
    spelled = list(dict.fromkeys(policy.spell(genre) for genre in chosen))
    return GenreChoice(spelled, confidence)


def tag_names(tag_format: str) -> dict[str, str]:
    """The spelling of ``--tag-format``: ``names`` (Hip-Hop), ``model`` (hiphop), or a JSON
    file of ``{"class": "name"}`` laid over ``names``."""
    if tag_format == "names":
        return dict(TAG_NAMES)
    if tag_format == "model":
        return {}
    path = Path(tag_format)
    hint = 'give names, model, or a JSON file such as {"hiphop": "Rap"}'
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TaggerError(f"cannot read the tag names: {error}", str(path), hint) from error
    if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in mapping.items()):
        raise TaggerError("tag names must be a JSON object of non-empty strings", str(path), hint)
    return {**TAG_NAMES, **mapping}
