"""The undo store: what each field held before genre-tag wrote to it, and the bytes it
replaced.

Kept in SQLite in the user data folder. Fields are keyed by the audio's checksum
(``audio_content_sha256``) and the file's path. A file found under a new path
(moved or renamed, with the same audio) takes over the history of a path
that no longer exists, so moving a library keeps its undo history, while two
copies of the same recording keep their own; a file re-encoded in place (new audio)
finds its history by its path. A field's value is remembered when genre-tag writes
over a value it did not write itself; over its own earlier value the first one stays,
however many runs wrote in between.

Beside the fields, each write keeps the bytes it replaced (``ByteEdit``), keyed by the
checksum of the whole file it wrote: as long as nobody changed the file since, it can
be given back byte for byte. Everything is committed before the file is written, so a
crash never loses a value.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import platformdirs

from tagger.errors import TaggerError
from tagger.library.byte_edits import ByteEdit, Piece

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS original (audio_sha256 TEXT NOT NULL, path BLOB NOT NULL, "
    "field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (audio_sha256, path, field))",
    # pieces: JSON, [start, stop] for a stretch of the written file, [length] for the next
    # bytes of ``kept`` (zlib).
    "CREATE TABLE IF NOT EXISTS replaced_bytes (file_sha256 TEXT PRIMARY KEY, "
    "original_sha256 TEXT NOT NULL, pieces TEXT NOT NULL, kept BLOB NOT NULL)",
)


# The store's format (SQLite's user_version): 0 is 0.2.0's (fields only) or a new file, 2 adds
# the replaced bytes. A store of a later format is refused rather than misread.
FORMAT = 2


def default_undo_path() -> Path:
    return Path(platformdirs.user_data_dir("genre-tag")) / "undo.sqlite3"


def store_error(error: sqlite3.Error, path: Path, doing: str) -> TaggerError:
    """The one line for a failure of the undo store: damaged, or not writable."""
    if isinstance(error, sqlite3.OperationalError):
        return TaggerError(f"cannot {doing} the undo store: {error}", str(path),
                           "check that its folder is writable and the disk not full")
    return TaggerError(f"the undo store is damaged: {error}", str(path),
                       "move it aside to start afresh; --restore-tags still removes what "
                       "genre-tag wrote, from each file's GENRE_TAGGER field")


class UndoStore:
    """The store at ``path``; ``read_only`` (a dry run) creates and changes nothing, and
    a store that does not exist yet reads as empty."""

    def __init__(self, path: Path | None = None, read_only: bool = False) -> None:
        self.path = path or default_undo_path()
        self.read_only = read_only
        self.connection: sqlite3.Connection | None = None
        try:
            if read_only:
                if self.path.exists():
                    self.connection = sqlite3.connect(
                        f"file:{quote(os.fsdecode(self.path.absolute()))}?mode=ro", uri=True)
                    self.check_format()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path)
            self.check_format()
            with self.connection:
                for statement in SCHEMA:
                    self.connection.execute(statement)
                self.connection.execute(f"PRAGMA user_version = {FORMAT}")
        except OSError as error:
            raise TaggerError(f"cannot open the undo store: {error.strerror or error}",
                              str(self.path), "check that its folder is writable") from error
        except sqlite3.Error as error:
            raise store_error(error, self.path, "open") from error

    def check_format(self) -> None:
        """Raise TaggerError for a store of a later format than this genre-tag's."""
        assert self.connection is not None
        if self.connection.execute("PRAGMA user_version").fetchone()[0] > FORMAT:
            raise TaggerError("the undo store was made by a newer genre-tag", str(self.path),
                              "upgrade genre-tag to use it")

    def _rows(self, query: str, arguments: tuple) -> list[tuple]:
        if self.connection is None:
            return []
        try:
            return self.connection.execute(query, arguments).fetchall()
        except sqlite3.OperationalError as error:
            if self.read_only and "no such table" in str(error):  # a store from before
                return []
            raise store_error(error, self.path, "read") from error
        except sqlite3.Error as error:
            raise store_error(error, self.path, "read") from error

    def _write(self, statement: str, rows: list[tuple]) -> None:
        if self.connection is None or self.read_only:
            raise TaggerError("the undo store is open read-only", str(self.path))
        try:
            with self.connection:
                self.connection.executemany(statement, rows)
        except sqlite3.Error as error:
            raise store_error(error, self.path, "update") from error

    def remember(self, audio_sha256: str, path: Path, before: Mapping[str, list[str]],
                 replace: Mapping[str, bool], by_path: bool = False) -> None:
        """Store each field's value ``before`` a write of ``path``: over the value already
        remembered only where ``replace[field]`` (the file's value is not genre-tag's own).
        ``by_path`` as in ``originals``."""
        remembered = self.originals(audio_sha256, path, by_path)
        merged = {**remembered, **{field: values for field, values in before.items()
                                   if replace.get(field) or field not in remembered}}
        self._write("INSERT OR REPLACE INTO original VALUES (?, ?, ?, ?)",
                    [(audio_sha256, self.key(path), field, json.dumps(values))
                     for field, values in merged.items()])

    def originals(self, audio_sha256: str, path: Path, by_path: bool = False
                  ) -> dict[str, list[str]]:
        """The remembered value of each field genre-tag wrote to in ``path`` (or in a file of
        the same audio at a path that is gone; with ``by_path``, for a file whose audio
        changed, what was remembered at its path); empty: it never wrote to it."""
        rows = self._rows("SELECT path, field, value FROM original WHERE audio_sha256 = ?",
                          (audio_sha256,))
        by_path_rows: dict[bytes, dict[str, list[str]]] = {}
        for stored_path, field, value in rows:
            by_path_rows.setdefault(stored_path, {})[field] = json.loads(value)
        own = self.key(path)
        if own in by_path_rows:
            return by_path_rows[own]
        moved_away = [p for p in sorted(by_path_rows) if not os.path.lexists(os.fsdecode(p))]
        if moved_away:
            return by_path_rows[moved_away[0]]
        if not by_path:
            return {}
        rows = self._rows("SELECT audio_sha256, field, value FROM original WHERE path = ? "
                          "ORDER BY rowid", (own,))
        latest: dict[str, dict[str, list[str]]] = {}
        for audio, field, value in rows:
            latest.setdefault(audio, {})[field] = json.loads(value)
        return latest[rows[-1][0]] if rows else {}

    def remember_bytes(self, file_sha256: str, edit: ByteEdit) -> None:
        layout = [[len(piece)] if isinstance(piece, bytes) else list(piece)
                  for piece in edit.pieces]
        kept = b"".join(piece for piece in edit.pieces if isinstance(piece, bytes))
        self._write("INSERT OR REPLACE INTO replaced_bytes VALUES (?, ?, ?, ?)",
                    [(file_sha256, edit.original_sha256, json.dumps(layout),
                      zlib.compress(kept))])

    def replaced_bytes(self, file_sha256: str) -> ByteEdit | None:
        """How to give back the original of the file genre-tag wrote with this checksum."""
        rows = self._rows("SELECT original_sha256, pieces, kept FROM replaced_bytes "
                          "WHERE file_sha256 = ?", (file_sha256,))
        if not rows:
            return None
        original, layout, kept = rows[0]
        kept, position, pieces = zlib.decompress(kept), 0, []
        for entry in json.loads(layout):
            piece: Piece = tuple(entry) if len(entry) == 2 else kept[position:position + entry[0]]
            position += len(piece) if isinstance(piece, bytes) else 0
            pieces.append(piece)
        return ByteEdit(original, tuple(pieces))

    @staticmethod
    def key(path: Path) -> bytes:
        return os.fsencode(os.path.realpath(path))

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
