"""Machine-readable emotion output: JSON / JSON Lines and CSV, with a stable schema.

Schema ``genre-tag/emotion/1`` (documented in docs/schemas.md): per song its
source, title, duration, model, targets, the song values and one record per
second.
"""

from __future__ import annotations

from typing import Any

from tagger.render.records import (
    RecordFormat,
    csv_names,
    csv_number,
    rounded,
    second_span,
    song_header,
)
from tagger.results import EmotionResult

SCHEMA = "genre-tag/emotion/1"


def emotion_record(result: EmotionResult) -> dict[str, Any]:
    seconds = []
    for i in range(result.n_seconds):
        seconds.append({
            **second_span(result, i),
            **{t: rounded(v, 4) for t, v in zip(result.targets, result.values[i], strict=True)},
            "partial": bool(result.partial[i]),
            "silent": bool(result.silent[i]),
        })
    return {
        **song_header(result, SCHEMA),
        "targets": result.targets,
        "song": {t: rounded(v, 4) for t, v in result.song_values().items()},
        "seconds": seconds,
    }


def emotion_csv_header(targets: list[str]) -> list[str]:
    return ["source", "title", "scope", "start", "end", "partial", "silent", *targets]


def emotion_csv_rows(result: EmotionResult) -> list[list[Any]]:
    """One ``scope=song`` row (the song values), then one ``scope=second`` row a second."""
    song = result.song_values()
    rows: list[list[Any]] = [[*csv_names(result), "song", "0.000",
                              csv_number(result.duration, 3), 0, 0,
                              *[csv_number(song[t], 4) for t in result.targets]]]
    for i in range(result.n_seconds):
        values = ([""] * len(result.targets) if result.silent[i]
                  else [csv_number(v, 4) for v in result.values[i]])
        rows.append([*csv_names(result), "second", csv_number(result.starts[i], 3),
                     csv_number(result.ends[i], 3), int(result.partial[i]),
                     int(result.silent[i]), *values])
    return rows


EMOTION_RECORDS = RecordFormat(emotion_record, lambda result: emotion_csv_header(result.targets),
                               emotion_csv_rows)
