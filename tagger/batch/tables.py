"""The Parquet results of ``genre-tag batch``: three tables in RESULTS_DIR, each a folder of
part files, with the versioned schema ``genre-tag/batch/2`` (``/1`` had no songs
``song_genres``; a run refuses a folder of another schema).

- ``songs/``: one row per song tagged (source, title, audio and model checksums, duration,
  the song genre with the summary's shares and mean probabilities per class and the song's
  genres, ``SongResult.song_genres``; or the emotion song values per target) and the
  warnings its analysis gave;
- ``seconds/``: one row per second of each song (start, end, probabilities or emotion
  values, partial, silent, uncertain);
- ``errors/``: one row per song that failed, with the one-line reason the CLI gives.

The songs of a part are written together: its seconds and errors part first, then its
songs part, each complete or absent (written aside and renamed). A songs part is what
makes its songs done: a run that was killed leaves seconds or errors parts without one,
and the next run deletes them before it starts. Each file carries the schema and the
task in its Parquet metadata, and a checksum of each of its pages.

A run reads every part whole before it starts: a part that does not (damaged bytes, cut
short, or seconds rows that do not add up to its songs' seconds) is deleted with its
other tables' parts, with one warning, and its songs are tagged again.
"""

from __future__ import annotations

import contextlib
import io
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as parquet

from tagger.atomic import atomic_write_bytes
from tagger.errors import OutputError, TaggerWarning
from tagger.results import EmotionResult, SongResult

SCHEMA = "genre-tag/batch/2"
SCHEMA_KEY, TASK_KEY = b"genre-tag.schema", b"genre-tag.task"
SONGS, SECONDS, ERRORS = "songs", "seconds", "errors"
TABLES = (SONGS, SECONDS, ERRORS)
PART_PREFIX = "part-"
LOCK_NAME = ".lock"

_SONG_FIELDS = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("audio_sha256", pa.string(), nullable=False),
    pa.field("model", pa.string()),
    pa.field("model_sha256", pa.string(), nullable=False),
    pa.field("duration", pa.float64()),
    pa.field("n_seconds", pa.int32()),
]
_SECOND_FIELDS = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("audio_sha256", pa.string(), nullable=False),
    pa.field("model_sha256", pa.string(), nullable=False),
    pa.field("second", pa.int32()),
    pa.field("start", pa.float64()),
    pa.field("end", pa.float64()),
]
_FLOATS = pa.list_(pa.float32())
_NAMES = pa.list_(pa.string())
_FLAGS = [pa.field("partial", pa.bool_()), pa.field("silent", pa.bool_())]

SCHEMAS = {
    "genre": {
        SONGS: pa.schema([*_SONG_FIELDS, pa.field("genre", pa.string()),
                          pa.field("uncertain_share", pa.float64()),
                          pa.field("uncertain_below", pa.float64()),
                          pa.field("classes", _NAMES), pa.field("shares", _FLOATS),
                          pa.field("mean_probabilities", _FLOATS),
                          pa.field("song_genres", _NAMES), pa.field("warnings", _NAMES)]),
        SECONDS: pa.schema([*_SECOND_FIELDS, pa.field("genre", pa.string()),
                            pa.field("probabilities", _FLOATS), *_FLAGS,
                            pa.field("uncertain", pa.bool_())]),
    },
    "emotion": {
        SONGS: pa.schema([*_SONG_FIELDS, pa.field("targets", _NAMES),
                          pa.field("values", _FLOATS), pa.field("warnings", _NAMES)]),
        SECONDS: pa.schema([*_SECOND_FIELDS, pa.field("values", _FLOATS), *_FLAGS]),
    },
}
ERRORS_SCHEMA = pa.schema([pa.field("source", pa.string(), nullable=False),
                           pa.field("model_sha256", pa.string(), nullable=False),
                           pa.field("kind", pa.string()), pa.field("error", pa.string())])


@dataclass
class FinishedSong:
    """One song out of the model: its result, or the one-line reason it failed; or skipped,
    because RESULTS_DIR holds it already."""

    source: str
    audio_sha256: str | None = None
    result: SongResult | EmotionResult | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None
    kind: str | None = None
    skipped: bool = False


def _float_lists(rows: np.ndarray, missing: np.ndarray) -> list[list[float] | None]:
    return [None if gone else row.tolist() for row, gone in zip(rows, missing, strict=True)]


