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

A cache is only a cache: when it fails (damaged pages, a full disk, a folder that cannot be
made or written), a run gives it up with one warning and goes on analysing every song; a
damaged one is deleted at the end of the run, so the next starts a new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

import numpy as np
import platformdirs

from tagger.errors import OutputError, TaggerWarning

T = TypeVar("T")

SCHEMA_VERSION = 1
DATABASE_NAME = "results.sqlite3"
DEFAULT_RESULTS_CACHE_MAX_BYTES = 10**9
# Seconds a write waits for another process's write to finish.
BUSY_TIMEOUT_SECONDS = 60.0
# SQLite's names of the errors of a damaged database file.
DAMAGED_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
CLEAR_HINT = "or run 'genre-tag cache clear results'"

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


class ResultsCacheWarning(TaggerWarning):
    """The results cache failed (full disk, unwritable folder, ...): the run goes on
    without it."""


class DamagedResultsCacheWarning(ResultsCacheWarning):
    """The results cache is damaged: the run goes on without it and deletes it at its end."""


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


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to the cache at ``path`` (made when missing); a cache of another schema
    version is emptied. Raises sqlite3.Error or OSError."""
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
    return connection


def _failure_warning(path: Path, error: sqlite3.Error | OSError) -> ResultsCacheWarning:
    """The one line that says why the cache at ``path`` is given up, and what to do."""
    name = getattr(error, "sqlite_errorname", "")
    code = getattr(error, "errno", None)
    reason = getattr(error, "strerror", None) or str(error)
    if name in DAMAGED_ERRORS:
        return DamagedResultsCacheWarning(
            f"{path}: the results cache is damaged ({reason}), so this run goes on without "
            "it and deletes it at its end; the next run starts a new one")
    if name == "SQLITE_FULL" or code == errno.ENOSPC:
        what, hint = "cannot be written: the disk is full", f"free some space, {CLEAR_HINT}"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or code in (
            errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
        what, hint = f"cannot be written ({reason})", f"make {path.parent} a writable folder"
    elif name.startswith("SQLITE_IOERR") or code == errno.EFBIG:
        what, hint = (f"cannot be written ({reason})",
                      f"check the free space on its disk, {CLEAR_HINT}")
    else:
        what, hint = f"cannot be used ({reason})", f"try again later, {CLEAR_HINT}"
    return ResultsCacheWarning(f"{path}: the results cache {what}, so this run goes on "
                               f"without it ({hint})")


class ResultsCache:
    """The results cache at ``path`` (default: the user cache folder), opened at first use.

    A failure of the cache is not the run's: the cache is given up for the rest of the run
    with one ``ResultsCacheWarning``, and then answers as an empty cache that keeps nothing;
    a given-up cache is false. A damaged cache is deleted when it is closed. Every method
    commits before it returns."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_results_cache_path()
        self._connection: sqlite3.Connection | None = None
        self.given_up = False
        # Found damaged (here or by a worker process): deleted by close().
        self.damaged = False
        # This run's one warning about the cache has been given.
        self.reported = False

    @classmethod
    def open(cls, path: Path | None = None) -> Self:
        """Open (or create) the cache at ``path`` now. Raises sqlite3.Error or OSError."""
        cache = cls(path)
        cache._connection = _connect(cache.path)
        return cache

    def __bool__(self) -> bool:
        return not self.given_up

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, opened when first asked for. Raises sqlite3.Error or OSError."""
        if self._connection is None:
            self._connection = _connect(self.path)
        return self._connection

    def _use(self, action: Callable[[sqlite3.Connection], T], unusable: T) -> T:
        """``action`` on the connection; when the cache fails, it is given up and
        ``unusable`` returned."""
        if self.given_up:
            return unusable
        try:
            return action(self.connection)
        except (sqlite3.Error, OSError) as error:
            self._give_up(error)
            return unusable

    def _give_up(self, error: sqlite3.Error | OSError) -> None:
        self.given_up = True
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        warning = _failure_warning(self.path, error)
        self.damaged |= isinstance(warning, DamagedResultsCacheWarning)
        if not self.reported:
            self.reported = True
            warnings.warn(warning, stacklevel=2)

    def relayed(self, caught: list[Warning | str]) -> list[Warning | str]:
        """The warnings a worker process caught, less the results cache's after the run's
        first; a worker that found this cache damaged has it deleted when it closes."""
        kept: list[Warning | str] = []
        for warning in caught:
            if isinstance(warning, ResultsCacheWarning):
                self.damaged |= isinstance(warning, DamagedResultsCacheWarning)
                if self.reported:
                    continue
                self.reported = True
            kept.append(warning)
        return kept

    def close(self) -> None:
        """Close the connection; delete the cache if it was found damaged."""
        self.given_up = True
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        if self.damaged:
            with contextlib.suppress(OSError):
                _delete_database(self.path)

    def known_audio(self, path: Path) -> str | None:
        """The audio checksum remembered for ``path``, if the file has not changed since."""
        try:
            state = file_state(path)
        except OSError:
            return None
        row = self._use(lambda connection: connection.execute(
            "SELECT state, audio_sha256 FROM files WHERE path = ?", (_path_key(path),)
        ).fetchone(), None)
        return row[1] if row and row[0] == state else None

    def audio_checksum(self, path: Path) -> str | None:
        """The audio checksum of ``path``: remembered, or computed (and remembered); None
        once the cache is given up. Raises AudioError for a file without readable audio."""
        from tagger.audio import audio_content_sha256

        if known := self.known_audio(path):
            return known
        if self.given_up:
            return None
        state = file_state(path)  # before reading: a change while hashing shows later
        checksum = audio_content_sha256(path)
        self._use(lambda connection: connection.execute(
            "INSERT OR REPLACE INTO files (path, state, audio_sha256) VALUES (?, ?, ?)",
            (_path_key(path), state, checksum)), None)
        return checksum

    def has(self, model_sha256: str, audio_sha256: str) -> bool:
        return self._use(lambda connection: connection.execute(
            "SELECT 1 FROM results WHERE model_sha256 = ? AND audio_sha256 = ?",
            (model_sha256, audio_sha256)).fetchone() is not None, False)

    def get(self, model_sha256: str, audio_sha256: str) -> ModelOutputs | None:
        """The stored outputs (marked as just used), or None."""
        row = self._use(lambda connection: connection.execute(
            "SELECT n_segments, n_columns, outputs, valid_seconds, silent FROM results "
            "WHERE model_sha256 = ? AND audio_sha256 = ?", (model_sha256, audio_sha256)
        ).fetchone(), None)
        if row is None:
            return None
        n_segments, n_columns, values, valid, silent = row
        try:
            outputs = ModelOutputs(_unpack(values, np.float32, (n_segments, n_columns)),
                                   _unpack(valid, np.float64, (n_segments,)),
                                   _unpack(silent, np.bool_, (n_segments,)))
        except (zlib.error, ValueError):
            return None  # a damaged row is analysed again and replaced
        self._use(lambda connection: connection.execute(
            "UPDATE results SET last_used = ? WHERE model_sha256 = ? AND audio_sha256 = ?",
            (time.time(), model_sha256, audio_sha256)), None)
        return outputs

    def put(self, model_sha256: str, audio_sha256: str, outputs: ModelOutputs) -> None:
        values = np.asarray(outputs.values, dtype=np.float32)
        blobs = (_pack(values), _pack(np.asarray(outputs.valid_seconds, dtype=np.float64)),
                 _pack(np.asarray(outputs.silent, dtype=np.bool_)))
        self._use(lambda connection: connection.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (model_sha256, audio_sha256, values.shape[0], values.shape[1], *blobs,
             sum(len(blob) for blob in blobs), time.time())), None)

    def usage(self) -> ResultsCacheUsage:
        """How many results the cache holds and their size. Raises sqlite3.Error or
        OSError."""
        songs, size = self.connection.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM results").fetchone()
        return ResultsCacheUsage(self.path, songs, size)

    def evict(self, max_bytes: int = DEFAULT_RESULTS_CACHE_MAX_BYTES) -> int:
        """Delete the least recently used results until they fit ``max_bytes``, and the
        remembered checksums of files none is left for; returns how many results went."""
        return self._use(lambda connection: self._evict(connection, max_bytes), 0)

    def _evict(self, connection: sqlite3.Connection, max_bytes: int) -> int:
        total = self.usage().size
        if total <= max_bytes:
            return 0
        doomed: list[tuple[str, str]] = []
        for model, audio, size in connection.execute(
                "SELECT model_sha256, audio_sha256, size FROM results ORDER BY last_used"):
            if total <= max_bytes:
                break
            doomed.append((model, audio))
            total -= size
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "DELETE FROM results WHERE model_sha256 = ? AND audio_sha256 = ?", doomed)
        connection.execute("DELETE FROM files WHERE audio_sha256 NOT IN "
                           "(SELECT audio_sha256 FROM results)")
        connection.execute("COMMIT")
        return len(doomed)


def _path_key(path: Path) -> bytes:
    return os.fsencode(os.path.abspath(path))


def _delete_database(path: Path) -> None:
    """Delete the database at ``path`` and its WAL files. Raises OSError."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_results_cache(path: Path | None = None) -> ResultsCache:
    """The results cache of a run: opened at its first use, and given up with one warning
    when it fails."""
    return ResultsCache(path)


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
        _delete_database(path)
    except OSError as error:
        raise OutputError(f"cannot delete: {error.strerror or error}", str(path),
                          "check the folder's permissions") from error
    return usage
