"""Machine-readable output: JSON / JSON Lines and CSV, with a stable schema.

Schema ``genre-tag/song/1`` (documented in the README): per song its
source, title, duration, model, classes, uncertain threshold, smoothing,
summary and one record per second.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tagger.atomic import atomic_open
from tagger.results import SongResult, TimedResult

SCHEMA = "genre-tag/song/1"
STDOUT = "-"


def song_header(result: TimedResult, schema: str) -> dict[str, Any]:
    """The fields every song record of both schemas starts with."""
    return {"schema": schema, "source": result.source, "title": result.title,
            "duration": round(result.duration, 3), "model": result.model}


def second_span(result: TimedResult, i: int) -> dict[str, float]:
    return {"start": round(float(result.starts[i]), 3), "end": round(float(result.ends[i]), 3)}


def song_record(result: SongResult) -> dict[str, Any]:
    winners = result.winners()
    uncertain = result.uncertain
    seconds = []
    for i in range(result.n_seconds):
        silent = bool(result.silent[i])
        seconds.append({
            **second_span(result, i),
            "genre": winners[i],
            "probabilities": None if silent else {
                genre: round(float(p), 4)
                for genre, p in zip(result.classes, result.probabilities[i], strict=True)
            },
            "partial": bool(result.partial[i]),
            "silent": silent,
            "uncertain": bool(uncertain[i]),
        })
    return {
        **song_header(result, SCHEMA),
        "classes": result.classes,
        "uncertain_below": float(result.uncertain_below),
        "smooth_seconds": int(result.smooth_seconds),
        "summary": {
            "genre": result.song_genre(),
            "uncertain_share": round(result.uncertain_share(), 4),
            "genres": [
                {"genre": s.genre, "share_of_seconds": round(s.share_of_seconds, 4),
                 "mean_probability": round(s.mean_probability, 4)}
                for s in result.summary()
            ],
        },
        "seconds": seconds,
    }


@contextlib.contextmanager
def output_stream(target: str) -> Iterator[IO[str]]:
    if target == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
    else:
        with atomic_open(Path(target), "w") as stream:
            yield stream


def write_json_records(records: list[dict[str, Any]], target: str) -> None:
    """One indented JSON object for a single song, JSON Lines for several."""
    with output_stream(target) as stream:
        if len(records) == 1:
            json.dump(records[0], stream, indent=2, ensure_ascii=False)
            stream.write("\n")
        else:
            for record in records:
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_json(results: list[SongResult], target: str) -> None:
    write_json_records([song_record(result) for result in results], target)


def csv_header(classes: list[str]) -> list[str]:
    return ["source", "title", "start", "end", "genre", "partial", "silent", "uncertain",
            *[f"p_{genre}" for genre in classes]]


def write_csv(results: list[SongResult], target: str) -> None:
    """One row per second of every song, with one probability column per genre."""
    with output_stream(target) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(csv_header(results[0].classes))
        for result in results:
            winners, uncertain = result.winners(), result.uncertain
            for i in range(result.n_seconds):
                probabilities = (
                    [""] * len(result.classes) if result.silent[i]
                    else [f"{p:.4f}" for p in result.probabilities[i]]
                )
                writer.writerow([
                    result.source, result.title, f"{result.starts[i]:.3f}",
                    f"{result.ends[i]:.3f}", winners[i] or "", int(result.partial[i]),
                    int(result.silent[i]), int(uncertain[i]), *probabilities,
                ])