def song_row(song: FinishedSong, model_sha256: str) -> dict:
    result = song.result
    assert result is not None and song.audio_sha256 is not None
    row = {"source": song.source, "title": result.title, "audio_sha256": song.audio_sha256,
           "model": result.model, "model_sha256": model_sha256, "duration": result.duration,
           "n_seconds": result.n_seconds, "warnings": list(song.warnings)}
    if isinstance(result, SongResult):
        means = result.mean_probabilities()
        shares = {share.genre: share.share_of_seconds for share in result.summary()}
        return {**row, "genre": result.song_genre(), "uncertain_share": result.uncertain_share(),
                "uncertain_below": result.uncertain_below, "classes": result.classes,
                "shares": [shares[genre] for genre in result.classes],
                "mean_probabilities": means.tolist(),
                "song_genres": [found.genre for found in result.song_genres()]}
    values = result.song_values()
    return {**row, "targets": result.targets, "values": [values[t] for t in result.targets]}


def second_columns(song: FinishedSong, model_sha256: str) -> dict[str, list]:
    result = song.result
    assert result is not None
    n = result.n_seconds
    columns = {"source": [song.source] * n, "audio_sha256": [song.audio_sha256] * n,
               "model_sha256": [model_sha256] * n, "second": list(range(n)),
               "start": result.starts.tolist(), "end": result.ends.tolist(),
               "partial": result.partial.tolist(), "silent": result.silent.tolist()}
    if isinstance(result, SongResult):
        return {**columns, "genre": result.winners(),
                "probabilities": _float_lists(result.probabilities, result.silent),
                "uncertain": result.uncertain.tolist()}
    return {**columns, "values": _float_lists(result.values, result.silent)}


def part_tables(songs: list[FinishedSong], task: str, model_sha256: str) -> dict[str, pa.Table]:
    """The songs, seconds and errors tables of ``songs`` (the skipped left out)."""
    tagged = [song for song in songs if song.result is not None and not song.skipped]
    failed = [song for song in songs if song.error is not None]
    seconds: dict[str, list] = {name: [] for name in SCHEMAS[task][SECONDS].names}
    for song in tagged:
        for name, values in second_columns(song, model_sha256).items():
            seconds[name] += values
    errors = [{"source": song.source, "model_sha256": model_sha256, "kind": song.kind,
               "error": song.error} for song in failed]
    return {
        SONGS: pa.Table.from_pylist([song_row(song, model_sha256) for song in tagged],
                                    schema=SCHEMAS[task][SONGS]),
        SECONDS: pa.Table.from_pydict(seconds, schema=SCHEMAS[task][SECONDS]),
        ERRORS: pa.Table.from_pylist(errors, schema=ERRORS_SCHEMA),
    }


def _parquet_bytes(table: pa.Table, task: str) -> bytes:
    metadata = {**(table.schema.metadata or {}), SCHEMA_KEY: SCHEMA.encode(),
                TASK_KEY: task.encode()}
    buffer = io.BytesIO()
    parquet.write_table(table.replace_schema_metadata(metadata), buffer, compression="zstd",
                        write_page_checksum=True)
    return buffer.getvalue()


def write_part(results_dir: Path, songs: list[FinishedSong], task: str,
               model_sha256: str) -> None:
    """Write one part of each table for ``songs`` (nothing when all were skipped); the
    songs part last, as it marks them done. Raises OutputError."""
    tables = part_tables(songs, task, model_sha256)
    if not (tables[SONGS].num_rows or tables[ERRORS].num_rows):
        return
    name = f"{PART_PREFIX}{uuid.uuid4().hex}.parquet"
    for table_name in (SECONDS, ERRORS, SONGS):
        table = tables[table_name]
        if table.num_rows or table_name == SONGS:
            atomic_write_bytes(results_dir / table_name / name, _parquet_bytes(table, task))


def part_files(results_dir: Path, table: str) -> list[Path]:
    folder = results_dir / table
    return sorted(folder.glob(f"{PART_PREFIX}*.parquet")) if folder.is_dir() else []


