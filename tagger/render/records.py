"""Machine-readable output: JSON / JSON Lines and CSV, with a stable schema, written as each
song finishes.

Schema ``genre-tag/song/3`` (documented in docs/schemas.md): per song its
source, title, duration, model, classes, uncertain threshold, per-genre
thresholds and familiarity level (null for a model of one genre per song),
smoothing, segmentation settings, summary (with the song's genres,
``SongResult.song_genres``, whether it has none, its familiarity and whether
that is under the level), one record per second and its segments (``song/2``
had no ``thresholds``, ``familiarity_below`` and no summary ``song_genres``,
``uncertain``, ``familiarity`` or ``unfamiliar``; ``song/1`` no segments). The
CSV has one row per second (``scope`` is ``second``, the last column) and, when
asked, one per segment (``segment``).
Names are valid Unicode (see ``tagger.names``) and numbers finite: a value that
is not is null in JSON and empty in CSV.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from tagger.atomic import record_file
from tagger.names import name_bytes, unicode_text
from tagger.results import SongResult, TimedResult
from tagger.segments import Segment

SCHEMA = "genre-tag/song/3"
STDOUT = "-"


def rounded(value: float, digits: int) -> float | None:
    """``value`` rounded to ``digits``, or None when it is not a finite number."""
    return round(float(value), digits) if math.isfinite(value) else None


def csv_number(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, or an empty cell when it is not a finite number."""
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def song_header(result: TimedResult, schema: str) -> dict[str, Any]:
    """The fields every song record of both schemas starts with; ``source_bytes`` (base64)
    only when the source is a file name that is not valid UTF-8."""
    header: dict[str, Any] = {"schema": schema, "source": unicode_text(result.source)}
    if (raw := name_bytes(result.source)) is not None:
        header["source_bytes"] = raw
    return {**header, "title": unicode_text(result.title),
            "duration": rounded(result.duration, 3), "model": result.model}


def csv_names(result: TimedResult) -> list[str]:
    """The source and title cells of a CSV row."""
    return [unicode_text(result.source), unicode_text(result.title)]


def second_span(result: TimedResult, i: int) -> dict[str, float | None]:
    return {"start": rounded(result.starts[i], 3), "end": rounded(result.ends[i], 3)}


