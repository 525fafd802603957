"""The results cache: a model's raw per-second outputs for each song it analysed, so a second
run over a library analyses only what changed.

A result is keyed by the checksum of the song's audio packets
(``audio_content_sha256``: a moved, renamed or retagged file is still a hit) and the
sha256 of the model's weights file (whose header carries its card: classes, front end and
calibration). What is stored is the model's raw output per segment (genre logits or emotion
values), the seconds of real audio in each and which are silent: everything the options of
a run (uncertain threshold, smoothing) are applied to afterwards, so they need no key.
``SCHEMA_VERSION`` is bumped whenever decoding, segmenting or the stored form changes.

To spare hashing an unchanged file again, a second table remembers each path's audio
checksum with the file's device, inode, size, modification and change times; the change
time moves on any write to the file, including one that restores its modification time.

One SQLite database in the user cache folder, in WAL mode: every song is its own
transaction, so a crash or Ctrl-C keeps the songs done, and worker processes write beside
each other. Its size is capped; the least recently used results go first.
"""

from __future__ import annotations

import os
import sqlite3
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import platformdirs

from tagger.errors import OutputError

SCHEMA_VERSION = 1
DATABASE_NAME = "results.sqlite3"
DEFAULT_RESULTS_CACHE_MAX_BYTES = 10**9
# Seconds a write waits for another process's write to finish.
BUSY_TIMEOUT_SECONDS = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    model_sha256 TEXT NOT NULL,
    audio_sha256 TEXT NOT NULL,
    n_segments INTEGER NOT NULL,
    n_columns INTEGER NOT NULL,
    outputs BLOB NOT NULL,
    valid_seconds BLOB NOT NULL,
    silent BLOB NOT NULL,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (model_sha256, audio_sha256)
);
CREATE INDEX IF NOT EXISTS results_by_last_use ON results (last_used);
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,
    state TEXT NOT NULL,
    audio_sha256 TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ModelOutputs:
    """A model's raw outputs for every segment of a song: ``values`` (float32, one row per
    segment: genre logits or emotion values), the seconds of real audio in each segment
    (float64) and which segments are silent (bool)."""

    values: np.ndarray
    valid_seconds: np.ndarray
    silent: np.ndarray


@dataclass(frozen=True)
class ResultsCacheUsage:
    path: Path
    songs: int
    size: int


def default_results_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir("genre-tag")) / "results" / DATABASE_NAME


def file_state(path: Path) -> str:
    """What changes when the file at ``path`` may have changed: device, inode, size,
    modification and change times (links followed)."""
    info = os.stat(path)
    return (f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:"
            f"{info.st_ctime_ns}")


def _pack(array: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(array).tobytes(), 1)