def prepare_results_dir(results_dir: Path, task: str) -> None:
    """Make RESULTS_DIR ready for a run of ``task``: refuse one holding another schema or
    task; delete what a killed run left half-done (parts without their songs part,
    temporary files) and the parts that do not read whole (with a warning each). Raises
    OutputError."""
    try:
        for table in TABLES:
            (results_dir / table).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot make the results folder: {error.strerror or error}",
                          str(results_dir), "give a folder you can write to") from error
    _check_held_results(results_dir, task)
    done = {path.name for path in part_files(results_dir, SONGS)}
    for table in (SECONDS, ERRORS):
        for path in part_files(results_dir, table):
            if path.name not in done:
                path.unlink()
    for table in TABLES:
        for leftover in (results_dir / table).glob(f".{PART_PREFIX}*"):
            leftover.unlink()
    for name in sorted(done):
        if (damage := part_damage(results_dir, name)) is not None:
            for table in TABLES:
                (results_dir / table / name).unlink(missing_ok=True)
            warnings.warn(TaggerWarning(
                f"{damage}; deleted it and the part's other tables, so its songs are tagged "
                "again"), stacklevel=2)


def _check_held_results(results_dir: Path, task: str) -> None:
    """Refuse a RESULTS_DIR whose first readable songs part is of another schema or task.
    Raises OutputError."""
    for path in part_files(results_dir, SONGS):
        try:
            metadata = parquet.read_schema(path).metadata or {}
        except (pa.ArrowException, OSError):
            continue  # a damaged part: prepare_results_dir deletes it
        schema = metadata.get(SCHEMA_KEY, b"?").decode()
        if schema != SCHEMA:
            raise OutputError(f"holds results of schema {schema}, not {SCHEMA}",
                              str(results_dir), "give a new --out folder, or resume this one "
                              "with the genre-tag version that wrote it")
        held = metadata.get(TASK_KEY, b"?").decode()
        if held != task:
            raise OutputError(f"holds {held} results, not {task} results", str(results_dir),
                              "give each task its own --out folder")
        return


def read_whole(path: Path) -> pa.Table:
    """Every row of the Parquet file at ``path``, its page checksums verified. Raises
    pyarrow.ArrowException or OSError for a file that does not read whole."""
    return parquet.ParquetFile(path, page_checksum_verification=True).read()


def part_damage(results_dir: Path, name: str) -> str | None:
    """What is wrong with the part ``name`` (its file, and how), or None when its songs,
    seconds and errors files read whole and its seconds rows match its songs."""
    songs_path, seconds_path, errors_path = (results_dir / table / name for table in TABLES)
    try:
        path = songs_path
        expected_seconds = sum(read_whole(path).column("n_seconds").to_pylist())
        path = seconds_path
        seconds = read_whole(path).num_rows if path.exists() or expected_seconds else 0
        if seconds != expected_seconds:
            return (f"{path}: a damaged results part ({seconds} rows for the "
                    f"{expected_seconds} seconds of its songs)")
        path = errors_path
        if path.exists():
            read_whole(path)
    except (pa.ArrowException, OSError) as error:
        reason = getattr(error, "strerror", None) or (str(error).splitlines() or ["?"])[0]
        return f"{path}: a damaged results part ({reason})"
    return None


@dataclass(frozen=True)
class DoneSongs:
    """What RESULTS_DIR holds for one model: each song's source and audio checksum."""

    keys: frozenset[tuple[str, str]] = frozenset()
    sources: frozenset[str] = frozenset()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.keys


def done_songs(results_dir: Path, model_sha256: str) -> DoneSongs:
    """The songs RESULTS_DIR holds for the model of ``model_sha256``."""
    keys: set[tuple[str, str]] = set()
    for path in part_files(results_dir, SONGS):
        table = parquet.read_table(path, columns=["source", "audio_sha256", "model_sha256"])
        for source, audio, model in zip(*(table.column(i).to_pylist() for i in range(3)),
                                        strict=True):
            if model == model_sha256:
                keys.add((source, audio))
    return DoneSongs(frozenset(keys), frozenset(source for source, _ in keys))


def earlier_error_parts(results_dir: Path) -> list[Path]:
    """The errors parts already in RESULTS_DIR: a run that goes through every song retries
    their songs, and deletes them at its end."""
    return part_files(results_dir, ERRORS)


@contextlib.contextmanager
def locked(results_dir: Path) -> Iterator[None]:
    """Make RESULTS_DIR and hold it for one run at a time. Raises OutputError when it
    cannot be made or another run holds it."""
    import fcntl

    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        lock = open(results_dir / LOCK_NAME, "a")  # noqa: SIM115 (held until the run ends)
    except OSError as error:
        raise OutputError(f"cannot make the results folder: {error.strerror or error}",
                          str(results_dir), "give a folder you can write to") from error
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise OutputError("is in use by another genre-tag batch run", str(results_dir),
                              "wait for it to finish, or give another --out folder") from error
        yield
