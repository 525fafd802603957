"""The 4Q data set (Panda et al.): clips in four quadrants of valence and arousal.

``labels.csv``: file, artist, quadrant, valence_q, arousal_q, valence_words,
arousal_words and allmusic_genres. Emotion targets: valence is the mean of
the quadrant's valence sign (0/1) and the percentile rank of
``valence_words``; energy the same with arousal. So every positive-quadrant
clip lies above every negative one, and the mood words order clips within a
quadrant. No danceability. Genre: a clip is used when its AllMusic genres name
exactly one of ours (``ALLMUSIC_GENRES``) and nothing else but tags that say
nothing of genre (``ALLMUSIC_NEUTRAL``); "Pop/Rock", which could be either, is
left out. Split by artist.
"""

from __future__ import annotations

import math
from pathlib import Path

from tagger.datasets.labels import (
    LABELS_CSV,
    clips_or_fail,
    nanmean,
    number,
    percentile_ranks,
    read_rows,
)
from tagger.datasets.splits import Clip

ALLMUSIC_GENRES = {"Blues": "blues", "Classical": "classical", "Country": "country",
                   "Electronic": "electronic", "Jazz": "jazz", "Rap": "hiphop",
                   "Reggae": "reggae"}
ALLMUSIC_NEUTRAL = {"International", "Vocal"}
COLUMNS = ("file", "artist", "quadrant", "valence_q", "arousal_q", "valence_words",
           "arousal_words")


def allmusic_genre(tags: str) -> str | None:
    """Our genre for a 4Q clip's AllMusic tags, or None unless exactly one maps cleanly."""
    names = {t.strip() for t in tags.split(";") if t.strip()}
    ours = {ALLMUSIC_GENRES[n] for n in names if n in ALLMUSIC_GENRES}
    if len(ours) != 1 or names - set(ALLMUSIC_GENRES) - ALLMUSIC_NEUTRAL:
        return None
    return ours.pop()


def read_clips(root: Path) -> list[Clip]:
    """Every listed clip that exists, with its emotion targets and genre ("" if none)."""
    labels = root / LABELS_CSV
    rows = read_rows(labels, COLUMNS)
    valence_words = percentile_ranks([number(r, "valence_words", labels) for r in rows])
    arousal_words = percentile_ranks([number(r, "arousal_words", labels) for r in rows])
    clips = []
    for row, v_words, a_words in zip(rows, valence_words, arousal_words, strict=True):
        path = root / row["file"]
        if not path.is_file():
            continue
        v_sign, a_sign = number(row, "valence_q", labels), number(row, "arousal_q", labels)
        clips.append(Clip(
            key=f"4q:{row['file']}", source="4q", path=path,
            group=f"4q-artist:{row['artist'].casefold() or row['file']}",
            label=allmusic_genre(row.get("allmusic_genres", "")) or "",
            targets=(nanmean(v_sign, v_words), nanmean(a_sign, a_words), math.nan),
            notes={"valence_q": v_sign, "arousal_q": a_sign,
                   "valence_words": number(row, "valence_words", labels),
                   "arousal_words": number(row, "arousal_words", labels)},
        ))
    return clips_or_fail(clips, len(rows), labels)