def _unpack(blob: bytes, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    array = np.frombuffer(zlib.decompress(blob), dtype=dtype)
    return array.reshape(shape).copy()


class ResultsCache:
    """One connection to the results cache; every method commits before it returns."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> Self:
        """Open (or create) the cache at ``path`` (default: the user cache folder); a cache
        of another schema version is emptied. Raises sqlite3.Error or OSError."""
        path = path or default_results_cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("DROP TABLE IF EXISTS results")
                connection.execute("DROP TABLE IF EXISTS files")
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                connection.execute("COMMIT")
            connection.executescript(SCHEMA)
        except sqlite3.Error:
            connection.close()
            raise
        return cls(connection, path)

    def close(self) -> None:
        self.connection.close()

    def known_audio(self, path: Path) -> str | None:
        """The audio checksum remembered for ``path``, if the file has not changed since."""
        try:
            state = file_state(path)
        except OSError:
            return None
        row = self.connection.execute(
            "SELECT state, audio_sha256 FROM files WHERE path = ?", (_path_key(path),)
        ).fetchone()
        return row[1] if row and row[0] == state else None

    def audio_checksum(self, path: Path) -> str:
        """The audio checksum of ``path``: remembered, or computed (and remembered). Raises
        AudioError for a file without readable audio."""
        from tagger.audio import audio_content_sha256

        if known := self.known_audio(path):
            return known
        state = file_state(path)  # before reading: a change while hashing shows later
        checksum = audio_content_sha256(path)
        self.connection.execute(
            "INSERT OR REPLACE INTO files (path, state, audio_sha256) VALUES (?, ?, ?)",
            (_path_key(path), state, checksum))
        return checksum

    def has(self, model_sha256: str, audio_sha256: str) -> bool:
        return self.connection.execute(
            "SELECT 1 FROM results WHERE model_sha256 = ? AND audio_sha256 = ?",
            (model_sha256, audio_sha256)).fetchone() is not None

    def get(self, model_sha256: str, audio_sha256: str) -> ModelOutputs | None:
        """The stored outputs (marked as just used), or None."""
        row = self.connection.execute(
            "SELECT n_segments, n_columns, outputs, valid_seconds, silent FROM results "
            "WHERE model_sha256 = ? AND audio_sha256 = ?", (model_sha256, audio_sha256)
        ).fetchone()
        if row is None:
            return None
        n_segments, n_columns, values, valid, silent = row
        try:
            outputs = ModelOutputs(_unpack(values, np.float32, (n_segments, n_columns)),
                                   _unpack(valid, np.float64, (n_segments,)),
                                   _unpack(silent, np.bool_, (n_segments,)))
        except (zlib.error, ValueError):
            return None  # a damaged row is analysed again and replaced
        self.connection.execute(
            "UPDATE results SET last_used = ? WHERE model_sha256 = ? AND audio_sha256 = ?",
            (time.time(), model_sha256, audio_sha256))
        return outputs

    def put(self, model_sha256: str, audio_sha256: str, outputs: ModelOutputs) -> None:
        values = np.asarray(outputs.values, dtype=np.float32)
        blobs = (_pack(values), _pack(np.asarray(outputs.valid_seconds, dtype=np.float64)),
                 _pack(np.asarray(outputs.silent, dtype=np.bool_)))
        self.connection.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (model_sha256, audio_sha256, values.shape[0], values.shape[1], *blobs,
             sum(len(blob) for blob in blobs), time.time()))

    def usage(self) -> ResultsCacheUsage:
        songs, size = self.connection.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM results").fetchone()
        return ResultsCacheUsage(self.path, songs, size)

    def evict(self, max_bytes: int = DEFAULT_RESULTS_CACHE_MAX_BYTES) -> int:
        """Delete the least recently used results until they fit ``max_bytes``, and the
        remembered checksums of files none is left for; returns how many results went."""
        total = self.usage().size
        if total <= max_bytes:
            return 0
        doomed: list[tuple[str, str]] = []
        for model, audio, size in self.connection.execute(
                "SELECT model_sha256, audio_sha256, size FROM results ORDER BY last_used"):
            if total <= max_bytes:
                break
            doomed.append((model, audio))
            total -= size
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.executemany(
            "DELETE FROM results WHERE model_sha256 = ? AND audio_sha256 = ?", doomed)
        self.connection.execute("DELETE FROM files WHERE audio_sha256 NOT IN "
                                "(SELECT audio_sha256 FROM results)")
        self.connection.execute("COMMIT")
        return len(doomed)


def _path_key(path: Path) -> bytes:
    return os.fsencode(os.path.abspath(path))


def results_cache_usage(path: Path | None = None) -> ResultsCacheUsage:
    """How many results the cache holds and how large they are (an absent cache is empty)."""
    path = path or default_results_cache_path()
    if not path.is_file():
        return ResultsCacheUsage(path, 0, 0)
    try:
        cache = ResultsCache.open(path)
    except sqlite3.Error as error:
        raise OutputError(f"the results cache cannot be read: {error}", str(path),
                          "delete it with 'genre-tag cache clear results'") from error
    try:
        return cache.usage()
    finally:
        cache.close()


def clear_results_cache(path: Path | None = None) -> ResultsCacheUsage:
    """Delete the results cache (its database and WAL files); returns what it held."""
    path = path or default_results_cache_path()
    try:
        usage = results_cache_usage(path)
    except OutputError:
        usage = ResultsCacheUsage(path, 0, 0)
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    except OSError as error:
        raise OutputError(f"cannot delete: {error.strerror or error}", str(path),
                          "check the folder's permissions") from error
    return usage