def song_record(result: SongResult) -> dict[str, Any]:
    winners = result.winners()
    uncertain = result.uncertain
    song_genres = result.song_genres()
    seconds = []
    for i in range(result.n_seconds):
        silent = bool(result.silent[i])
        seconds.append({
            **second_span(result, i),
            "genre": winners[i],
            "probabilities": None if silent else {
                genre: rounded(p, 4)
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
        "thresholds": None if result.thresholds is None else {
            genre: float(value) for genre, value in result.thresholds.items()},
        "familiarity_below": result.familiarity_below,
        "smooth_seconds": int(result.smooth_seconds),
        "segmentation": {"min_segment_seconds": float(result.min_segment_seconds),
                         "switch_penalty": float(result.switch_penalty)},
        "summary": {
            "genre": result.song_genre(),
            "uncertain_share": rounded(result.uncertain_share(), 4),
            "genres": [
                {"genre": s.genre, "share_of_seconds": rounded(s.share_of_seconds, 4),
                 "mean_probability": rounded(s.mean_probability, 4)}
                for s in result.summary()
            ],
            "mixed": [{"genre": genre, "share": rounded(share, 4)}
                      for genre, share in result.mixed()],
            "song_genres": [
                {"genre": found.genre, "mean_probability": rounded(found.mean_probability, 4),
                 "threshold": float(found.threshold)}
                for found in song_genres
            ],
            "uncertain": not song_genres,
            "familiarity": None if result.familiarity is None else rounded(result.familiarity, 4),
            "unfamiliar": result.unfamiliar,
        },
        "seconds": seconds,
        "segments": [segment_record(segment) for segment in result.segments],
    }


def segment_record(segment: Segment) -> dict[str, Any]:
    mean = segment.mean_probability
    return {"start": rounded(segment.start, 3), "end": rounded(segment.end, 3),
            "genre": segment.label, "mean_probability": None if mean is None else rounded(mean, 4),
            "uncertain": segment.uncertain, "silent": segment.silent}


def csv_header(classes: list[str]) -> list[str]:
    return ["source", "title", "start", "end", "genre", "partial", "silent", "uncertain",
            *[f"p_{genre}" for genre in classes], "scope"]


def segment_csv_rows(result: SongResult) -> list[list[Any]]:
    """One row per segment: its genre, and the mean probability of every genre over its
    audible seconds (empty for a silent segment); ``partial`` is left empty."""
    rows = []
    for segment in result.segments:
        first = round(segment.start / result.segment_seconds)
        after = max(first + 1, round(-(-segment.end // result.segment_seconds)))
        audible = result.probabilities[first:after][~result.silent[first:after]]
        probabilities = ([""] * len(result.classes) if segment.silent or not len(audible)
                         else [csv_number(p, 4) for p in audible.mean(axis=0)])
        rows.append([*csv_names(result), csv_number(segment.start, 3),
                     csv_number(segment.end, 3), segment.label or "", "", int(segment.silent),
                     int(segment.uncertain), *probabilities, "segment"])
    return rows


def song_csv_rows(result: SongResult, with_segments: bool = False) -> list[list[Any]]:
    """One row per second, with one probability column per genre; then, when
    ``with_segments``, one row per segment."""
    winners, uncertain = result.winners(), result.uncertain
    rows = []
    for i in range(result.n_seconds):
        probabilities = (
            [""] * len(result.classes) if result.silent[i]
            else [csv_number(p, 4) for p in result.probabilities[i]]
        )
        rows.append([
            *csv_names(result), csv_number(result.starts[i], 3),
            csv_number(result.ends[i], 3), winners[i] or "", int(result.partial[i]),
            int(result.silent[i]), int(uncertain[i]), *probabilities, "second",
        ])
    return rows + (segment_csv_rows(result) if with_segments else [])


@dataclass(frozen=True)
class RecordFormat:
    """How one command's results become JSON records and CSV rows."""

    record: Callable[[Any], dict[str, Any]]
    csv_header: Callable[[Any], list[str]]
    csv_rows: Callable[[Any], list[list[Any]]]


def genre_records(with_segments: bool = False) -> RecordFormat:
    """The genre records; CSV segment rows only ``with_segments`` (``--segments``)."""
    return RecordFormat(song_record, lambda result: csv_header(result.classes),
                        lambda result: song_csv_rows(result, with_segments))


GENRE_RECORDS = genre_records()


def json_text(record: dict[str, Any], indent: int | None = None) -> str:
    """``record`` as strict JSON (no NaN or Infinity tokens) and a final newline."""
    return json.dumps(record, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


class RecordSink(Protocol):
    def write(self, data: bytes) -> None: ...


class StandardOutput:
    """Records on standard output, as UTF-8 whatever its encoding, flushed one by one. When
    its reader has closed it, writing raises ``BrokenPipeError`` (see ``output_closed``)."""

    def write(self, data: bytes) -> None:
        sys.stdout.flush()
        if (raw := getattr(sys.stdout, "buffer", None)) is not None:
            raw.write(data)
            raw.flush()
        else:
            sys.stdout.write(data.decode("utf-8"))
            sys.stdout.flush()


def output_closed(error: BaseException) -> bool:
    """Whether ``error`` says that standard output was closed by its reader (``genre-tag
    ... | head``): a ``BrokenPipeError``, or the exit that a rich console makes of one."""
    return isinstance(error, BrokenPipeError) or (
        isinstance(error, SystemExit) and isinstance(error.__context__, BrokenPipeError))


class RecordOutputs:
    """The ``--json`` and ``--csv`` outputs of one run, each song's records written whole
    as it finishes: one indented JSON object when ``single_song``, JSON Lines otherwise.

    Use it as a context manager: on leaving, however the run ends, each file
    gets the records written so far (see ``tagger.atomic.RecordFile``).
    """

    def __init__(self, record_format: RecordFormat, json_target: str | None,
                 csv_target: str | None, single_song: bool) -> None:
        self.format = record_format
        self.targets = {"json": json_target, "csv": csv_target}
        self.single_song = single_song
        self.sinks: dict[str, RecordSink] = {}
        self.csv_started = False
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> Self:
        with self.stack as stack:
            for kind, target in self.targets.items():
                if target:
                    self.sinks[kind] = (StandardOutput() if target == STDOUT
                                        else stack.enter_context(record_file(Path(target))))
            self.stack = stack.pop_all()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stack.close()

    def add(self, result: Any) -> None:
        """Write the records of one song."""
        if "json" in self.sinks:
            text = json_text(self.format.record(result), 2 if self.single_song else None)
            self.sinks["json"].write(text.encode("utf-8"))
        if "csv" in self.sinks:
            rows = self.format.csv_rows(result)
            if not self.csv_started:
                rows = [self.format.csv_header(result), *rows]
            self.sinks["csv"].write(csv_text(rows).encode("utf-8"))
            self.csv_started = True
