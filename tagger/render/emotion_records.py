"""Machine-readable emotion output: JSON / JSON Lines and CSV, with a stable schema.

Schema ``genre-tag/emotion/1`` (documented in the README): per song its
source, title, duration, model, targets, the song values and one record per
second.
"""

from __future__ import annotations

import csv
from typing import Any

from tagger.emotion.results import EmotionResult
from tagger.render.records import (
    output_stream,
    second_span,
    song_header,
    write_json_records,
)

SCHEMA = "genre-tag/emotion/1"


def _value(value: float) -> float | None:
    return None if value != value else round(float(value), 4)  # NaN: silent


def emotion_record(result: EmotionResult) -> dict[str, Any]:
    seconds = []
    for i in range(result.n_seconds):
        seconds.append({
            **second_span(result, i),
            **{t: _value(v) for t, v in zip(result.targets, result.values[i], strict=True)},
            "partial": bool(result.partial[i]),
            "silent": bool(result.silent[i]),
        })
    return {
        **song_header(result, SCHEMA),
        "targets": result.targets,
        "song": {t: round(v, 4) for t, v in result.song_values().items()},
        "seconds": seconds,
    }


def write_emotion_json(results: list[EmotionResult], target: str) -> None:
    """One indented JSON object for a single song, JSON Lines for several."""
    write_json_records([emotion_record(result) for result in results], target)


def emotion_csv_header(targets: list[str]) -> list[str]:
    return ["source", "title", "scope", "start", "end", "partial", "silent", *targets]


def write_emotion_csv(results: list[EmotionResult], target: str) -> None:
    """Per song one ``scope=song`` row (the song values), then one ``scope=second`` row a second."""
    with output_stream(target) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(emotion_csv_header(results[0].targets))
        for result in results:
            song = result.song_values()
            writer.writerow([result.source, result.title, "song", "0.000",
                             f"{result.duration:.3f}", 0, 0,
                             *[f"{song[t]:.4f}" for t in result.targets]])
            for i in range(result.n_seconds):
                values = ([""] * len(result.targets) if result.silent[i]
                          else [f"{v:.4f}" for v in result.values[i]])
                writer.writerow([result.source, result.title, "second",
                                 f"{result.starts[i]:.3f}", f"{result.ends[i]:.3f}",
                                 int(result.partial[i]), int(result.silent[i]), *values])
